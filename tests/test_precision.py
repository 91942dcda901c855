"""bf16 autocast on CPUs with native bf16, float32 elsewhere, a switch to force either
(issue 14 section 4): the choice rule, the header card, and bf16's accuracy against
float32 with the shipped model on a simulated frame with truth."""

import numpy as np
import pytest
import torch
from astropy.io import fits

import glue_astrodl.core.device as device
from glue_astrodl.cli import main
from glue_astrodl.core.calibration import roc_auc, tpr_at_fpr
from glue_astrodl.core.errors import BadInputError
from glue_astrodl.sim import simulate_contaminant_tile
from glue_astrodl.tasks.contaminant_classes import CLASSES
from glue_astrodl.tasks.contaminants import detect_contaminants, write_contaminants

from conftest import noise_image


def test_precision_switch_argument_then_environment_then_native_bf16(monkeypatch):
    monkeypatch.delenv("ASTRODL_PRECISION", raising=False)
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(device, "native_bf16", lambda native=native: native)
        assert device.resolve_precision("cpu") == expected
        assert device.resolve_precision("cpu", "auto") == expected
        assert device.resolve_precision("cuda") == "bf16"  # auto on CUDA: bf16 whatever the CPU
    assert device.resolve_precision("cpu", "BF16") == "bf16"  # forced, even without native bf16
    monkeypatch.setenv("ASTRODL_PRECISION", "bf16")
    assert device.resolve_precision("cpu") == "bf16"
    assert device.resolve_precision("cpu", "fp32") == "fp32"  # the argument beats the environment
    monkeypatch.setenv("ASTRODL_PRECISION", "half")
    with pytest.raises(BadInputError, match=r"precision \(\$ASTRODL_PRECISION\) must be one of auto, bf16, fp32"):
        device.resolve_precision("cpu")
    with pytest.raises(BadInputError, match="precision must be one of auto, bf16, fp32, got 'fp16'"):
        device.resolve_precision("cpu", "fp16")


def test_native_bf16_matches_the_cpu_flags():
    with open("/proc/cpuinfo") as f:
        flags = set(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
    if not flags:
        pytest.skip("no CPU flags in /proc/cpuinfo")
    assert device.native_bf16() == bool({"avx512_bf16", "amx_bf16"} & flags)


def test_autocast_runs_bf16_or_switches_an_outer_autocast_off():
    conv = torch.nn.Conv2d(1, 2, 3)
    x = torch.ones(1, 1, 8, 8)
    with torch.inference_mode():
        with device.autocast("cpu", "bf16"):
            assert conv(x).dtype == torch.bfloat16
        with torch.autocast("cpu", dtype=torch.bfloat16), device.autocast("cpu", "fp32"):
            assert conv(x).dtype == torch.float32


def test_precision_is_in_every_product_header_and_the_cli_switch(tmp_path, monkeypatch):
    monkeypatch.delenv("ASTRODL_PRECISION", raising=False)
    img = noise_image((64, 64))
    res = detect_contaminants(img, classes=["CR", "BG"], precision="fp32")
    assert res.meta["precision"] == "fp32"
    for product in ("proba", "masks", "bitmask"):
        assert res.to_hdu(product).header["PRECISN"] == "fp32"
    auto = "bf16" if device.native_bf16() else "fp32"
    assert detect_contaminants(img, classes=["CR"]).meta["precision"] == auto
    fits.writeto(tmp_path / "f.fits", img)
    write_contaminants(tmp_path / "f.fits", tmp_path / "b.fits", product="bitmask", precision="bf16")
    assert fits.getheader(tmp_path / "b.fits")["PRECISN"] == "bf16"
    assert main(["contaminants", str(tmp_path / "f.fits"), "-o", str(tmp_path / "m.fits"), "--product", "masks",
                 "--precision", "fp32", "--quiet"]) == 0
    assert fits.getheader(tmp_path / "m.fits")["PRECISN"] == "fp32"
    monkeypatch.setenv("ASTRODL_PRECISION", "fp32")
    assert main(["contaminants", str(tmp_path / "f.fits"), "-o", str(tmp_path / "p.fits"), "--quiet"]) == 0
    assert fits.getheader(tmp_path / "p.fits")["PRECISN"] == "fp32"
    assert main(["contaminants", str(tmp_path / "f.fits"), "-o", str(tmp_path / "x.fits"), "--precision", "fp16",
                 "--quiet"]) == 2


@pytest.fixture(scope="module")
def both_precisions():
    """A 768² simulated frame with truth, run by the shipped model in float32 and in bf16."""
    frame = simulate_contaminant_tile(768, np.random.default_rng(11))
    runs = {p: detect_contaminants(frame.image, precision=p) for p in ("fp32", "bf16")}
    return frame, runs["fp32"], runs["bf16"]


def test_bf16_keeps_the_float32_answer_on_a_frame(both_precisions):
    """bf16 against float32, every class: probabilities within 0.1 (the 99th percentile of
    the difference within 0.05), masks differing on < 0.01% of the pixels for the
    pixel-level defects and < 0.5% for any class (FR and BG, smooth maps over most of
    this frame, flip about 0.35%: pixels whose probability sits at the threshold), AUC
    within 0.002, and the CR true-positive rate at a false-positive rate of 1e-4 within
    0.02 (its binomial error here is about 0.006)."""
    frame, full, half = both_precisions
    assert full.meta["precision"] == "fp32" and half.meta["precision"] == "bf16"
    a, b = full.probabilities, half.probabilities
    assert not np.array_equal(a, b)  # bf16 did run
    diff = np.abs(a - b)
    assert diff.max() <= 0.1
    assert np.quantile(diff, 0.99, axis=(1, 2)).max() <= 0.05
    changed = dict(zip(CLASSES, (full.masks() != half.masks()).mean(axis=(1, 2))))
    assert max(changed.values()) < 5e-3 and np.mean(list(changed.values())) < 1e-3, changed
    assert all(changed[c] < 1e-4 for c in ("CR", "HCL", "DCL", "HP", "DP", "SAT")), changed
    scored = 0
    for k, name in enumerate(CLASSES):
        y = frame.masks[k].ravel()
        if 100 <= y.sum() < y.size:
            scored += 1
            assert abs(roc_auc(y, a[k].ravel()) - roc_auc(y, b[k].ravel())) <= 2e-3, name
    assert scored >= 4
    cr, clean = CLASSES.index("CR"), frame.masks[:-1].sum(axis=0) == 0
    y = frame.masks[cr].astype(bool)
    scope = y | clean  # false positives counted on defect-free pixels
    assert y.sum() > 1000
    tpr = [tpr_at_fpr(y[scope], run["CR"][scope], 1e-4) for run in (full, half)]
    assert tpr[0] > 0.3 and abs(tpr[0] - tpr[1]) <= 0.02, tpr


def test_calibration_folded_into_the_output_layer_equals_calibrating_the_logits():
    """The Platt scaling and prior shift folded into the 1x1 output convolution give
    sigmoid(a * logit + b + shift) of the chosen channels, and leave the cached, shared
    network's own head untouched (a second fold does not stack on the first)."""
    from glue_astrodl.core.calibrated_net import CalibratedSigmoid
    from glue_astrodl.core.calibration import prior_shift_logit
    from glue_astrodl.core.predictor import Predictor
    from glue_astrodl.tasks.contaminants import _model

    net, card = _model("contaminants", "cpu")
    head, weight = net.head, net.head.weight.detach().clone()
    pred = Predictor(card, net, "cpu", task="contaminants", precision="fp32")
    channels, priors = ["TRL", "CR", "BG"], {"CR": 1e-3, "TRL": 0.2}
    assert all(card.data["calibration"][c] != [1.0, 0.0] for c in channels)  # real Platt (a, b)
    folded = [pred.calibrated(channels, priors) for _ in range(2)][-1]
    assert net.head is head and torch.equal(net.head.weight, weight)
    train = card.data["training_priors"]
    shift = prior_shift_logit([train[c] for c in channels], [priors.get(c, train[c]) for c in channels])
    reference = CalibratedSigmoid(net, [pred.outputs.index(c) for c in channels], pred._scaling(channels), shift)
    x = torch.from_numpy(noise_image((96, 96)))[None, None] / 50 - 2
    with torch.inference_mode():
        ours, theirs = folded(x), reference(x)
    assert ours.shape == (1, 3, 96, 96)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
