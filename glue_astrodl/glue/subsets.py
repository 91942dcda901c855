"""Mask subsets defined on an image's pixel grid that also select rows of linked catalogues.

glue's ``MaskSubsetState`` truncates the linked pixel coordinates of other datasets
instead of rounding them, and checks bounds against the *other* dataset's shape, so an
image mask selects the wrong catalogue rows (or raises). `PixelMaskSubsetState` looks
each element up at its nearest pixel of the mask's grid (pixel centres are integers)
and selects nothing outside the image or where the position is undefined.
"""

import numpy as np
from glue.core.subset import MaskSubsetState

__all__ = ["PixelMaskSubsetState", "set_mask_subsets"]


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


def set_mask_subsets(data_collection, image, masks, colours=None, prefix=""):
    """Create (or update, when the label exists) one subset group per mask.

    ``masks`` maps a name to a boolean array on ``image``'s pixel grid; the group is
    labelled ``f"{prefix}{name}"`` and coloured ``colours[name]`` when given. An empty
    mask makes no new group (an existing one is emptied). Returns the subset groups.
    """
    if image not in data_collection:
        raise ValueError(f"{image.label!r} is not in the data collection")
    existing = {g.label: g for g in data_collection.subset_groups}
    groups = []
    for name, mask in masks.items():
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != image.shape:
            raise ValueError(f"mask {name!r} has shape {mask.shape}, image {image.label!r} has {image.shape}")
        state = PixelMaskSubsetState(mask, image.pixel_component_ids)
        label = f"{prefix}{name}"
        group = existing.get(label)
        if group is None and not mask.any():
            continue
        if group is None:
            group = data_collection.new_subset_group(label, state)
        else:
            group.subset_state = state
        if colours and name in colours:
            group.style.color = colours[name]
        groups.append(group)
    return groups
