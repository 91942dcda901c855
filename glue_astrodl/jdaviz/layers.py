"""Putting plugin results into a jdaviz app through its own loaders.

Image results are loaded as children of the input image (jdaviz aligns them with it); a
re-run updates them in place, so viewers keep their display settings. A bit-mask with
EXTNAME ``DQ`` is a data-quality layer (unflagged pixels NaN, as jdaviz loads DQ arrays):
jdaviz's Data Quality plugin colours and names its flags (`use_flag_map`). Catalogues go
through jdaviz's Catalog importer, which links them to the images and draws them as
markers; a re-run replaces them.
"""

import numpy as np

from ..tasks.contaminant_classes import CLASSES, DESCRIPTIONS
from ..io.fits import celestial_wcs

__all__ = ["result_viewers", "add_image_layers", "add_catalogue", "use_flag_map"]

FLAG_MAP = "MaxiMask"  # Data Quality plugin flag map: bit index -> class
FLAG_DEFINITIONS = {i: {"name": c, "description": DESCRIPTIONS[c]} for i, c in enumerate(CLASSES) if c != "BG"}


def _dq_values(bitmask):
    """A bit-mask as jdaviz shows data-quality arrays: float32, unflagged pixels NaN (transparent)."""
    values = np.asarray(bitmask, dtype=np.float32)
    values[values == 0] = np.nan
    return values


def result_viewers(plugin):
    """References of the viewers showing the plugin's selected dataset."""
    return [v.reference for v in plugin.dataset.viewers_with_selected_visible]


def add_image_layers(plugin, parent, layers, show=()):
    """Load ``[(label, ImageHDU)]`` as children of the dataset ``parent`` (updated in place
    when an earlier run made them); layers whose label is in ``show`` are added to the
    viewers that show ``parent``. Reports progress through ``plugin._step``."""
    from astropy.nddata import NDData

    app = plugin._app
    for i, (label, hdu) in enumerate(layers):
        plugin._step(i / len(layers))
        values = _dq_values(hdu.data) if hdu.name == "DQ" else hdu.data
        data = app.data_collection[label] if label in app.data_collection else None
        if data is not None and data.meta.get("plugin") == plugin._plugin_name and data.shape == values.shape:
            data.update_components({data.main_components[0]: values})
            continue
        if data is not None:
            app.data_item_remove(label)
        # NDData with meta['plugin'] is how jdaviz plugins add results: exact label, no warning
        meta = {**hdu.header, "plugin": plugin._plugin_name}
        app._jdaviz_helper.load(NDData(values, wcs=celestial_wcs(hdu.header)[0], meta=meta), format="Image",
                                data_label=label, viewer=[], parent=parent)
        app.data_collection[label].meta["_extname"] = hdu.name  # 'DQ' makes a data-quality layer
    viewers = result_viewers(plugin)
    for label in show:
        for ref in viewers:
            if label not in app.get_viewer(ref).data_menu.data_labels_loaded:
                app.add_data_to_viewer(ref, label)


def add_catalogue(plugin, label, table, columns=(), marker_size=50):
    """Load an astropy ``Table`` with ``ra``/``dec`` (or ``x``/``y``) as a catalogue drawn in
    the viewers of the selected dataset (``marker_size``: glue scatter size, area-like); ``columns``
    are extra columns to keep."""
    app = plugin._app
    if label in app.data_collection:
        app.data_item_remove(label)
    viewers = result_viewers(plugin)
    app._jdaviz_helper.load(table, format="Catalog", data_label=label, viewer=viewers,
                            col_other=[c for c in columns if c in table.colnames])
    app.data_collection[label].meta["plugin"] = plugin._plugin_name
    for layer in (layer for ref in viewers for layer in app.get_viewer(ref).layers if layer.layer.label == label):
        layer.state.size = marker_size
    return label


def use_flag_map(plugin, dq_label):
    """Name the bits of our bit-mask in the Data Quality plugin (MaxiMask's bit codes) when it
    shows ``dq_label``."""
    dq = plugin._app._jdaviz_helper.plugins.get("Data Quality")
    if dq is None:
        return
    dq = dq._obj
    if FLAG_MAP.lower() not in dq.flag_map_definitions:
        dq.flag_map_definitions = {**dq.flag_map_definitions, FLAG_MAP.lower(): FLAG_DEFINITIONS}
        dq.flag_map_items = [*dq.flag_map_items, FLAG_MAP]
    if dq.dq_layer_selected == dq_label:
        dq.flag_map_selected = FLAG_MAP
