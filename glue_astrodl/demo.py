"""``astrodl demo``: simulate a realistic frame and run every capability on it."""

from pathlib import Path

import numpy as np

__all__ = ["run_demo"]


def _match(table, truth, radius):
    """Fraction of true objects with a detection within ``radius`` pixels."""
    from scipy.spatial import cKDTree

    if len(table) == 0:
        return 0.0
    d, _ = cKDTree(np.c_[table["x"], table["y"]]).query(np.c_[truth["x"], truth["y"]])
    return float(np.mean(d <= radius))


def run_demo(outdir, size=1024, seed=1, progress=True):
    """Write the simulated frame and all products to ``outdir``; yield one line per product."""
    from .io.quicklook import quicklook_sources
    from .io.regions import write_regions
    from .sim import simulate_frame
    from .tasks.sources import detect_sources

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    scale = (size / 1024) ** 2
    frame = simulate_frame((size, size), n_stars=int(300 * scale), n_galaxies=int(150 * scale), seed=seed)
    frame_path = outdir / "demo_frame.fits"
    frame.write(frame_path)
    yield f"{frame_path}: simulated {size}x{size} frame, {len(frame.truth)} objects, FWHM {frame.header['FWHM']:.2f} px"

    result = detect_sources(frame_path, progress=progress)
    products = outdir / "demo_sources.fits"
    result.to_fits(products)
    bright = frame.truth[frame.truth["snr"] >= 10]
    yield (f"{products}: {len(result.table)} sources at S/N >= {result.meta['threshold']:g}; "
           f"{_match(result.table, bright, result.fwhm):.0%} of true objects with S/N >= 10 recovered")
    regions = outdir / "demo_sources.reg"
    write_regions(result.to_regions("sources"), regions)
    yield f"{regions}: ds9 circles at the detections"
    contours = outdir / "demo_source_probability.reg"
    write_regions(result.to_regions("probability", threshold=0.9), contours)
    yield f"{contours}: P(source) >= 0.9 contours"
    png = outdir / "demo_quicklook.png"
    quicklook_sources(png, frame.image, result, truth=frame.truth)
    yield f"{png}: quick look"
    yield from _contaminants(outdir, size, seed, progress)


def _contaminants(outdir, size, seed, progress):
    """Raw frame with detector defects and artefacts -> probabilities, masks, regions, PNG."""
    from regions import Regions

    from .core.calibration import roc_auc
    from .tasks.contaminant_classes import CLASSES
    from .io.quicklook import quicklook_contaminants
    from .io.regions import write_regions
    from .sim import simulate_contaminant_frame
    from .tasks.contaminants import detect_contaminants

    raw = simulate_contaminant_frame((size, size), seed=seed)
    raw_path = outdir / "demo_raw_frame.fits"
    from astropy.io import fits

    fits.PrimaryHDU(raw.image, raw.header).writeto(raw_path, overwrite=True)
    present = [c for k, c in enumerate(CLASSES[:-1]) if raw.masks[k].any()]
    yield f"{raw_path}: simulated raw frame with {', '.join(present)}"
    result = detect_contaminants(raw_path, progress=progress)
    for kind in ("proba", "masks", "bitmask"):
        path = result.to_fits(outdir / f"demo_contaminants_{kind}.fits", output=kind)
        yield f"{path}: contaminant {kind}"
    regions = outdir / "demo_contaminants.reg"
    write_regions(Regions([r for c in result.classes if c != "BG" for r in result.to_regions(c)]), regions)
    yield f"{regions}: contours of flagged pixels, tagged by class"
    cr = CLASSES.index("CR")
    auc = roc_auc(raw.masks[cr].ravel(), np.nan_to_num(result.probabilities[cr]).ravel())
    flagged = result.flagged_fractions()
    yield f"cosmic rays: ROC AUC {auc:.4f} against the simulation truth; CR flagged {flagged['CR']:.3%} of pixels"
    png = outdir / "demo_contaminants.png"
    quicklook_contaminants(png, raw.image, result)
    yield f"{png}: quick look, classes coloured"
