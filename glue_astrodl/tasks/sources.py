"""Matched-filter source detection.

`detect_sources` computes, for a known PSF, the optimal linear filter of the image in
background-dominated noise (see `glue_astrodl.models.matched_filter`): a significance map
(unit Gaussian where there is no source, after rescaling by the empirical null width), a
per-pixel source probability map (two-group model, see `glue_astrodl.core.significance`),
and a table of sources at significance peaks above ``threshold`` with their PSF fluxes.
"""

from dataclasses import dataclass, field

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table
from scipy.ndimage import maximum_filter

from ..core.normalise import MaskedRows, estimate_background
from ..core.significance import fit_source_posterior, null_scale, sample_finite
from ..io.regions import MIN_REGION_AREA
from .fwhm import flux_unit, image_psf
from .inputs import as_image
from .masks import resolve_mask
from .registry import IMAGE, Param, Task, fraction, positive, register_task
from .results import IMAGE as IMAGE_LAYER
from .results import PROBABILITY, Layer, Result, SubsetSpec

__all__ = ["detect_sources", "SourceDetection", "TASK"]

#: Flag bit of the ``flag`` column: masked pixels (``mask=``) within one FWHM of the source.
FLAG_MASKED = 1


@dataclass
class SourceDetection(Result):
    """Result of `detect_sources`: maps on the input grid and the source table (new rows).

    Examples
    --------
    >>> from glue_astrodl import detect_sources
    >>> from glue_astrodl.sim import simulate_point_sources
    >>> frame = simulate_point_sources((128, 128), snr=(20,), n_per_snr=4, fwhm=2.5, seed=1)
    >>> res = detect_sources(frame.image, frame.header)
    >>> len(res.table), res.table.colnames[:3]
    (4, ['id', 'x', 'y'])
    >>> res.summary()  # doctest: +ELLIPSIS
    '4 sources at S/N >= 5 (FWHM 2.5... px)'
    """

    significance: np.ndarray  # (H, W) float32, S/N of a point source centred on each pixel
    probability: np.ndarray  # (H, W) float32, P(pixel holds source signal | significance)
    table: Table
    header: fits.Header
    wcs: object = None
    psf: np.ndarray = None
    fwhm: float = None
    meta: dict = field(default_factory=dict)
    table_kind = "rows"
    subset_threshold = 0.5

    def layers(self):
        return [Layer("significance", self.significance, IMAGE_LAYER, description="S/N of a point source here"),
                Layer("P(source)", self.probability, PROBABILITY, description="P(pixel holds source signal)")]

    def subsets(self):
        return [SubsetSpec(f"P(source) >= {self.subset_threshold:g}", self.probability >= self.subset_threshold)]

    def summary(self):
        masked = f", {int((self.table['flag'] & FLAG_MASKED > 0).sum())} near masked pixels" if "flag" in \
            self.table.colnames and self.meta.get("n_masked") else ""
        note = "".join(f"; {self.meta[k]}" for k in ("fwhm_note", "wcs_note") if self.meta.get(k))
        return (f"{len(self.table)} sources at S/N >= {self.meta['threshold']:g} (FWHM {self.fwhm:.2f} px)"
                f"{masked}{note}")

    def truth_report(self, frame, min_snr=10):
        """One line: the fraction of ``frame``'s true objects with S/N >= ``min_snr`` that
        have a detection within one FWHM."""
        from scipy.spatial import cKDTree

        truth = frame.truth[frame.truth["snr"] >= min_snr]
        found = 0.0
        if len(self.table) and len(truth):
            d, _ = cKDTree(np.c_[self.table["x"], self.table["y"]]).query(np.c_[truth["x"], truth["y"]])
            found = float(np.mean(d <= self.fwhm))
        return f"{found:.0%} of true objects with S/N >= {min_snr} recovered"

    def quicklook(self, path, image, frame=None):
        """PNG: the image with the detections circled (and true objects dotted) beside P(source)."""
        from ..io.quicklook import quicklook_sources

        return quicklook_sources(path, image, self, truth=getattr(frame, "truth", None))

    def to_hdus(self, product=None):
        """Probability cube (class SOURCE) + SIGNIFICANCE image + SOURCES table."""
        from ..io.fits import probability_hdu, product_header

        sig_hdr = product_header(self.header, self.wcs, EXTNAME="SIGNIFICANCE", BUNIT="")
        table = fits.table_to_hdu(self._fits_table())
        table.name = "SOURCES"
        return [probability_hdu(self.probability, ["SOURCE"], self.header, self.wcs, priors={"SOURCE": self.meta["prior"]}),
                fits.ImageHDU(self.significance, sig_hdr, name="SIGNIFICANCE"), table]

    def to_fits(self, path, product=None, overwrite=True):
        """`to_hdus` written to ``path`` atomically."""
        from ..io.fits import write_hdus

        return write_hdus(path, self.to_hdus(), overwrite)

    def _fits_table(self):
        table = self.table.copy(copy_data=False)
        table.meta = {k.upper()[:8]: v for k, v in self.meta.items() if np.isscalar(v)}
        return table

    def to_regions(self, kind="sources", threshold=0.5, min_pixels=1, min_area=MIN_REGION_AREA):
        """``regions.Regions``: circles of radius FWHM at sources, or probability contours
        (of at least ``min_pixels`` pixels and ``min_area`` pixels²)."""
        if kind == "probability":
            from ..io.regions import probability_regions

            return probability_regions(self.probability, threshold, wcs=self.wcs, label="SOURCE", min_pixels=min_pixels,
                                       min_area=min_area)
        if kind != "sources":
            raise ValueError(f"kind must be 'sources' or 'probability', got {kind!r}")
        from regions import CirclePixelRegion, PixCoord, Regions

        xy = PixCoord(np.asarray(self.table["x"]), np.asarray(self.table["y"]))
        regs = [CirclePixelRegion(PixCoord(x, y), self.fwhm) for x, y in zip(xy.x, xy.y)]
        if self.wcs is not None:
            regs = [r.to_sky(self.wcs) for r in regs]
        return Regions(regs)


def _peaks(sig, threshold, size):
    """Local maxima of ``sig`` above ``threshold`` in a ``size`` window, excluding edges."""
    filled = np.where(np.isfinite(sig), sig, -np.inf)
    is_peak = (filled >= threshold) & (filled == maximum_filter(filled, size=size, mode="nearest"))
    ys, xs = np.nonzero(is_peak)
    return ys, xs


def _blank_missing(data, sig, band=512):
    """Set outputs to NaN where the input pixel is NaN/inf (read in bands: memmap-friendly).

    Masked pixels keep their value: the matched filter there is the S/N of a source
    centred on them measured from the unmasked pixels around, so a star with a flagged
    pixel keeps one peak instead of a ring of them.
    """
    for y in range(0, data.shape[0], band):
        rows = np.asarray(data[y:y + band])
        if not np.issubdtype(rows.dtype, np.integer):
            sig[y:y + band][~np.isfinite(rows)] = np.nan


def _near_mask(flags, x, y, radius):
    """int16 per source: 1 where a flagged pixel lies within ``radius`` px of ``(x, y)``."""
    out = np.zeros(len(x), np.int16)
    if flags is None or not len(x):
        return out
    from scipy.spatial import cKDTree

    fy, fx = np.nonzero(flags)
    if fy.size:
        d, _ = cKDTree(np.c_[fx, fy]).query(np.c_[x, y])
        out[d <= radius] = 1
    return out


def _refine(sig, ys, xs):
    """Sub-pixel peak position and peak value from parabolas through 3 samples per axis.

    The parabola is fitted to ``log(sig)`` where the samples are positive: the
    matched-filter response of a Gaussian-like PSF is Gaussian-like, so this is nearly
    exact and recovers the S/N lost when a source sits off a pixel centre.
    """
    height, width = sig.shape
    mid = sig[ys, xs].astype(np.float64)
    yl, yh = np.clip(ys - 1, 0, height - 1), np.clip(ys + 1, 0, height - 1)
    xl, xh = np.clip(xs - 1, 0, width - 1), np.clip(xs + 1, 0, width - 1)
    lo_hi = [sig[yl, xs], sig[yh, xs], sig[ys, xl], sig[ys, xh]]
    positive = (mid > 0) & np.all([v > 0 for v in lo_hi], axis=0)
    f = lambda v: np.where(positive, np.log(np.where(positive, v, 1.0)), v).astype(np.float64)  # noqa: E731
    centre = f(mid)
    shifts, gains = [], []
    for lo, hi in (lo_hi[:2], lo_hi[2:]):
        a, c = f(lo), f(hi)
        curvature = a - 2 * centre + c
        ok = curvature < 0
        safe = np.where(ok, curvature, -1.0)
        shifts.append(np.where(ok, np.clip(0.5 * (a - c) / safe, -0.5, 0.5), 0.0))
        gains.append(np.where(ok, -0.125 * (a - c) ** 2 / safe, 0.0))  # parabola top - centre
    top = centre + gains[0] + gains[1]
    peak = np.where(positive, np.exp(top), top)
    return xs + shifts[1], ys + shifts[0], peak


def detect_sources(image, header=None, wcs=None, *, fwhm=None, psf=None, profile="gaussian",
                   beta=2.5, threshold=5.0, prior=None, box=64, hdu=None, plane=None,
                   device=None, tile=1024, mask=None, progress=False, callback=None):
    """Detect sources with the matched filter of a known PSF.

    Parameters
    ----------
    image : str, Path, array, HDU or NDData
        The image (a path is read with `glue_astrodl.io.fits.read_image`).
    header, wcs : optional
        FITS header / WCS when ``image`` is a bare array.
    fwhm : float, optional
        PSF full width at half maximum in pixels. Default: from the header (``FWHM``,
        ``PSF_FWHM``, or ``SEEING`` in arcsec with a WCS), else estimated from the image.
    psf : 2-D array, optional
        The PSF itself (odd-sized); overrides ``fwhm``/``profile``.
    profile : {'gaussian', 'moffat'}
        Analytic PSF profile used with ``fwhm``; ``beta`` is the Moffat index.
    threshold : float
        Significance (S/N) threshold for the source table.
    prior : float, optional
        Fraction of pixels that hold source signal; default: measured on the image.
    mask : array, path, result or ``"contaminants"``, optional
        Pixels to ignore (see `glue_astrodl.tasks.masks.resolve_mask`), e.g. cosmic-ray
        hits: they get zero weight in the filter, and sources within one FWHM of one get
        bit 1 of the ``flag`` column.

    Returns
    -------
    SourceDetection

    Examples
    --------
    >>> from glue_astrodl.sim import simulate_point_sources
    >>> frame = simulate_point_sources((128, 128), snr=(30,), n_per_snr=3, fwhm=2.5, seed=2)
    >>> res = detect_sources(frame.image, frame.header, threshold=10)
    >>> len(res.table), round(res.fwhm, 2)
    (3, 2.5)
    >>> res.table["ra"].unit, res.table["flux"].unit
    (Unit("deg"), Unit("adu"))
    """
    # torch is imported here, not with the module, so that viewers start without it
    from ..core.tiling import tiled_inference
    from ..models.matched_filter import MatchedFilter

    img = as_image(image, header, wcs, hdu=hdu, plane=plane)
    flags = resolve_mask(img, mask, device=device)
    mesh = estimate_background(img.data if flags is None else MaskedRows(img.data, flags), box=box)
    fwhm_notes = []  # the FWHM estimate's doubts, for the summary
    kernel, fwhm = image_psf(img, fwhm, psf, profile, beta, lambda: mesh, notes=fwhm_notes)

    def weighted(tile, window):
        bkg, rms = mesh.window(*window)
        w = 1.0 / rms**2
        d = tile[0] - bkg
        ok = np.isfinite(d) if flags is None else np.isfinite(d) & ~flags[window[0]:window[1], window[2]:window[3]]
        return np.stack([np.where(ok, d * w, 0.0), np.where(ok, w, 0.0)]).astype(np.float32)

    model = MatchedFilter(kernel)
    out = tiled_inference(model, img.data, tile=max(tile, 4 * model.radius), overlap=model.radius,
                          device=device, preprocess=weighted, progress=progress,
                          desc="matched filter", callback=callback)
    num, den = out[0], out[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        np.sqrt(den, out=den)
        sig = np.divide(num, den, out=num)  # in place: num becomes the significance
        sig[den == 0] = np.nan
    _blank_missing(img.data, sig)
    scale = null_scale(sample_finite(sig))
    sig /= scale
    posterior = fit_source_posterior(sample_finite(sig), prior=prior)
    posterior.scale = scale
    prob = posterior(sig)

    size = 2 * max(1, int(round(fwhm / 2))) + 1
    ys, xs = _peaks(sig, 0.9 * threshold, size)  # the refined peak S/N is what is thresholded
    x, y, snr = _refine(sig, ys, xs)
    keep = snr >= threshold
    ys, xs, x, y, snr = ys[keep], xs[keep], x[keep], y[keep], snr[keep]
    order = np.argsort(snr)[::-1]
    ys, xs, x, y, snr = ys[order], xs[order], x[order], y[order], snr[order]
    sigma_flux = scale / den[ys, xs]  # den holds sqrt(sum phi^2 / sigma^2)
    flux = snr * sigma_flux
    unit = flux_unit(img.header)
    table = Table()
    table["id"] = np.arange(1, len(x) + 1)
    table["x"], table["y"] = x.astype(np.float64), y.astype(np.float64)
    if img.wcs is not None:
        sky = img.wcs.pixel_to_world(x, y)
        table["ra"] = sky.icrs.ra.to(u.deg) if len(x) else [] * u.deg
        table["dec"] = sky.icrs.dec.to(u.deg) if len(x) else [] * u.deg
    table["snr"] = snr.astype(np.float64)
    table["flux"] = flux.astype(np.float64)
    table["flux_err"] = sigma_flux.astype(np.float64)
    table["prob"] = prob[ys, xs].astype(np.float64)
    table["flag"] = _near_mask(flags, x, y, fwhm) * FLAG_MASKED
    if unit is not None:
        table["flux"].unit = table["flux_err"].unit = unit
    table["x"].unit = table["y"].unit = u.pix
    meta = dict(fwhm=float(fwhm), threshold=float(threshold), null_scale=scale,
                prior=float(posterior.prior), pi0=float(posterior.pi0), n_missing=mesh.n_missing,
                n_masked=int(flags.sum()) if flags is not None else 0,
                background=float(np.median(mesh.background)), noise=mesh.global_rms,
                fwhm_note="; ".join(fwhm_notes), wcs_note=img.wcs_problem or "", source=img.name)
    table.meta.update(meta)
    return SourceDetection(sig, prob, table, img.header, img.wcs, kernel, float(fwhm), meta)


TASK = register_task(Task(
    name="sources",
    label="Detect Sources",
    kind=IMAGE,
    run=detect_sources,
    description="Matched-filter source detection: significance and probability maps and a source table.",
    params=(
        Param("fwhm", float, None, "PSF FWHM in pixels (default: header, else estimated)", validate=positive,
              label="PSF FWHM (pixels)"),
        Param("profile", str, "gaussian", "PSF profile", choices=("gaussian", "moffat"), label="PSF profile"),
        Param("threshold", float, 5.0, "S/N threshold for the source table", validate=positive,
              label="Threshold (S/N)"),
        Param("prior", float, None, "fraction of pixels holding sources (default: measured)",
              validate=fraction, label="Source prior"),
    ),
    takes_mask=True,
))
