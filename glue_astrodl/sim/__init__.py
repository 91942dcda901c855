"""Forward-model simulator of reduced CCD frames with exact truth.

``simulate_frame`` draws random scenes of stars and Sérsic galaxies;
``simulate_point_sources`` places isolated stars at chosen S/N for completeness tests.
Both return a :class:`SimulatedFrame` (image, noiseless model, sources, header, truth, PSF).
"""

from .contaminants import (ContaminantConfig, ContaminantTile, class_fractions, simulate_contaminant_frame,
                           simulate_contaminant_tile, tile_batch)
from .frame import SimulatedFrame
from .scene import GENERATOR_VERSION, simulate_frame, simulate_point_sources
from .wcs import make_wcs

__all__ = ["simulate_frame", "simulate_point_sources", "SimulatedFrame", "make_wcs", "GENERATOR_VERSION",
           "simulate_contaminant_tile", "simulate_contaminant_frame", "tile_batch", "class_fractions",
           "ContaminantTile", "ContaminantConfig"]
