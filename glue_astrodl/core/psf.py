"""Point-spread-function kernels: circular Gaussian and Moffat profiles.

Kernels are sampled on the pixel grid by averaging an ``oversample`` x ``oversample``
sub-grid in each pixel (pixel-integrated, so undersampled PSFs keep their flux), are
centred on the middle pixel of an odd-sized array and are normalised to unit sum.
"""

import numpy as np

__all__ = ["gaussian_psf", "moffat_psf", "psf_kernel", "psf_radius", "fwhm_from_header"]

FWHM_KEYWORDS = ("FWHM", "PSF_FWHM", "FWHM_PIX")
SEEING_KEYWORDS = ("SEEING", "FWHM_ARC")


def _sigma(fwhm):
    return fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def _moffat_alpha(fwhm, beta):
    return fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def psf_radius(fwhm, profile="gaussian", beta=2.5):
    """Half-size in pixels that holds the profile down to ~1e-3 of its peak.

    Examples
    --------
    >>> psf_radius(2.5), psf_radius(2.5, "moffat")  # Moffat wings reach further
    (4, 9)
    """
    if profile == "gaussian":
        r = _sigma(fwhm) * np.sqrt(2.0 * np.log(1e3))
    else:
        r = _moffat_alpha(fwhm, beta) * np.sqrt(1e3 ** (1.0 / beta) - 1.0)
    return int(np.clip(np.ceil(r), 2, 64))


def _sample(profile_r2, radius, oversample, dx=0.0, dy=0.0):
    n = 2 * radius + 1
    sub = (np.arange(n * oversample) + 0.5) / oversample - radius - 0.5
    yy, xx = np.meshgrid(sub - dy, sub - dx, indexing="ij")
    img = profile_r2(xx**2 + yy**2).reshape(n, oversample, n, oversample).mean(axis=(1, 3))
    return img


def gaussian_psf(fwhm, radius=None, oversample=5, dx=0.0, dy=0.0, normalise=True):
    """Pixel-integrated circular Gaussian of full width at half maximum ``fwhm`` (pixels).

    ``dx, dy`` shift the centre (in pixels) for sub-pixel placement of sources.

    Examples
    --------
    >>> k = gaussian_psf(2.5)
    >>> k.shape, round(float(k.sum()), 6)
    ((9, 9), 1.0)
    >>> gaussian_psf(2.5, dx=0.5)[4, 3:7].round(3)  # centre half a pixel to the right
    array([0.052, 0.119, 0.119, 0.052])
    """
    if fwhm <= 0:
        raise ValueError(f"FWHM must be positive, got {fwhm}")
    radius = psf_radius(fwhm, "gaussian") if radius is None else int(radius)
    s2 = _sigma(fwhm) ** 2
    k = _sample(lambda r2: np.exp(-0.5 * r2 / s2), radius, oversample, dx, dy)
    return k / k.sum() if normalise else k / (2 * np.pi * s2)


def moffat_psf(fwhm, beta=2.5, radius=None, oversample=5, dx=0.0, dy=0.0, normalise=True):
    """Pixel-integrated circular Moffat profile ``(1 + r^2/alpha^2)^-beta``.

    Examples
    --------
    >>> k = moffat_psf(3.0, beta=2.5)
    >>> k.shape, round(float(k.sum()), 6)
    ((23, 23), 1.0)
    """
    if fwhm <= 0 or beta <= 1:
        raise ValueError(f"need FWHM > 0 and beta > 1, got {fwhm}, {beta}")
    radius = psf_radius(fwhm, "moffat", beta) if radius is None else int(radius)
    a2 = _moffat_alpha(fwhm, beta) ** 2
    k = _sample(lambda r2: (1.0 + r2 / a2) ** (-beta), radius, oversample, dx, dy)
    return k / k.sum() if normalise else k * (beta - 1) / (np.pi * a2)


def psf_kernel(psf=None, fwhm=None, profile="gaussian", beta=2.5):
    """Return a normalised odd-sized PSF array from an array or a FWHM and profile name.

    Examples
    --------
    >>> psf_kernel(fwhm=3.0).shape  # Gaussian by default
    (11, 11)
    >>> psf_kernel(fwhm=3.0, profile="moffat", beta=2.5).shape
    (23, 23)
    >>> psf_kernel([[0, 1, 0], [1, 4, 1], [0, 1, 0]]).sum()  # a given array is normalised
    np.float64(1.0)
    """
    if psf is not None:
        k = np.asarray(psf, dtype=np.float64)
        if k.ndim != 2 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
            raise ValueError(f"PSF array must be 2-D with odd sides, got shape {k.shape}")
        if not np.all(np.isfinite(k)) or k.sum() <= 0:
            raise ValueError("PSF array must be finite with a positive sum")
        return k / k.sum()
    if fwhm is None:
        raise ValueError("give either a PSF array or a FWHM")
    if profile == "gaussian":
        return gaussian_psf(fwhm)
    if profile == "moffat":
        return moffat_psf(fwhm, beta)
    raise ValueError(f"unknown PSF profile {profile!r}; use 'gaussian' or 'moffat'")


def fwhm_from_header(header, wcs=None):
    """FWHM in pixels from FITS keywords, or None.

    ``FWHM``/``PSF_FWHM``/``FWHM_PIX`` are read as pixels; ``SEEING``/``FWHM_ARC`` as
    arcseconds, converted with the WCS pixel scale when one is given.

    Examples
    --------
    >>> from astropy.io import fits
    >>> from glue_astrodl.sim import make_wcs
    >>> fwhm_from_header(fits.Header({"FWHM": 2.8}))
    2.8
    >>> fwhm_from_header(fits.Header({"SEEING": 1.0}), make_wcs((100, 100), pixel_scale_arcsec=0.2))  # arcsec -> px
    5.0
    >>> fwhm_from_header(fits.Header()) is None
    True
    """
    if header is None:
        return None
    for key in FWHM_KEYWORDS:
        value = header.get(key)
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    if wcs is not None and wcs.has_celestial:
        from astropy.wcs.utils import proj_plane_pixel_scales

        scale = float(np.mean(proj_plane_pixel_scales(wcs.celestial))) * 3600.0
        for key in SEEING_KEYWORDS:
            value = header.get(key)
            if isinstance(value, (int, float)) and value > 0 and scale > 0:
                return float(value) / scale
    return None
