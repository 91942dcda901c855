"""File-to-file jobs: read an image, run a task, write its products (atomically).

These are what the CLI and the Dask batch runner execute, one call per input file. The
main output is written last, so its existence means the job finished.
"""

from pathlib import Path

__all__ = ["sources_job", "default_output"]

_FITS_SUFFIXES = (".fits.fz", ".fits.gz", ".fit.gz", ".fts.gz", ".fits", ".fit", ".fts", ".fz", ".gz")


def default_output(path, tag, suffix=".fits", outdir=None):
    """``<dir>/<stem>_<tag><suffix>`` with FITS and compression suffixes removed."""
    path = Path(path)
    name = path.name
    for ext in _FITS_SUFFIXES:
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return Path(outdir or path.parent) / f"{name}_{tag}{suffix}"


def sources_job(input, output, regions=None, progress=False, **kwargs):
    """Detect sources in ``input``; write the product FITS to ``output`` (+ regions file)."""
    from .io.regions import write_regions
    from .tasks.sources import detect_sources

    result = detect_sources(input, progress=progress, **kwargs)
    if regions:
        write_regions(result.to_regions("sources"), regions)
    result.to_fits(output)
    note = f"; {result.meta['wcs_note']}" if result.meta["wcs_note"] else ""
    return f"{len(result.table)} sources (FWHM {result.fwhm:.2f} px){note}"
