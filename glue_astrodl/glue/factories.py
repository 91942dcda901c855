"""glue data factory for glue-astrodl product files (probability cubes, masks, bit-masks).

A product file becomes one glue ``Data`` whose components are the class planes (named
after the ``CLASSn`` keywords) plus any extra image HDUs of the same shape, with the
file's celestial WCS; table HDUs (e.g. ``SOURCES``) become catalogue ``Data`` objects.
"""

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..io.fits import celestial_wcs

__all__ = ["is_astrodl_product", "read_astrodl_product"]


def is_astrodl_product(path, **kwargs):
    """True for FITS files written by glue-astrodl (``ASTRODL`` keyword in the primary header)."""
    try:
        return Path(path).is_file() and "ASTRODL" in fits.getheader(path, 0)
    except Exception:
        return False


def read_astrodl_product(path, **kwargs):
    """Return the glue ``Data`` objects held in a glue-astrodl product file."""
    from glue.core import Data

    label = Path(path).name.split(".")[0]
    out = []
    with fits.open(path) as hdul:
        primary = hdul[0]
        wcs, _ = celestial_wcs(primary.header)
        planes = primary.data if primary.data.ndim == 3 else primary.data[None]
        names = [primary.header.get(f"CLASS{i}", f"PLANE{i}") for i in range(1, planes.shape[0] + 1)]
        image = Data(label=label, coords=wcs)
        for name, plane in zip(names, planes):
            image.add_component(np.array(plane), name)
        for hdu in hdul[1:]:
            if hdu.is_image and hdu.data is not None and hdu.data.shape == planes.shape[1:]:
                image.add_component(np.array(hdu.data), hdu.name)
            elif isinstance(hdu, fits.BinTableHDU):
                table = Table.read(hdu)
                cat = Data(label=f"{label} {hdu.name.lower()}")
                for col in table.colnames:
                    if table[col].ndim == 1:
                        cat.add_component(np.asarray(table[col]), col)
                out.append(cat)
    return [image, *out]
