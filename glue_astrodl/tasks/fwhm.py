"""The PSF of an image: given, from its header, or measured on its brightest compact sources.

`image_psf` is the one rule the image tasks (sources, photometry) share; `estimate_fwhm`
measures the FWHM when neither the user nor the header gives it.
"""

import warnings

import numpy as np
from astropy import units as u
from scipy.ndimage import gaussian_filter, maximum_filter

from ..core.errors import BadInputError
from ..core.psf import fwhm_from_header, psf_kernel

__all__ = ["FWHMWarning", "estimate_fwhm", "flux_unit", "image_psf", "stellar_locus"]


def image_psf(img, fwhm, psf, profile, beta, background, notes=None):
    """``(kernel, fwhm)``: the centred unit-sum PSF of ``img`` (an `ImageData`) and its FWHM in
    pixels: the given ``psf`` array or ``fwhm``, else the header's (``FWHM``, ``PSF_FWHM``,
    ``SEEING`` with a WCS), else one measured on the image (``background()`` gives the
    `BackgroundMesh` that needs; doubts about it are warned and appended to ``notes``).

    Examples
    --------
    >>> from glue_astrodl.io.fits import ImageData
    >>> from glue_astrodl.core.normalise import estimate_background
    >>> from glue_astrodl.sim import simulate_point_sources
    >>> frame = simulate_point_sources((96, 96), snr=(100,), n_per_snr=6, fwhm=3.0, seed=1, renderer="native")
    >>> img = ImageData(frame.image, frame.header)
    >>> kernel, fwhm = image_psf(img, None, None, "gaussian", 2.5, lambda: None)  # FWHM from the header
    >>> kernel.shape, fwhm
    ((11, 11), 3.0)
    >>> image_psf(img, 2.0, None, "moffat", 2.5, None)[1]  # a given FWHM wins
    2.0
    >>> from astropy.io import fits
    >>> bare = ImageData(frame.image, fits.Header())  # no FWHM keywords: measured on the image
    >>> round(image_psf(bare, None, None, "gaussian", 2.5, lambda: estimate_background(frame.image))[1], 1)
    3.0
    """
    if psf is None and fwhm is None:
        try:
            fwhm = fwhm_from_header(img.header, img.wcs) or estimate_fwhm(img.data, background(), notes=notes)
        except BadInputError as err:
            raise BadInputError(f"{img.name}: {err}") from None
    try:
        kernel = psf_kernel(psf, fwhm, profile, beta)
    except ValueError as err:
        raise BadInputError(f"{img.name}: {err}") from None
    if fwhm is None:  # from the PSF array: width at half maximum of its peak
        fwhm = 2.0 * np.sqrt((kernel >= kernel.max() / 2).sum() / np.pi)
    return kernel, float(fwhm)


def flux_unit(header):
    """The image's ``BUNIT`` as an astropy unit, or None when absent or unrecognised.

    Examples
    --------
    >>> from astropy.io import fits
    >>> flux_unit(fits.Header({"BUNIT": "adu"}))
    Unit("adu")
    >>> flux_unit(fits.Header({"BUNIT": "counts per fortnight"})) is None  # unrecognised
    True
    """
    unit = u.Unit(header.get("BUNIT", ""), parse_strict="silent") if header.get("BUNIT") else None
    return None if isinstance(unit, u.UnrecognizedUnit) else unit


# A point source of FWHM f, integrated over pixels, fits a Gaussian of FWHM ~ sqrt(f^2 +
# 8 ln2 / 12) px. No imager's stars are narrower than 0.9 px (a fitted 1.13 px: even
# undersampled space cameras spread a star over a few pixels); narrower peaks are cosmic
# rays or hot pixels, alone or bled into a neighbour.
PIXEL_VARIANCE = 8 * np.log(2) / 12  # what a pixel adds to a fitted FWHM^2 (a box of 1 px)
MIN_STELLAR_FWHM = 0.9  # px, before pixel sampling
MIN_FITTED_FWHM = float(np.sqrt(MIN_STELLAR_FWHM**2 + PIXEL_VARIANCE))
LOCUS_TOLERANCE = 0.02  # dex: how far stars of one frame scatter about their common width
SIGMA_TO_FWHM = 2 * np.sqrt(2 * np.log(2))
PROFILE_MISMATCH = 0.03  # a real PSF departs from a Gaussian by about this fraction of its peak
MAX_MISFIT = 3.0  # residual rms, in units of noise and that mismatch, beyond which a peak is not a point


class FWHMWarning(UserWarning):
    """The FWHM estimate is uncertain: few stars agree, or another group of widths is as
    common, or narrower."""


def _fit_gaussian_plane(stamp, sigma0):
    """Least-squares fit of a circular Gaussian on a plane (the local background: a
    galaxy's light under a star) to a ``(2r+1)^2`` stamp centred on a peak.

    Returns ``(amplitude, dx, dy, sigma, log_sigma_error, residual_rms)``, or None when
    the fit fails or wanders off the peak.
    """
    from scipy.optimize import least_squares

    r = stamp.shape[0] // 2
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    xx, yy, z = xx.ravel(), yy.ravel(), stamp.ravel().astype(np.float64)

    def parts(p):
        amp, x0, y0, t = p[:4]
        s2 = np.exp(2 * t)
        r2 = (xx - x0) ** 2 + (yy - y0) ** 2
        return amp, x0, y0, s2, r2, np.exp(-r2 / (2 * s2))

    def resid(p):
        amp, _, _, _, _, g = parts(p)
        return amp * g + p[4] + p[5] * xx + p[6] * yy - z

    def jac(p):
        amp, x0, y0, s2, r2, g = parts(p)
        return np.column_stack([g, amp * g * (xx - x0) / s2, amp * g * (yy - y0) / s2, amp * g * r2 / s2,
                                np.ones_like(xx), xx, yy])

    edge = np.median(np.concatenate([stamp[0], stamp[-1], stamp[:, 0], stamp[:, -1]]))
    p0 = [float(stamp[r, r] - edge), 0.0, 0.0, np.log(sigma0), float(edge), 0.0, 0.0]
    try:
        with np.errstate(all="ignore"):
            fit = least_squares(resid, p0, jac=jac, method="lm", max_nfev=200)
    except (ValueError, np.linalg.LinAlgError):
        return None
    amp, x0, y0, t = fit.x[:4]
    if not (fit.success and amp > 0 and abs(x0) < 1.5 and abs(y0) < 1.5 and np.all(np.isfinite(fit.x))):
        return None
    dof = max(z.size - 7, 1)
    var = float(fit.fun @ fit.fun) / dof
    try:
        cov = np.linalg.inv(fit.jac.T @ fit.jac) * var
    except np.linalg.LinAlgError:
        return None
    err = np.sqrt(cov[3, 3]) if cov[3, 3] > 0 else np.inf
    return float(amp), float(x0), float(y0), float(np.exp(t)), float(err), float(np.sqrt(var))


def _without_pixel(fitted):
    """The FWHM before pixel sampling of a peak whose Gaussian fit is ``fitted`` px wide."""
    return float(np.sqrt(max(fitted, MIN_FITTED_FWHM) ** 2 - PIXEL_VARIANCE))


def _locus_density(grid, logw, tol):
    """At each of ``grid`` (log10 widths), how many objects' widths agree with it: the sum
    of each object's Gaussian of its own tolerance, each peaking at <= 1."""
    return np.sum(LOCUS_TOLERANCE / tol * np.exp(-0.5 * ((grid[:, None] - logw[None, :]) / tol) ** 2), axis=1)


def stellar_locus(widths, errors, min_members=3):
    """The stars' common width among ``widths`` (fitted FWHMs, px) with their ``errors``
    (dex).

    Each width is spread over its own error plus the stars' scatter (`LOCUS_TOLERANCE`)
    and the spreads are summed: one size shared by objects of every flux makes a sharp
    peak, while extended objects (broader than the PSF, each by its own amount) and cosmic
    rays spread thin. Of the peaks at least half as high as the highest (or as high as five
    agreeing widths make it), the narrowest with ``min_members`` members is the stars'
    (nothing real is narrower than the PSF, and galaxies can outnumber stars), else the
    highest.

    Returns ``(fwhm, n_stars, rival)``: the members' inverse-variance mean width, their
    number, and the width of another peak at least a quarter as high that is higher than
    the chosen one or narrower (None when there is none: the locus is unambiguous).

    Examples
    --------
    >>> import numpy as np
    >>> stars = [2.47, 2.5, 2.52, 2.49, 2.51, 2.5]                 # six stars, one width
    >>> knots = [2.8, 3.1, 3.3, 3.7, 4.0, 4.6, 5.2, 6.1, 7.5, 9.0]  # broader knots, each its own
    >>> fwhm, n, rival = stellar_locus(stars + knots, np.full(16, 0.01))
    >>> round(fwhm, 2), n, rival
    (2.5, 6, None)
    >>> galaxies = [4.0, 4.1, 3.9, 4.05, 4.0, 3.95, 4.02]           # more galaxies of one size
    >>> fwhm, n, rival = stellar_locus(stars[:4] + galaxies, np.full(11, 0.01))
    >>> round(fwhm, 1), n, round(rival, 1)                         # the stars, and the doubt
    (2.5, 4, 4.0)
    >>> fwhm, n, rival = stellar_locus(stars[:2] + galaxies, np.full(9, 0.01))
    >>> round(fwhm, 1), n, round(rival, 1)                         # too few to tell: said
    (4.0, 7, 2.5)
    """
    logw = np.log10(np.asarray(widths, dtype=np.float64))
    tol = np.hypot(np.asarray(errors, dtype=np.float64), LOCUS_TOLERANCE)
    grid = np.arange(logw.min() - 0.1, logw.max() + 0.1, LOCUS_TOLERANCE / 4)
    density = _locus_density(grid, logw, tol)
    is_max = np.r_[False, (density[1:-1] >= density[:-2]) & (density[1:-1] > density[2:]), False]
    high = np.nonzero(is_max & (density >= 0.25 * density.max()))[0]
    peaks = []  # distinct high peaks, highest first: (log width, members, height)
    for i in high[np.argsort(-density[high])]:
        if all(abs(grid[i] - p[0]) > 4 * LOCUS_TOLERANCE for p in peaks):
            centre, members = grid[i], np.abs(logw - grid[i]) < 2 * tol
            for _ in range(3):  # the members' inverse-variance mean, refined
                if not members.any():
                    break
                centre = float(np.sum(logw[members] / tol[members] ** 2) / np.sum(1 / tol[members] ** 2))
                members = np.abs(logw - centre) < 2 * tol
            if members.any():
                peaks.append((centre, members, density[i]))
    top = peaks[0][2]
    rich = [k for k, (_, m, d) in enumerate(peaks) if m.sum() >= min_members and d >= min(top / 2, 5)]
    best = min(rich, key=lambda k: peaks[k][0]) if rich else 0
    centre, members, height = peaks[best]
    others = [c for k, (c, _, d) in enumerate(peaks) if k != best and (d > height or c < centre)]
    rival = float(10 ** others[0]) if others else None
    return float(10 ** centre), int(members.sum()), rival


def estimate_fwhm(data, background, max_stars=150, region=2048, notes=None):
    """FWHM in pixels from the stellar locus of bright, unsaturated peaks.

    Uses the central ``region`` x ``region`` pixels. Each peak is fitted with a Gaussian on
    a local plane (a galaxy's light under a star would widen a fit without one); peaks
    sharper than any sampled PSF (cosmic rays, hot pixels) or that a Gaussian does not fit
    (cosmic-ray tracks, blends) are dropped, and the stars' width is the narrowest that many
    peaks share within their errors (`stellar_locus`): galaxies, their knots and HII regions
    are broader, each by its own amount. Broad PSFs are refitted in a
    box of about 2.5 FWHM. The pixel's own width is taken out (the value is the PSF's FWHM
    before pixel sampling, as `~glue_astrodl.core.psf.psf_kernel` expects).

    Warns (`FWHMWarning`, its message also appended to the list ``notes`` when given) when
    fewer than 5 stars agree or another group of widths is as common, or narrower and
    half as common; raises `BadInputError` when fewer than 2 agree.

    Examples
    --------
    >>> from glue_astrodl.core.normalise import estimate_background
    >>> from glue_astrodl.sim import simulate_point_sources
    >>> frame = simulate_point_sources((96, 96), snr=(100,), n_per_snr=6, fwhm=3.0, seed=1, renderer="native")
    >>> round(estimate_fwhm(frame.image, estimate_background(frame.image)), 1)
    3.0
    """
    height, width = data.shape
    y0, x0 = max(0, (height - region) // 2), max(0, (width - region) // 2)
    cut = np.asarray(data[y0:y0 + region, x0:x0 + region], dtype=np.float32)
    bkg, rms = background.window(y0, y0 + cut.shape[0], x0, x0 + cut.shape[1])
    sub = np.where(np.isfinite(cut), cut - bkg, 0.0)
    smooth = gaussian_filter(sub, 1.0)
    peaks = (smooth == maximum_filter(smooth, size=11)) & (smooth > 20 * rms / 2.0)
    top = np.nanmax(cut)
    if np.count_nonzero(cut >= top) >= 3:  # flat-topped: the frame saturates at ``top``
        peaks &= maximum_filter(np.nan_to_num(cut), size=3) < 0.95 * top  # skip saturated cores
    edge = 8
    ys, xs = np.nonzero(peaks[edge:-edge, edge:-edge])
    if ys.size < 2:
        raise BadInputError("cannot estimate the PSF FWHM (too few bright stars); give it with fwhm=/--fwhm")
    order = np.argsort(smooth[ys + edge, xs + edge])[::-1][:max_stars]
    ys, xs = ys[order] + edge, xs[order] + edge
    fwhm, half = 3.0, 5
    for _ in range(3):
        inside = (ys >= half) & (ys < sub.shape[0] - half) & (xs >= half) & (xs < sub.shape[1] - half)
        fits = [(f, rms[y, x]) for y, x in zip(ys[inside], xs[inside])
                if (f := _fit_gaussian_plane(sub[y - half:y + half + 1, x - half:x + half + 1],
                                             fwhm / SIGMA_TO_FWHM)) is not None]
        amp, _, _, sigma, err, resid = np.array([f for f, _ in fits]).reshape(-1, 6).T
        noise = np.array([n for _, n in fits])
        widths, errors = SIGMA_TO_FWHM * sigma, err / np.log(10)
        # a blurred point fits a Gaussian to within its noise and a few per cent of its peak;
        # cosmic rays (sharp-edged), blends and lumpy knots do not
        point_like = resid < MAX_MISFIT * np.hypot(noise, PROFILE_MISMATCH * amp)
        ok = (widths >= MIN_FITTED_FWHM) & (widths < 30) & np.isfinite(errors) & point_like
        if ok.sum() < 2:
            raise BadInputError("cannot estimate the PSF FWHM (too few star-like peaks); give it with fwhm=/--fwhm")
        fitted, n_stars, rival = stellar_locus(widths[ok], errors[ok])
        fwhm = _without_pixel(fitted)
        if (wider := max(5, int(1.25 * fitted + 0.5))) <= half:
            break
        half = wider
    if n_stars < 2:
        raise BadInputError(f"cannot estimate the PSF FWHM (no two peaks share a width; best guess {fwhm:.2f} px); "
                            "give it with fwhm=/--fwhm")
    doubt = (f"PSF FWHM {fwhm:.2f} px from only {n_stars} stars" if n_stars < 5 else
             f"PSF FWHM {fwhm:.2f} px is uncertain: many peaks are {_without_pixel(rival):.2f} px wide" if rival
             else None)
    if doubt:
        doubt += "; give it with fwhm=/--fwhm if wrong"
        warnings.warn(doubt, FWHMWarning, stacklevel=2)
        if notes is not None:
            notes.append(doubt)
    return fwhm
