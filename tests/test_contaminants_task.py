"""Plumbing of detect_contaminants / astrodl contaminants with a small untrained model.

Quality (AUC, calibration, real frames) is gated by tests on the shipped weights; these
tests check everything around the network: priors, thresholds, masks, bit codes, files.
"""

import numpy as np
import pytest
import torch
from astropy.io import fits
from conftest import noise_image, run_cli, write_fits

from glue_astrodl import detect_contaminants
from glue_astrodl.core.calibration import prior_shift_sigmoid
from glue_astrodl.core.errors import BadInputError
from glue_astrodl.core.weights import save_model
from glue_astrodl.models.contaminant_net import ContaminantNet
from glue_astrodl.models.registry import ARCHITECTURES
from glue_astrodl.tasks.contaminant_classes import BITS, CLASSES, DEFAULT_PRIORS
from glue_astrodl.tasks.contaminants import parse_priors


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    net = ContaminantNet(widths=(4, 4, 4, 4, 4)).eval()
    d = tmp_path_factory.mktemp("weights")
    card = {"name": "tiny-contaminants", "version": "0", "architecture": "contaminant-unet",
            "arch_kwargs": {"n_classes": 14, "in_channels": 1, "widths": [4, 4, 4, 4, 4]},
            "outputs": list(CLASSES), "training_priors": {c: 0.1 for c in CLASSES},
            "default_priors": dict(DEFAULT_PRIORS), "thresholds": {c: 0.5 for c in CLASSES},
            "receptive_field_overlap": 32, "task": "contaminants", "normaliser": {"name": "sky-mode-asinh"},
            "calibration_kind": "platt", "calibration": {}}
    save_model(net, d / "tiny-contaminants", card, architectures=ARCHITECTURES)
    return d / "tiny-contaminants.safetensors", net


def test_probabilities_are_prior_shifted_network_outputs(tiny_model):
    path, net = tiny_model
    img = noise_image((96, 80))
    res = detect_contaminants(img, model=path, priors={"CR": 1e-3}, tile=64)
    assert res.probabilities.shape == (14, 96, 80) and res.classes == list(CLASSES)
    from glue_astrodl.core.normalise import asinh_stretch, robust_level_noise

    level, noise = robust_level_noise(img)
    with torch.inference_mode():
        raw = torch.sigmoid(net(torch.from_numpy(asinh_stretch(img, level, noise))[None, None]))[0].numpy()
    expected_cr = prior_shift_sigmoid(raw[0], 0.1, 1e-3)
    np.testing.assert_allclose(res["CR"], expected_cr, atol=2e-3)  # tiles vs whole image
    expected_trl = prior_shift_sigmoid(raw[CLASSES.index("TRL")], 0.1, DEFAULT_PRIORS["TRL"])
    np.testing.assert_allclose(res["TRL"], expected_trl, atol=2e-3)
    assert res.priors["CR"] == 1e-3 and res.priors["TRL"] == DEFAULT_PRIORS["TRL"]


def test_card_calibration_is_applied_before_the_prior_shift(tiny_model, tmp_path):
    """A card with Platt scaling (a, b) gives prior_shift(sigmoid(a * logit + b))."""
    import json

    path, net = tiny_model
    card = json.loads(path.with_suffix(".json").read_text())
    card.update(name="tiny-calibrated", calibration={"CR": [2.0, -1.0]})
    calibrated = save_model(net, tmp_path / "tiny-calibrated", {k: v for k, v in card.items() if k != "weights_sha256"},
                            architectures=ARCHITECTURES)
    img = noise_image((64, 64))
    res = detect_contaminants(img, model=tmp_path / "tiny-calibrated.safetensors", classes=["CR", "TRL"],
                              priors={"CR": 1e-3}, tile=64)
    plain = detect_contaminants(img, model=path, classes=["CR", "TRL"], priors={"CR": 1e-3}, tile=64)
    assert calibrated.get("calibration") == {"CR": [2.0, -1.0]}
    logit = lambda p: np.log(p / (1 - p))
    raw = prior_shift_sigmoid(plain["CR"].astype(np.float64), 1e-3, 0.1)  # back to the network's output
    expected = prior_shift_sigmoid(1 / (1 + np.exp(-(2.0 * logit(raw) - 1.0))), 0.1, 1e-3)
    np.testing.assert_allclose(res["CR"], expected, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(res["TRL"], plain["TRL"], atol=1e-6)  # no calibration: identity


def test_cli_compressed_inputs_through_the_batch_path(tiny_model, tmp_path):
    """.fits.fz (tile-compressed) and .fits.gz inputs, two files -> Dask LocalCluster."""
    import gzip

    path, _ = tiny_model
    fz = tmp_path / "a.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(noise_image((64, 64), seed=3))]).writeto(fz)
    gz = tmp_path / "b.fits.gz"
    with gzip.open(gz, "wb") as f:
        fits.PrimaryHDU(noise_image((64, 64), seed=4)).writeto(f)
    out = tmp_path / "out"
    res = run_cli("contaminants", fz, gz, "--model", path, "--classes", "CR", "-o", out, "--workers", "2", "--quiet")
    assert res.returncode == 0, res.stderr
    for name in ("a_contaminants.fits", "b_contaminants.fits"):
        with fits.open(out / name) as hdul:
            assert hdul[0].data.shape == (1, 64, 64) and hdul[0].header["CLASS1"] == "CR"


def _card_with_cr_threshold(tiny_model, tmp_path, img):
    """The tiny model with its card's CR threshold (at the card's default priors) in the widest
    gap between the CR probabilities of ``img`` near their median: about half the pixels are
    flagged, and none lies within rounding of the threshold."""
    import json

    path, net = tiny_model
    p = np.sort(detect_contaminants(img, model=path, classes=["CR"])["CR"].ravel().astype(np.float64))
    mid = len(p) // 2
    k = mid - 200 + int(np.argmax(np.diff(p[mid - 200:mid + 200])))
    card = json.loads(path.with_suffix(".json").read_text())
    card.update(name="tiny-cr-threshold", thresholds=dict(card["thresholds"], CR=(p[k] + p[k + 1]) / 2))
    del card["weights_sha256"]
    save_model(net, tmp_path / "tiny-cr-threshold", card, architectures=ARCHITECTURES)
    return tmp_path / "tiny-cr-threshold.safetensors", (p[k + 1] - p[k]) / p[k]


def test_thresholds_follow_the_priors_and_masks_bitmask(tiny_model, tmp_path):
    path, _ = tiny_model
    img = noise_image((64, 64))
    model, gap = _card_with_cr_threshold(tiny_model, tmp_path, img)
    assert gap > 1e-5  # far above float32 rounding
    base = detect_contaminants(img, model=model, classes=["CR", "HP", "BG"])
    rarer = detect_contaminants(img, model=model, classes=["CR", "HP", "BG"], priors={"CR": DEFAULT_PRIORS["CR"] / 10})
    assert rarer.thresholds["CR"] < base.thresholds["CR"]  # same decision, rescaled probabilities
    assert (rarer["CR"] < base["CR"]).all()
    assert 0.3 < base.masks()[0].mean() < 0.7  # the masks compared below flag pixels, and not all
    np.testing.assert_array_equal(rarer.masks()[0], base.masks()[0])
    # a fixed cut would differ
    assert not np.array_equal(rarer.masks({"CR": base.thresholds["CR"]})[0], base.masks()[0])
    base = detect_contaminants(img, model=path, classes=["CR", "HP", "BG"])
    masks = base.masks({"CR": 0.0, "HP": 2.0})
    assert masks[0].all() and not masks[1].any()
    bits = base.bitmask({"CR": 0.0, "HP": 0.0, "BG": 0.0})
    assert np.all(bits == BITS["CR"] | BITS["HP"])
    base.probabilities[:, :2] = np.nan  # missing input pixels are never flagged
    assert not base.masks({"CR": 0.0})[0, :2].any() and base.masks({"CR": 0.0})[0, 2:].all()
    assert base.flagged_fractions({"CR": 0.0})["CR"] == pytest.approx(1 - 2 / base.probabilities.shape[1])


def test_test_time_augmentation_averages_the_symmetric_views(tiny_model):
    """tta=8 is the network averaged over the eight rotations/flips: a rotated image gives
    the rotated probabilities, which the bare network does not (in float32: bf16 rounds the
    rotated convolutions' sums differently)."""
    path, _ = tiny_model
    img, turned = noise_image((128, 128)), np.rot90(noise_image((128, 128))).copy()
    run = lambda image, n: detect_contaminants(image, model=path, classes=["CR"], priors={"CR": 0.1}, tile=128, tta=n,
                                               precision="fp32")
    tta, plain = run(img, 8), run(img, 1)
    np.testing.assert_allclose(run(turned, 8)["CR"], np.rot90(tta["CR"]), atol=1e-5)
    assert np.abs(run(turned, 1)["CR"] - np.rot90(plain["CR"])).max() > 1e-2
    assert tta.meta["tta"] == 8 and tta.to_hdu().header["TTA"] == 8 and plain.to_hdu().header["TTA"] == 1
    with pytest.raises(BadInputError, match="tta must be one of 1, 2, 4, 8"):
        detect_contaminants(img, model=path, tta=3)


def test_products_and_bad_arguments(tiny_model, tmp_path):
    path, _ = tiny_model
    res = detect_contaminants(noise_image((64, 64)), model=path, classes=["CR", "TRL"])
    for kind, dtype in [("proba", np.float32), ("masks", np.uint8), ("bitmask", np.int16)]:
        out = res.to_fits(tmp_path / f"{kind}.fits", product=kind)
        with fits.open(out) as hdul:
            assert hdul[0].data.dtype == np.dtype(dtype).newbyteorder(">")
            assert hdul[0].header["MODEL"] == "tiny-contaminants"
    assert fits.getheader(tmp_path / "proba.fits")["CLASS2"] == "TRL"
    with pytest.raises(BadInputError, match="unknown class"):
        detect_contaminants(noise_image(), model=path, classes=["XX"])
    with pytest.raises(BadInputError, match="wcs must be an astropy.wcs.WCS, got dict"):  # priors are keyword-only
        detect_contaminants(noise_image(), None, {"CR": 1e-3}, model=path)
    with pytest.raises(BadInputError, match="header must be"):
        detect_contaminants(noise_image(), {"GAIN": 2.0}, model=path)
    with pytest.raises(BadInputError, match="in \\(0, 1\\)"):
        detect_contaminants(noise_image(), model=path, priors={"CR": 2.0})
    assert parse_priors("cr=1e-3, TRL=2e-4") == {"CR": 1e-3, "TRL": 2e-4}
    with pytest.raises(BadInputError):
        parse_priors("CR=abc")


def test_cli_multi_extension_cube_and_outputs(tiny_model, tmp_path):
    path, _ = tiny_model
    mef = tmp_path / "mef.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(noise_image((64, 64)), name="CCD1"),
                  fits.ImageHDU(np.stack([noise_image((64, 64), seed=1), noise_image((64, 64), seed=2)]), name="CCD2")
                  ]).writeto(mef)
    res = run_cli("contaminants", mef, "--model", path, "--classes", "CR,SAT", "--output", "bitmask",
                  "-o", tmp_path / "out.fits", "--regions", tmp_path / "out.reg", "--tta", "2")
    assert res.returncode == 0, res.stderr
    with fits.open(tmp_path / "out.fits") as hdul:
        assert len(hdul) == 4 and [h.header["SRCHDU"] for h in hdul[1:]] == ["1", "2", "2"]
        assert hdul[1].data.dtype.kind == "i" and hdul[1].header["TTA"] == 2
    assert (tmp_path / "out.reg").exists()


def test_cli_bad_inputs(tiny_model, tmp_path):
    path, _ = tiny_model
    bad = write_fits(tmp_path / "flat.fits", np.zeros((64, 64), np.float32))
    res = run_cli("contaminants", bad, "--model", path, "-o", tmp_path / "o.fits")
    assert res.returncode == 2 and "constant image" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = run_cli("contaminants", noise_fits(tmp_path), "--model", tmp_path / "missing.safetensors")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    res = run_cli("contaminants", noise_fits(tmp_path), "--model", path, "--priors", "ZZ=1e-3")
    assert res.returncode == 2 and "unknown class" in res.stderr
    assert not (tmp_path / "o.fits").exists()


def test_checksum_mismatch_is_bad_input(tiny_model, tmp_path):
    path, _ = tiny_model
    corrupt = tmp_path / "corrupt.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    (tmp_path / "corrupt.json").write_text(path.with_suffix(".json").read_text())
    res = run_cli("contaminants", noise_fits(tmp_path), "--model", corrupt)
    assert res.returncode == 2 and "checksum" in res.stderr


def noise_fits(tmp_path):
    return write_fits(tmp_path / "noise.fits", noise_image((64, 64)))


def test_card_without_the_tasks_thresholds_is_bad_input_exit_2(tiny_model, tmp_path):
    """The contaminant task reads its decision thresholds from the card: a card without them
    is refused in one line naming the card (it was a KeyError, exit 1)."""
    import json

    path, net = tiny_model
    card = json.loads(path.with_suffix(".json").read_text())
    for key in ("thresholds", "weights_sha256"):
        del card[key]
    save_model(net, tmp_path / "no-thresholds", card, architectures=ARCHITECTURES)
    model = tmp_path / "no-thresholds.safetensors"
    with pytest.raises(BadInputError, match="no-thresholds.json: model card lacks thresholds"):
        detect_contaminants(noise_image((64, 64)), model=model)
    image = noise_fits(tmp_path)
    res = run_cli("contaminants", image, "--model", model, "-o", tmp_path / "o.fits")
    assert res.returncode == 2, res.stderr
    expected = (f"astrodl: error: {image}: {tmp_path / 'no-thresholds.json'}: model card lacks thresholds "
                "(needed by task 'contaminants')")
    assert res.stderr.strip().splitlines() == [expected]
    assert not (tmp_path / "o.fits").exists()
