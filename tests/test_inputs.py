"""What the Python API accepts besides a path or an array: FITS HDUs, NDData and CCDData.

Each must give the result of the same pixels passed as a plain array with their header:
the same numbers, the WCS carried into sky columns and products, the flux unit carried.
"""

import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, NDData
from astropy.wcs import WCS

from glue_astrodl import detect_contaminants, detect_sources, forced_photometry

# The header without its WCS keywords: what an NDData built in memory often carries.
_WCS_KEYS = ("WCSAXES", "CRPIX1", "CRPIX2", "CUNIT1", "CUNIT2", "CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "LONPOLE",
             "LATPOLE", "RADESYS", "CD1_1", "CD1_2", "CD2_1", "CD2_2")


def _without(header, keys):
    header = header.copy()
    for key in keys:
        header.remove(key, ignore_missing=True)
    return header


def _wrappers(frame, path):
    """``{name: object}``: the frame's pixels, header and WCS in every container the API takes."""
    wcs = WCS(frame.header)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy notes the header's non-standard keys
        read = CCDData.read(path)
    return {
        "PrimaryHDU": fits.PrimaryHDU(frame.image, frame.header),
        "ImageHDU": fits.ImageHDU(frame.image, frame.header),
        "CompImageHDU": fits.CompImageHDU(frame.image, frame.header),
        "NDData(meta=header)": NDData(frame.image, wcs=wcs, meta=frame.header),
        "NDData(wcs=, meta without WCS)": NDData(frame.image, wcs=wcs, meta=_without(frame.header, _WCS_KEYS)),
        "CCDData": CCDData(frame.image, unit="adu", wcs=wcs, meta=frame.header),
        "CCDData.read": read,
    }


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    from glue_astrodl.sim import simulate_point_sources

    frame = simulate_point_sources((192, 192), snr=(12, 30), n_per_snr=6, fwhm=2.5, seed=11)
    path = frame.write(tmp_path_factory.mktemp("inputs") / "frame.fits")
    return frame, path


def _same_table(got, expected):
    assert got.colnames == expected.colnames
    for name in expected.colnames:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, err_msg=name)
        assert got[name].unit == expected[name].unit, name


def test_sources_from_hdus_and_nddata_equal_the_array_with_its_header(frame):
    frame, path = frame
    expected = detect_sources(frame.image, frame.header)
    assert len(expected.table) == len(frame.truth) and expected.table["flux"].unit == u.adu
    assert "ra" in expected.table.colnames
    for name, obj in _wrappers(frame, path).items():
        res = detect_sources(obj)
        _same_table(res.table, expected.table)
        np.testing.assert_array_equal(res.probability, expected.probability, err_msg=name)
        assert res.wcs is not None and res.to_hdus()[0].header["CTYPE1"] == "RA---TAN", name
    with fits.open(path) as hdul:  # an HDU of an open (memory-mapped) file
        _same_table(detect_sources(hdul[0]).table, expected.table)


def test_contaminants_from_hdus_and_nddata_equal_the_array_with_its_header(frame):
    frame, path = frame
    expected = detect_contaminants(frame.image, frame.header, classes=["CR", "SAT"])
    cut = float(np.quantile(expected["CR"], 0.999))  # the frame holds no CR: regions at a cut that flags some
    regions = expected.to_regions("CR", threshold=cut)
    assert len(regions) > 0  # sky polygons to compare
    for name, obj in _wrappers(frame, path).items():
        res = detect_contaminants(obj, classes=["CR", "SAT"])
        np.testing.assert_array_equal(res.probabilities, expected.probabilities, err_msg=name)
        corners = ([0, 191, 0, 191], [0, 0, 191, 191])
        np.testing.assert_allclose(res.wcs.pixel_to_world_values(*corners), expected.wcs.pixel_to_world_values(*corners),
                                   rtol=1e-12, err_msg=name)
        header = res.to_hdu("bitmask").header
        assert (header["CTYPE1"], header["CRVAL1"]) == ("RA---TAN", frame.header["CRVAL1"]), name
        got = res.to_regions("CR", threshold=cut)  # sky polygons, through the carried WCS
        assert len(got) == len(regions), name
        for a, b in zip(got, regions):
            np.testing.assert_allclose(a.vertices.ra.deg, b.vertices.ra.deg, err_msg=name)


def test_photometry_from_hdus_and_nddata_equals_the_array_with_its_header(frame):
    """Positions come from the catalogue's RA/Dec through the carried WCS."""
    frame, path = frame
    expected = forced_photometry(frame.image, frame.truth, frame.header)
    assert expected.meta["positions"].startswith("positions from ra/dec")
    assert expected.columns["mf_flux"].unit == u.adu
    for name, obj in _wrappers(frame, path).items():
        res = forced_photometry(obj, frame.truth)
        assert res.meta["positions"] == expected.meta["positions"], name
        _same_table(res.columns, expected.columns)


def test_the_unit_of_nddata_without_bunit_is_carried(frame):
    frame, _ = frame
    header = _without(frame.header, ("BUNIT",))
    data = CCDData(frame.image, unit="adu", wcs=WCS(frame.header), meta=header)
    assert detect_sources(data).table["flux"].unit == u.adu
    assert forced_photometry(data, frame.truth).columns["mf_flux"].unit == u.adu
