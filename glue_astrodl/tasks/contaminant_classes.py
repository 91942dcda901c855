"""MaxiMask's contaminant classes, in its order, with its single-mask bit codes.

Outputs interchange with MaxiMask: plane ``i`` of a probability cube is ``CLASSES[i]`` and a
bit-mask ORs ``BITS[name]`` for every flagged class (BG, the clean background, is 0). The
simulator, the training code, the contaminant task and the viewers all take the classes
from `MAXIMASK`.

Examples
--------
>>> MAXIMASK.classes[:4], MAXIMASK.background
(('CR', 'HCL', 'DCL', 'HP'), 'BG')
>>> BITS["CR"], BITS["HCL"], BITS["BG"]  # bit-mask codes, as MaxiMask writes them
(1, 2, 0)
>>> MAXIMASK.label("TRL"), DEFAULT_PRIORS["TRL"]
('TRL: satellite/aircraft trails', 0.001)
>>> "SAT" in DEFECTS  # saturated star cores are still measured by other tasks
False
"""

from ..core.taxonomy import Taxonomy

__all__ = ["MAXIMASK", "CLASSES", "BITS", "DESCRIPTIONS", "DEFAULT_PRIORS", "COLOURS", "DEFECTS"]

CLASSES = ("CR", "HCL", "DCL", "HP", "DP", "P", "TRL", "FR", "NEB", "SAT", "SP", "OV", "BBG", "BG")

DESCRIPTIONS = {
    "CR": "cosmic rays",
    "HCL": "hot columns/lines",
    "DCL": "dead columns/lines/clusters",
    "HP": "hot pixels",
    "DP": "dead pixels",
    "P": "persistence",
    "TRL": "satellite/aircraft trails",
    "FR": "fringes",
    "NEB": "nebulosity",
    "SAT": "saturated pixels",
    "SP": "diffraction spikes",
    "OV": "overscan",
    "BBG": "bright background",
    "BG": "background (clean)",
}

# Typical fraction of pixels of each class in survey frames, used as the default prior of
# Bayes' prior correction (users override them per data set).
DEFAULT_PRIORS = {
    "CR": 5e-4, "HCL": 5e-4, "DCL": 5e-4, "HP": 5e-5, "DP": 5e-5, "P": 1e-3, "TRL": 1e-3,
    "FR": 1e-2, "NEB": 1e-2, "SAT": 1e-3, "SP": 5e-4, "OV": 1e-2, "BBG": 2e-2, "BG": 0.95,
}

# Display colours (hex, valid in ds9/CRTF and matplotlib), after the seed paper's scheme;
# none is near white or grey, so every swatch shows on a light or dark background and over
# a grey-scale image.
COLOURS = {
    "CR": "#e41a1c", "HCL": "#8c564b", "DCL": "#ffd92f", "HP": "#377eb8", "DP": "#4daf4a",
    "P": "#40e0d0", "TRL": "#ff7f00", "FR": "#c51b7d", "NEB": "#984ea3", "SAT": "#a65628",
    "SP": "#f781bf", "OV": "#66c2a5", "BBG": "#fdb462", "BG": "#000000",
}

MAXIMASK = Taxonomy(CLASSES, DESCRIPTIONS, COLOURS, DEFAULT_PRIORS, background="BG")
BITS = MAXIMASK.bits

#: Pixel-level defects another task should ignore (``--mask-contaminants``): not SAT (the
#: cores of real stars), FR, NEB or BBG (smooth backgrounds over which sources are still
#: measured).
DEFECTS = ("CR", "HCL", "DCL", "HP", "DP", "P", "TRL", "SP", "OV")
