"""``astrodl demo``: simulate frames and run every registered task on them.

Two frames are simulated: a reduced sky frame (PSF-convolved stars and Sérsic galaxies, with
its truth catalogue) and a raw frame with detector defects and artefacts (with its truth
masks). Each task runs on the frame it declares (`Task.demo_input`; catalogue tasks take the
truth catalogue) and writes its products as the file job does: FITS (each product kind) or
the catalogue with its new columns, a region file, a quick-look PNG where the result draws
one, and what it found against the simulation's truth where the result can tell.
"""

from pathlib import Path

__all__ = ["run_demo"]


def _frames(outdir, size, seed):
    """``{"sky": (path, frame), "raw": (path, frame)}`` and the simulated catalogue's path."""
    from astropy.io import fits

    from .sim import simulate_contaminant_frame, simulate_frame

    scale = (size / 1024) ** 2
    sky = simulate_frame((size, size), n_stars=int(300 * scale), n_galaxies=int(150 * scale), seed=seed)
    sky.write(outdir / "demo_frame.fits")
    catalogue = outdir / "demo_catalogue.ecsv"
    sky.truth.write(catalogue, overwrite=True)
    raw = simulate_contaminant_frame((size, size), seed=seed)
    fits.PrimaryHDU(raw.image, raw.header).writeto(outdir / "demo_raw_frame.fits", overwrite=True)
    return {"sky": (outdir / "demo_frame.fits", sky), "raw": (outdir / "demo_raw_frame.fits", raw)}, catalogue


def _products(task, result, outdir):
    """Write the result as a file job would; yield the paths."""
    stem = outdir / f"demo_{task.name}"
    if result.table_kind == "columns":
        yield result.write(stem.with_suffix(".ecsv"))
        return
    kinds = task.products if len(task.products) > 1 else (None,)
    for kind in kinds:
        yield result.to_fits(Path(f"{stem}_{kind}.fits") if kind else stem.with_suffix(".fits"), kind)


def run_demo(outdir, size=1024, seed=1, progress=True):
    """Write the simulated frames and every task's products to ``outdir``; yield one line each."""
    from .io.regions import write_regions
    from .tasks.contaminant_classes import MAXIMASK
    from .tasks.registry import tasks

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    frames, catalogue = _frames(outdir, size, seed)
    sky, raw = frames["sky"][1], frames["raw"][1]
    yield (f"{frames['sky'][0]}: simulated {size}x{size} sky frame, {len(sky.truth)} objects, "
           f"FWHM {sky.header['FWHM']:.2f} px (truth catalogue {catalogue})")
    present = [c for c, m in zip(MAXIMASK.classes, raw.masks) if m.any() and c != MAXIMASK.background]
    yield f"{frames['raw'][0]}: simulated raw frame with {', '.join(present)}"
    for task in tasks():
        path, frame = frames[task.demo_input]
        inputs = (path, catalogue) if task.needs_catalogue else (path,)
        result = task.run(*inputs, progress=progress)
        for product in _products(task, result, outdir):
            yield f"{product}: {task.label}"
        yield f"{task.label}: {result.summary()}"
        if hasattr(result, "truth_report"):
            yield f"{task.label}: {result.truth_report(frame)} (against the simulation's truth)"
        regions = outdir / f"demo_{task.name}.reg"
        write_regions(result.to_regions(), regions, wcs=result.wcs)
        yield f"{regions}: {task.label} regions"
        if hasattr(result, "quicklook"):
            yield f"{result.quicklook(outdir / f'demo_{task.name}.png', frame.image, frame)}: quick look"
