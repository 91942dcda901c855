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

__all__ = ["estimate_fwhm", "image_psf", "flux_unit"]


def image_psf(img, fwhm, psf, profile, beta, background):
    """``(kernel, fwhm)``: the centred unit-sum PSF of ``img`` (an `ImageData`) and its FWHM in
    pixels: the given ``psf`` array or ``fwhm``, else the header's (``FWHM``, ``PSF_FWHM``,
    ``SEEING`` with a WCS), else one measured on the image (``background()`` gives the
    `BackgroundMesh` that needs).

    Examples
    --------
    >>> from glue_astrodl.io.fits import ImageData
    >>> from glue_astrodl.core.normalise import estimate_background
    >>> from glue_astrodl.sim import simulate_point_sources
    >>> frame = simulate_point_sources((96, 96), snr=(100,), n_per_snr=4, fwhm=3.0, seed=1, renderer="native")
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
        fwhm = fwhm_from_header(img.header, img.wcs) or estimate_fwhm(img.data, background())
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


# A pixel-integrated point source fits a Gaussian of FWHM >= sqrt(f^2 + 8 ln2 / 12) px, so
# even a 0.6 px PSF fits wider than this; narrower peaks are cosmic rays or hot pixels.
MIN_STELLAR_FWHM = 0.9


def _stellar_width(widths, tolerance=0.1):
    """Median width of the largest group of widths agreeing within ``tolerance`` dex.

    Stars share one FWHM; cosmic-ray tracks and galaxies scatter around it (raw frames
    often hold more cosmic rays than bright stars, so a percentile would pick them).
    """
    logw = np.log10(np.sort(widths))
    members = np.abs(logw[:, None] - logw[None, :]) < tolerance
    best = int(np.argmax(members.sum(axis=1)))  # the first (narrowest) of the largest groups
    return float(10 ** np.median(logw[members[best]]))


def estimate_fwhm(data, background, max_stars=40, region=2048):
    """FWHM in pixels from Gaussian fits to bright, isolated, unsaturated peaks.

    Uses the central ``region`` x ``region`` pixels. Peaks sharper than any sampled PSF
    (cosmic rays, hot pixels) are dropped and the stellar width is the largest group of
    agreeing widths (galaxies are broader, cosmic-ray tracks scatter); broad PSFs are
    refitted in a box of about 2.5 FWHM.

    Examples
    --------
    >>> from glue_astrodl.core.normalise import estimate_background
    >>> from glue_astrodl.sim import simulate_point_sources
    >>> frame = simulate_point_sources((96, 96), snr=(100,), n_per_snr=4, fwhm=3.0, seed=1, renderer="native")
    >>> round(estimate_fwhm(frame.image, estimate_background(frame.image)), 1)
    3.0
    """
    from photutils.psf import fit_fwhm

    height, width = data.shape
    y0, x0 = max(0, (height - region) // 2), max(0, (width - region) // 2)
    cut = np.asarray(data[y0:y0 + region, x0:x0 + region], dtype=np.float32)
    bkg, rms = background.window(y0, y0 + cut.shape[0], x0, x0 + cut.shape[1])
    sub = np.where(np.isfinite(cut), cut - bkg, 0.0)
    smooth = gaussian_filter(sub, 1.0)
    peaks = (smooth == maximum_filter(smooth, size=15)) & (smooth > 20 * rms / 2.0)
    top = np.nanmax(cut)
    if np.count_nonzero(cut >= top) >= 3:  # flat-topped: the frame saturates at ``top``
        peaks &= maximum_filter(np.nan_to_num(cut), size=3) < 0.95 * top  # skip saturated cores
    ys, xs = np.nonzero(peaks[8:-8, 8:-8])
    if ys.size < 3:
        raise BadInputError("cannot estimate the PSF FWHM (too few bright stars); give it with fwhm=/--fwhm")
    order = np.argsort(smooth[ys + 8, xs + 8])[::-1][:max_stars]
    xy = np.column_stack([xs[order] + 8, ys[order] + 8])
    fwhm, box = 3.0, 11
    for _ in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            widths = fit_fwhm(sub, xypos=xy, fit_shape=box, fwhm=fwhm)
        widths = widths[np.isfinite(widths) & (widths >= MIN_STELLAR_FWHM) & (widths < 30)]
        if widths.size < 2:
            raise BadInputError("cannot estimate the PSF FWHM (too few star-like peaks); give it with fwhm=/--fwhm")
        fwhm = _stellar_width(widths)
        if (wider := int(2.5 * fwhm) | 1) <= box:
            break
        box = wider
    return fwhm
