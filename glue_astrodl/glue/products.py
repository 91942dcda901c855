"""glue ``Data`` built from task results and product files.

Images on one grid become one ``Data`` with a component per layer (or HDU); tables become
catalogue ``Data``. Everything carries ``meta['astrodl_product']`` so that links and the
autolinker can find it.
"""

import numpy as np

from ..io.fits import celestial_wcs
from .links import PRODUCT_KEY

__all__ = ["hdus_data", "layers_data", "table_data"]


def hdus_data(label, hdus, kind):
    """One glue ``Data`` with a component per HDU (named by EXTNAME) and the first HDU's WCS."""
    from glue.core import Data

    data = Data(label=label, coords=celestial_wcs(hdus[0].header)[0])
    for hdu in hdus:
        data.add_component(hdu.data, hdu.name)
    data.meta[PRODUCT_KEY] = kind
    return data


def layers_data(label, result):
    """One glue ``Data`` holding every `Layer` of ``result`` (component = layer name), with the
    input's WCS."""
    from glue.core import Data

    data = Data(label=label, coords=result.wcs)
    for layer in result.layers():
        data.add_component(np.asarray(layer.data), layer.name)
    data.meta[PRODUCT_KEY] = result.layers()[0].kind
    return data


def table_data(label, table, **meta):
    """A catalogue ``Data`` from the 1-D columns of an astropy ``Table`` (units kept)."""
    from glue.core import Data
    from glue.core.component import Component

    cat = Data(label=label)
    for col in table.colnames:
        if table[col].ndim == 1:
            unit = str(table[col].unit) if table[col].unit is not None else None
            cat.add_component(Component(np.asarray(table[col]), units=unit), col)
    cat.meta.update({PRODUCT_KEY: "catalogue", **meta})
    return cat
