"""The ``astrodl`` command as a user runs it: outputs, exit codes and bad input (DESIGN §6)."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from conftest import noise_image, run_cli, write_fits
from regions import Regions


def test_sources_writes_products_and_regions(star_fits, star_field, tmp_path):
    out, reg = tmp_path / "out.fits", tmp_path / "out.reg"
    res = run_cli("sources", star_fits, "-o", out, "--regions", reg)
    assert res.returncode == 0, res.stderr
    with fits.open(out) as hdul:
        assert hdul[0].data.shape == (1, 256, 256) and hdul[0].header["CLASS1"] == "SOURCE"
        assert hdul[0].header["CTYPE1"].startswith("RA---") and hdul[0].header["CTYPE3"] == "CLASS"
        assert hdul["SIGNIFICANCE"].data.shape == (256, 256)
        table = Table.read(hdul["SOURCES"])
    assert {"x", "y", "ra", "dec", "snr", "flux", "flux_err", "prob"} <= set(table.colnames)
    assert len(table) == len(star_field.truth)
    assert len(Regions.read(reg)) == len(table)
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_default_output_name_and_skip_on_rerun(star_fits):
    first = run_cli("sources", star_fits)
    assert first.returncode == 0, first.stderr
    out = star_fits.parent / "stars_sources.fits"
    assert out.exists()
    again = run_cli("sources", star_fits)
    assert again.returncode == 0 and "skipped" in again.stdout


def test_info_and_models():
    info = run_cli("info")
    assert info.returncode == 0 and "device: cpu" in info.stdout and "torch" in info.stdout
    assert run_cli("models").returncode == 0


def _bad(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, fits.HDUList):
        content.writeto(path)
    else:
        write_fits(path, content)
    return path


def _truncated(tmp_path):
    full = write_fits(tmp_path / "full.fits", noise_image((256, 256)))
    data = full.read_bytes()
    full.unlink()
    return data[: len(data) // 2]


BAD_CASES = {
    "not-fits": (lambda t: b"SIMPLE? no, this is a text file\n" * 200, "not a FITS file"),
    "empty": (lambda t: b"", "empty or truncated"),
    "truncated": (_truncated, "truncated"),
    "table-only": (lambda t: fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(Table({"a": [1, 2]}))]), "no image HDU"),
    "one-d": (lambda t: np.arange(100.0), "1-D data"),
    "cube": (lambda t: np.stack([noise_image()] * 3), "data cube"),
    "all-nan": (lambda t: np.full((64, 64), np.nan, np.float32), "no usable pixels"),
    "all-zero": (lambda t: np.zeros((64, 64), np.float32), "constant image"),
    "constant": (lambda t: np.full((64, 64), 7.0), "constant image"),
    "tiny": (lambda t: noise_image((5, 5)), "too small"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_one_line_exit_2_no_output(tmp_path, case):
    make, expected = BAD_CASES[case]
    path = _bad(tmp_path, f"{case}.fits", make(tmp_path))
    out = tmp_path / "result.fits"
    res = run_cli("sources", path, "-o", out, "--fwhm", "3", "--regions", tmp_path / "r.reg")
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert str(path) in lines[0] and expected in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_missing_file_and_glob_without_match(tmp_path):
    for arg in [tmp_path / "nope.fits", tmp_path / "*.fits"]:
        res = run_cli("sources", arg)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


def test_cube_plane_is_processed(tmp_path, star_field):
    cube = np.stack([noise_image((256, 256)), star_field.image])
    path = write_fits(tmp_path / "cube.fits", cube, star_field.header)
    res = run_cli("sources", path, "--plane", "1", "-o", tmp_path / "o.fits")
    assert res.returncode == 0, res.stderr
    assert len(Table.read(tmp_path / "o.fits", hdu="SOURCES")) == len(star_field.truth)


@pytest.mark.parametrize("dtype", [">f4", ">i2", "<i4", ">f8", "uint16"])
def test_integer_and_big_endian_data(tmp_path, star_field, dtype):
    data = np.clip(star_field.image, 0, 30000).astype(dtype)
    path = write_fits(tmp_path / "img.fits", data, star_field.header)
    res = run_cli("sources", path, "-o", tmp_path / "o.fits")
    assert res.returncode == 0, res.stderr
    assert len(Table.read(tmp_path / "o.fits", hdu="SOURCES")) == len(star_field.truth)


def test_nan_and_inf_pixels_are_missing_not_fatal(tmp_path, star_field):
    data = star_field.image.copy()
    data[:40, :] = np.nan
    data[100, 100:110] = np.inf
    path = write_fits(tmp_path / "holes.fits", data, star_field.header)
    res = run_cli("sources", path, "-o", tmp_path / "o.fits")
    assert res.returncode == 0, res.stderr
    with fits.open(tmp_path / "o.fits") as hdul:
        prob = hdul[0].data[0]
        assert np.isnan(prob[:40]).all() and np.isnan(prob[100, 100:110]).all()
        assert np.isfinite(prob[60:100]).all() and np.isfinite(prob[101:]).all()


def test_no_or_broken_wcs_works_in_pixels(tmp_path, star_field):
    broken = star_field.header.copy()
    broken["CTYPE1"], broken["CTYPE2"] = "RA---XYZ", "DEC--XYZ"
    for name, header in [("nowcs", None), ("broken", broken)]:
        path = write_fits(tmp_path / f"{name}.fits", star_field.image, header)
        res = run_cli("sources", path, "--fwhm", "2.5", "-o", tmp_path / f"{name}_o.fits", "--regions", tmp_path / f"{name}.reg")
        assert res.returncode == 0, res.stderr
        assert "pixel coordinates" in res.stdout
        table = Table.read(tmp_path / f"{name}_o.fits", hdu="SOURCES")
        assert "ra" not in table.colnames and len(table) == len(star_field.truth)
        assert all(type(r).__name__ == "CirclePixelRegion" for r in Regions.read(tmp_path / f"{name}.reg"))


def test_image_smaller_than_a_tile(tmp_path, star_field):
    path = write_fits(tmp_path / "small.fits", star_field.image[:40, :60], star_field.header)
    assert run_cli("sources", path, "-o", tmp_path / "o.fits").returncode == 0


def test_compressed_input(tmp_path, star_field):
    path = tmp_path / "img.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(star_field.image, star_field.header)]).writeto(path)
    res = run_cli("sources", path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "img_sources.fits").exists()
