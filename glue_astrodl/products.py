"""Viewer-neutral product code shared by the glue and jdaviz front ends (both hold glue data).

Images held by a viewer (glue ``Data``) become task input (`image_input`), catalogues held by
a viewer become astropy tables (`data_table`), a `Result`'s layers become FITS HDUs that
carry the input header and WCS (`layer_hdus`, what jdaviz's loaders and glue's data factory
take), its subsets become mask subsets that also select the rows of linked catalogues
(`set_mask_subsets`), its new columns join the input catalogue (`add_columns`). Errors reach
users as one line (`one_line`); both front ends draw the same icons.

glue's ``MaskSubsetState`` truncates the linked pixel coordinates of other datasets instead
of rounding them, and checks bounds against the *other* dataset's shape, so an image mask
selects the wrong catalogue rows (or raises). `PixelMaskSubsetState` looks each element up
at its nearest pixel of the mask's grid (pixel centres are integers) and selects nothing
outside the image or where the position is undefined.
"""

from pathlib import Path

import numpy as np
from astropy.io import fits
from glue.core.subset import MaskSubsetState

from .io.fits import ImageData, product_header

__all__ = ["ICONS", "SUBSET_FLOOR", "SUBSET_VEIL", "icon", "image_header", "image_input", "data_table",
           "layer_hdus", "one_line", "PixelMaskSubsetState", "set_mask_subsets", "add_columns"]

#: Toolbar icons (``<task>.svg``; ``task.svg`` for tasks without their own).
ICONS = Path(__file__).parent / "icons"


#: Subsets covering less than this fraction of an image are not made in the viewers (their
#: pixels stay in the layers and files): classes flagged on a handful of pixels would
#: otherwise each add a legend entry and a layer per dataset.
SUBSET_FLOOR = 1e-4

#: A new subset covering more than this fraction of an image starts hidden in the viewers:
#: drawn, it would veil the image (the flagged fraction is in the summary).
SUBSET_VEIL = 0.5


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


def image_header(data):
    """``(header, wcs)`` of a 2-D glue image, without reading its pixels: the FITS cards of
    its meta, and its celestial FITS WCS or None."""
    wcs = data.coords if getattr(data.coords, "has_celestial", False) and hasattr(data.coords, "wcs") else None
    return _header(data.meta), (wcs.celestial if wcs is not None else None)


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
    header, wcs = image_header(data)
    problem = None if wcs is not None else "no celestial FITS WCS: working in pixel coordinates"
    return ImageData(np.asarray(data[attribute]), header, wcs=wcs, path=data.label, hdu=str(attribute),
                     wcs_problem=problem)


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


def layer_hdus(result, layers=None):
    """One ImageHDU per `Layer` of ``result`` (default ``result.layers()``; EXTNAME = layer name),
    with the input header and WCS; a bit-mask layer gets EXTNAME ``DQ`` (what jdaviz's Data
    Quality plugin reads)."""
    from .tasks.results import BITMASK

    return [fits.ImageHDU(layer.fits_data, product_header(result.header, result.wcs, BUNIT=""),
                          name="DQ" if layer.kind == BITMASK else layer.name)
            for layer in (result.layers() if layers is None else layers)]


def one_line(err):
    """An exception as one line for the user (no traceback).

    Examples
    --------
    >>> one_line(ValueError("first line\\nsecond"))
    'first line'
    """
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


class PixelMaskSubsetState(MaskSubsetState):
    """A boolean mask on the pixel grid given by ``cids`` (an image's pixel component ids)."""

    def copy(self):
        return PixelMaskSubsetState(self.mask, self.cids)

    def to_mask(self, data, view=None):
        if data.pixel_component_ids == self.cids:
            return self.mask[view if view is not None else slice(None)].copy()
        # Position of every element of ``data`` on the mask's grid, through glue's links
        # (raises IncompatibleAttribute when ``data`` is not linked to the image).
        coords = [np.asarray(data[c, view], dtype=float) for c in self.cids]
        inside = np.ones(coords[0].shape, dtype=bool)
        index = []
        for c, n in zip(coords, self.mask.shape):
            i = np.round(np.clip(np.where(np.isfinite(c), c, -1.0), -1, n)).astype(np.intp)
            inside &= (i >= 0) & (i < n)
            index.append(i)
        return self.mask[tuple(np.where(inside, i, 0) for i in index)] & inside


def set_mask_subsets(data_collection, image, masks, colours=None, prefix="", min_fraction=0.0):
    """Create (or update, when the label exists) one subset group per mask.

    ``masks`` maps a name to a boolean array on ``image``'s pixel grid; the group is
    labelled ``f"{prefix}{name}"`` and coloured ``colours[name]`` when given. A mask with
    no pixels, or covering less than ``min_fraction`` of the image (the front ends pass
    `SUBSET_FLOOR`), makes no new group and empties an existing one. Returns the groups
    holding pixels.
    """
    if image not in data_collection:
        raise ValueError(f"{image.label!r} is not in the data collection")
    existing = {g.label: g for g in data_collection.subset_groups}
    groups = []
    for name, mask in masks.items():
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != image.shape:
            raise ValueError(f"mask {name!r} has shape {mask.shape}, image {image.label!r} has {image.shape}")
        keep = bool(mask.any()) and mask.mean() >= min_fraction
        label, colour = f"{prefix}{name}", (colours or {}).get(name)
        group = existing.get(label)
        if group is None and not keep:
            continue
        state = PixelMaskSubsetState(mask if keep else np.zeros_like(mask), image.pixel_component_ids)
        if group is None:  # coloured as it is made: one round of messages
            group = data_collection.new_subset_group(label, state, **({"color": colour} if colour else {}))
        else:
            group.subset_state = state
            if colour and group.style.color != colour:
                group.style.color = colour
        if keep:
            groups.append(group)
    return groups


def add_columns(catalogue, columns):
    """Put the columns of an astropy table on a catalogue ``Data`` (updating existing ones,
    units kept), so links and subsets of the catalogue apply to them."""
    from glue.core.component import Component

    existing = {c.label: c for c in catalogue.components}
    for name in columns.colnames:
        values = np.asarray(columns[name])
        if name in existing:
            catalogue.update_components({existing[name]: values})
        else:
            unit = str(columns[name].unit) if columns[name].unit is not None else None
            catalogue.add_component(Component(values, units=unit), name)
