"""Tests of the contaminant tile/frame generator (glue_astrodl.sim.contaminants)."""

import time

import numpy as np
import pytest
from astropy.wcs import WCS
from scipy import ndimage

from glue_astrodl.core.psf import gaussian_psf, moffat_psf
from glue_astrodl.tasks.contaminant_classes import CLASSES
from glue_astrodl.sim.contaminants import (PRESENCE_RANGE, ContaminantConfig, ContaminantTile,
                                           class_fractions, simulate_contaminant_frame,
                                           simulate_contaminant_tile, tile_batch)
from glue_astrodl.sim.detector_defects import saturate
from glue_astrodl.sim.optical_artefacts import PSFBank
from glue_astrodl.sim.render import PSFModel

CONTAMINANTS = CLASSES[:-1]
# a quiet, well-defined setup for the morphology tests (fixed PSF and noise, canonical
# orientation, few stars)
QUIET = dict(fwhm=(3.0, 3.0), moffat_fraction=0.0, sky=(200.0, 200.0), gain=(2.0, 2.0),
             read_noise=(4.0, 4.0), bias_probability=0.0, full_well=(1e5, 1e5),
             random_orientation=False, quantise=False)


def _tile(seed, **kw):
    return simulate_contaminant_tile(128, np.random.default_rng(seed), **kw)


def test_same_seed_same_tile_different_seed_differs():
    a, b, c = _tile(11), _tile(11), _tile(12)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert a.meta["classes"] == b.meta["classes"]
    assert not np.array_equal(a.image, c.image)
    f1 = simulate_contaminant_frame((256, 256), seed=3)
    f2 = simulate_contaminant_frame((256, 256), seed=3)
    np.testing.assert_array_equal(f1.image, f2.image)
    np.testing.assert_array_equal(f1.masks, f2.masks)


@pytest.mark.parametrize("size", [64, 128, 256])
def test_shapes_dtypes_and_bg_is_the_complement(size):
    for seed in range(4):
        t = simulate_contaminant_tile(size, np.random.default_rng(seed))
        assert isinstance(t, ContaminantTile)
        assert t.image.shape == (size, size) and t.image.dtype == np.float32
        assert t.masks.shape == (len(CLASSES), size, size) and t.masks.dtype == bool
        assert np.all(np.isfinite(t.image))
        np.testing.assert_array_equal(t.mask("BG"), ~t.masks[:-1].any(axis=0))
        for key in ("fwhm", "sky", "gain", "read_noise", "bias", "saturation", "sigma",
                    "classes", "artefacts"):
            assert key in t.meta
        assert 1.0 <= t.meta["fwhm"] <= 8.0 and 0.5 <= t.meta["gain"] <= 5.0
        assert 2.0 <= t.meta["read_noise"] <= 15.0 and 10.0 <= t.meta["sky_e"] <= 1e4


def test_tile_batch_shapes():
    images, masks = tile_batch(3, 64, np.random.default_rng(0))
    assert images.shape == (3, 1, 64, 64) and images.dtype == np.float32
    assert masks.shape == (3, len(CLASSES), 64, 64) and masks.dtype == bool
    np.testing.assert_array_equal(masks[:, -1], ~masks[:, :-1].any(axis=1))


@pytest.mark.parametrize("name", CLASSES)
def test_each_class_can_be_forced(name):
    t = _tile(100 + CLASSES.index(name), classes=[name])
    assert t.meta["classes"] == ([] if name == "BG" else [name])
    counts = t.masks.reshape(len(CLASSES), -1).sum(axis=1)
    assert counts[CLASSES.index(name)] > 0
    others = [c for c in CONTAMINANTS if c != name]
    assert all(counts[CLASSES.index(c)] == 0 for c in others), dict(zip(CLASSES, counts))


def test_clean_tile_and_unknown_class():
    t = _tile(0, classes=[])
    assert t.mask("BG").all() and not t.masks[:-1].any()
    with pytest.raises(ValueError):
        _tile(0, classes=["XYZ"])


def test_config_dict_and_presence_zero():
    cfg = dict(presence={c: 0.0 for c in CONTAMINANTS})
    t = _tile(1, config=cfg)
    assert t.meta["classes"] == [] and t.mask("BG").all()
    assert isinstance(ContaminantConfig(**cfg), ContaminantConfig)


def _sharpness(img, bg, points):
    """(v - median of the 8 neighbours) / (v - bg) at the given (row, col) peaks."""
    out = []
    for r, c in points:
        if 1 <= r < img.shape[0] - 1 and 1 <= c < img.shape[1] - 1:
            box = img[r - 1:r + 2, c - 1:c + 2].ravel()
            out.append((box[4] - np.median(np.delete(box, 4))) / (box[4] - bg))
    return np.array(out)


def _cr_sharpness(seed, diffusion):
    t = _tile(seed, classes=["CR"], config=dict(QUIET, star_density=(1e-9, 1e-9), cr_diffusion=diffusion))
    img, bg, sig = t.image.astype(float), t.meta["bias"] + t.meta["sky"], t.meta["sigma"]
    lab, n = ndimage.label(t.mask("CR"))
    peaks = ndimage.maximum_position(img, lab, range(1, n + 1))
    return list(_sharpness(img, bg, [p for p in peaks if img[p] - bg > 30 * sig]))


def test_cosmic_rays_are_sharper_than_stars():
    cr_sharp, diffused, star_sharp = [], [], []
    for seed in range(12):
        cr_sharp += _cr_sharpness(seed, 0.0)
        diffused += _cr_sharpness(seed, 0.6)  # thick CCDs: at most sigma 0.6 px of diffusion
        s = _tile(seed, classes=[], config=dict(QUIET, star_density=(4e-3, 4e-3)))
        img, bg, sig = s.image.astype(float), s.meta["bias"] + s.meta["sky"], s.meta["sigma"]
        loc = (img == ndimage.maximum_filter(img, 5)) & (img - bg > 30 * sig)
        star_sharp += list(_sharpness(img, bg, np.argwhere(loc)))
    assert len(cr_sharp) >= 5 and len(diffused) >= 5 and len(star_sharp) >= 5
    # a star core of FWHM 3 px keeps ~60% of its peak in its neighbours; CRs do not
    assert np.median(star_sharp) < 0.5
    assert np.median(cr_sharp) > 0.75
    assert np.median(cr_sharp) > 1.5 * np.median(star_sharp)
    # charge diffusion softens cosmic rays, yet they stay sharper than the PSF
    assert np.median(diffused) > 1.5 * np.median(star_sharp)


def test_trails_are_at_least_as_wide_as_the_psf():
    fwhm = 3.0
    cfg = dict(QUIET, star_density=(1e-9, 1e-9), galaxy_density=(1e-9, 1e-9))
    widths = []
    for seed in range(40):
        t = _tile(seed, classes=["TRL"], config=cfg)
        (trl,) = [a for a in t.meta["artefacts"] if a["kind"] == "trail"]
        if trl["peak_snr"] < 30 or trl["dashed"] or trl["glint"]:
            continue
        th = np.radians(trl["theta"])
        yy, xx = np.indices(t.image.shape, dtype=float)
        d = np.abs((yy - trl["y0"]) * np.cos(th) - (xx - trl["x0"]) * np.sin(th))
        excess = t.image - (t.meta["bias"] + t.meta["sky"])
        edges = np.arange(0, 12.5, 0.5)
        idx = np.digitize(d.ravel(), edges) - 1
        ok = idx < len(edges) - 1
        prof = np.bincount(idx[ok], excess.ravel()[ok], len(edges) - 1) / np.maximum(
            np.bincount(idx[ok], minlength=len(edges) - 1), 1)
        half = np.flatnonzero(prof < 0.5 * prof[0])[0]
        widths.append((2 * edges[half], trl["width"]))
        if len(widths) == 3:
            break
    assert len(widths) == 3
    for measured, intrinsic in widths:
        assert measured >= 0.9 * fwhm  # never sharper than the PSF
        assert measured <= fwhm + intrinsic + 2.0
    # mask marks the trail, and is wider than one pixel
    assert t.mask("TRL").sum() > 3 * t.image.shape[0]


def test_overscan_has_bias_and_read_noise_only():
    cfg = dict(bias_probability=1.0, quantise=False, random_orientation=False)
    for seed in range(3):
        t = _tile(seed, classes=["OV"], config=cfg)
        ov = t.mask("OV")
        m = t.meta
        strip = t.image[ov].astype(float)
        rn_adu = m["read_noise"] / m["gain"]
        assert ov.sum() >= 4 * 128 and not ov.all()
        assert abs(strip.mean() - m["bias"]) < 5 * rn_adu / np.sqrt(strip.size)
        assert abs(strip.std() / rn_adu - 1) < 0.15
        active = t.image[~ov].astype(float)
        assert abs(np.median(active) - m["bias"] - m["sky"]) < 0.1 * m["sky"] + 3 * m["sigma"]
    assert [a["kind"] for a in t.meta["artefacts"]].count("overscan") == 1
    # the strip is a full-height set of columns or full-width set of rows at the edge
    assert ov[:, -1].all() or ov[-1, :].all()


def test_saturated_pixels_sit_at_the_saturation_level_and_bleed_along_columns():
    n_bled = 0
    for seed in range(4):
        t = _tile(seed, classes=["SAT"], config=dict(random_orientation=False))
        sat = t.mask("SAT")
        assert sat.any()
        np.testing.assert_array_equal(t.image[sat], t.meta["saturation"])
        assert t.image.max() == t.meta["saturation"]
        assert not np.any(t.image[~sat] >= t.meta["saturation"])
        lab, n = ndimage.label(sat)
        for sl in ndimage.find_objects(lab):
            h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
            assert h >= w - 1
            n_bled += h > w + 2
    assert n_bled >= 2


def test_saturate_conserves_charge_and_fills_columns():
    e = np.full((50, 3), 100.0)
    e[25, 1] = 1000.0
    out, mask = saturate(e, 300.0, up_fraction=0.5)
    assert out.sum() == pytest.approx(e.sum())
    assert mask[:, 1].sum() >= 3 and not mask[:, [0, 2]].any()
    assert out.max() <= 300.0


def test_psf_bank_matches_pixel_integrated_psf():
    for fwhm, profile in ((1.2, "gaussian"), (2.5, "moffat")):
        psf = PSFModel(fwhm, profile, 3.0)
        bank = PSFBank(psf)
        q = 1.0 / bank.os
        stamp, x0, y0 = bank.stamp(1.0, 20.0 + q, 30.0 - q)
        r = bank.radius
        assert r >= psf.radius and (x0, y0) == (20 - r, 30 - r)
        ref = (gaussian_psf(fwhm, r, 10, q, -q) if profile == "gaussian"
               else moffat_psf(fwhm, 3.0, r, 10, q, -q))
        assert np.abs(stamp - ref).max() < 0.02 * ref.max()
        assert stamp.sum() == pytest.approx(1.0, abs=1e-3)


def test_frame_has_realistic_contaminants_and_wcs():
    f = simulate_contaminant_frame((512, 512), seed=2)
    assert f.image.shape == (512, 512) and f.masks.shape == (len(CLASSES), 512, 512)
    w = WCS(f.header)
    assert w.has_celestial and f.header["FWHM"] == pytest.approx(f.meta["fwhm"])
    for key in ("GAIN", "RDNOISE", "SATURATE", "BIASLEV", "SKYLEVEL"):
        assert key in f.header
    ov = f.mask("OV")
    assert ov[:, -32:].all() and not ov[:, :-32].any()
    others = [i for i, c in enumerate(CONTAMINANTS) if c != "OV"]
    assert not f.masks[others][:, :, -32:].any()
    kinds = [a["kind"] for a in f.meta["artefacts"]]
    assert sum(k.startswith("cr_") for k in kinds) >= 5
    assert 1 <= kinds.count("trail") <= 3
    for name in ("CR", "HP", "TRL", "SAT", "SP", "OV"):
        assert f.mask(name).any(), name
    np.testing.assert_array_equal(f.mask("BG"), ~f.masks[:-1].any(axis=0))


def test_generation_speed():
    rng = np.random.default_rng(0)
    simulate_contaminant_tile(128, rng)  # warm-up
    for size, n, target in ((128, 50, 0.015), (256, 20, 0.060)):
        t0 = time.perf_counter()
        for _ in range(n):
            simulate_contaminant_tile(size, rng)
        per_tile = (time.perf_counter() - t0) / n
        assert per_tile < 3 * target, f"{size}x{size}: {1e3 * per_tile:.1f} ms per tile"


def test_class_presence_frequencies_are_in_the_documented_range():
    n = 200
    pix, presence = class_fractions(n, 128, seed=1)
    lo, hi = PRESENCE_RANGE
    slack = 3 * np.sqrt(0.25 / n)  # binomial sampling allowance
    for name in CONTAMINANTS:
        assert lo - slack <= presence[name] <= hi + slack, (name, presence[name])
    assert presence["BG"] > 0.8
    assert sum(pix.values()) >= 1.0 and 0.3 < pix["BG"] < 0.8


def test_defects_are_labelled_only_where_they_show():
    """Structural defects need matched-filter S/N >= 5: per pixel alone, summed along a column."""
    from glue_astrodl.sim.detector_defects import significant

    mask = np.zeros((50, 50), bool)
    effect = np.zeros((50, 50))
    mask[5, 5], effect[5, 5] = True, 4.0  # 4 sigma hot pixel: noise-like
    mask[9, 9], effect[9, 9] = True, 6.0
    mask[:, 30], effect[:, 30] = True, 1.0  # 1 sigma per pixel, 50 pixels: S/N 7
    kept = significant(mask, effect, np.ones((50, 50)), 5.0)
    assert not kept[5, 5] and kept[9, 9] and kept[:, 30].all()
    faint = dict(QUIET, sky=(10.0, 10.0), read_noise=(10.0, 10.0))  # dead pixel: -0.95 sigma
    bright = dict(QUIET, sky=(2000.0, 2000.0))
    assert not _tile(3, classes=["DP"], config=faint).mask("DP").any()
    assert _tile(3, classes=["DP"], config=bright).mask("DP").sum() >= 2
