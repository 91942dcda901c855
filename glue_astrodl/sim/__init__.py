"""Forward-model simulator of reduced CCD frames with exact truth.

``simulate_frame`` draws random scenes of stars and Sérsic galaxies;
``simulate_point_sources`` places isolated stars at chosen S/N for completeness tests.
Both return a :class:`SimulatedFrame` (image, noiseless model, sources, header, truth, PSF).

Examples
--------
>>> from glue_astrodl.sim import simulate_frame, simulate_point_sources
>>> frame = simulate_frame((64, 64), n_stars=5, n_galaxies=2, seed=0)
>>> frame.image.shape, len(frame.truth), frame.header["FWHM"]
((64, 64), 7, 3.0)
>>> stars = simulate_point_sources((64, 64), snr=(10, 20), n_per_snr=2, fwhm=2.5, seed=0)
>>> sorted(stars.truth["snr"].round(6).tolist())  # point-source S/N as asked
[10.0, 10.0, 20.0, 20.0]
"""

from .contaminants import (ContaminantConfig, ContaminantTile, class_fractions, simulate_contaminant_frame,
                           simulate_contaminant_tile, tile_batch)
from .frame import SimulatedFrame
from .real_backgrounds import RealTile, add_sky_gradient, inject_contaminants, real_tile_pool
from .scene import GENERATOR_VERSION, simulate_frame, simulate_point_sources
from .wcs import make_wcs

__all__ = ["simulate_frame", "simulate_point_sources", "SimulatedFrame", "make_wcs", "GENERATOR_VERSION",
           "simulate_contaminant_tile", "simulate_contaminant_frame", "tile_batch", "class_fractions",
           "ContaminantTile", "ContaminantConfig", "RealTile", "inject_contaminants", "real_tile_pool",
           "add_sky_gradient"]
