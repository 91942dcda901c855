"""The file job: read the inputs, run a task, write its products (atomically).

`task_job` is what the CLI and the Dask batch runner execute, one call per input file, for
every registered task. The main output is written last, so its existence means the job
finished.
"""

from pathlib import Path

from .io.regions import MIN_REGION_AREA

__all__ = ["default_output", "task_job"]

_SUFFIXES = (".fits.fz", ".fits.gz", ".fit.gz", ".fts.gz", ".fits", ".fit", ".fts", ".fz", ".gz", ".ecsv", ".csv")


def default_output(path, tag, suffix=".fits", outdir=None):
    """``<dir>/<stem>_<tag><suffix>`` with FITS, table and compression suffixes removed.

    Examples
    --------
    >>> str(default_output("night/raw.fits.fz", "bitmask"))
    'night/raw_bitmask.fits'
    >>> str(default_output("cat.ecsv", "photometry", ".ecsv"))
    'cat_photometry.ecsv'
    """
    path = Path(path)
    name = path.name
    for ext in _SUFFIXES:
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return Path(outdir or path.parent) / f"{name}_{tag}{suffix}"


def task_job(task_name, input, output, *, product=None, regions=None, region_min_area=MIN_REGION_AREA, catalog=None,
             progress=False, **params):
    """Run task ``task_name`` on the file ``input`` and write ``output``; returns the one-line
    summary.

    ``params`` are the task's own (already typed) parameters, plus ``mask`` for tasks that
    take one. Image tasks write FITS products (``product``: one of the task's products),
    catalogue tasks write ``catalog`` with their new columns (ECSV, CSV or FITS by the
    suffix of ``output``); ``regions`` is a region file to write beside it, without
    polygons under ``region_min_area`` pixels² (`~glue_astrodl.tasks.results.Result.to_regions`).
    A task that streams its products (``Task.write``) writes them tile by tile.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from glue_astrodl.sim import simulate_point_sources
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = simulate_point_sources((96, 96), snr=(20,), n_per_snr=2, fwhm=2.5, seed=1).write(d / "f.fits")
    >>> task_job("sources", d / "f.fits", d / "f_sources.fits", threshold=8.0)
    '2 sources at S/N >= 8 (FWHM 2.50 px)'
    """
    from .tasks.registry import get_task

    task = get_task(task_name)
    if task.write is not None:
        return task.write(input, output, product=product or task.products[0], regions=regions,
                          region_min_area=region_min_area, progress=progress, **params)
    inputs = (input, catalog) if task.needs_catalogue else (input,)
    result = task.run(*inputs, progress=progress, **params)
    if regions:
        from .io.regions import write_regions

        write_regions(result.to_regions(min_area=region_min_area), regions, wcs=result.wcs)
    if result.table_kind == "columns":
        result.write(output)
    else:
        result.to_fits(output, product)
    return result.summary()
