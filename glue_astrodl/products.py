"""Viewer-neutral product code shared by the glue and jdaviz front ends.

Images held by a viewer (glue ``Data``) become task input (`image_input`), catalogues held by
a viewer become astropy tables (`data_table`), and a `Result`'s layers become FITS HDUs that
carry the input header and WCS (`layer_hdus`, what jdaviz's loaders and glue's data factory
take). Errors reach users as one line (`one_line`); both front ends draw the same icons.
"""

from pathlib import Path

import numpy as np
from astropy.io import fits

from .io.fits import ImageData, product_header

__all__ = ["ICONS", "icon", "image_input", "data_table", "layer_hdus", "one_line"]

#: Toolbar icons (``<task>.svg``; ``task.svg`` for tasks without their own).
ICONS = Path(__file__).parent / "icons"


def icon(task_name):
    """Path of the toolbar icon of a task."""
    path = ICONS / f"{task_name}.svg"
    return str(path if path.exists() else ICONS / "task.svg")


def _header(meta):
    """The FITS cards among a glue ``Data.meta`` (FITS-loaded data keep their header there)."""
    header = fits.Header()
    for key, value in dict(meta).items():
        if isinstance(key, str) and len(key) <= 8 and key.isupper() and isinstance(value, (str, int, float, bool)):
            try:
                header[key] = value
            except (ValueError, TypeError):  # not representable as a card
                continue
    return header


def image_input(data, attribute=None):
    """A 2-D glue image (component ``attribute``, default the first) as task input.

    The celestial WCS is kept when ``data.coords`` is a FITS WCS with celestial axes;
    otherwise the tasks work in pixels and say so.

    Examples
    --------
    >>> import numpy as np
    >>> from glue.core import Data
    >>> image_input(Data(x=np.zeros((16, 16)), label="img")).wcs_problem
    'no celestial FITS WCS: working in pixel coordinates'
    """
    from .core.errors import BadInputError

    if data.ndim != 2:
        raise BadInputError(f"{data.label}: need a 2-D image, got {data.ndim}-D data of shape {data.shape}")
    attribute = attribute or data.main_components[0]
    header = _header(data.meta)
    wcs = data.coords if getattr(data.coords, "has_celestial", False) and hasattr(data.coords, "wcs") else None
    problem = None if wcs is not None else "no celestial FITS WCS: working in pixel coordinates"
    return ImageData(np.asarray(data[attribute]), header, wcs=wcs.celestial if wcs is not None else None,
                     path=data.label, hdu=str(attribute), wcs_problem=problem)


def data_table(data):
    """A catalogue held by a viewer (glue ``Data`` of 1-D components) as an astropy ``Table``,
    with the units glue keeps."""
    from astropy.table import Table

    from .core.errors import BadInputError

    if data.ndim != 1:
        raise BadInputError(f"{data.label}: not a catalogue ({data.ndim}-D data of shape {data.shape})")
    table = Table()
    for cid in data.main_components:
        comp = data.get_component(cid)
        table[cid.label] = np.asarray(comp.data)
        if getattr(comp, "units", None):
            try:
                table[cid.label].unit = comp.units
            except ValueError:
                pass
    table.meta["label"] = data.label
    return table


def layer_hdus(result):
    """One ImageHDU per `Layer` of ``result`` (EXTNAME = layer name), with the input header and
    WCS; a bit-mask layer gets EXTNAME ``DQ`` (what jdaviz's Data Quality plugin reads)."""
    from .tasks.results import BITMASK

    return [fits.ImageHDU(layer.fits_data, product_header(result.header, result.wcs, BUNIT=""),
                          name="DQ" if layer.kind == BITMASK else layer.name)
            for layer in result.layers()]


def one_line(err):
    """An exception as one line for the user (no traceback).

    Examples
    --------
    >>> one_line(ValueError("first line\\nsecond"))
    'first line'
    """
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
