"""Quality gates of the shipped contaminant model (issues 4 and 14), on held-out data.

Simulated gates use tiles from seeds the training never saw (training: seed 0 pool,
validation: seed 1_000_003). Real frames come from registry packages' test data.

The simulated held-out set is frozen: three seeds of 50 tiles of 256 px (three tiles
forced to hold each class, eleven mixed), made by the generator version pinned below and
checked against the sha256 of its masks, so a simulator change cannot silently change it.
An AUC gate passes only when the whole 95% bootstrap interval (tiles resampled) is above
it; the intervals on this set, for the shipped model, are in `MEASURED`.
"""

import hashlib
from importlib.metadata import distribution

import numpy as np
import pytest
from astropy.io import fits

from glue_astrodl.core.calibration import (auc_interval, calibration_gate, expected_calibration_error,
                                           prior_shift_sigmoid, roc_auc)
from glue_astrodl.tasks.contaminant_classes import CLASSES
from glue_astrodl.sim import simulate_contaminant_tile
from glue_astrodl.sim.contaminants import CONTAMINANT_VERSION
from glue_astrodl.tasks.contaminants import detect_contaminants

STRICT = ("CR", "HP", "DP", "HCL", "DCL", "TRL", "SAT")
GENERATOR = "glue_astrodl.sim.contaminants/1.1"
HELD_OUT_SEEDS = (777_777, 777_778, 777_779)
PER_CLASS, MIXED = 3, 11
MASKS_SHA256 = "3d4cd4e014ebaa06fe72c7e5b563413bc05198e0f5f41753c00769061d273e84"
#: The shipped model on this set: AUC [95% bootstrap interval over tiles] (2026-12-02, model 1.2).
MEASURED = {"CR": (0.9919, 0.9885, 0.9947), "HCL": (0.9496, 0.9212, 0.9808), "DCL": (0.9722, 0.9516, 0.9895),
            "HP": (0.9909, 0.9852, 0.9960), "DP": (0.9801, 0.9660, 0.9896), "P": (0.9762, 0.9606, 0.9870),
            "TRL": (0.9941, 0.9899, 0.9983), "FR": (0.9850, 0.9715, 0.9948), "NEB": (0.9806, 0.9726, 0.9870),
            "SAT": (1.0000, 0.9999, 1.0000), "SP": (0.9428, 0.8079, 0.9838), "OV": (0.9994, 0.9982, 1.0000),
            "BBG": (0.9769, 0.9610, 0.9891)}
# Gates the shipped model does not meet with confidence on this set (the interval reaches
# below the gate); strict, so a model that meets them makes the test fail until the entry
# is removed. HCL and DCL lie below their gate (as on the card's own 150-tile set); DP and
# SP straddle it: this set cannot tell, and a gate that cannot tell does not pass.
BELOW_GATE = ("HCL", "DCL", "DP", "SP")


def _gate(name):
    return 0.98 if name in STRICT else 0.95


@pytest.fixture(scope="module")
def held_out():
    """The frozen set, its class fractions, and the model's float32 probabilities at those
    priors."""
    assert CONTAMINANT_VERSION == GENERATOR, "the held-out set is pinned to its generator: re-measure MEASURED"
    tiles = []
    for seed in HELD_OUT_SEEDS:
        rng = np.random.default_rng(seed)
        tiles += [simulate_contaminant_tile(256, rng, classes=[c]) for c in CLASSES[:-1] for _ in range(PER_CLASS)]
        tiles += [simulate_contaminant_tile(256, rng) for _ in range(MIXED)]
    masks = np.stack([t.masks for t in tiles])
    assert hashlib.sha256(np.packbits(masks.astype(bool)).tobytes()).hexdigest() == MASKS_SHA256, \
        "held-out set changed: re-measure MEASURED before trusting the gates"
    fractions = {c: float(masks[:, k].mean()) for k, c in enumerate(CLASSES)}
    with pytest.MonkeyPatch.context() as mp:  # the float32 reference (a CPU with native bf16 defaults to bf16)
        mp.setenv("ASTRODL_PRECISION", "fp32")
        probs = np.stack([detect_contaminants(t.image, priors=fractions).probabilities for t in tiles])
    return masks, probs, fractions, [t.image for t in tiles]


def _tile_groups(masks):
    return np.broadcast_to(np.arange(len(masks))[:, None, None], (len(masks),) + masks.shape[2:])


@pytest.mark.parametrize("name", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason="shipped model: AUC %.4f [%.4f, %.4f] vs gate %.2f"
                                                                 % (MEASURED[c] + (_gate(c),))))
    if c in BELOW_GATE else c for c in CLASSES[:-1]])
def test_roc_auc_gate(held_out, name):
    """The 95% interval's lower end is at or above the gate (0.98 strict, else 0.95)."""
    masks, probs, _, _ = held_out
    k = CLASSES.index(name)
    auc, low, high = auc_interval(masks[:, k], probs[:, k], _tile_groups(masks))
    assert low >= _gate(name), f"{name}: AUC {auc:.4f} [{low:.4f}, {high:.4f}]"


def test_held_out_set_covers_every_class_over_every_seed(held_out):
    """Each class is present in >= 15 tiles, from every seed (the intervals rest on tiles)."""
    masks = held_out[0]
    per_seed = len(masks) // len(HELD_OUT_SEEDS)
    for k, name in enumerate(CLASSES[:-1]):
        present = masks[:, k].any(axis=(1, 2)).reshape(len(HELD_OUT_SEEDS), per_seed).sum(axis=1)
        assert present.sum() >= 15 and present.min() >= PER_CLASS, name


@pytest.mark.parametrize("name", CLASSES)
def test_calibrated_and_discriminating_after_prior_correction(held_out, name):
    """Priors set to the held-out set's class fractions: ECE <= 0.05, paired with AUC >= 0.9
    and a Brier skill >= 0.01 over the base rate (a base-rate model has ECE 0)."""
    masks, probs, _, _ = held_out
    k = CLASSES.index(name)
    passed, metrics = calibration_gate(masks[:, k], probs[:, k])
    assert passed, f"{name}: {metrics}"


#: Classes whose prior-shifted probabilities miss the paired gate (measured on this set).
SHIFT_FAILURES = {0.25: {}, 4.0: {"NEB": "ECE 0.076 at prior 0.32 (set 0.080): over-confident when NEB is common"}}


@pytest.mark.parametrize("factor", sorted(SHIFT_FAILURES))
def test_prior_shift_to_other_priors_stays_calibrated(held_out, factor):
    """Shift to priors ``factor`` x the set's fractions (at most 0.5), and evaluate on the set
    resampled to those fractions (a random share of the positives and of the negatives
    kept, at most 1/8 of either): every class passes the paired gate (ECE <= 0.05, AUC >=
    0.9, Brier skill >= 0.005; SP's is 0.01 at a quarter of its fraction), except the
    known failures in `SHIFT_FAILURES`, which must still fail."""
    masks, probs, fractions, _ = held_out
    rng = np.random.default_rng(14)
    failed = {}
    for k, name in enumerate(CLASSES):
        f = fractions[name]
        target = min(f * factor, 0.5)
        y, p = masks[:, k].ravel(), probs[:, k].ravel()
        ratio = f * (1 - target) / (target * (1 - f))  # kept negatives / kept positives
        keep_neg = min(1 / 8, ratio)
        keep = np.where(y, rng.random(y.size) < keep_neg / ratio, rng.random(y.size) < keep_neg)
        passed, metrics = calibration_gate(y[keep], prior_shift_sigmoid(p[keep], f, target), min_skill=0.005)
        if not passed:
            failed[name] = metrics
    assert sorted(failed) == sorted(SHIFT_FAILURES[factor]), failed


def test_gates_fail_for_a_base_rate_and_an_all_zeros_model(held_out):
    """The calibration gate can fail: a model predicting each class's base rate everywhere
    (ECE 0) and one predicting 0 everywhere both fail it for every class."""
    masks = held_out[0]
    for k, name in enumerate(CLASSES):
        y = masks[:, k].ravel()[::16]  # a 1/16 sample: constant scores sort slowly
        base = np.full(y.size, y.mean(), np.float32)
        assert expected_calibration_error(y, base) < 1e-6  # ECE alone would pass it
        assert not calibration_gate(y, base)[0], name
        assert not calibration_gate(y, np.zeros(y.size, np.float32))[0], name


def test_test_time_augmentation_keeps_every_auc(held_out):
    """tta=8 on one tile of each of six classes from the first seed: none of them loses more
    than 0.002 AUC on those tiles (8 passes a tile: kept small)."""
    masks, probs, fractions, images = held_out
    names = ("CR", "HCL", "HP", "DP", "P", "TRL")
    pick = [CLASSES.index(c) * PER_CLASS for c in names]
    tta = np.stack([detect_contaminants(images[i], priors=fractions, tta=8).probabilities for i in pick])
    for name in names:
        k = CLASSES.index(name)
        y = masks[pick, k].ravel()
        assert roc_auc(y, tta[:, k].ravel()) >= roc_auc(y, probs[pick, k].ravel()) - 2e-3, name


def test_bf16_autocast_of_the_gpu_path_keeps_quality(held_out, monkeypatch):
    """CUDA runs the network under bf16 autocast; emulated here on the CPU, on one tile
    per class: AUC within 0.005 of float32, probabilities within 0.1, < 0.1% of mask
    pixels changed."""
    import torch

    import glue_astrodl.core.tiling as tiling

    masks, probs, fractions, images = held_out
    pick = [k * PER_CLASS for k in range(len(CLASSES) - 1)]
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
    """>= 90% of the cosmic-ray pixels astroscrappy's own test checks are flagged CR, and
    few others (flagging every pixel fails).

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
    flagged = detect_contaminants(data, classes=["CR"]).masks()[0]
    recovered = flagged[reference].mean()
    assert recovered >= 0.9, f"recovered {recovered:.2%} of astroscrappy's CR pixels"
    # and not by flagging everything: at most 10 CR pixels (0.03% of the frame; 2 today)
    # more than 2 px from astroscrappy's, and at most twice its count in all (190 vs 174)
    far = ~ndimage.binary_dilation(reference, iterations=2)
    assert flagged[far].sum() <= 10, f"{flagged[far].sum()} CR pixels away from astroscrappy's"
    assert flagged.sum() <= 2 * reference.sum()


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
