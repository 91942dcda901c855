"""Between glue and the tasks: glue images as task input, task results as layers.

Results become FITS HDUs carrying the input header and WCS (what jdaviz's loaders take,
one layer each) or glue ``Data`` (one component per HDU, as the data factory builds).
"""

import numpy as np
from astropy.io import fits

from ..io.fits import ImageData, celestial_wcs, product_header
from .links import PRODUCT_KEY

__all__ = ["image_input", "contaminant_hdus", "source_hdus", "hdus_data", "table_data"]


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
    """
    attribute = attribute or data.main_components[0]
    if data.ndim != 2:
        raise ValueError(f"{data.label}: need a 2-D image, got {data.ndim}-D data of shape {data.shape}")
    header = _header(data.meta)
    wcs = data.coords if getattr(data.coords, "has_celestial", False) and hasattr(data.coords, "wcs") else None
    problem = None if wcs is not None else "no celestial FITS WCS: working in pixel coordinates"
    return ImageData(np.asarray(data[attribute]), header, wcs=wcs.celestial if wcs is not None else None,
                     path=data.label, hdu=str(attribute), wcs_problem=problem)


def _hdu(array, result, name):
    return fits.ImageHDU(np.asarray(array), product_header(result.header, result.wcs, BUNIT=""), name=name)


def contaminant_hdus(result, thresholds=None):
    """One probability image per class of a `ContaminantDetection` (EXTNAME = class) and its
    MaxiMask-style bit-mask at ``thresholds`` (EXTNAME ``DQ``, read by jdaviz's Data Quality)."""
    hdus = [_hdu(result[name], result, name) for name in result.classes]
    bitmask = result.to_hdu("bitmask", thresholds)
    bitmask.name = "DQ"
    return hdus + [bitmask]


def source_hdus(result):
    """Significance and source-probability images of a `SourceDetection`."""
    return [_hdu(result.significance, result, "SIGNIFICANCE"), _hdu(result.probability, result, "SOURCE")]


def hdus_data(label, hdus, kind):
    """One glue ``Data`` with a component per HDU (named by EXTNAME) and the first HDU's WCS."""
    from glue.core import Data

    data = Data(label=label, coords=celestial_wcs(hdus[0].header)[0])
    for hdu in hdus:
        data.add_component(hdu.data, hdu.name)
    data.meta[PRODUCT_KEY] = kind
    return data


def table_data(label, table, **meta):
    """A catalogue ``Data`` from the 1-D columns of an astropy ``Table``."""
    from glue.core import Data

    cat = Data(label=label)
    for col in table.colnames:
        if table[col].ndim == 1:
            cat.add_component(np.asarray(table[col]), col)
    cat.meta.update({PRODUCT_KEY: "catalogue", **meta})
    return cat
