"""Streamed contaminant products: `write_contaminants` writes, tile by tile into a memory-mapped
FITS file, exactly what the in-memory `detect_contaminants` result writes, never leaves a
partial file, and never holds a full float cube."""

import tracemalloc

import numpy as np
import pytest
import torch
from astropy.io import fits
from astropy.wcs import WCS
from conftest import noise_image
from test_contaminants_task import tiny_model  # noqa: F401 (a fixture)

from glue_astrodl import detect_contaminants
from glue_astrodl.core.errors import BadInputError, Cancelled
from glue_astrodl.core.tiling import tiled_inference
from glue_astrodl.io.fits import memmap_fits, write_hdus
from glue_astrodl.io.regions import probability_regions, write_regions
from glue_astrodl.tasks.contaminants import TASK, write_contaminants

CLASSES = ["CR", "HP", "SAT", "BG"]
PRIORS = {"CR": 0.05, "HP": 0.02}


@pytest.fixture(scope="module")
def flagging_model(tiny_model, tmp_path_factory):  # noqa: F811
    """The tiny untrained network with thresholds at the 97th percentile of its outputs on
    noise: it flags a few per cent of the pixels of each class, so masks, bit-masks and
    regions have something to compare."""
    import json

    from glue_astrodl.core.weights import save_model
    from glue_astrodl.models.registry import ARCHITECTURES

    path, net = tiny_model
    card = json.loads(path.with_suffix(".json").read_text())
    card.pop("weights_sha256")
    card.update(name="tiny-flagging", default_priors=card["training_priors"],
                thresholds={"CR": 0.3946, "HP": 0.4431, "SAT": 0.5834, "BG": 0.5555})
    target = tmp_path_factory.mktemp("flagging") / "tiny-flagging"
    save_model(net, target, card, architectures=ARCHITECTURES)
    return target.with_suffix(".safetensors")


def _wcs_header():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval, w.wcs.crpix, w.wcs.cdelt = [150.0, 2.0], [90.0, 100.0], [-5e-5, 5e-5]
    header = w.to_header()
    header["EXPTIME"] = 30.0
    return header


@pytest.fixture(scope="module")
def mef(tmp_path_factory):
    """An empty primary, a 2-D image with a WCS and NaN/inf pixels, a cube of two planes;
    each larger than one 128 px tile."""
    image = noise_image((200, 170), seed=5)
    image[10:14, 20:30] = np.nan
    image[150, 100] = np.inf
    cube = np.stack([noise_image((160, 190), seed=6), noise_image((160, 190), seed=7)])
    path = tmp_path_factory.mktemp("mef") / "mef.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(image, _wcs_header(), name="CCD1"),
                  fits.ImageHDU(cube, name="CCD2")]).writeto(path)
    return path


@pytest.fixture(scope="module")
def in_memory(flagging_model, mef):
    """``(hdu, plane, ContaminantDetection)`` of each image of ``mef``, from the in-memory API."""
    return [(index, plane, detect_contaminants(mef, hdu=index, plane=plane, model=flagging_model, classes=CLASSES,
                                               priors=PRIORS, tile=64)) for index, plane in [(1, None), (2, 0), (2, 1)]]


def _in_memory_file(in_memory, product, target):
    """The file the in-memory path gives: one `to_hdu` per image, as the per-task job wrote it."""
    hdus = []
    for index, plane, res in in_memory:
        hdu = res.to_hdu(product)
        hdu.header["SRCHDU"] = (str(index), "input HDU")
        if plane is not None:
            hdu.header["SRCPLANE"] = (plane, "input cube plane")
        hdu.name = f"{product.upper()}{len(hdus) + 1}"
        hdus.append(hdu)
    write_hdus(target, [fits.PrimaryHDU(header=hdus[0].header), *hdus])


@pytest.mark.parametrize("product", ["proba", "masks", "bitmask"])
def test_streamed_file_equals_the_in_memory_products(flagging_model, mef, in_memory, tmp_path, product):
    _in_memory_file(in_memory, product, tmp_path / "memory.fits")
    summary = write_contaminants(str(mef), tmp_path / "stream.fits", product=product, model=flagging_model,
                                 classes=CLASSES, priors=PRIORS, tile=64, regions=tmp_path / "stream.reg")
    with fits.open(tmp_path / "memory.fits") as memory, fits.open(tmp_path / "stream.fits") as stream:
        assert len(stream) == 4
        for expected, got in zip(memory, stream):
            assert repr(got.header) == repr(expected.header)  # WCS, CLASSn, MaxiMask cards, MODEL, TTA, SRC*
            if expected.data is None:
                assert got.data is None
            elif product == "proba":
                np.testing.assert_allclose(got.data, expected.data, rtol=1e-6, atol=1e-7, equal_nan=True)
            else:
                np.testing.assert_array_equal(got.data, expected.data)
        assert WCS(stream[1].header).celestial.wcs.compare(WCS(_wcs_header()).wcs)
        assert stream[1].header["EXPTIME"] == 30.0
        assert ("CR_SM" if product == "bitmask" else "CR_DIM") in stream[1].header  # MaxiMask's keywords
    if product == "proba":
        assert np.isnan(fits.getdata(tmp_path / "stream.fits", 1)[:, 10:14, 20:30]).all()
    else:
        assert not fits.getdata(tmp_path / "stream.fits", 1)[..., 150, 100].any()  # inf input: never flagged
    fractions = [res.flagged_fractions() for _, _, res in in_memory]
    assert summary.startswith("3 image(s); flagged: ") and summary.count(";") == 3
    assert f"CR {fractions[0]['CR']:.2%}" in summary and "BG" not in summary
    _assert_regions_of_the_first_image(in_memory[0][2], product, tmp_path)


def _assert_regions_of_the_first_image(result, product, tmp_path):
    """proba: the result's own contours of the probabilities; masks and bit-mask: contours of the masks."""
    if product == "proba":
        expected = result.to_regions()
    else:
        from regions import Regions

        expected = Regions([r for c, m in zip(result.classes, result.masks()) if c != "BG" for r in
                            probability_regions(m, 0.5, wcs=result.wcs, label=c, color=result.taxonomy.colours[c])])
    assert len(expected) > 0
    write_regions(expected, tmp_path / "memory.reg")
    assert (tmp_path / "stream.reg").read_text() == (tmp_path / "memory.reg").read_text()


def test_the_task_streams_its_file_job():
    assert TASK.write is write_contaminants


def test_memmap_writer_is_byte_identical_to_astropy(tmp_path):
    header = _wcs_header()
    data = [np.arange(2 * 30 * 40, dtype=np.float32).reshape(2, 30, 40), np.eye(30, 40, dtype=np.uint8),
            np.full((30, 40), -3, np.int16)]
    hdus = [fits.PrimaryHDU(header=header), *(fits.ImageHDU(d, header, name=f"E{i}") for i, d in enumerate(data))]
    fits.HDUList(hdus).writeto(tmp_path / "astropy.fits")
    layout = [(h.header, None if h.data is None else h.data.shape, np.uint8 if h.data is None else h.data.dtype)
              for h in hdus]
    with memmap_fits(tmp_path / "mapped.fits", layout) as out:
        assert out.data[0] is None and out.data[1].dtype == np.dtype(">f4")
        for k, d in enumerate(data, start=1):
            for y in range(0, 30, 7):  # band by band, releasing what is written
                out.data[k][..., y:y + 7, :] = d[..., y:y + 7, :]
                out.release(k, (y, min(y + 7, 30)))
    assert (tmp_path / "mapped.fits").read_bytes() == (tmp_path / "astropy.fits").read_bytes()
    with pytest.raises(ValueError, match="cannot memory-map uint16"):
        with memmap_fits(tmp_path / "u16.fits", [(fits.Header(), (4, 4), np.uint16)]):
            pass
    assert not (tmp_path / "u16.fits").exists()


def _interrupt(done, total):
    raise KeyboardInterrupt


@pytest.mark.parametrize("failure, error", [
    (dict(callback=lambda done, total: done < 2), Cancelled),  # the viewer's Cancel, after one tile
    (dict(callback=_interrupt), KeyboardInterrupt),  # Ctrl-C
    (dict(regions="out.txt"), BadInputError),  # the last step fails, once every tile is written
])
def test_a_failure_mid_run_leaves_no_output_and_no_temporary(tiny_model, mef, tmp_path, failure, error):  # noqa: F811
    model, _ = tiny_model
    old = tmp_path / "old.fits"
    old.write_bytes(b"previous result")
    kwargs = dict(failure, regions=tmp_path / failure.get("regions", "out.reg"))
    for target in (tmp_path / "new.fits", old):
        with pytest.raises(error):
            write_contaminants(mef, target, product="bitmask", model=model, classes=CLASSES, tile=64, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.fits"] and old.read_bytes() == b"previous result"


def test_thresholded_tiles_never_make_a_full_float_cube():
    """tiled_inference with a thresholding postprocess allocates uint8 output and per-tile floats
    only: numpy's peak stays far below the (K, H, W) float32 cube."""
    k, n = 8, 1024
    model = torch.nn.Conv2d(1, k, 1).eval()
    image = np.random.default_rng(0).normal(size=(n, n)).astype(np.float32)
    cube = k * n * n * 4
    tracemalloc.start()
    try:
        masks = tiled_inference(model, image, tile=128, overlap=8, batch_size=2, device="cpu",
                                postprocess=lambda values, window: (values > 0).view(np.uint8))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert masks.dtype == np.uint8 and masks.shape == (k, n, n)
    assert peak < masks.nbytes + cube / 8, f"numpy peak {peak / 1e6:.1f} MB"


def test_the_streamed_job_never_holds_the_float_cube(tiny_model, tmp_path):  # noqa: F811
    """The whole streamed bit-mask job on a 2048 x 1024 frame: numpy's peak is a small fraction
    of the 14-class float32 cube (117 MB). The largest allocation is the normaliser's sample
    of 512 rows, whatever the frame's height."""
    model, _ = tiny_model
    path = tmp_path / "frame.fits"
    fits.PrimaryHDU(noise_image((2048, 1024))).writeto(path)
    tracemalloc.start()
    try:
        write_contaminants(path, tmp_path / "bits.fits", product="bitmask", model=model)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    cube = 14 * 2048 * 1024 * 4
    assert peak < cube / 4, f"numpy peak {peak / 1e6:.1f} MB"
    assert fits.getdata(tmp_path / "bits.fits").shape == (2048, 1024)
