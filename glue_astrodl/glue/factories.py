"""glue data factory for probability / mask / bit-mask FITS files of glue-astrodl and MaxiMask.

Every product HDU becomes one image ``Data`` with one component per class, named from
our ``CLASSn`` keywords or MaxiMask's ``<class>_DIM`` plane indices; a bit-mask (our
``BITnn`` or MaxiMask's ``<class>_SM`` codes) gives its raw ``BITMASK`` plus one 0/1
component per class. Image HDUs of the same shape that follow a product (e.g.
``SIGNIFICANCE``) are added to it, table HDUs (e.g. ``SOURCES``) become catalogue
``Data``. The celestial WCS is kept where the file has one (MaxiMask writes none).
`glue_astrodl.glue.links.link_products` links the results to their parent image.
"""

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..tasks.contaminant_classes import CLASSES
from ..io.fits import celestial_wcs
from .links import PRODUCT_KEY
from .products import table_data

__all__ = ["is_product", "read_product", "class_planes"]


def _is_maximask(header):
    return "MM_UTC" in header or ("SMASK" in header and any(f"{c}_DIM" in header for c in CLASSES))


def is_product(path, **kwargs):
    """True for FITS files written by glue-astrodl (``ASTRODL`` keyword) or by MaxiMask.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from glue_astrodl.io.fits import write_probability_cube
    >>> folder = Path(tempfile.mkdtemp())
    >>> path = write_probability_cube(folder / "img_proba.fits", np.zeros((2, 20, 30), np.float32), ["CR", "HP"])
    >>> is_product(path), is_product(folder / "missing.fits")
    (True, False)
    """
    try:
        if not Path(path).is_file():
            return False
        with fits.open(path) as hdul:
            return "ASTRODL" in hdul[0].header or any(_is_maximask(h.header) for h in hdul)
    except Exception:
        return False


def _codes(header):
    """Bit code of each class in a bit-mask header (``BITnn = name`` or ``<name>_SM = code``)."""
    codes = {str(v): 1 << int(k[3:]) for k, v in header.items() if k.startswith("BIT") and k[3:].isdigit()}
    for name in CLASSES:
        if f"{name}_SM" in header and name not in codes and float(header[f"{name}_SM"]) > 0:
            codes[name] = int(float(header[f"{name}_SM"]))
    return codes


def class_planes(header, data):
    """``{component name: 2-D array}`` of a product HDU, or ``{}`` when it is not one.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> header = fits.Header({"CLASS1": "CR", "CLASS2": "HP"})  # a probability or mask cube
    >>> sorted(class_planes(header, np.zeros((2, 4, 4))))
    ['CR', 'HP']
    >>> bits = fits.Header({"BIT00": "CR", "BIT03": "HP"})  # a bit-mask: 0/1 planes per class
    >>> planes = class_planes(bits, np.array([[0, 1], [8, 9]], np.int16))
    >>> sorted(planes), planes["HP"].tolist()
    (['BITMASK', 'CR', 'HP'], [[0, 0], [1, 1]])
    >>> class_planes(fits.Header(), np.zeros((4, 4)))  # not a product
    {}
    """
    data = np.asarray(data)
    if data.ndim == 2 and (codes := _codes(header)) and np.issubdtype(data.dtype, np.integer):
        return {"BITMASK": data, **{name: ((data & code) > 0).astype(np.uint8) for name, code in codes.items()}}
    cube = data if data.ndim == 3 else data[None]
    names = [header.get(f"CLASS{i}") for i in range(1, cube.shape[0] + 1)]
    if not all(names):
        by_index = {int(header[f"{c}_DIM"]): c for c in CLASSES if f"{c}_DIM" in header}
        names = [by_index.get(i) for i in range(cube.shape[0])]
    if cube.ndim != 3 or not all(names):
        return {}
    return dict(zip(names, cube))


def _kind(planes, dtype):
    if "BITMASK" in planes:
        return "bitmask"
    return "masks" if dtype == np.uint8 else "probability"


def read_product(path, **kwargs):
    """Return the glue ``Data`` objects held in a glue-astrodl or MaxiMask product file.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from glue_astrodl.io.fits import write_probability_cube
    >>> from glue_astrodl.sim import make_wcs
    >>> cube = np.zeros((2, 20, 30), np.float32)
    >>> path = write_probability_cube(Path(tempfile.mkdtemp()) / "img_proba.fits", cube, ["CR", "HP"],
    ...                               wcs=make_wcs((20, 30)))
    >>> [data] = read_product(path)
    >>> data.label, [c.label for c in data.main_components], data.meta["astrodl_product"]
    ('img_proba', ['CR', 'HP'], 'probability')
    >>> data.coords.wcs.ctype[0]  # the celestial WCS is kept
    'RA---TAN'
    """
    from glue.core import Data

    stem = Path(path).name.split(".")[0]
    meta = {"astrodl_file": str(path)}
    images, out = [], []  # images: [hdu index, hdu, {component: plane}]
    with fits.open(path, memmap=False) as hdul:
        for index, hdu in enumerate(hdul):
            if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                out.append(table_data(f"{stem} {hdu.name.lower()}", Table.read(hdu), **meta))
            elif hdu.is_image and hdu.data is not None:
                if planes := class_planes(hdu.header, hdu.data):
                    images.append((index, hdu, planes))
                elif images and hdu.data.shape == images[-1][1].data.shape[-2:]:
                    images[-1][2][hdu.name] = hdu.data
    for index, hdu, planes in images[::-1]:
        label = stem if len(images) == 1 else f"{stem}[{hdu.name if hdu.name not in ('', 'PRIMARY') else index}]"
        image = Data(label=label, coords=celestial_wcs(hdu.header)[0])
        for name, plane in planes.items():
            image.add_component(np.array(plane), name)
        image.meta.update(meta, **{PRODUCT_KEY: _kind(planes, hdu.data.dtype)})
        out.insert(0, image)
    return out
