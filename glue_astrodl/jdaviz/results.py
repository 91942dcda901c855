"""Putting a task's `Result` into a jdaviz app, through jdaviz's own loaders.

What the result holds decides what the app gets, whatever the task (``<image>`` is the
label of the input image):

* layers: one image ``<image> <layer name>`` per `Layer`, loaded as a child of the image
  (jdaviz aligns it with the image), all in one batch, and shown in the image's viewers
  when the layer is ``visible``; the others wait in the data menu. A re-run updates them
  in place, so viewers keep their display settings and the visibility the user chose. A
  bit-mask layer is a data-quality layer (unflagged pixels NaN, as jdaviz loads DQ arrays),
  put in the viewers hidden, whose bits jdaviz's Data Quality plugin names and colours
  from the layer's taxonomy, as in the legend;
* subsets: one subset ``<image> <name>`` per `SubsetSpec` covering at least
  `~glue_astrodl.products.SUBSET_FLOOR` of the image, in its colour, which also selects
  the catalogue rows lying on it; one covering more than `~glue_astrodl.products.SUBSET_VEIL`
  of the image starts hidden (it would veil the image). A re-run updates them and empties
  those of the previous run that it no longer has. Subsets the user hid stay hidden;
* new rows (a source list): the catalogue ``<image> <task>`` through jdaviz's Catalog
  importer, linked to the image and drawn as markers in the image's viewers;
* new columns: components added to the input catalogue itself (with their units), shown
  in a table viewer, whose tools highlight, zoom to and make subsets of selected rows.
"""

import weakref

import numpy as np
from astropy.nddata import NDData
from glue.core.subset import Subset

from ..io.fits import celestial_wcs
from ..products import SUBSET_FLOOR, SUBSET_VEIL, add_columns, layer_hdus, set_mask_subsets
from ..tasks.results import BITMASK
from ._compat import helper, mark_extname, plugin_object

__all__ = ["add_result", "mask_layers", "mask_of", "viewers_showing"]

KIND, PARENT = "astrodl_layer", "astrodl_parent"  # Data.meta keys of the layers we load
_MASKS = weakref.WeakKeyDictionary()  # bit-mask layer Data -> the pixels other tasks should ignore
_TAXONOMIES = weakref.WeakKeyDictionary()  # bit-mask layer Data -> the taxonomy naming its bits
MARKER_SIZE = 50  # catalogue markers (glue scatter size, area-like)


def viewers_showing(app, label):
    """References of the viewers in which the data ``label`` is visible."""
    return [ref for ref in app.get_viewer_reference_names()
            if label in app.get_viewer(ref).data_menu.data_labels_visible]


def mask_layers(data_collection, image_label):
    """Labels of the bit-mask layers computed for the image ``image_label`` (for `mask_of`)."""
    return [d.label for d in data_collection
            if d.meta.get(KIND) == BITMASK and d.meta.get(PARENT) == image_label]


def mask_of(data):
    """The bad-pixel mask of a bit-mask layer listed by `mask_layers`: the result's
    ``defect_mask()`` when it has one (e.g. contaminants without the smooth classes), else
    every flagged pixel."""
    return _MASKS[data]


def _dq_values(bitmask):
    """A bit-mask as jdaviz shows data-quality arrays: float32, unflagged pixels NaN (transparent)."""
    values = np.asarray(bitmask, dtype=np.float32)
    values[values == 0] = np.nan
    return values


def _load_image(app, label, hdu, parent, meta):
    """Load ``hdu`` as the child ``label`` of ``parent``, or update it if this plugin made it."""
    values = _dq_values(hdu.data) if hdu.name == "DQ" else hdu.data
    data = app.data_collection[label] if label in app.data_collection else None
    if data is not None and data.meta.get("plugin") == meta["plugin"] and data.shape == values.shape:
        data.update_components({data.main_components[0]: values})
        return data
    if data is not None:
        app.data_item_remove(label)
    # NDData with meta['plugin'] is how jdaviz plugins add results: exact label, no warning
    helper(app).load(NDData(values, wcs=celestial_wcs(hdu.header)[0], meta={**hdu.header, **meta}), loader="object",
                     format="Image", data_label=label, viewer=[], parent=parent)
    data = app.data_collection[label]
    mark_extname(data, hdu.name)  # 'DQ' makes a data-quality layer
    return data


def _flag_colours(dq, taxonomy):
    """Draw each flag value of the Data Quality plugin in the colour of its class in the
    legend (a value with several bits: its lowest, i.e. first, class)."""
    colours = {bit.bit_length() - 1: taxonomy.colours[c] for c, bit in taxonomy.bits.items() if bit}
    flags = [dict(f, color=colours.get(min(map(int, f["decomposed"])), f["color"])) if f["decomposed"] else f
             for f in dq.decoded_flags]
    if flags != dq.decoded_flags:
        dq.decoded_flags = flags


def _keep_flag_colours(app, dq):
    """Whenever the Data Quality plugin decodes one of our bit-mask layers again (the user
    chose it anew), draw its flags in the legend's colours again."""
    if getattr(dq, "_astrodl_colours", False):
        return

    def recolour(change):
        label = dq.dq_layer_selected
        taxonomy = _TAXONOMIES.get(app.data_collection[label]) if label in app.data_collection else None
        if taxonomy is not None:
            _flag_colours(dq, taxonomy)

    dq.observe(recolour, "decoded_flags")
    dq._astrodl_colours = True


def _use_flag_map(app, label, name, taxonomy):
    """Name the bits of ``taxonomy`` in the Data Quality plugin (flag map ``name``), in the
    legend's colours, when it shows the layer ``label``."""
    dq = helper(app).plugins.get("Data Quality")
    if dq is None:
        return
    dq = plugin_object(dq)
    _TAXONOMIES[app.data_collection[label]] = taxonomy
    _keep_flag_colours(app, dq)
    key = name.lower()
    if key not in dq.flag_map_definitions:
        flags = {bit.bit_length() - 1: {"name": c, "description": taxonomy.descriptions.get(c, c)}
                 for c, bit in taxonomy.bits.items() if bit}
        dq.flag_map_definitions = {**dq.flag_map_definitions, key: flags}
        dq.flag_map_items = [*dq.flag_map_items, name]
    if dq.dq_layer_selected == label:
        dq.flag_map_selected = name
        _flag_colours(dq, taxonomy)


def _add_layers(plugin, image, result, layers):
    """Load the layers (in one batch), then show them in the image's viewers: the visible
    ones, and bit-masks hidden (the Data Quality plugin then has them). A layer already in
    a viewer keeps the visibility the user gave it."""
    app = plugin._app
    loaded = []
    with helper(app).batch_load():
        for i, (layer, hdu) in enumerate(zip(layers, layer_hdus(result, layers))):
            label = plugin.layer_label(image.label, layer)
            plugin._step(i / len(layers), f"adding layer {i + 1}/{len(layers)}: {label}")
            data = _load_image(app, label, hdu, image.label,
                               {"plugin": plugin._plugin_name, KIND: layer.kind, PARENT: image.label})
            if layer.kind == BITMASK:
                _MASKS[data] = result.defect_mask() if hasattr(result, "defect_mask") else np.asarray(layer.data) != 0
            loaded.append((layer, data))
    for ref in viewers_showing(app, image.label):
        viewer = app.get_viewer(ref)
        shown = {lyr.layer for lyr in viewer.layers}
        for layer, data in loaded:
            if data not in shown and (layer.visible or layer.kind == BITMASK):
                app.add_data_to_viewer(ref, data.label)
                if not layer.visible:
                    viewer.data_menu.set_layer_visibility(data.label, False)
    for layer, data in loaded:  # once in a viewer: the Data Quality plugin then has them
        if layer.kind == BITMASK and layer.taxonomy is not None:
            _use_flag_map(app, data.label, plugin.flag_map, layer.taxonomy)
    return f"{len(layers)} layer{'s' * (len(layers) != 1)}"


def _add_subsets(app, image, specs, previous):
    """Subsets of ``specs`` covering at least `SUBSET_FLOOR` of ``image``; those named in
    ``previous`` but not made now are emptied. A new subset covering more than
    `SUBSET_VEIL` of the image starts hidden: drawn, it would veil the image. Returns the
    names made and a description."""
    prefix = f"{image.label} "
    masks = {name: np.zeros(image.shape, bool) for name in previous}
    masks.update({s.name: s.mask for s in specs})
    existing = {g.label for g in app.data_collection.subset_groups}
    groups = set_mask_subsets(app.data_collection, image, masks, {s.name: s.colour for s in specs if s.colour},
                              prefix=prefix, min_fraction=SUBSET_FLOOR)
    made = {g.label.removeprefix(prefix) for g in groups}  # the groups holding pixels: only specs' names
    text = f"{len(made)} subset{'s' * (len(made) != 1)}"
    if len(made) < len(specs):
        text += f" (none for {len(specs) - len(made)} under {SUBSET_FLOOR:.2%} of the pixels)"
    veils = [g.label for g in groups
             if g.label not in existing and masks[g.label.removeprefix(prefix)].mean() > SUBSET_VEIL]
    for ref in viewers_showing(app, image.label):
        for label in veils:
            app.get_viewer(ref).data_menu.set_layer_visibility(label, False)
    if veils:
        names = ", ".join(label.removeprefix(prefix) for label in veils)
        text += f"; hidden, on over {SUBSET_VEIL:.0%} of the pixels: {names}"
    return made, text


def _add_rows(plugin, label, table, viewers):
    app = plugin._app
    if label in app.data_collection:
        app.data_item_remove(label)
    if not len(table):  # jdaviz's Catalog importer refuses empty tables
        return "no catalogue (no rows)"
    helper(app).load(table, format="Catalog", data_label=label, viewer=viewers,
                     col_other=[c for c in table.colnames if table[c].ndim == 1])
    app.data_collection[label].meta["plugin"] = plugin._plugin_name
    for ref in viewers:
        for layer in app.get_viewer(ref).layers:
            if layer.layer.label == label:
                layer.state.size = MARKER_SIZE
    return f"catalogue '{label}'"


def _table_viewer(app, label):
    """Reference of a table viewer showing the data ``label``, created if there is none."""
    from glue_jupyter.table import TableViewer

    for ref in app.get_viewer_reference_names():
        viewer = app.get_viewer(ref)
        if isinstance(viewer, TableViewer) and label in viewer.data_menu.data_labels_loaded:
            return ref
    creator = helper(app).new_viewers["Table"]
    creator.dataset = [label]
    creator.viewer_label = ref = app.return_unique_name(f"{label} table", typ="viewer")
    creator()
    return ref


def _add_columns(app, catalog, columns):
    add_columns(catalog, columns)
    shown = f" (table viewer '{_table_viewer(app, catalog.label)}')" if app.config == "deconfigged" else ""
    return f"columns {', '.join(columns.colnames)} to '{catalog.label}'{shown}"


def _hidden_subsets(app):
    """``{viewer reference: subset labels}`` of the subsets every viewer shows hidden."""
    shown = {}
    for ref in app.get_viewer_reference_names():
        for lyr in app.get_viewer(ref).layers:
            if isinstance(lyr.layer, Subset):
                key = (ref, lyr.layer.label)
                shown[key] = shown.get(key, False) or lyr.visible
    hidden = {}
    for (ref, label), visible in shown.items():
        if not visible:
            hidden.setdefault(ref, []).append(label)
    return hidden


def add_result(plugin, job, result):
    """Add ``result`` of ``plugin``'s task run on ``job`` to the app; returns what was added,
    as short phrases (e.g. ``["3 layers", "1 subset"]``). Subsets the user hid stay hidden
    (new data in a viewer, such as a catalogue, would otherwise show them again)."""
    app, image = plugin._app, job.image
    hidden = _hidden_subsets(app)
    added = []
    layers = result.layers()
    if layers:
        added.append(_add_layers(plugin, image, result, layers))
    if result.table_kind == "rows":
        plugin._step(0.8, f"adding the catalogue ({len(result.table)} rows)")
        added.append(_add_rows(plugin, f"{image.label} {plugin.task.name}", result.table,
                               viewers_showing(app, image.label)))
    elif result.table_kind == "columns":
        plugin._step(0.8, f"adding columns to {job.catalog.label}")
        added.append(_add_columns(app, job.catalog, result.columns))
    specs, previous = result.subsets(), plugin.subsets_made.get(image.label, ())
    if specs or previous:
        plugin._step(0.9, f"adding subsets ({len(specs)})")
        plugin.subsets_made[image.label], text = _add_subsets(app, image, specs, previous)
        added.append(text)
    for ref, labels in hidden.items():
        for label in labels:
            app.get_viewer(ref).data_menu.set_layer_visibility(label, False)
    return added
