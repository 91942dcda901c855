"""Forced matched-filter photometry: fluxes against simulated truth, inputs, flags, the task declaration."""

import subprocess
import sys

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from glue_astrodl.core.cutouts import EDGE, MASKED, NO_DATA, OFF_IMAGE
from glue_astrodl.core.errors import BadInputError, Cancelled
from glue_astrodl.sim import simulate_frame, simulate_point_sources
from glue_astrodl.tasks.photometry import forced_photometry
from glue_astrodl.tasks.registry import IMAGE_CATALOGUE, get_task
from glue_astrodl.tasks.results import CatalogueColumns

SNRS = (3, 5, 10, 20, 50)


def _robust_width(pull):
    return 1.4826 * np.median(np.abs(pull - np.median(pull)))


@pytest.fixture(scope="module")
def fields():
    """Four 1024^2 frames of 600 isolated stars each (S/N 3 to 50): 2400 stars, so the
    robust pull width is known to +-0.025 (1 sigma) and its mean to +-0.02."""
    return [simulate_point_sources((1024, 1024), snr=SNRS, n_per_snr=120, fwhm=3.0, seed=seed) for seed in range(4)]


@pytest.fixture(scope="module")
def frame():
    return simulate_point_sources((256, 256), snr=(10, 30), n_per_snr=8, fwhm=2.5, seed=7)


def _pulls(fields, **kw):
    pulls, snr = [], []
    for f in fields:
        cols = forced_photometry(f.image, f.truth, f.header, **kw).columns
        pulls.append((cols["mf_flux"] - f.truth["flux"]) / cols["mf_flux_err"])
        snr.append(f.truth["snr"])
    return np.concatenate(pulls), np.concatenate(snr)


def test_flux_agrees_with_truth_within_its_error_with_the_gain(fields):
    """The gate of issue 12: pull (mf_flux - true) / mf_flux_err of width 1 +- 0.1, mean ~0."""
    pull, _ = _pulls(fields, gain=fields[0].header["GAIN"])
    assert len(pull) == 2400 and np.isfinite(pull).all()
    assert abs(_robust_width(pull) - 1) < 0.1, _robust_width(pull)
    assert abs(np.std(pull) - 1) < 0.1
    assert abs(np.mean(pull)) < 0.1, np.mean(pull)


def test_background_limited_error_holds_for_faint_stars(fields):
    """Without a gain the error is the background's: right for faint stars, too small for bright ones."""
    pull, snr = _pulls(fields)
    faint = snr <= 10
    assert abs(_robust_width(pull[faint]) - 1) < 0.1 and abs(np.mean(pull[faint])) < 0.1
    assert _robust_width(pull[snr == 50]) > 1.1  # the photon noise of S/N 50 stars matters


def test_sky_and_pixel_positions_give_the_same_fluxes(frame):
    sky = forced_photometry(frame.image, frame.truth, frame.header, positions="sky")
    pix = forced_photometry(frame.image, frame.truth["x", "y"], frame.header)
    assert sky.meta["positions"] == "positions from ra/dec through the image WCS"
    assert pix.meta["positions"] == "positions from x/y pixel columns (0-based)"
    np.testing.assert_allclose(sky.columns["mf_flux"], pix.columns["mf_flux"], rtol=1e-6)
    np.testing.assert_allclose(sky.columns["mf_flux_err"], pix.columns["mf_flux_err"], rtol=1e-6)


@pytest.mark.parametrize("suffix, fmt", [(".fits", "fits"), (".ecsv", "ascii.ecsv"), (".csv", "ascii.csv")])
def test_catalogue_files_through_the_task_declaration(tmp_path, frame, suffix, fmt):
    """What every front end does: ``TASK.run(image, catalog, **parsed params)`` with paths."""
    image, catalogue = tmp_path / "img.fits", tmp_path / f"cat{suffix}"
    frame.write(image)
    frame.truth["id", "ra", "dec"].write(catalogue, format=fmt)
    task = get_task("photometry")
    res = task.run(str(image), str(catalogue), **task.parse_params({"fwhm": "2.5", "profile": "gaussian"}))
    direct = forced_photometry(frame.image, frame.truth, frame.header, fwhm=2.5)
    np.testing.assert_allclose(res.columns["mf_flux"], direct.columns["mf_flux"], rtol=1e-6)
    assert res.to_table().colnames == ["id", "ra", "dec", "mf_flux", "mf_flux_err", "mf_snr", "mf_flag"]


def test_columns_units_and_metadata(frame):
    res = forced_photometry(frame.image, frame.truth, frame.header)
    assert isinstance(res, CatalogueColumns) and res.table_kind == "columns"
    cols = res.columns
    assert cols["mf_flux"].unit == u.adu and cols["mf_flux_err"].unit == u.adu and cols["mf_snr"].unit is None
    assert cols["mf_flag"].dtype == np.int16 and all(cols[c].description for c in cols.colnames)
    assert cols.meta["MF_FWHM"] == 2.5 and cols.meta["MF_VERS"].startswith("glue_astrodl")
    assert cols.meta["MF_POS"] == "positions from ra/dec through the image WCS"
    assert res.wcs is not None and res.summary() == (
        "16 sources measured (16 at S/N >= 5), none flagged; positions from ra/dec through the image WCS")
    np.testing.assert_allclose(cols["mf_snr"], cols["mf_flux"] / cols["mf_flux_err"])
    assert len(res.to_regions()) == 16


def test_edge_and_off_image_sources_are_flagged_not_failures(frame):
    star = frame.truth[0]
    cat = Table({"x": [1.0, 255.0, -30.0, np.nan, 300.0, star["x"]], "y": [100.0, 254.6, 10.0, 5.0, 20.0, star["y"]]})
    cols = forced_photometry(frame.image, cat, frame.header).columns
    assert cols["mf_flag"].tolist() == [EDGE, EDGE, OFF_IMAGE, OFF_IMAGE, OFF_IMAGE, 0]
    assert np.isfinite(cols["mf_flux"][:2]).all() and np.isnan(cols["mf_flux"][2:5]).all()
    assert np.isnan(cols["mf_flux_err"][2:5]).all()


def test_a_star_cut_by_the_image_edge_is_still_measured(frame):
    star = frame.truth[np.argmax(frame.truth["snr"])]
    x0 = int(round(star["x"]))  # crop the image through the star's centre column
    cat = Table({"x": [star["x"] - x0], "y": [star["y"]]})
    cut = forced_photometry(frame.image[:, x0:], cat, fwhm=2.5).columns
    full = forced_photometry(frame.image, Table({"x": [star["x"]], "y": [star["y"]]}), fwhm=2.5).columns
    assert cut["mf_flag"][0] == EDGE
    assert cut["mf_flux_err"][0] > full["mf_flux_err"][0]
    assert abs(cut["mf_flux"][0] - star["flux"]) < 4 * cut["mf_flux_err"][0]


def test_a_mask_over_a_star_flags_it(tmp_path, frame):
    star = frame.truth[3]
    mask = np.zeros(frame.image.shape, bool)
    mask[int(round(star["y"])), int(round(star["x"]))] = True  # one pixel; grown by 1 to 3x3
    clean = forced_photometry(frame.image, frame.truth, frame.header).columns
    masked = forced_photometry(frame.image, frame.truth, frame.header, mask=mask).columns
    flagged = np.flatnonzero(masked["mf_flag"] & MASKED)
    assert flagged.tolist() == [3]
    assert masked["mf_flux_err"][3] > clean["mf_flux_err"][3]
    assert abs(masked["mf_flux"][3] - star["flux"]) < 4 * masked["mf_flux_err"][3]
    others = np.arange(len(frame.truth)) != 3
    np.testing.assert_allclose(masked["mf_flux"][others], clean["mf_flux"][others], rtol=0.02)
    path = tmp_path / "mask.fits"
    fits.PrimaryHDU(mask.astype(np.uint8)).writeto(path)
    from_file = forced_photometry(frame.image, frame.truth, frame.header, mask=str(path)).columns
    np.testing.assert_array_equal(from_file["mf_flag"], masked["mf_flag"])


def test_a_fully_masked_source_has_no_data(frame):
    star = frame.truth[0]
    mask = np.zeros(frame.image.shape, bool)
    iy, ix = int(round(star["y"])), int(round(star["x"]))
    mask[iy - 8:iy + 9, ix - 8:ix + 9] = True
    cols = forced_photometry(frame.image, frame.truth[:1], frame.header, mask=mask).columns
    assert cols["mf_flag"][0] == MASKED | NO_DATA and np.isnan(cols["mf_flux"][0])


def test_nan_pixels_get_zero_weight(frame):
    star = frame.truth[2]
    image = frame.image.copy()
    image[int(round(star["y"])), int(round(star["x"]))] = np.nan
    cols = forced_photometry(image, frame.truth, frame.header).columns
    assert cols["mf_flag"][2] == MASKED and np.isfinite(cols["mf_flux"]).all()
    assert abs(cols["mf_flux"][2] - star["flux"]) < 4 * cols["mf_flux_err"][2]


def test_psf_array_and_moffat_profile():
    moffat = simulate_frame((256, 256), n_stars=25, n_galaxies=0, fwhm=3.0, psf_profile="moffat", beta=3.0, seed=2)
    bright = moffat.truth["snr"] > 30
    by_profile = forced_photometry(moffat.image, moffat.truth, moffat.header, profile="moffat", beta=3.0).columns
    by_array = forced_photometry(moffat.image, moffat.truth, moffat.header, psf=moffat.psf).columns
    for cols in (by_profile, by_array):
        ratio = np.asarray(cols["mf_flux"][bright] / moffat.truth["flux"][bright])
        assert np.abs(ratio - 1).max() < 0.05, ratio
    assert by_array.meta["MF_PSF"] == "array" and by_array.meta["MF_FWHM"] == pytest.approx(3.0, rel=0.2)
    by_header = forced_photometry(moffat.image, moffat.truth, moffat.header).columns  # PSFMODEL, PSFBETA
    assert by_header.meta["MF_PSF"] == "moffat beta=3"
    np.testing.assert_allclose(by_header["mf_flux"], by_profile["mf_flux"])


def test_truth_report_of_the_demo(frame):
    report = forced_photometry(frame.image, frame.truth, frame.header).truth_report(frame)
    assert report.startswith("16 stars: median mf_flux / true flux ")
    assert abs(float(report.split()[7].rstrip(",")) - 1) < 0.02, report


def test_fwhm_comes_from_the_header_else_the_image():
    bright = simulate_point_sources((256, 256), snr=(200,), n_per_snr=12, fwhm=2.5, seed=5)
    assert forced_photometry(bright.image, bright.truth, bright.header).meta["fwhm"] == 2.5
    header = bright.header.copy()
    for key in ("FWHM", "SEEING"):
        del header[key]
    estimated = forced_photometry(bright.image, bright.truth, header).meta["fwhm"]
    assert estimated == pytest.approx(2.5, rel=0.1)


def test_progress_callback_and_cancel(frame):
    calls = []
    forced_photometry(frame.image, frame.truth, frame.header, batch=5, callback=lambda d, t: calls.append((d, t)))
    assert calls == [(5, 16), (10, 16), (15, 16), (16, 16)]
    with pytest.raises(Cancelled):
        forced_photometry(frame.image, frame.truth, frame.header, batch=5, callback=lambda d, t: False)


def test_write_input_plus_columns_atomically(tmp_path, frame):
    res = forced_photometry(frame.image, frame.truth, frame.header)
    for name in ("out.ecsv", "out.fits"):
        back = Table.read(res.write(tmp_path / name))
        assert back.colnames == frame.truth.colnames + ["mf_flux", "mf_flux_err", "mf_snr", "mf_flag"]
        np.testing.assert_allclose(back["mf_flux"], res.columns["mf_flux"])
        assert back["mf_flux"].unit == u.adu
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ecsv", "out.fits"]


def test_bad_input_is_one_line(tmp_path, frame):
    cases = [((frame.image, tmp_path / "none.ecsv"), "none.ecsv: no such file"),
             ((frame.image, Table({"flux": [1.0]})), "no position columns"),
             ((frame.image, frame.truth["ra", "dec"]), "no celestial WCS"),  # a bare array has no WCS
             ((frame.image, frame.truth[:0], frame.header), "empty catalogue"),
             ((frame.image, frame.truth, frame.header), "PSF array must be")]
    for i, (args, text) in enumerate(cases):
        kw = {"psf": np.ones((4, 4))} if i == 4 else {}
        with pytest.raises(BadInputError, match=text) as err:
            forced_photometry(*args, **kw)
        assert "\n" not in str(err.value)
    task = get_task("photometry")
    with pytest.raises(BadInputError, match="fwhm: must be positive"):
        task.parse_params({"fwhm": "-2"})
    with pytest.raises(BadInputError, match="positions: must be one of"):
        task.parse_params({"positions": "world"})


def test_declared_through_the_registry_without_torch():
    task = get_task("photometry")
    assert (task.label, task.kind, task.takes_mask) == ("Forced Photometry", IMAGE_CATALOGUE, True)
    assert {p.name for p in task.params} == {"fwhm", "profile", "gain", "positions"}
    code = "import sys, glue_astrodl.tasks.photometry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
