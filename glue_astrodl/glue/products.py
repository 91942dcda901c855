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
    """One glue ``Data`` with a component per HDU (named by EXTNAME) and the first HDU's WCS.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> hdus = [fits.ImageHDU(np.zeros((4, 5)), name="SIGNIFICANCE"), fits.ImageHDU(np.ones((4, 5)), name="PROB")]
    >>> data = hdus_data("img sources", hdus, "probability")
    >>> [c.label for c in data.main_components], data.shape, data.meta["astrodl_product"]
    (['SIGNIFICANCE', 'PROB'], (4, 5), 'probability')
    """
    from glue.core import Data

    data = Data(label=label, coords=celestial_wcs(hdus[0].header)[0])
    for hdu in hdus:
        data.add_component(hdu.data, hdu.name)
    data.meta[PRODUCT_KEY] = kind
    return data


def layers_data(label, result, layers=None):
    """One glue ``Data`` holding every `Layer` of ``result`` (default ``result.layers()``;
    component = layer name), with the input's WCS.

    Examples
    --------
    >>> from glue_astrodl import detect_sources
    >>> from glue_astrodl.sim import simulate_point_sources
    >>> frame = simulate_point_sources((96, 96), snr=(20,), n_per_snr=3, fwhm=2.5, seed=1)
    >>> data = layers_data("img sources", detect_sources(frame.image, fwhm=2.5))
    >>> [c.label for c in data.main_components], data.shape
    (['significance', 'P(source)'], (96, 96))
    """
    from glue.core import Data

    layers = result.layers() if layers is None else layers
    data = Data(label=label, coords=result.wcs)
    for layer in layers:
        data.add_component(np.asarray(layer.data), layer.name)
    data.meta[PRODUCT_KEY] = layers[0].kind
    return data


def table_data(label, table, **meta):
    """A catalogue ``Data`` from the 1-D columns of an astropy ``Table`` (units kept).

    Examples
    --------
    >>> from astropy.table import Table
    >>> table = Table({"x": [1.0, 2.0], "flux": [10.0, 20.0]}, units={"flux": "adu"})
    >>> cat = table_data("img sources catalogue", table, astrodl_file="img.fits")
    >>> int(cat.size), cat.get_component("flux").units, cat.meta["astrodl_product"]
    (2, 'adu', 'catalogue')
    """
    from glue.core import Data
    from glue.core.component import Component

    cat = Data(label=label)
    for col in table.colnames:
        if table[col].ndim == 1:
            unit = str(table[col].unit) if table[col].unit is not None else None
            cat.add_component(Component(np.asarray(table[col]), units=unit), col)
    cat.meta.update({PRODUCT_KEY: "catalogue", **meta})
    return cat
