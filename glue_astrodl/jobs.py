"""File-to-file jobs: read an image, run a task, write its products (atomically).

These are what the CLI and the Dask batch runner execute, one call per input file. The
main output is written last, so its existence means the job finished.
"""

from pathlib import Path

import numpy as np

__all__ = ["sources_job", "contaminants_job", "default_output"]

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


def contaminants_job(input, output, regions=None, output_kind="proba", hdu=None, plane=None, progress=False,
                     **kwargs):
    """Contaminant maps for every image HDU of ``input`` (cubes plane by plane), one HDU each.

    ``regions`` writes contour polygons of the flagged pixels of every computed class
    (first image HDU/plane only).
    """
    from astropy.io import fits

    from .io.fits import image_hdu_indices, read_image, write_hdus
    from .io.regions import write_regions
    from .tasks.contaminants import detect_contaminants

    hdus, notes = [], []
    for index in [hdu] if hdu is not None else image_hdu_indices(input):
        img = read_image(input, index)
        planes = [plane] if plane is not None or img.data.ndim == 2 else range(int(np.prod(img.data.shape[:-2])))
        for p in planes:
            result = detect_contaminants(img, plane=p, progress=progress, **kwargs)
            out = result.to_hdu(output_kind)
            out.header["SRCHDU"] = (str(index), "input HDU")
            if p is not None:
                out.header["SRCPLANE"] = (p, "input cube plane")
            out.name = f"{output_kind.upper()}{len(hdus) + 1}"
            hdus.append(out)
            if regions and len(hdus) == 1:
                from regions import Regions

                regs = Regions([r for c in result.classes if c != "BG" for r in result.to_regions(c)])
                write_regions(regs, regions)
            flagged = result.flagged_fractions()
            worst = sorted((f, c) for c, f in flagged.items() if c != "BG")[::-1][:3]
            notes.append(", ".join(f"{c} {f:.2%}" for f, c in worst if f > 0) or "clean")
    write_hdus(output, [fits.PrimaryHDU(header=hdus[0].header), *hdus] if len(hdus) > 1 else hdus)
    return f"{len(hdus)} image(s); flagged: " + "; ".join(notes)
