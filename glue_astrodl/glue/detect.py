"""Run a task on a glue image and put its results in the data collection.

Contaminants give one ``Data`` with a probability component per class plus the
bit-mask, linked pixel-to-pixel to the image, and one subset per class (the pixels
above the class threshold, in the class colour). Sources give the significance and
probability maps, the source catalogue linked to the image through the WCS (or its
pixel columns), and a subset of the pixels with P(source) >= ``subset_threshold``, which
also selects the catalogue rows (and those of any other linked catalogue) lying on them.
"""

from ..tasks.contaminant_classes import CLASSES, COLOURS
from .links import catalogue_links, same_grid_links
from .products import contaminant_hdus, hdus_data, image_input, source_hdus, table_data
from .subsets import set_mask_subsets

__all__ = ["CONTAMINANT_CLASSES", "contaminants_to_glue", "sources_to_glue", "detect_in_glue"]

#: Classes computed by default in the viewers: every contaminant, not the clean background.
CONTAMINANT_CLASSES = [c for c in CLASSES if c != "BG"]


def _replace(data_collection, data):
    if data.label in data_collection:
        data_collection.remove(data_collection[data.label])
    data_collection.append(data)
    return data


def contaminants_to_glue(data_collection, image, result, thresholds=None):
    """Add a `ContaminantDetection` of ``image``; returns ``(data, subset_groups)``."""
    data = _replace(data_collection, hdus_data(f"{image.label} contaminants",
                                               contaminant_hdus(result, thresholds), "probability"))
    data_collection.add_link(same_grid_links(data, image))
    masks = dict(zip(result.classes, result.masks(thresholds)))
    groups = set_mask_subsets(data_collection, image, masks, COLOURS, prefix=f"{image.label} ")
    return data, groups


def sources_to_glue(data_collection, image, result, subset_threshold=0.5):
    """Add a `SourceDetection` of ``image``; returns ``(maps, catalogue, subset_group)``."""
    maps = _replace(data_collection, hdus_data(f"{image.label} source maps", source_hdus(result), "probability"))
    data_collection.add_link(same_grid_links(maps, image))
    catalogue = _replace(data_collection, table_data(f"{image.label} sources", result.table))
    data_collection.add_link(catalogue_links(catalogue, image))
    (group,) = set_mask_subsets(data_collection, image, {f"P(source) >= {subset_threshold:g}":
                                                         result.probability >= subset_threshold},
                                prefix=f"{image.label} ")
    return maps, catalogue, group


def detect_in_glue(task, data_collection, image, **kwargs):
    """Run ``task`` (``"contaminants"`` or ``"sources"``) on ``image`` with default settings
    (contaminants: `CONTAMINANT_CLASSES`) and add its results; returns the task result."""
    img = image_input(image)
    if task == "contaminants":
        from ..tasks.contaminants import detect_contaminants

        result = detect_contaminants(img, classes=kwargs.pop("classes", CONTAMINANT_CLASSES), **kwargs)
        contaminants_to_glue(data_collection, image, result)
    elif task == "sources":
        from ..tasks.sources import detect_sources

        result = detect_sources(img, **kwargs)
        sources_to_glue(data_collection, image, result)
    else:
        raise ValueError(f"task must be 'contaminants' or 'sources', got {task!r}")
    return result
