"""Tests of the CCD-frame simulator (glue_astrodl.sim)."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales
from scipy.spatial import cKDTree

from glue_astrodl.core.psf import fwhm_from_header, gaussian_psf
from glue_astrodl.sim import (GENERATOR_VERSION, SimulatedFrame, make_wcs, simulate_frame,
                              simulate_point_sources)
from glue_astrodl.sim.galaxies import sersic_stamp
from glue_astrodl.sim.render import PSFModel, galsim_available, make_renderer

RENDERERS = ["native", pytest.param("galsim", marks=pytest.mark.skipif(
    not galsim_available(), reason="GalSim not installed"))]
SMALL = dict(shape=(256, 256), n_stars=25, n_galaxies=12)


def _moments(img):
    yy, xx = np.indices(img.shape, dtype=float)
    f = img.sum()
    xc, yc = (img * xx).sum() / f, (img * yy).sum() / f
    dx, dy = xx - xc, yy - yc
    mxx, myy, mxy = (img * dx * dx).sum() / f, (img * dy * dy).sum() / f, (img * dx * dy).sum() / f
    return xc, yc, mxx, myy, mxy


def _half_light_radius(img):
    xc, yc, *_ = _moments(img)
    yy, xx = np.indices(img.shape, dtype=float)
    r = np.hypot(xx - xc, yy - yc).ravel()
    order = np.argsort(r)
    cum = np.cumsum(img.ravel()[order])
    return float(np.interp(0.5 * cum[-1], cum, r[order]))


# --------------------------------------------------------------------------- frames

def test_same_seed_same_frame_and_different_seed_differs():
    a = simulate_frame(seed=7, renderer="native", **SMALL)
    b = simulate_frame(seed=7, renderer="native", **SMALL)
    c = simulate_frame(seed=8, renderer="native", **SMALL)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.noiseless, b.noiseless)
    assert all(np.array_equal(a.truth[k], b.truth[k], equal_nan=a.truth[k].dtype.kind == "f")
               for k in a.truth.colnames)
    assert not np.array_equal(a.image, c.image)
    assert not np.allclose(a.truth["x"], c.truth["x"])


@pytest.mark.skipif(not galsim_available(), reason="GalSim not installed")
def test_truth_and_noise_do_not_depend_on_renderer():
    a = simulate_frame(seed=3, renderer="native", **SMALL)
    b = simulate_frame(seed=3, renderer="galsim", **SMALL)
    for k in ("x", "y", "flux", "r_eff", "q", "theta", "snr"):
        np.testing.assert_array_equal(a.truth[k], b.truth[k])
    assert a.header["SIMRENDR"] == "native" and b.header["SIMRENDR"] == "galsim"
    # same objects, same total light, nearly the same pixels
    assert abs(a.sources.sum() / b.sources.sum() - 1) < 1e-3
    assert np.abs(a.sources - b.sources).max() < 0.01 * b.sources.max()


def test_shapes_dtypes_and_truth_columns():
    f = simulate_frame(seed=1, renderer="native", **SMALL)
    assert isinstance(f, SimulatedFrame)
    for arr in (f.image, f.noiseless, f.sources):
        assert arr.shape == (256, 256) and arr.dtype == np.float32
    np.testing.assert_allclose(f.noiseless - f.sources, f.header["SKYLEVEL"], atol=1e-2)
    assert f.psf.ndim == 2 and f.psf.shape[0] % 2 == 1 and abs(f.psf.sum() - 1) < 1e-12
    assert set(f.truth.colnames) >= {"id", "x", "y", "ra", "dec", "flux", "mag", "kind",
                                     "sersic_n", "r_eff", "q", "theta", "snr"}
    assert len(f.truth) == 37 and list(f.truth["id"]) == list(range(1, 38))
    stars = f.truth[f.truth["kind"] == "star"]
    gals = f.truth[f.truth["kind"] == "galaxy"]
    assert len(stars) == 25 and len(gals) == 12
    assert np.all(np.isnan(stars["sersic_n"])) and np.all(stars["r_eff"] == 0)
    assert np.all((gals["sersic_n"] >= 0.5) & (gals["sersic_n"] <= 4))
    assert np.all((gals["r_eff"] >= 1) & (gals["r_eff"] <= 8))
    assert np.all((gals["q"] >= 0.3) & (gals["q"] <= 1))
    np.testing.assert_allclose(f.truth["mag"], 28.0 - 2.5 * np.log10(f.truth["flux"]))
    # S/N semantics of the truth column, and the flux range (S/N >= 3, no saturation)
    sigma = np.sqrt(300.0 * 2.0 + 5.0**2) / 2.0
    np.testing.assert_allclose(f.truth["snr"], f.truth["flux"] * np.sqrt((f.psf**2).sum()) / sigma)
    assert f.truth["snr"].min() >= 3.0 - 1e-9
    assert (stars["flux"] * f.psf.max()).max() + 300.0 < 50000.0


def test_header_wcs_matches_truth_and_has_keywords():
    f = simulate_frame(seed=2, renderer="native", pixel_scale=0.25, **SMALL)
    h = f.header
    for key in ("FWHM", "GAIN", "RDNOISE", "SKYLEVEL", "BUNIT", "MAGZERO", "ASTRODLSIM"):
        assert key in h
    assert h["BUNIT"] == "adu" and h["ASTRODLSIM"] == GENERATOR_VERSION
    assert h["FWHM"] == 3.0 and fwhm_from_header(h) == 3.0
    w = f.wcs
    assert w.has_celestial and w.wcs.has_cd()
    sky = w.pixel_to_world(f.truth["x"], f.truth["y"])
    np.testing.assert_allclose(sky.ra.deg, f.truth["ra"], atol=1e-9)
    np.testing.assert_allclose(sky.dec.deg, f.truth["dec"], atol=1e-9)
    np.testing.assert_allclose(proj_plane_pixel_scales(w) * 3600, 0.25)


def test_make_wcs_centre_scale_and_rotation():
    w = make_wcs((100, 200), pixel_scale_arcsec=0.5, ra=10.0, dec=-30.0, rotation_deg=30.0)
    c = w.pixel_to_world(99.5, 49.5)  # 0-based image centre
    assert abs(c.ra.deg - 10.0) < 1e-9 and abs(c.dec.deg + 30.0) < 1e-9
    np.testing.assert_allclose(proj_plane_pixel_scales(w) * 3600, 0.5)
    # north is rotated 30 degrees counter-clockwise from +y on the image
    x, y = w.world_to_pixel_values(10.0, -30.0 + 10 * 0.5 / 3600)
    assert np.rad2deg(np.arctan2(-(x - 99.5), y - 49.5)) == pytest.approx(30.0, abs=0.01)
    assert WCS(w.to_header()).wcs.ctype[0] == "RA---TAN"


@pytest.mark.parametrize("sky,read_noise,gain", [(300.0, 5.0, 2.0), (50.0, 10.0, 1.0)])
def test_noise_level_matches_expectation(sky, read_noise, gain):
    f = simulate_frame(shape=(512, 512), n_stars=0, n_galaxies=0, sky=sky,
                       read_noise=read_noise, gain=gain, seed=4, renderer="native")
    resid = f.image.astype(np.float64) - f.noiseless
    mean, _, std = sigma_clipped_stats(resid, sigma=4.0, maxiters=5)
    expected = np.sqrt(sky * gain + read_noise**2) / gain
    assert abs(std / expected - 1) < 0.03
    assert abs(f.sky_sigma / expected - 1) < 1e-12
    assert abs(resid.mean()) < 0.02 * expected and abs(mean) < 0.05 * expected


def test_write_produces_readable_fits(tmp_path):
    f = simulate_frame(seed=5, renderer="native", **SMALL)
    path = tmp_path / "sub" / "frame.fits"
    assert f.write(path) == path
    with fits.open(path) as hdul:
        assert len(hdul) == 1
        np.testing.assert_array_equal(hdul[0].data, f.image)
        h = hdul[0].header
        for key in ("FWHM", "GAIN", "RDNOISE", "SKYLEVEL", "BUNIT", "MAGZERO", "ASTRODLSIM"):
            assert h[key] == f.header[key]
        x, y = WCS(h).world_to_pixel_values(f.truth["ra"], f.truth["dec"])
        np.testing.assert_allclose(x, f.truth["x"], atol=1e-6)
        np.testing.assert_allclose(y, f.truth["y"], atol=1e-6)
    f.write(path, truth=True)  # overwrite, with the truth table appended
    assert Table.read(path, hdu="TRUTH")["flux"].tolist() == f.truth["flux"].tolist()
    assert [p.name for p in path.parent.iterdir()] == ["frame.fits"]  # no temporary left


def test_bad_arguments():
    with pytest.raises(ValueError):
        simulate_frame(renderer="nope", **SMALL)
    with pytest.raises(ValueError):
        simulate_frame(psf_profile="airy", **SMALL)
    with pytest.raises(ValueError):
        simulate_frame(shape=(4,), n_stars=1, n_galaxies=0)


# --------------------------------------------------------------------------- objects

def _isolated_catalog():
    return Table({"x": [60.3, 180.6], "y": [70.8, 150.2], "flux": [5000.0, 20000.0],
                  "kind": ["star", "galaxy"], "sersic_n": [np.nan, 4.0],
                  "r_eff": [0.0, 4.0], "q": [1.0, 0.6], "theta": [0.0, 35.0]})


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("profile", ["moffat", "gaussian"])
def test_flux_is_conserved_for_isolated_objects(renderer, profile):
    f = simulate_frame(shape=(256, 256), psf_profile=profile, renderer=renderer, seed=0,
                       catalog=_isolated_catalog())
    src = f.sources.astype(np.float64)
    star = src[:, :120].sum()  # the star and galaxy stamps lie in separate halves
    gal = src[:, 120:].sum()
    assert abs(star / 5000.0 - 1) < 0.02
    assert abs(gal / 20000.0 - 1) < 0.02
    # the centroids are the truth positions
    for (x0, x1), t in (((0, 120), f.truth[0]), ((120, 256), f.truth[1])):
        xc, yc, *_ = _moments(src[:, x0:x1])
        assert abs(xc + x0 - t["x"]) < 0.02 and abs(yc - t["y"]) < 0.02


@pytest.mark.skipif(not galsim_available(), reason="GalSim not installed")
@pytest.mark.parametrize("n,r_eff,q,theta", [(4.0, 1.2, 0.6, 30.0), (1.0, 5.0, 0.4, 120.0),
                                             (0.5, 2.0, 1.0, 0.0)])
def test_native_and_galsim_galaxies_agree(n, r_eff, q, theta):
    psf = PSFModel(3.0, "moffat", 3.0)
    a, xa, ya = make_renderer("native", psf).galaxy(1000.0, 40.3, 50.7, n, r_eff, q, theta)
    b, xb, yb = make_renderer("galsim", psf).galaxy(1000.0, 40.3, 50.7, n, r_eff, q, theta)
    assert (xa, ya) == (xb, yb) and a.shape == b.shape
    assert abs(a.sum() - b.sum()) < 1.0
    assert np.abs(a - b).max() < 0.01 * b.max()
    # flux inside an aperture of radius r_eff agrees to ~1 %
    yy, xx = np.indices(a.shape)
    inside = np.hypot(xx + xa - 40.3, yy + ya - 50.7) < max(r_eff, 3.0)
    assert abs(a[inside].sum() / b[inside].sum() - 1) < 0.01


def test_sersic_half_light_radius_and_moments():
    # large round exponential without PSF: half-light radius and second moments
    img = sersic_stamp(1000.0, 1.0, 10.0, 1.0, 0.0, size=181, dx=0.2, dy=-0.3, oversample=3)
    assert abs(img.sum() - 1000.0) < 1e-6
    assert abs(_half_light_radius(img) / 10.0 - 1) < 0.15
    b = 1.678347  # b_1; <r^2> = 6 (r_eff / b)^2 for the (untruncated) exponential
    _, _, mxx, myy, _ = _moments(img)
    assert abs(np.sqrt(mxx + myy) / (np.sqrt(6.0) * 10.0 / b) - 1) < 0.05
    # an elliptical profile: axis ratio and angle from the moment eigenvectors
    img = sersic_stamp(1000.0, 1.0, 8.0, 0.5, 30.0, size=161, oversample=3)
    _, _, mxx, myy, mxy = _moments(img)
    evals, evecs = np.linalg.eigh([[mxx, mxy], [mxy, myy]])
    assert abs(np.sqrt(evals[0] / evals[1]) - 0.5) < 0.02
    angle = np.rad2deg(np.arctan2(evecs[1, 1], evecs[0, 1])) % 180
    assert abs(angle - 30.0) < 1.0


@pytest.mark.parametrize("renderer", RENDERERS)
def test_psf_convolved_galaxy_size_in_frame(renderer):
    # a large round n=1 galaxy in a frame: half-light radius ~ r_eff (PSF adds a little),
    # second moments = galaxy + PSF moments
    cat = Table({"x": [64.0], "y": [64.0], "flux": [1e5], "kind": ["galaxy"],
                 "sersic_n": [1.0], "r_eff": [8.0], "q": [1.0], "theta": [0.0]})
    f = simulate_frame(shape=(129, 129), psf_profile="gaussian", renderer=renderer,
                       catalog=cat)
    src = f.sources.astype(np.float64)
    assert abs(_half_light_radius(src) / 8.0 - 1) < 0.15
    _, _, mxx, myy, _ = _moments(src)
    psf_r2 = 2 * (3.0 / 2.3548) ** 2 + 2 / 12.0
    gal_r2 = 6.0 * (8.0 / 1.678347) ** 2
    assert abs(np.sqrt((mxx + myy) / (gal_r2 + psf_r2)) - 1) < 0.05


# --------------------------------------------------------------------------- point sources

def test_point_source_snr_semantics():
    snrs = (3.0, 5.0, 10.0)
    f = simulate_point_sources(shape=(512, 512), snr=snrs, n_per_snr=30, seed=11,
                               renderer="native")
    t = f.truth
    assert len(t) == 90 and set(t["kind"]) == {"star"}
    assert sorted(set(np.round(t["snr"], 9))) == list(snrs)
    sigma = sigma_clipped_stats(f.image.astype(np.float64) - f.noiseless, sigma=4.0)[2]
    assert abs(sigma / f.sky_sigma - 1) < 0.03
    r = f.psf.shape[0] // 2
    src = f.sources.astype(np.float64)
    for row in t:
        ix, iy = int(np.floor(row["x"] + 0.5)), int(np.floor(row["y"] + 0.5))
        psf = gaussian_psf(3.0, radius=r, dx=row["x"] - ix, dy=row["y"] - iy)
        stamp = src[iy - r:iy + r + 1, ix - r:ix + r + 1]
        measured = (psf * stamp).sum() / (sigma * np.sqrt((psf**2).sum()))
        assert abs(measured / row["snr"] - 1) < 0.02 + abs(sigma / f.sky_sigma - 1)
        assert abs(stamp.sum() / row["flux"] - 1) < 0.02


@pytest.mark.parametrize("renderer", RENDERERS)
def test_point_sources_are_separated_and_inside(renderer):
    f = simulate_point_sources(shape=(400, 300), snr=(5, 10), n_per_snr=20, fwhm=2.5,
                               psf_profile="moffat", seed=2, renderer=renderer)
    xy = np.c_[f.truth["x"], f.truth["y"]]
    d, _ = cKDTree(xy).query(xy, k=2)
    assert d[:, 1].min() > 6 * 2.5
    r = f.psf.shape[0] // 2
    assert xy[:, 0].min() >= r and xy[:, 0].max() <= 300 - 1 - r
    assert xy[:, 1].min() >= r and xy[:, 1].max() <= 400 - 1 - r
    assert abs(f.sources.sum() / f.truth["flux"].sum() - 1) < 1e-4
    f2 = simulate_point_sources(shape=(400, 300), snr=(5, 10), n_per_snr=20, fwhm=2.5,
                                psf_profile="moffat", seed=2, renderer=renderer)
    np.testing.assert_array_equal(f.image, f2.image)


def test_point_sources_that_do_not_fit_raise():
    with pytest.raises(ValueError, match="do not fit"):
        simulate_point_sources(shape=(64, 64), n_per_snr=100)
    f = simulate_point_sources(shape=(256, 256), snr=(5,), n_per_snr=10, min_separation=40.0)
    xy = np.c_[f.truth["x"], f.truth["y"]]
    assert cKDTree(xy).query(xy, k=2)[0][:, 1].min() > 40.0
