"""Run a task on a glue image and put its `Result` in the data collection.

What a result holds decides what glue gets, whatever the task:

* layers: one image ``Data`` ``"<image> <task>"`` with a component per layer, linked pixel
  to pixel to the image;
* subsets: one subset group ``"<image> <name>"`` per `SubsetSpec` covering at least
  `~glue_astrodl.products.SUBSET_FLOOR` of the image, in its colour, on the image grid,
  which also selects the rows of every catalogue linked to the image;
* new rows (a source list): a catalogue ``"<image> <task> catalogue"`` linked to the image
  through its WCS (or its pixel columns);
* new columns: components added to the input catalogue ``Data`` itself, with their units,
  so subsets such as ``mf_snr > 10`` select on the catalogue and, through its links, on the
  image.
"""

from ..products import SUBSET_FLOOR, add_columns, data_table, image_input, set_mask_subsets
from ..tasks.registry import get_task
from .links import catalogue_links, same_grid_links
from .products import layers_data, table_data

__all__ = ["add_result", "run_task"]


def _replace(data_collection, data):
    if data.label in data_collection:
        data_collection.remove(data_collection[data.label])
    data_collection.append(data)
    return data


def add_result(data_collection, image, result, task_name, catalogue=None):
    """Add ``result`` of task ``task_name`` on ``image`` (and ``catalogue``) to ``data_collection``.

    Returns ``{"layers": Data or None, "subsets": [SubsetGroup], "table": Data or None}``.

    Examples
    --------
    >>> import numpy as np
    >>> from glue.core import Data, DataCollection
    >>> from glue_astrodl.sim import simulate_point_sources
    >>> from glue_astrodl import detect_sources
    >>> frame = simulate_point_sources((96, 96), snr=(20,), n_per_snr=3, fwhm=2.5, seed=1)
    >>> image = Data(DATA=frame.image, label="img")
    >>> dc = DataCollection([image])
    >>> added = add_result(dc, image, detect_sources(frame.image, fwhm=2.5), "sources")
    >>> added["table"].label, int(added["table"].size)
    ('img sources catalogue', 3)
    """
    out = {"layers": None, "subsets": [], "table": None}
    layers = result.layers()  # computed once: a contaminant bit-mask is made on each call
    if layers:
        out["layers"] = _replace(data_collection, layers_data(f"{image.label} {task_name}", result, layers))
        data_collection.add_link(same_grid_links(out["layers"], image))
    if result.table_kind == "rows":
        out["table"] = _replace(data_collection, table_data(f"{image.label} {task_name} catalogue", result.table))
        data_collection.add_link(catalogue_links(out["table"], image))
    elif result.table_kind == "columns":
        if catalogue is None:
            raise ValueError(f"{task_name} adds columns: give the catalogue Data they belong to")
        add_columns(catalogue, result.columns)
        out["table"] = catalogue
    specs = result.subsets()
    out["subsets"] = set_mask_subsets(data_collection, image, {s.name: s.mask for s in specs},
                                      {s.name: s.colour for s in specs if s.colour}, prefix=f"{image.label} ",
                                      min_fraction=SUBSET_FLOOR)
    return out


def run_task(task_name, data_collection, image, catalogue=None, callback=None, **params):
    """Run task ``task_name`` on the glue image ``image`` (and the catalogue ``Data``
    ``catalogue`` for catalogue tasks) with ``params`` (text or typed, checked by the task's
    `Param` declarations), add its results (`add_result`) and return the `Result`.

    Examples
    --------
    >>> from glue.core import Data, DataCollection
    >>> from glue_astrodl.sim import simulate_point_sources
    >>> frame = simulate_point_sources((96, 96), snr=(20,), n_per_snr=3, fwhm=2.5, seed=1)
    >>> image = Data(DATA=frame.image, label="img")
    >>> dc = DataCollection([image])
    >>> run_task("sources", dc, image, fwhm="2.5").summary()
    '3 sources at S/N >= 5 (FWHM 2.50 px); no celestial FITS WCS: working in pixel coordinates'
    >>> [d.label for d in dc]
    ['img', 'img sources', 'img sources catalogue']
    """
    task = get_task(task_name)
    inputs = [image_input(image)]
    if task.needs_catalogue:
        if catalogue is None:
            raise ValueError(f"{task.label} needs a catalogue")
        inputs.append(data_table(catalogue))
    result = task.run(*inputs, callback=callback, **task.parse_params(params))
    add_result(data_collection, image, result, task_name, catalogue)
    return result
