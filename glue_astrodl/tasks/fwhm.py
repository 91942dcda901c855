"""Estimate the PSF FWHM of an image from its brightest compact sources."""

import warnings

import numpy as np
from scipy.ndimage import gaussian_filter, maximum_filter

from ..core.errors import BadInputError

__all__ = ["estimate_fwhm"]


def estimate_fwhm(data, background, max_stars=40, region=2048):
    """FWHM in pixels from Gaussian fits to bright, isolated, unsaturated peaks.

    Uses the central ``region`` x ``region`` pixels; galaxies are broader than stars, so the
    30th percentile of the fitted widths is returned.
    """
    from photutils.psf import fit_fwhm

    height, width = data.shape
    y0, x0 = max(0, (height - region) // 2), max(0, (width - region) // 2)
    cut = np.asarray(data[y0:y0 + region, x0:x0 + region], dtype=np.float32)
    bkg, rms = background.window(y0, y0 + cut.shape[0], x0, x0 + cut.shape[1])
    sub = np.where(np.isfinite(cut), cut - bkg, 0.0)
    smooth = gaussian_filter(sub, 1.0)
    peaks = (smooth == maximum_filter(smooth, size=15)) & (smooth > 20 * rms / 2.0)
    peaks &= sub < 0.5 * np.nanmax(sub)  # avoid saturated cores
    ys, xs = np.nonzero(peaks[8:-8, 8:-8])
    if ys.size < 3:
        raise BadInputError("cannot estimate the PSF FWHM (too few bright stars); give it with fwhm=/--fwhm")
    order = np.argsort(smooth[ys + 8, xs + 8])[::-1][:max_stars]
    xy = np.column_stack([xs[order] + 8, ys[order] + 8])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fwhm = fit_fwhm(sub, xypos=xy, fit_shape=11, fwhm=3.0)
    fwhm = fwhm[np.isfinite(fwhm) & (fwhm > 0.5) & (fwhm < 30)]
    if fwhm.size < 3:
        raise BadInputError("cannot estimate the PSF FWHM (fits failed); give it with fwhm=/--fwhm")
    return float(np.percentile(fwhm, 30))
