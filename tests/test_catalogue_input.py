"""Catalogue input: files and tables, RA/Dec through the WCS or pixel columns, one-line errors."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import MaskedColumn, QTable, Table

from glue_astrodl.core.errors import BadInputError
from glue_astrodl.io.fits import ImageData
from glue_astrodl.sim import make_wcs
from glue_astrodl.tasks.catalogue import read_catalogue

SHAPE = (200, 300)


@pytest.fixture
def wcs():
    return make_wcs(SHAPE, 0.2)


@pytest.fixture
def truth(wcs):
    """Pixel positions and their sky positions on the image."""
    x, y = np.array([10.0, 150.25, 299.0, 77.7]), np.array([0.0, 99.5, 199.0, 120.1])
    sky = wcs.pixel_to_world(x, y)
    return x, y, sky.ra.deg, sky.dec.deg


def _check(cat, x, y, note):
    np.testing.assert_allclose(cat.x, x, atol=1e-6)
    np.testing.assert_allclose(cat.y, y, atol=1e-6)
    assert cat.note == note


@pytest.mark.parametrize("names", [("ra", "dec"), ("RA", "DEC"), ("ALPHA_J2000", "DELTA_J2000"),
                                   ("RAJ2000", "DEJ2000"), ("Ra", "Dec")])
def test_sky_columns_go_through_the_image_wcs(wcs, truth, names):
    x, y, ra, dec = truth
    cat = read_catalogue(Table({names[0]: ra, names[1]: dec, "x": x + 50, "y": y}), wcs)
    _check(cat, x, y, f"positions from {names[0]}/{names[1]} through the image WCS")  # RA/Dec beats x/y


def test_quantity_and_skycoord_columns(wcs, truth):
    x, y, ra, dec = truth
    _check(read_catalogue(QTable({"ra": ra * 3600 * u.arcsec, "dec": np.deg2rad(dec) * u.rad}), wcs), x, y,
           "positions from ra/dec through the image WCS")
    _check(read_catalogue(Table({"ra": ra * u.deg, "dec": dec * u.deg}), wcs), x, y,
           "positions from ra/dec through the image WCS")
    sky = SkyCoord(ra * u.deg, dec * u.deg).galactic  # any frame: transformed to the WCS's
    _check(read_catalogue(QTable({"sky_centroid": sky}), wcs), x, y,
           "positions from sky_centroid through the image WCS")


@pytest.mark.parametrize("names, first, note", [
    (("x", "y"), 0, "positions from x/y pixel columns (0-based)"),
    (("xcentroid", "ycentroid"), 0, "positions from xcentroid/ycentroid pixel columns (0-based)"),
    (("X_IMAGE", "Y_IMAGE"), 1, "positions from X_IMAGE/Y_IMAGE pixel columns (1-based, SExtractor: 1 subtracted)"),
    (("XWIN_IMAGE", "YWIN_IMAGE"), 1,
     "positions from XWIN_IMAGE/YWIN_IMAGE pixel columns (1-based, SExtractor: 1 subtracted)")])
def test_pixel_columns(truth, names, first, note):
    x, y, _, _ = truth
    _check(read_catalogue(Table({names[0]: x + first, names[1]: (y + first) * u.pix})), x, y, note)


def test_sky_and_pixel_columns_give_the_same_positions(wcs, truth):
    x, y, ra, dec = truth
    table = Table({"ra": ra, "dec": dec, "x": x, "y": y})
    sky, pix = (read_catalogue(table, wcs, positions=p) for p in ("sky", "pixel"))
    np.testing.assert_allclose(sky.x, pix.x, atol=1e-6)
    np.testing.assert_allclose(sky.y, pix.y, atol=1e-6)
    assert pix.note == "positions from x/y pixel columns (0-based)"


def test_without_a_wcs_pixel_columns_are_used_and_the_note_says_why(truth):
    x, y, ra, dec = truth
    image = ImageData(np.zeros(SHAPE), fits.Header(), wcs_problem="no celestial WCS: working in pixel coordinates")
    cat = read_catalogue(Table({"ra": ra, "dec": dec, "x": x, "y": y}), image)
    _check(cat, x, y, "positions from x/y pixel columns (0-based); ra/dec unused: "
                      "no celestial WCS: working in pixel coordinates")


def test_image_data_wcs_is_used(wcs, truth):
    x, y, ra, dec = truth
    image = ImageData(np.zeros(SHAPE), fits.Header(), wcs=wcs)
    _check(read_catalogue(Table({"ra": ra, "dec": dec}), image), x, y, "positions from ra/dec through the image WCS")


@pytest.mark.parametrize("suffix, fmt", [(".fits", "fits"), (".ecsv", "ascii.ecsv"), (".csv", "ascii.csv"),
                                         (".fits.gz", "fits"), (".txt", "ascii.commented_header"),
                                         (".vot", "votable")])
def test_files_of_every_format(tmp_path, wcs, truth, suffix, fmt):
    x, y, ra, dec = truth
    path = tmp_path / f"cat{suffix}"
    Table({"id": np.arange(4), "RA": ra, "DEC": dec}).write(path, format=fmt)
    cat = read_catalogue(path, wcs)
    _check(cat, x, y, "positions from RA/DEC through the image WCS")
    assert cat.name == str(path) and cat.table.colnames == ["id", "RA", "DEC"]


def test_csv_written_as_ecsv_keeps_its_units(tmp_path, wcs, truth):
    """`CatalogueColumns.write` writes ECSV under a .csv name: it is read back as ECSV."""
    x, y, ra, dec = truth
    path = tmp_path / "cat.csv"
    Table({"ra": ra * 3600 * u.arcsec, "dec": dec * u.deg}).write(path, format="ascii.ecsv")
    _check(read_catalogue(path, wcs), x, y, "positions from ra/dec through the image WCS")


def test_masked_rows_get_nan_positions(wcs, truth):
    x, y, ra, dec = truth
    table = Table({"ra": MaskedColumn(ra, mask=[0, 1, 0, 0]), "dec": dec})
    cat = read_catalogue(table, wcs)
    assert np.isnan(cat.x[1]) and np.isfinite(cat.x[[0, 2, 3]]).all()


def test_pandas_and_structured_arrays(truth):
    x, y, _, _ = truth
    pandas = pytest.importorskip("pandas")
    _check(read_catalogue(pandas.DataFrame({"x": x, "y": y})), x, y, "positions from x/y pixel columns (0-based)")
    rec = np.rec.fromarrays([x, y], names="x,y")
    _check(read_catalogue(rec), x, y, "positions from x/y pixel columns (0-based)")


def _one_line_error(catalog, image=None, match=None, **kw):
    with pytest.raises(BadInputError, match=match) as err:
        read_catalogue(catalog, image, **kw)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_bad_input_is_one_line_naming_the_catalogue(tmp_path, wcs, truth):
    x, y, ra, dec = truth
    missing = tmp_path / "missing.ecsv"
    assert _one_line_error(missing, match="no such file").startswith(str(missing))
    image_fits = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((10, 10))).writeto(image_fits)
    assert _one_line_error(image_fits, match="not a readable fits table").startswith(str(image_fits))
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\x00\x01\x02 not, a\ncsv \xff\xfe, table, at, all\n1\n")
    assert _one_line_error(junk, match="not a readable|no position").startswith(str(junk))
    _one_line_error(tmp_path, match="is a directory")
    _one_line_error(Table({"ra": [], "dec": []}), wcs, match="empty catalogue")
    _one_line_error(Table({"flux": [1.0]}, meta={"label": "mycat"}), wcs, match=r"^mycat: no position columns")
    _one_line_error(Table({"ra": ra, "dec": dec}), None, match="RA/Dec .* no celestial WCS")
    _one_line_error(Table({"ra": ra, "dec": dec}), wcs, match="no x/y pixel columns", positions="pixel")
    _one_line_error(Table({"x": x, "y": y}), wcs, match="no RA/Dec columns", positions="sky")
    _one_line_error(Table({"x": x, "y": y}), wcs, match="positions must be one of", positions="world")
    _one_line_error(Table({"ra": ra, "dec": dec * 1000}), wcs, match="outside")
    _one_line_error(Table({"ra": ["10:00:00"] * 4, "dec": dec}), wcs, match="'ra' is not numeric")
    _one_line_error(Table({"ra": ra * u.m, "dec": dec}), wcs, match="'ra' is not numeric deg")
    _one_line_error([1, 2, 3], match="not a table")
