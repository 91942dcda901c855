"""Tests for glue_astrodl.io.regions: map -> polygons, and region file export."""

import time

import numpy as np
import pytest
from astropy.wcs import WCS
from regions import (CirclePixelRegion, PixCoord, PolygonPixelRegion, PolygonSkyRegion,
                     Regions)

from glue_astrodl.core.errors import BadInputError
from glue_astrodl.io.regions import MIN_REGION_AREA, mask_regions, probability_regions, write_regions


def _wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [50.0, 40.0]
    w.wcs.cdelt = [-2e-4, 2e-4]
    return w


def _blobs():
    yy, xx = np.mgrid[:80, :100]
    centres = [(25.3, 30.7), (70.0, 45.2)]  # (x, y)
    prob = sum(np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 5.0 ** 2)) for cx, cy in centres)
    prob[0, 0] = np.nan
    return prob, centres


def _xy(reg):
    return np.column_stack([np.atleast_1d(reg.vertices.x), np.atleast_1d(reg.vertices.y)])


def _sort(regs):
    """Pixel polygons in a stable order (by vertex centroid)."""
    return sorted(regs, key=lambda r: tuple(np.round(_xy(r).mean(axis=0), 3)))


def _dedup(xy):
    """Drop trailing vertices equal to the first one (FITS padding)."""
    n = len(xy)
    while n > 3 and np.allclose(xy[n - 1], xy[0]):
        n -= 1
    return xy[:n]


def test_two_blobs_polygons_enclose_centres_and_area():
    prob, centres = _blobs()
    regs = probability_regions(prob, 0.5, label="star", color="red")
    assert isinstance(regs, Regions) and len(regs) == 2
    for reg in regs:
        assert isinstance(reg, PolygonPixelRegion)
        assert reg.meta["tag"] == ["star"] and reg.visual["color"] == "red"
        assert "label" not in reg.meta and "text" not in reg.meta
    for cx, cy in centres:
        hits = [reg for reg in regs if reg.contains(PixCoord(cx, cy))]
        assert len(hits) == 1
        npix = ((prob > 0.5) & ((np.mgrid[:80, :100][1] - cx) ** 2 < 400)).sum()
        assert abs(hits[0].area - npix) / npix < 0.2


def test_single_pixel_gives_valid_polygon():
    m = np.zeros((7, 9), bool)
    m[3, 5] = True
    (reg,) = mask_regions(m)
    assert len(reg.vertices) >= 3 and reg.area > 0
    assert reg.contains(PixCoord(5, 3))
    assert not any(reg.contains(PixCoord(5 + dx, 3 + dy))
                   for dx, dy in [(1, 0), (-1, 0), (0, 1), (0, -1)])


def test_regions_touching_edges_close():
    m = np.zeros((10, 12), bool)
    m[0:3, 0:3] = True     # corner
    m[4:7, 11] = True      # right edge
    m[9, 5:8] = True       # bottom row
    m[:, 0] |= False
    regs = mask_regions(m)
    assert len(regs) == 3
    for px, py in [(0, 0), (11, 5), (6, 9)]:
        assert sum(r.contains(PixCoord(px, py)) for r in regs) == 1
    for r in regs:
        xy = _xy(r)
        assert len(xy) >= 3 and r.area > 0
        assert xy[:, 0].min() >= -0.5 and xy[:, 0].max() <= 11.5
        assert xy[:, 1].min() >= -0.5 and xy[:, 1].max() <= 9.5


def test_full_image_and_empty_map():
    assert len(mask_regions(np.zeros((5, 5)))) == 0
    (reg,) = mask_regions(np.ones((5, 5)))
    assert reg.contains(PixCoord(0, 0)) and reg.contains(PixCoord(4, 4))


def test_min_pixels_filters_small_regions():
    m = np.zeros((20, 20), bool)
    m[2, 2] = True            # 1 px
    m[10:12, 10:12] = True    # 4 px
    m[15:18, 2:5] = True      # 9 px
    assert len(mask_regions(m)) == 3
    assert len(mask_regions(m, min_pixels=4)) == 2
    (big,) = mask_regions(m, min_pixels=5)
    assert big.contains(PixCoord(3, 16))


def test_min_area_drops_slivers_by_polygon_area():
    rng = np.random.default_rng(5)
    prob = rng.uniform(0.0, 0.45, (64, 64))
    prob[rng.integers(2, 62, 40), rng.integers(2, 62, 40)] = rng.uniform(0.5, 1.0, 40)  # lone pixels
    prob[10:14, 30:36] = 0.9  # a real region
    every = probability_regions(prob, 0.5, min_area=0)
    areas = np.array([r.area for r in every])
    assert areas.min() < 0.1 < areas.max() and areas.max() > 20  # slivers, lone pixels and the block
    for min_area in (0.1, 0.3, 5.0):
        kept = probability_regions(prob, 0.5, min_area=min_area)
        np.testing.assert_allclose(sorted(r.area for r in kept), sorted(areas[areas >= min_area]))
    assert len(probability_regions(prob, 0.5)) == (areas >= MIN_REGION_AREA).sum()


def test_hole_is_dropped_island_kept():
    m = np.zeros((11, 11), bool)
    m[1:10, 1:10] = True
    m[3:8, 3:8] = False
    m[5, 5] = True  # island in the hole
    regs = mask_regions(m, min_pixels=1)
    assert len(regs) == 2
    ring = max(regs, key=lambda r: r.area)
    assert ring.contains(PixCoord(4, 4))  # hole covered: outer ring only
    assert len(mask_regions(m, min_pixels=2)) == 1


def test_wcs_gives_sky_polygons_that_round_trip():
    prob, _ = _blobs()
    w = _wcs()
    pix = _sort(probability_regions(prob, 0.5))
    sky = probability_regions(prob, 0.5, wcs=w, label="src")
    assert len(sky) == 2 and all(isinstance(r, PolygonSkyRegion) for r in sky)
    assert sky[0].vertices.frame.name == "icrs" and sky[0].meta["tag"] == ["src"]
    back = _sort([r.to_pixel(w) for r in sky])
    for a, b in zip(pix, back):
        np.testing.assert_allclose(_xy(b), _xy(a), atol=1e-6)


def _vertices_close(a, b, sky):
    if sky:
        assert a.vertices.frame.name == b.vertices.frame.name
        np.testing.assert_allclose(b.vertices.ra.deg, a.vertices.ra.deg, atol=1e-6)
        np.testing.assert_allclose(b.vertices.dec.deg, a.vertices.dec.deg, atol=1e-6)
    else:
        np.testing.assert_allclose(_dedup(_xy(b)), _xy(a), atol=1e-3)


@pytest.mark.parametrize("suffix", [".reg", ".crtf", ".fits"])
@pytest.mark.parametrize("use_wcs", [False, True])
def test_file_round_trip(tmp_path, suffix, use_wcs):
    m = np.zeros((40, 50), bool)
    m[5, 5] = True                 # 4 vertices
    m[20:30, 10:25] = True         # many vertices: FITS pads the short ones
    m[33:36, 40:45] = True
    w = _wcs()
    regs = mask_regions(m, wcs=w if use_wcs else None, label="x", color="green")
    path = tmp_path / f"out{suffix}"
    assert write_regions(regs, path, wcs=w) == path
    back = Regions.read(str(path))
    assert len(back) == len(regs) == 3
    if suffix == ".fits" and use_wcs:  # FITS holds pixel regions: compare in pixels
        regs = Regions([r.to_pixel(w) for r in regs])
    sky = isinstance(back[0], PolygonSkyRegion)
    assert sky == (use_wcs and suffix != ".fits")
    if sky:
        key = lambda r: (round(float(r.vertices.ra.deg.mean()), 6),  # noqa: E731
                         round(float(r.vertices.dec.deg.mean()), 6))
        pairs = zip(sorted(regs, key=key), sorted(back, key=key))
    else:
        pairs = zip(_sort(regs), sorted(back, key=lambda r: tuple(
            np.round(_dedup(_xy(r)).mean(axis=0), 3))))
    for a, b in pairs:
        _vertices_close(a, b, sky)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # atomic: no temp left


@pytest.mark.parametrize("suffix", [".reg", ".crtf", ".fits", ".fit"])
def test_empty_regions_write_valid_file(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    write_regions(Regions([]), path)
    assert path.exists()
    assert len(Regions.read(str(path), format={".fit": "fits"}.get(suffix))) == 0


def test_mixed_shapes_crtf_and_fits(tmp_path):
    m = np.zeros((10, 10), bool)
    m[4, 4] = True
    regs = Regions(list(mask_regions(m)) + [CirclePixelRegion(PixCoord(3, 4), 2.0)])
    for suffix in (".crtf", ".fits", ".reg"):
        write_regions(regs, tmp_path / f"m{suffix}")
        back = Regions.read(str(tmp_path / f"m{suffix}"))
        assert sorted(type(r).__name__ for r in back) == ["CirclePixelRegion",
                                                          "PolygonPixelRegion"]


def test_fits_sky_without_wcs_is_bad_input(tmp_path):
    prob, _ = _blobs()
    sky = probability_regions(prob, wcs=_wcs())
    with pytest.raises(BadInputError, match="pixel regions"):
        write_regions(sky, tmp_path / "a.fits")
    assert list(tmp_path.iterdir()) == []


def test_unknown_suffix_and_format(tmp_path):
    with pytest.raises(BadInputError) as err:
        write_regions(Regions([]), tmp_path / "out.txt")
    assert "out.txt" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(BadInputError):
        write_regions(Regions([]), tmp_path / "out.reg", format="kml")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_false(tmp_path):
    path = tmp_path / "a.reg"
    write_regions(Regions([]), path)
    with pytest.raises(FileExistsError):
        write_regions(Regions([]), path, overwrite=False)


def test_bad_input_shape():
    with pytest.raises(BadInputError):
        probability_regions(np.zeros((3, 4, 5)))


def test_many_regions_fast(tmp_path):
    m = np.zeros((600, 600), bool)
    m[2::11, 2::11] = True          # single pixels
    m[6::11, 6::11] = True
    m[7::11, 6::11] = True          # 2x1 pieces
    n_expected = len(range(2, 600, 11)) ** 2 + len(range(6, 600, 11)) ** 2
    assert n_expected >= 3000
    t0 = time.perf_counter()
    regs = mask_regions(m)
    sky = mask_regions(m, wcs=_wcs())
    dt = time.perf_counter() - t0
    assert len(regs) == len(sky) == n_expected
    assert dt < 5.0, f"{n_expected} regions took {dt:.2f} s"
    t0 = time.perf_counter()
    write_regions(sky, tmp_path / "many.crtf")
    write_regions(sky, tmp_path / "many.fits", wcs=_wcs())
    assert time.perf_counter() - t0 < 5.0
