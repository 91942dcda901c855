"""The shipped contaminant model's answer does not depend on the tile size (issue 14 §7).

The network's receptive field is about 300 px (an input-gradient radius of 267 px holds
99.9% of |d out / d in|; the theoretical radius of the U-Net with its dilated context
block is about 316 px), so the card's overlap is 320: with it, and with tiles that start
on the network's 16 px downsampling grid, tiled inference equals one whole-frame pass.
With the old overlap of 64 a 1024² frame in 512 px tiles differed from the whole pass by
up to 0.98 in probability and flipped 1.1% of the mask pixels.
"""

import numpy as np
import pytest

from glue_astrodl.sim import simulate_contaminant_frame
from glue_astrodl.tasks.contaminants import detect_contaminants


@pytest.fixture(scope="module")
def frame():
    """A strip wider than two tiles of the card's minimum size (4 x overlap)."""
    return simulate_contaminant_frame((320, 1792), seed=3).image


@pytest.fixture(autouse=True)
def float32(monkeypatch):
    """Tiling is tested at float32: bf16 rounding is a separate (precision) question."""
    monkeypatch.setenv("ASTRODL_PRECISION", "fp32")


@pytest.fixture(scope="module")
def whole(frame):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASTRODL_PRECISION", "fp32")
        return detect_contaminants(frame, tile=2048)  # one tile: the whole-frame pass


def _agree(a, b):
    diff = float(np.abs(a.probabilities - b.probabilities).max())
    flipped = float(np.mean(a.masks() != b.masks()))
    return diff, flipped


@pytest.mark.parametrize("tile", [256, 512, 1024])
def test_tile_sizes_agree_with_the_whole_frame(frame, whole, tile):
    """Tiles of 256, 512 and 1024 (raised by the predictor to 4 x the card's overlap, i.e.
    3 tiles across this strip): within 0.02 in probability, < 0.1% of mask pixels flipped."""
    diff, flipped = _agree(detect_contaminants(frame, tile=tile), whole)
    assert diff <= 0.02 and flipped <= 1e-3, f"tile {tile}: max |dp| {diff:.4f}, {flipped:.4%} of mask pixels"


def _stitched(frame, tile, overlap):
    """The card's calibrated model over ``frame`` in read windows of ``tile`` px."""
    from glue_astrodl.core.predictor import Predictor
    from glue_astrodl.core.tiling import tiled_inference
    from glue_astrodl.core.weights import load_model
    from glue_astrodl.models.registry import ARCHITECTURES

    net, card = load_model("contaminants", architectures=ARCHITECTURES)
    predictor = Predictor(card, net)
    preprocess, _ = predictor.normaliser(frame)
    module = predictor.calibrated(predictor.outputs)
    return tiled_inference(module, frame, tile=tile, overlap=overlap, batch_size=2, device="cpu", preprocess=preprocess)


def test_small_read_windows_with_the_card_overlap_equal_one_pass(frame):
    """Read windows just larger than twice the card's overlap (many cuts across the strip):
    the stitched output equals the whole-frame pass; with the old overlap of 64 it does not
    (so this test can fail)."""
    from glue_astrodl.core.weights import find_model

    overlap = int(find_model("contaminants").get("receptive_field_overlap"))
    assert overlap >= 267  # the measured 99.9% input-gradient radius
    one = _stitched(frame, 2048, overlap)
    tiled = _stitched(frame, 2 * overlap + 64, overlap)
    assert np.abs(tiled - one).max() <= 0.02
    seams = _stitched(frame, 512, 64)
    assert np.abs(seams - one).max() > 0.2
