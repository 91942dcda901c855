"""FITS input selection and product writers (WCS carried, provenance, atomic writes)."""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from glue_astrodl.core.errors import BadInputError
from glue_astrodl.core.atomic import atomic_path
from glue_astrodl.io.fits import bitmask_hdu, probability_hdu, read_image, write_hdus, write_mask
from glue_astrodl.tasks.contaminant_classes import MAXIMASK
from glue_astrodl.sim import make_wcs


@pytest.fixture
def wcs():
    return make_wcs((60, 80), pixel_scale_arcsec=0.3)


def test_read_image_by_index_or_name_and_first_image_default(tmp_path, wcs):
    hdr = wcs.to_header()
    hdr["OBJECT"] = "M 51"
    path = tmp_path / "mef.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((60, 80), ">i2"), hdr, name="SCI"),
                  fits.ImageHDU(np.ones((60, 80)), name="ERR")]).writeto(path)
    first = read_image(path)
    assert first.hdu == 1 and first.header["OBJECT"] == "M 51" and first.wcs is not None
    assert read_image(path, hdu="ERR").data.mean() == 1
    assert read_image(path, hdu=2).hdu == 2
    with pytest.raises(BadInputError, match="no HDU 'NOPE'"):
        read_image(path, hdu="NOPE")


def test_probability_cube_keeps_wcs_header_and_provenance(tmp_path, wcs):
    header = wcs.to_header()
    header["EXPTIME"] = 30.0
    header["BUNIT"] = "adu"
    cube = np.random.default_rng(0).random((2, 60, 80)).astype(np.float64)
    card = {"name": "demo-net", "version": "1.2", "weights_sha256": "ab" * 32}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. no "Card is too long" on the user's terminal
        hdu = probability_hdu(cube, ["CR", "TRL"], header, wcs, priors={"CR": 5e-4, "TRL": 1e-4},
                              thresholds={"CR": 0.4}, model=card, taxonomy=MAXIMASK)
        path = write_hdus(tmp_path / "p.fits", [hdu])
    with fits.open(path) as hdul:
        h = hdul[0].header
        assert hdul[0].data.dtype == np.dtype(">f4") and hdul[0].data.shape == (2, 60, 80)
        assert (h["CLASS1"], h["CLASS2"], h["NCLASS"]) == ("CR", "TRL", 2)
        assert h["PRIOR1"] == 5e-4 and h["THRESH1"] == 0.4 and "THRESH2" not in h
        assert h["MODEL"] == "demo-net" and h["MODELSHA"] == "ab" * 32 and h["EXPTIME"] == 30.0
        assert h["BUNIT"] == "" and "ASTRODL" in h
        # MaxiMask's own keywords, so tools written for MaxiMask read our files
        assert h["CR"].startswith("CR:") and h["TRL_DIM"] == 1 and h["CR_PR"] == 5e-4 and h["CR_TH"] == 0.4
        assert h["PRIORS"] == "Yes"
        w3 = WCS(h)
    assert w3.naxis == 3 and w3.sub(2).wcs.ctype[0] == "RA---TAN"
    sky_in = wcs.pixel_to_world(10, 20)
    sky_out = w3.celestial.pixel_to_world(10, 20)
    assert sky_in.separation(sky_out).arcsec < 1e-6


def test_masks_and_bitmask_dtypes_and_bits(tmp_path, wcs):
    masks = np.zeros((3, 60, 80), bool)
    masks[1, 5, 5] = True
    path = write_mask(tmp_path / "m.fits", masks, ["CR", "HCL", "DCL"], wcs=wcs)
    data = fits.getdata(path)
    assert data.dtype == np.uint8 and data[1, 5, 5] == 1 and data.sum() == 1
    bits = np.zeros((60, 80), np.int16)
    bits[5, 5] = 1 | 4096
    path = write_hdus(tmp_path / "b.fits", [bitmask_hdu(bits, {"CR": 1, "BBG": 4096}, wcs=wcs, taxonomy=MAXIMASK)])
    with fits.open(path) as hdul:
        assert hdul[0].data.dtype.kind == "i" and hdul[0].data.dtype.itemsize == 2
        assert hdul[0].data[5, 5] == 4097
        assert hdul[0].header["BIT00"] == "CR" and hdul[0].header["BIT12"] == "BBG"
        assert hdul[0].header["BBG_SM"] == 4096 and hdul[0].header["SMASK"] == "Yes"
        assert WCS(hdul[0].header).has_celestial


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "keep.fits"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["keep.fits"]
    with pytest.raises(FileExistsError):
        with atomic_path(target, overwrite=False):
            pass
