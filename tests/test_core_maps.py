"""PSF kernels, background/noise meshes and the significance -> probability model."""

import numpy as np
import pytest
from astropy.io import fits
from scipy.stats import norm

from glue_astrodl.core.errors import BadInputError
from glue_astrodl.core.normalise import asinh_stretch, estimate_background, robust_level_noise
from glue_astrodl.core.psf import fwhm_from_header, gaussian_psf, moffat_psf, psf_kernel
from glue_astrodl.core.significance import fit_source_posterior, null_scale
from glue_astrodl.sim import make_wcs


@pytest.mark.parametrize("make", [gaussian_psf, moffat_psf])
@pytest.mark.parametrize("fwhm", [1.0, 3.0, 7.5])
def test_psf_unit_sum_centred_and_right_width(make, fwhm):
    k = make(fwhm, oversample=15)
    assert k.sum() == pytest.approx(1.0) and k.shape[0] % 2 == 1
    c = k.shape[0] // 2
    assert np.unravel_index(k.argmax(), k.shape) == (c, c)
    if fwhm >= 3:  # half maximum crossing along the row (pixel-integration blurs tiny PSFs)
        row = k[c] / k[c, c]
        x = np.arange(k.shape[0]) - c
        right = np.interp(0.5, row[c:][::-1], x[c:][::-1])
        # pixel integration broadens Moffat's sharp core more than a Gaussian's
        assert 2 * right == pytest.approx(fwhm, rel=0.05 if make is gaussian_psf else 0.1)


def test_fwhm_from_header_pixels_or_seeing():
    assert fwhm_from_header(fits.Header({"FWHM": 3.2})) == 3.2
    wcs = make_wcs((100, 100), pixel_scale_arcsec=0.25)
    assert fwhm_from_header(fits.Header({"SEEING": 1.0}), wcs) == pytest.approx(4.0)
    assert fwhm_from_header(fits.Header({"SEEING": 1.0})) is None
    with pytest.raises(ValueError):
        psf_kernel(fwhm=2, profile="airy")


def test_background_follows_gradient_and_noise_in_bands():
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:600, :700]
    truth = 50 + 0.02 * xx + 0.01 * yy
    sigma = 3 + 0.002 * xx
    img = (truth + sigma * rng.normal(size=truth.shape)).astype(np.float32)
    img[200:260, 300:360] = np.nan
    mesh = estimate_background(img, box=50)
    bkg, rms = mesh.full()
    assert mesh.n_missing == 3600
    inner = (slice(50, -50), slice(50, -50))
    err = (bkg - truth)[inner]
    assert np.sqrt(np.mean(err**2)) < 0.1 and np.abs(err).max() < 0.15 * sigma.min()  # noise-limited
    assert np.abs(rms / sigma - 1)[inner].max() < 0.08
    sub_bkg, sub_rms = mesh.window(100, 180, 20, 90)
    np.testing.assert_allclose(sub_bkg, bkg[100:180, 20:90], rtol=1e-6)


def test_background_rejects_bright_sources_and_unusable_images():
    rng = np.random.default_rng(3)
    img = 10 + rng.normal(size=(256, 256))
    img[::16, ::16] += 500  # sparse bright pixels must not bias the level
    mesh = estimate_background(img, box=32)
    assert np.abs(mesh.background - 10).max() < 0.05
    with pytest.raises(BadInputError, match="constant"):
        estimate_background(np.ones((64, 64)))
    with pytest.raises(BadInputError, match="no usable"):
        estimate_background(np.full((64, 64), np.inf))


def test_asinh_stretch_missing_to_zero():
    z = asinh_stretch(np.array([np.nan, 10.0, 110.0]), 10.0, 10.0)
    np.testing.assert_allclose(z, [0, 0, np.arcsinh(10)], rtol=1e-6)


def test_global_level_is_the_sky_mode_not_the_median():
    """A smooth bump over 45% of the frame (scattered light) moves the median, not the sky."""
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:400, 0:400]
    bump = 60.0 * np.clip((xx - 220) / 180.0, 0, None)  # ramp up to 12 sigma at the right
    image = (500 + bump + 5 * rng.normal(size=bump.shape)).astype(np.float32)
    level, noise = robust_level_noise(image)
    assert noise == pytest.approx(5.0, rel=0.03)
    assert abs(level - 500) < 1.0 and np.median(image) > 504  # within 0.2 sigma; the median is 1 sigma off
    flat, _ = robust_level_noise(np.round(100 + 5 * rng.normal(size=(300, 300))))
    assert abs(flat - 100) < 0.1


def test_global_level_ignores_a_saturated_plateau():
    """A saturated star covering 16% of a cut-out (one clipped value) is not the sky."""
    rng = np.random.default_rng(5)
    image = (300 + 8 * rng.normal(size=(256, 256))).astype(np.float32)
    yy, xx = np.mgrid[0:256, 0:256]
    image[(yy - 128) ** 2 + (xx - 128) ** 2 < 58**2] = 65535.0
    level, noise = robust_level_noise(image)
    assert abs(level - 300) < 2 and noise == pytest.approx(8.0, rel=0.05)


def test_two_group_posterior_recovers_known_mixture():
    """Null N(0,1) with 2% of pixels from N(4, 1): posterior must match Bayes' rule."""
    rng = np.random.default_rng(4)
    n, pi1 = 2_000_000, 0.02
    alt = rng.random(n) < pi1
    nu = np.where(alt, rng.normal(4, 1, n), rng.normal(0, 1, n))
    post = fit_source_posterior(nu)
    assert post.prior == pytest.approx(pi1, rel=0.1)
    grid = np.array([2.0, 3.0, 4.0, 5.0])
    exact = pi1 * norm.pdf(grid, 4) / (pi1 * norm.pdf(grid, 4) + (1 - pi1) * norm.pdf(grid))
    np.testing.assert_allclose(post(grid), exact, atol=0.04)
    shifted = fit_source_posterior(nu, prior=0.002)
    exact_low = 0.002 * norm.pdf(grid, 4) / (0.002 * norm.pdf(grid, 4) + 0.998 * norm.pdf(grid))
    np.testing.assert_allclose(shifted(grid), exact_low, atol=0.04)
    assert np.all(np.diff(post(np.linspace(-5, 10, 200))) >= 0)


def test_null_scale_from_negative_half():
    rng = np.random.default_rng(5)
    nu = np.concatenate([1.3 * rng.normal(size=500_000), rng.uniform(5, 50, 20_000)])
    assert null_scale(nu) == pytest.approx(1.3, rel=0.01)


def test_pure_noise_gives_no_confident_detections():
    rng = np.random.default_rng(6)
    post = fit_source_posterior(rng.normal(size=2_000_000))
    assert post.prior < 3e-3 and post(np.array([4.5]))[0] < 0.1


def test_background_level_unbiased_for_poisson_sky():
    """Skewed (Poisson) sky: the level must be the mean, to ~0.002 sigma."""
    rng = np.random.default_rng(7)
    sky_e = 400.0
    img = rng.poisson(sky_e, size=(2048, 2048)).astype(np.float32)
    mesh = estimate_background(img, box=64)
    assert abs(np.mean(mesh.background) - sky_e) < 0.002 * np.sqrt(sky_e) + 3 * np.sqrt(sky_e) / 2048
