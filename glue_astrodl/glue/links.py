"""glue links between products, the images they were computed from, and catalogues.

* Products (probability / mask / bit-mask images) share their parent image's pixel grid:
  `same_grid_links` link the pixel axes one to one.
* Catalogues with ICRS ``ra``/``dec`` columns are linked to an image's pixel axes through
  its WCS by `SkyToPixelLink` (any celestial frame of the image), so the image's pixel
  coordinates of every row are known to glue and subsets carry over (see
  `glue_astrodl.products.PixelMaskSubsetState`).

`link_products` adds both for everything the data factory loaded; `product_links` is also
registered as a glue autolinker, so glue's desktop application offers the links itself.
"""

import numpy as np
from glue.core.link_helpers import BaseMultiLink, LinkSame

__all__ = ["SkyToPixelLink", "same_grid", "same_grid_links", "catalogue_links", "product_links", "link_products"]

PRODUCT_KEY = "astrodl_product"  # Data.meta key set on everything glue-astrodl creates


def _celestial(data):
    wcs = getattr(data, "coords", None)
    return wcs.celestial if getattr(wcs, "has_celestial", False) else None


def same_grid(a, b):
    """True when ``a`` and ``b`` are images of one shape whose celestial WCSs agree (or one has none).

    Examples
    --------
    >>> import numpy as np
    >>> from glue.core import Data
    >>> from glue_astrodl.sim import make_wcs
    >>> image = Data(DATA=np.zeros((20, 30)), label="img", coords=make_wcs((20, 30)))
    >>> product = Data(CR=np.zeros((20, 30)), label="img contaminants")  # no WCS: shape decides
    >>> same_grid(product, image), same_grid(Data(x=np.zeros((20, 31))), image)
    (True, False)
    """
    if a.ndim != 2 or a.shape != b.shape:
        return False
    wa, wb = _celestial(a), _celestial(b)
    return wa is None or wb is None or bool(wa.wcs.compare(wb.wcs, tolerance=1e-9))


class SkyToPixelLink(BaseMultiLink):
    """ICRS ``ra``/``dec`` (degrees) of ``data1`` <-> pixel ``x``/``y`` of the image ``data2``.

    Examples
    --------
    >>> import numpy as np
    >>> from glue.core import Data, DataCollection
    >>> from glue_astrodl.sim import make_wcs
    >>> wcs = make_wcs((20, 30))
    >>> image = Data(DATA=np.zeros((20, 30)), label="img", coords=wcs)
    >>> sky = wcs.pixel_to_world([5.0, 10.0], [3.0, 7.0])
    >>> cat = Data(ra=sky.ra.deg, dec=sky.dec.deg, label="cat")
    >>> dc = DataCollection([image, cat])
    >>> px, py = image.pixel_component_ids[1], image.pixel_component_ids[0]
    >>> dc.add_link(SkyToPixelLink(cids1=[cat.id["ra"], cat.id["dec"]], cids2=[px, py], data1=cat, data2=image))
    >>> cat[px].round(6), cat[py].round(6)  # each row's pixel position on the image
    (array([ 5., 10.]), array([3., 7.]))
    """

    display = "ICRS RA/Dec <-> image pixels (WCS)"
    description = "Link catalogue RA/Dec (ICRS, degrees) to an image's pixel axes through its WCS"
    labels1 = ["ra (ICRS, deg)", "dec (ICRS, deg)"]
    labels2 = ["pixel x", "pixel y"]

    def forwards(self, ra, dec):
        from astropy.coordinates import SkyCoord

        shape = np.shape(ra)
        sky = SkyCoord(np.ravel(ra), np.ravel(dec), unit="deg", frame="icrs")
        x, y = _celestial(self.data2).world_to_pixel(sky)
        return np.reshape(x, shape), np.reshape(y, shape)

    def backwards(self, x, y):
        shape = np.shape(x)
        sky = _celestial(self.data2).pixel_to_world(np.ravel(x), np.ravel(y)).icrs
        return np.reshape(sky.ra.deg, shape), np.reshape(sky.dec.deg, shape)


def same_grid_links(product, parent):
    """Links between the pixel axes of two images on one grid.

    Examples
    --------
    >>> import numpy as np
    >>> from glue.core import Data, DataCollection
    >>> image = Data(DATA=np.arange(6.0).reshape(2, 3), label="img")
    >>> product = Data(CR=np.zeros((2, 3)), label="img contaminants")
    >>> dc = DataCollection([image, product])
    >>> dc.add_link(same_grid_links(product, image))
    >>> right = dc.new_subset_group("right", image.pixel_component_ids[1] > 0.5)  # a region of the image
    >>> product.subsets[0].to_mask()  # selects the same pixels of the product
    array([[False,  True,  True],
           [False,  True,  True]])
    """
    return [LinkSame(a, b) for a, b in zip(product.pixel_component_ids, parent.pixel_component_ids)]


def catalogue_links(catalogue, image, ra="ra", dec="dec", x="x", y="y"):
    """Links of a catalogue to an image: RA/Dec through the WCS, else its ``x``/``y`` pixel columns.

    Examples
    --------
    >>> import numpy as np
    >>> from glue.core import Data, DataCollection
    >>> from glue_astrodl.sim import make_wcs
    >>> wcs = make_wcs((20, 30))
    >>> image = Data(DATA=np.zeros((20, 30)), label="img", coords=wcs)
    >>> sky = wcs.pixel_to_world([5.0], [3.0])
    >>> cat = Data(ra=sky.ra.deg, dec=sky.dec.deg, label="cat")
    >>> [type(link).__name__ for link in catalogue_links(cat, image)]  # RA/Dec through the WCS
    ['SkyToPixelLink']
    >>> pixels = Data(x=[1.0, 2.0], y=[3.0, 4.0], label="pixel cat")
    >>> [type(link).__name__ for link in catalogue_links(pixels, image)]  # x/y columns
    ['LinkSame', 'LinkSame']
    """
    ids = {c.label: c for c in catalogue.components}
    px, py = image.pixel_component_ids[1], image.pixel_component_ids[0]
    if _celestial(image) is not None and ra in ids and dec in ids:
        return [SkyToPixelLink(cids1=[ids[ra], ids[dec]], cids2=[px, py], data1=catalogue, data2=image)]
    if x in ids and y in ids:
        return [LinkSame(ids[x], px), LinkSame(ids[y], py)]
    raise ValueError(f"{catalogue.label!r} has neither {ra}/{dec} (with a WCS on {image.label!r}) nor {x}/{y} columns")


def _linked(data_collection, a, b):
    return any({a, b} <= {getattr(link, "data1", None), getattr(link, "data2", None)}
               for link in data_collection.external_links)


def _parent(data_collection, product):
    """The non-product image on ``product``'s grid, preferring one whose label starts its label."""
    candidates = [d for d in data_collection if not d.meta.get(PRODUCT_KEY) and same_grid(product, d)]
    named = [d for d in candidates if product.label.startswith(d.label)]
    return (named or candidates or [None])[0]


def product_links(data_collection):
    """Links still missing between glue-astrodl products and their parent images, and between
    product catalogues and the image read from the same file (not added).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from glue.core import Data, DataCollection
    >>> from glue_astrodl.glue.factories import read_product
    >>> from glue_astrodl.io.fits import write_mask
    >>> path = write_mask(Path(tempfile.mkdtemp()) / "img_masks.fits", np.zeros((1, 20, 30), np.uint8), ["CR"])
    >>> dc = DataCollection([Data(DATA=np.zeros((20, 30)), label="img"), *read_product(path)])
    >>> len(product_links(dc))  # the product's two pixel axes to the image's (not added)
    2
    """
    links = []
    images = [d for d in data_collection if d.meta.get(PRODUCT_KEY) and d.ndim == 2]
    for product in images:
        parent = _parent(data_collection, product)
        if parent is not None and not _linked(data_collection, product, parent):
            links += same_grid_links(product, parent)
    for cat in data_collection:
        if cat.meta.get(PRODUCT_KEY) != "catalogue":
            continue
        image = next((d for d in images if d.meta.get("astrodl_file") == cat.meta.get("astrodl_file")), None)
        if image is not None and not _linked(data_collection, cat, image):
            links += catalogue_links(cat, image)
    return links


def link_products(data_collection):
    """Add `product_links` to ``data_collection``; returns them.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from glue.core import Data, DataCollection
    >>> from glue_astrodl.glue.factories import read_product
    >>> from glue_astrodl.io.fits import write_mask
    >>> path = write_mask(Path(tempfile.mkdtemp()) / "img_masks.fits", np.zeros((1, 20, 30), np.uint8), ["CR"])
    >>> dc = DataCollection([Data(DATA=np.zeros((20, 30)), label="img"), *read_product(path)])
    >>> len(link_products(dc)), len(link_products(dc))  # nothing is linked twice
    (2, 0)
    """
    links = product_links(data_collection)
    data_collection.add_link(links)
    return links
