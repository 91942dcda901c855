"""The result protocol every task returns, with one shared implementation per kind of product.

A `Result` says what it holds in viewer-neutral terms, and the front ends show it without
knowing the task:

* `Result.layers`: images on the input's pixel grid (`Layer`: probability, mask, bit-mask,
  label or plain image), each with a colour and whether it is shown by default;
* `Result.subsets`: boolean pixel masks (`SubsetSpec`) that become glue / jdaviz subsets;
* ``table``: new rows (a source list, ``table_kind = "rows"``) or new columns keyed to the
  rows of the input catalogue (``"columns"``, see `CatalogueColumns`);
* `Result.to_hdus` / `Result.to_fits` (atomic), `Result.to_regions` and a one-line
  `Result.summary` that the CLI, glue and jdaviz all print.
"""

from dataclasses import dataclass, field

import numpy as np

from ..io.regions import MIN_REGION_AREA

__all__ = ["PROBABILITY", "MASK", "BITMASK", "LABEL", "IMAGE", "Layer", "SubsetSpec", "Result",
           "CatalogueColumns", "flagged_summary"]

PROBABILITY, MASK, BITMASK, LABEL, IMAGE = "probability", "mask", "bitmask", "label", "image"


@dataclass
class Layer:
    """An image on the input's pixel grid.

    ``name`` is short (the viewers prefix the input's label: ``"<image> P(CR)"``); ``kind``
    is one of `PROBABILITY`, `MASK`, `BITMASK` (with the ``taxonomy`` naming its bits),
    `LABEL` or `IMAGE`; ``visible`` says whether viewers show it by default.
    """

    name: str
    data: np.ndarray
    kind: str = IMAGE
    colour: str = None
    visible: bool = False
    description: str = ""
    taxonomy: object = None

    @property
    def fits_data(self):
        """The data as FITS stores it (booleans as uint8)."""
        data = np.asarray(self.data)
        return data.astype(np.uint8) if data.dtype == bool else data


@dataclass
class SubsetSpec:
    """A boolean mask on the input's pixel grid, shown as a subset named ``name``."""

    name: str
    mask: np.ndarray
    colour: str = None
    description: str = ""


def flagged_summary(fractions, top=3):
    """``"CR 0.12%, TRL 0.05%, HP 0.01%"``: the ``top`` largest non-zero fractions, or ``"nothing"``.

    Examples
    --------
    >>> flagged_summary({"CR": 0.0012, "TRL": 0.0, "HP": 0.0004})
    'CR 0.12%, HP 0.04%'
    """
    worst = sorted(((f, c) for c, f in fractions.items() if f > 0), reverse=True)[:top]
    return ", ".join(f"{c} {f:.2%}" for f, c in worst) or "nothing"


class Result:
    """Base of every task's result: ``header``, ``wcs`` and ``meta`` of the input, and the
    protocol the front ends use. Subclasses override what they hold.

    Examples
    --------
    >>> import numpy as np
    >>> class Edges(Result):
    ...     def __init__(self, image):
    ...         self.edges = np.abs(np.diff(image, axis=1, prepend=0)) > 1
    ...     def layers(self):
    ...         return [Layer("edges", self.edges, MASK)]
    ...     def subsets(self):
    ...         return [SubsetSpec("edges", self.edges, "#ff0000")]
    ...     def summary(self):
    ...         return f"{self.edges.mean():.0%} edge pixels"
    >>> image = np.zeros((8, 8)); image[:, 4:] = 10
    >>> res = Edges(image)
    >>> res.summary(), [h.name for h in res.to_hdus()], len(res.to_regions())
    ('12% edge pixels', ['EDGES'], 1)
    """

    header = None
    wcs = None
    meta = None
    table = None
    table_kind = None  # "rows" | "columns"

    def layers(self):
        """`Layer` list of images on the input grid (none by default)."""
        return []

    def subsets(self):
        """`SubsetSpec` list of pixel masks (none by default)."""
        return []

    def summary(self):
        """One line for the user: what was found."""
        return type(self).__name__

    def to_hdus(self, product=None):
        """FITS HDUs of the result: one image HDU per layer (EXTNAME = layer name, the input
        header and WCS), then the table (EXTNAME ``TABLE``)."""
        from astropy.io import fits

        from ..io.fits import product_header

        hdus = [fits.ImageHDU(layer.fits_data, product_header(self.header, self.wcs), name=layer.name)
                for layer in self.layers()]
        if self.table is not None:
            hdus.append(fits.table_to_hdu(self.table))
            hdus[-1].name = "TABLE"
        return hdus

    def to_fits(self, path, product=None, overwrite=True):
        """Write `to_hdus` to ``path`` atomically (nothing is left under ``path`` on failure)."""
        from ..io.fits import write_hdus

        return write_hdus(path, self.to_hdus(product), overwrite)

    def to_regions(self, min_pixels=1, min_area=MIN_REGION_AREA):
        """Polygons around every subset's pixels, tagged with its name and in its colour
        (sky coordinates when a WCS exists), as ``regions.Regions``; regions of fewer than
        ``min_pixels`` pixels or under ``min_area`` pixels² are dropped."""
        from regions import Regions

        from ..io.regions import mask_regions

        return Regions([r for s in self.subsets()
                        for r in mask_regions(s.mask, wcs=self.wcs, label=s.name, color=s.colour,
                                              min_pixels=min_pixels, min_area=min_area)])


@dataclass
class CatalogueColumns(Result):
    """New columns for the rows of an input catalogue, in its row order.

    ``catalogue`` is the input `astropy.table.Table` (never modified); ``columns`` a table
    of the same length holding only the new columns, with units and metadata (model name,
    version, checksum in ``columns.meta``). `to_table` is the input plus the new columns,
    `write` saves it atomically as ECSV or FITS.

    Examples
    --------
    >>> from astropy.table import Table
    >>> cat = Table({"x": [1.0, 2.0], "y": [3.0, 4.0]})
    >>> res = CatalogueColumns(cat, Table({"flux": [10.0, 20.0]}))
    >>> res.to_table().colnames
    ['x', 'y', 'flux']
    """

    catalogue: object
    columns: object
    header: object = None
    wcs: object = None
    meta: dict = field(default_factory=dict)
    table_kind = "columns"

    def __post_init__(self):
        if len(self.columns) != len(self.catalogue):
            raise ValueError(f"{len(self.columns)} new rows for a catalogue of {len(self.catalogue)}")

    @property
    def table(self):
        return self.columns

    def to_table(self):
        """The input catalogue with the new columns (replacing columns of the same name)."""
        out = self.catalogue.copy(copy_data=False)
        for name in self.columns.colnames:
            out[name] = self.columns[name]
        out.meta.update(self.columns.meta)
        return out

    def to_hdus(self, product=None):
        from astropy.io import fits

        hdu = fits.table_to_hdu(self.to_table())
        hdu.name = "CATALOG"
        return [hdu]

    def write(self, path, overwrite=True):
        """Write `to_table` to ``path`` atomically: ECSV for ``.ecsv``/``.csv`` suffixes, else FITS."""
        from pathlib import Path

        from ..core.atomic import atomic_path

        path = Path(path)
        fmt = {".ecsv": "ascii.ecsv", ".csv": "ascii.ecsv"}.get(path.suffix.lower(), "fits")
        with atomic_path(path, overwrite=overwrite) as tmp:
            self.to_table().write(tmp, format=fmt)
        return path
