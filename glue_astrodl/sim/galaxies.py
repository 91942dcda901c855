"""Sérsic galaxy profiles rendered on a pixel grid.

Conventions (shared with the GalSim renderer):

* ``I(r) ∝ exp(-b_n [(r / r_eff)^(1/n) - 1])`` with ``b_n = gammaincinv(2n, 1/2)``, so
  ``r_eff`` is the half-light radius of the untruncated profile;
* ``r`` is the elliptical radius ``sqrt(x'^2 + (y'/q)^2)``: ``r_eff`` is measured along
  the major axis, ``q = b/a`` is the axis ratio and ``theta`` (degrees) is the angle of
  the major axis counter-clockwise from +x (columns) towards +y (rows);
* the profile is truncated at ``trunc * r_eff`` (default 8) along the major axis, and
  ``flux`` is the total of the *truncated* profile, which equals the stamp sum.

The profile is point-sampled on an ``oversample``-times finer grid. The cusp of large-n
profiles is far narrower than a sub-sample, so the difference between the analytic
(truncated) total and the sampled sum is put at the exact centre (bilinearly shared by
the four nearest sub-samples); after an optional PSF convolution at the fine scale the
sub-samples are summed into pixels, which integrates the image over the pixel area.
"""

import numpy as np
from scipy.signal import fftconvolve
from scipy.special import gamma, gammainc, gammaincinv

__all__ = [
    "sersic_b",
    "sersic_total",
    "sersic_extent",
    "sersic_stamp",
    "sersic_oversampled",
    "bin_oversampled",
]

TRUNCATION = 8.0  # default truncation radius in units of r_eff (major axis)


def sersic_b(n):
    """``b_n`` such that ``r_eff`` encloses half the light of the untruncated profile.

    Examples
    --------
    >>> round(float(sersic_b(1.0)), 4), round(float(sersic_b(4.0)), 4)  # exponential, de Vaucouleurs
    (1.6783, 7.6692)
    """
    return gammaincinv(2.0 * np.asarray(n, dtype=float), 0.5)


def sersic_total(n, r_eff, q=1.0, trunc=TRUNCATION):
    """Integral of ``exp(-b_n (r/r_eff)^(1/n))`` over the ellipse of radius ``trunc*r_eff``.

    Examples
    --------
    >>> round(float(sersic_total(1.0, r_eff=2.0)), 4)  # integral of the unit-amplitude profile
    8.9221
    >>> round(float(sersic_total(1.0, 2.0, q=0.5) / sersic_total(1.0, 2.0)), 6)  # scales with q
    0.5
    """
    n = float(n)
    b = sersic_b(n)
    frac = gammainc(2 * n, b * trunc ** (1.0 / n)) if np.isfinite(trunc) else 1.0
    return 2 * np.pi * q * n * r_eff**2 * gamma(2 * n) * frac / b ** (2 * n)


def sersic_extent(n, r_eff, trunc=TRUNCATION, tol=1e-5):
    """Major-axis radius (pixels) beyond which at most ``tol`` of the flux lies (≤ truncation).

    Examples
    --------
    >>> round(sersic_extent(0.5, r_eff=2.0), 2), sersic_extent(1.0, r_eff=2.0)  # n=1 reaches the truncation
    (8.15, 16.0)
    """
    n = float(n)
    x = (gammaincinv(2 * n, 1.0 - tol) / sersic_b(n)) ** n
    return float(r_eff * min(x, trunc))


def _check(n, r_eff, q):
    if not (0.2 <= n <= 10):
        raise ValueError(f"Sersic index must lie in [0.2, 10], got {n}")
    if r_eff <= 0 or not (0 < q <= 1):
        raise ValueError(f"need r_eff > 0 and 0 < q <= 1, got {r_eff}, {q}")


def sersic_oversampled(flux, n, r_eff, q=1.0, theta=0.0, size=None, dx=0.0, dy=0.0,
                       oversample=5, trunc=TRUNCATION):
    """Sérsic flux per sub-sample on a ``size*oversample`` square grid (sums to ``flux``).

    ``size`` (odd, pixels) defaults to hold :func:`sersic_extent`; a smaller stamp
    truncates the profile at its edge. ``dx, dy`` offset the centre from the middle
    pixel's centre. Returns ``(array, size)``.

    Examples
    --------
    >>> fine, size = sersic_oversampled(1000.0, 1.0, 2.0, size=11, oversample=3)
    >>> fine.shape, size, round(float(fine.sum()), 6)
    ((33, 33), 11, 1000.0)
    """
    _check(n, r_eff, q)
    if size is None:
        size = 2 * int(np.ceil(sersic_extent(n, r_eff, trunc))) + 3
    size = int(size)
    if size % 2 == 0:
        raise ValueError(f"stamp size must be odd, got {size}")
    os_ = int(oversample)
    h = 1.0 / os_
    half = size // 2
    u = (np.arange(size * os_) + 0.5) * h - half - 0.5
    yy, xx = u[:, None] - dy, u[None, :] - dx
    t = np.deg2rad(theta)
    c, s = np.cos(t), np.sin(t)
    xp = xx * c + yy * s
    yp = (-xx * s + yy * c) / q
    r = np.sqrt(xp * xp + yp * yp)
    # a stamp smaller than the truncation ellipse truncates the profile at its edge
    r_t = min(trunc * r_eff, half + 0.5 - max(abs(dx), abs(dy)))
    b = float(sersic_b(n))
    r_c = 0.5 * h  # clip the cusp: the central flux is restored analytically below
    img = np.exp(-b * (np.maximum(r, r_c) / r_eff) ** (1.0 / n))
    img[r > r_t] = 0.0
    img *= h * h
    deficit = sersic_total(n, r_eff, q, r_t / r_eff) - img.sum()
    # share the missing (cusp) flux between the four sub-samples around the centre
    fy, fx = (dy + half + 0.5) / h - 0.5, (dx + half + 0.5) / h - 0.5
    iy, ix = int(np.floor(fy)), int(np.floor(fx))
    wy, wx = fy - iy, fx - ix
    for oy, ox, w in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx),
                      (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
        if 0 <= iy + oy < img.shape[0] and 0 <= ix + ox < img.shape[1]:
            img[iy + oy, ix + ox] += deficit * w
    img *= flux / img.sum()
    return img, size


def bin_oversampled(img, oversample):
    """Sum ``oversample`` x ``oversample`` blocks of sub-samples into pixels.

    Examples
    --------
    >>> import numpy as np
    >>> bin_oversampled(np.ones((6, 6)), 3)  # 3x3 sub-samples per pixel
    array([[9., 9.],
           [9., 9.]])
    """
    ny, nx = img.shape[0] // oversample, img.shape[1] // oversample
    return img.reshape(ny, oversample, nx, oversample).sum(axis=(1, 3))


def sersic_stamp(flux, n, r_eff, q=1.0, theta=0.0, size=None, dx=0.0, dy=0.0,
                 oversample=5, psf=None, trunc=TRUNCATION):
    """Pixel-integrated Sérsic stamp of odd ``size`` whose pixels sum to ``flux``.

    ``psf``, if given, is a unit-sum odd kernel sampled at the *sub-pixel* spacing
    ``1/oversample``; it is convolved before binning (pass a ``size`` large enough to hold
    the PSF wings: flux leaving the stamp is restored by renormalising to ``flux``).

    Examples
    --------
    >>> from glue_astrodl.core.psf import gaussian_psf
    >>> stamp = sersic_stamp(1000.0, 1.0, 2.0, q=0.5, theta=30.0, size=21)
    >>> stamp.shape, round(float(stamp.sum()), 6)
    ((21, 21), 1000.0)
    >>> blurred = sersic_stamp(1000.0, 1.0, 2.0, size=21, psf=gaussian_psf(2.5 * 5, oversample=1))  # PSF at 1/5 px
    >>> round(float(blurred.sum()), 6), bool(blurred.max() < sersic_stamp(1000.0, 1.0, 2.0, size=21).max())
    (1000.0, True)
    """
    img, size = sersic_oversampled(flux, n, r_eff, q, theta, size, dx, dy, oversample, trunc)
    if psf is not None:
        img = fftconvolve(img, np.asarray(psf, dtype=float), mode="same")
    out = bin_oversampled(img, int(oversample))
    total = out.sum()
    return out * (flux / total) if total > 0 else out
