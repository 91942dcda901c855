"""glue exporters: subsets as region files, images and subsets as FITS products.

Region files hold polygons around each connected part of a subset's mask (holes
dropped, see `glue_astrodl.io.regions`), in sky coordinates when the image has a
celestial WCS; the format follows the suffix (``.reg`` ds9, ``.crtf``, ``.fits``). FITS
products are the files `astrodl` writes (class planes, input header and WCS), so they
read back through the data factory.
"""

import numpy as np
from glue.core import Subset

from ..io.fits import write_mask, write_probability_cube
from ..io.regions import mask_regions, write_regions
from ..products import image_input

__all__ = ["export_regions", "export_mask_regions", "export_fits"]

REGION_SUFFIXES = ["reg", "crtf", "fits"]


def _subset_regions(subset, wcs):
    return list(mask_regions(subset.to_mask(), wcs=wcs, label=subset.label, color=subset.style.color))


def export_regions(filename, data, components=None):
    """Polygons of a subset's mask, or of every subset of an image, tagged by subset label.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from regions import Regions
    >>> from glue.core import Data, DataCollection
    >>> from glue_astrodl.products import set_mask_subsets
    >>> from glue_astrodl.sim import make_wcs
    >>> image = Data(DATA=np.zeros((20, 30)), label="img", coords=make_wcs((20, 30)))
    >>> dc = DataCollection([image])
    >>> mask = np.zeros((20, 30), bool)
    >>> mask[2:5, 3:6] = True
    >>> _ = set_mask_subsets(dc, image, {"CR": mask})
    >>> path = export_regions(Path(tempfile.mkdtemp()) / "subsets.reg", image)  # every subset of the image
    >>> regs = Regions.read(str(path))
    >>> len(regs), regs[0].meta["tag"], type(regs[0]).__name__
    (1, ['CR'], 'PolygonSkyRegion')
    """
    image = data.data if isinstance(data, Subset) else data
    wcs = image_input(image).wcs
    subsets = [data] if isinstance(data, Subset) else list(image.subsets)
    regs = [r for s in subsets for r in _subset_regions(s, wcs)]
    return write_regions(regs, filename, wcs=wcs)


def export_mask_regions(filename, masks):
    """Pixel polygons around each of ``masks`` (``{label: 2-D bool array}``), tagged by label.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> mask = np.zeros((20, 30), bool)
    >>> mask[2:5, 3:6] = True
    >>> path = export_mask_regions(Path(tempfile.mkdtemp()) / "cr.reg", {"CR": mask})
    >>> path.read_text().splitlines()[1]
    'image'
    """
    regs = [r for label, mask in masks.items() for r in mask_regions(np.asarray(mask), label=label)]
    return write_regions(regs, filename)


def export_fits(filename, data, components=None):
    """An image's 2-D components as a float32 cube (``CLASSn`` = component), or a subset as
    a uint8 mask, with the image's header and WCS.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from glue.core import Data
    >>> from glue_astrodl.glue.factories import read_product
    >>> image = Data(CR=np.zeros((20, 30)), HP=np.ones((20, 30)), label="img")
    >>> path = export_fits(Path(tempfile.mkdtemp()) / "img_proba.fits", image)
    >>> [c.label for c in read_product(path)[0].main_components]  # reads back as a product
    ['CR', 'HP']
    """
    image = data.data if isinstance(data, Subset) else data
    img = image_input(image)
    if isinstance(data, Subset):
        return write_mask(filename, data.to_mask()[None], [data.label], img.header, img.wcs)
    cids = [c for c in image.main_components if components is None or c in components]
    cube = np.stack([np.asarray(image[c], dtype=np.float32) for c in cids])
    return write_probability_cube(filename, cube, [c.label for c in cids], img.header, img.wcs)
