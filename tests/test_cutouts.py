"""The cutout primitive in core: batched stamps, edges, off-image positions, masks, bands by WCS."""

import subprocess
import sys

import numpy as np
import pytest

from glue_astrodl.core.cutouts import (EDGE, MASKED, NO_DATA, OFF_IMAGE, band_cutouts, cutouts, footprint_mask,
                                       positions_in)
from glue_astrodl.core.errors import BadInputError
from glue_astrodl.sim import make_wcs


@pytest.fixture
def image():
    return np.arange(40 * 60, dtype=np.float32).reshape(40, 60)


def _one(image, x, y, size, **kw):
    [batch] = cutouts(image, x, y, size, **kw)
    return batch


def test_stamp_is_centred_on_the_nearest_pixel_with_the_offset(image):
    b = _one(image, [10.4, 20.6, 30.5, 29.49], [5.0, 12.5, 7.2, 7.5], 5)
    assert b.ix.tolist() == [10, 21, 31, 29] and b.iy.tolist() == [5, 13, 7, 8]
    np.testing.assert_allclose(b.dx, [0.4, -0.4, -0.5, 0.49], atol=1e-12)
    np.testing.assert_allclose(b.dy, [0.0, -0.5, 0.2, -0.5], atol=1e-12)
    for k in range(4):
        np.testing.assert_array_equal(b.stamps[k], image[b.iy[k] - 2:b.iy[k] + 3, b.ix[k] - 2:b.ix[k] + 3])
    assert not b.flags.any() and b.inside.all()


def test_batches_are_bounded_and_cover_every_position_in_order(image):
    x = np.linspace(3, 55, 10)
    batches = list(cutouts(image, x, np.full(10, 20.0), 3, batch=3))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert [(b.rows.start, b.rows.stop) for b in batches] == [(0, 3), (3, 6), (6, 9), (9, 10)]
    np.testing.assert_allclose(np.concatenate([b.ix + b.dx for b in batches]), x)


def test_edge_stamps_are_nan_padded_and_flagged(image):
    b = _one(image, [0.0, 59.2, 30.0], [39.0, 1.0, 20.0], 5)
    assert b.flags.tolist() == [EDGE, EDGE, 0]
    corner = b.stamps[0]
    assert np.isnan(corner[:, :2]).all() and np.isnan(corner[3:, :]).all()  # left columns and top rows
    np.testing.assert_array_equal(corner[:3, 2:], image[37:, :3])
    np.testing.assert_array_equal(b.inside[0], np.isfinite(corner))


def test_off_image_and_non_finite_positions_are_masked_and_flagged_not_errors(image):
    b = _one(image, [-0.6, 60.0, np.nan, 10.0, -0.4], [5.0, 5.0, 5.0, -30.0, 5.0], 3)
    assert b.flags.tolist() == [OFF_IMAGE] * 4 + [EDGE]
    assert np.isnan(b.stamps[:4]).all() and not b.inside[:4].any()
    assert np.isnan(b.dx[:4]).all() and b.on_image.tolist() == [False] * 4 + [True]


def test_masked_pixels_are_nan_and_footprint_flags(image):
    mask = np.zeros(image.shape, bool)
    mask[20, 31] = True
    b = _one(image, [30.0, 10.0, 30.0, -9.0], [20.0, 10.0, 26.0, 5.0], 3, mask=mask)
    assert np.isnan(b.stamps[0, 1, 2]) and np.isfinite(b.stamps[0]).sum() == 8
    centre_only = np.zeros((3, 3), bool)
    centre_only[1, 1] = True
    assert b.footprint_flags(np.ones((3, 3), bool)).tolist() == [MASKED, 0, 0, OFF_IMAGE]
    assert b.footprint_flags(centre_only).tolist() == [0, 0, 0, OFF_IMAGE]
    mask[26, 30] = True  # the third stamp's only footprint pixel
    b = _one(image, [30.0], [26.0], 3, mask=mask)
    assert b.footprint_flags(centre_only).tolist() == [MASKED | NO_DATA]


class RecordingArray:
    """A 2-D image that records the rows each read touches (as a memory map would page them in)."""

    def __init__(self, data):
        self.data, self.shape, self.rows = data, data.shape, set()

    def __getitem__(self, key):
        rows = key[0] if isinstance(key, tuple) else key
        self.rows.update(range(*rows.indices(self.shape[0])))
        return self.data[key]


def test_only_the_rows_of_the_stamps_are_read(image):
    lazy = RecordingArray(image)
    b = _one(lazy, [10.0, 40.0], [5.0, 30.0], 3)
    assert lazy.rows == {4, 5, 6, 29, 30, 31}
    np.testing.assert_array_equal(b.stamps[1], image[29:32, 39:42])


def test_memory_mapped_integer_and_big_endian_images(tmp_path, image):
    np.save(tmp_path / "img.npy", image.astype(">i4"))
    mapped = np.load(tmp_path / "img.npy", mmap_mode="r")
    b = _one(mapped, [12.0], [7.0], 3)
    assert b.stamps.dtype == np.float32
    np.testing.assert_array_equal(b.stamps[0], image[6:9, 11:14])


@pytest.mark.parametrize("kwargs, text", [(dict(size=4), "odd"), (dict(size=0), "odd"),
                                          (dict(mask=np.zeros((3, 3), bool)), "mask of shape")])
def test_bad_arguments_are_one_line_errors(image, kwargs, text):
    kwargs = {"size": 3, **kwargs}
    with pytest.raises(BadInputError, match=text) as err:
        list(cutouts(image, [1.0], [1.0], **kwargs))
    assert "\n" not in str(err.value)


def test_cube_and_mismatched_positions_are_refused(image):
    with pytest.raises(BadInputError, match="2-D image"):
        list(cutouts(image[None], [1.0], [1.0], 3))
    with pytest.raises(BadInputError, match="one length"):
        list(cutouts(image, [1.0, 2.0], [1.0], 3))


def test_footprint_mask_disks_clip_at_the_edge():
    m = footprint_mask((20, 30), [0.2, 15.0, np.nan, 100.0], [0.0, 10.4, 3.0, 3.0], 2)
    assert m.sum() == 13 + 6  # a whole disk of radius 2 (13 px) and the 6 px of one on the image corner
    assert m[10, 15] and m[12, 15] and not m[12, 17] and m[0, 0] and m[0, 2] and not m[3, 0]


def test_positions_in_a_second_band_with_another_pixel_scale():
    a, b = make_wcs((100, 100), 0.2), make_wcs((60, 60), 0.4)
    x, y = np.array([49.5, 10.0, 80.0]), np.array([49.5, 30.0, 95.0])
    bx, by = positions_in(a, b, x, y)
    np.testing.assert_allclose(bx, (x - 49.5) / 2 + 29.5, atol=1e-6)
    np.testing.assert_allclose(by, (y - 49.5) / 2 + 29.5, atol=1e-6)
    with pytest.raises(BadInputError, match="celestial WCS"):
        positions_in(a, None, x, y)


def test_band_cutouts_of_a_shifted_second_band_match_the_first():
    """Band 2 is band 1 cropped by (7, 5) pixels, its WCS moved with it: the same sky, stamps equal."""
    rng = np.random.default_rng(0)
    first = rng.normal(size=(50, 70)).astype(np.float32)
    wcs1 = make_wcs(first.shape)
    wcs2 = wcs1.deepcopy()
    wcs2.wcs.crpix = wcs1.wcs.crpix - [7, 5]
    second = first[5:, 7:]
    x, y = np.array([20.3, 40.0, 3.0]), np.array([30.0, 12.6, 40.0])
    bx, by = positions_in(wcs1, wcs2, x, y)
    np.testing.assert_allclose(bx, x - 7, atol=1e-8)
    np.testing.assert_allclose(by, y - 5, atol=1e-8)
    batches = list(band_cutouts([first, second], [wcs1, wcs2], x, y, 5, batch=2))
    assert [b.stamps.shape for b in batches] == [(2, 2, 5, 5), (1, 2, 5, 5)]
    stamps = np.concatenate([b.stamps for b in batches])
    np.testing.assert_array_equal(stamps[:2, 0], stamps[:2, 1])
    np.testing.assert_allclose(np.concatenate([b.dx for b in batches])[:, 1], [0.3, 0.0, np.nan], atol=1e-8)
    assert np.concatenate([b.flags for b in batches]).tolist() == [0, 0, OFF_IMAGE]  # x=3 is off band 2


def test_core_cutouts_import_neither_torch_nor_io_nor_models():
    code = ("import sys, glue_astrodl.core.cutouts; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('glue_astrodl.io', "
            "'glue_astrodl.models', 'glue_astrodl.glue', 'glue_astrodl.jdaviz'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
