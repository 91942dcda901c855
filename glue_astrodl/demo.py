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
