"""The "Detect Contaminants" tray plugin: the task plugin with a class table (priors,
thresholds, flagged fractions), a test-time augmentation switch and region export."""

import re
from pathlib import Path

from jdaviz.core.events import SnackbarMessage
from jdaviz.core.template_mixin import SelectPluginComponent
from traitlets import Any, Bool, Dict, Float, Int, List, Unicode, observe, validate

from ..core.errors import BadInputError
from ..core.weights import find_model
from ..io.regions import MIN_REGION_AREA, REGION_FORMATS, write_regions
from ..tasks.contaminant_classes import MAXIMASK
from ..tasks.contaminants import default_thresholds
from ..tasks.registry import get_task
from ..tasks.results import BITMASK
from .task_plugin import TaskPlugin

__all__ = ["DetectContaminants"]

SUFFIXES = {"ds9": ".reg", "crtf": ".crtf", "fits": ".fits"}
CLASSES = MAXIMASK.classes


def _merged(current, update, what, valid, interval):
    """``current`` updated with ``update`` (``{class: value}``), every value checked."""
    merged = dict(current, **{str(k).upper(): v for k, v in update.items()})
    for name, value in merged.items():
        if name not in CLASSES:
            raise BadInputError(f"unknown class {name!r}; classes are {', '.join(CLASSES)}")
        if not valid(float(value)):
            raise BadInputError(f"{what} of {name} must be in {interval}, got {value}")
    return {name: float(value) for name, value in merged.items()}


class DetectContaminants(TaskPlugin):
    """Per-pixel probabilities of contaminants (MaxiMask's 14 classes) in an image.

    Run adds, for the chosen image ``<data>``: one probability layer ``<data> P(<class>)``
    per class (in the data menu, to show in any viewer), the bit-mask ``<data> contaminant
    bitmask`` (MaxiMask bit codes, shown as a data-quality layer of ``<data>``, see the Data
    Quality plugin; *Detect Sources* offers it as its mask), and one subset ``<data>
    <class>`` per flagged class (pixels at or above the class threshold, in the class
    colour). Inference runs in the background with a progress bar; Cancel stops it. A
    re-run updates the layers.

    Public API (``app.plugins['Detect Contaminants']``):

    * ``dataset``: the image (a data label).
    * ``classes``: the classes to compute (default: all but ``BG``, the clean background).
    * ``priors``: ``{class: fraction of pixels of that class in your data}``; setting some
      classes keeps the others. Probabilities are corrected from the training priors to
      these (Bayes' rule). Default: the model card's default priors.
    * ``thresholds``: ``{class: probability threshold}`` of the masks, subsets and regions.
      Default: the model card's MCC-optimal thresholds moved to the priors; changing a
      prior resets that class's threshold to this default.
    * ``tta``: test-time augmentation, the number of rotations/flips of the image averaged
      (1, 2, 4 or 8; the switch sets 8): more accurate, that many times slower. Default 1.
    * ``device``, ``model_name`` (read-only): where inference runs (described once the
      plugin is opened or run, so that torch is not imported at app start), which model.
    * ``flagged`` (read-only): fraction of pixels flagged per class by the last run.
    * ``result`` (read-only): the last `ContaminantDetection`.
    * :meth:`run`, :meth:`cancel`, :meth:`export_regions`.
    """

    task = get_task("contaminants")
    tray_name = "astrodl-detect-contaminants"
    own_params = ("classes", "priors", "tta", "model", "precision")
    flag_map = "MaxiMask"
    template_file = __file__, "contaminants.vue"

    classes_items = List().tag(sync=True)
    classes_selected = Any([]).tag(sync=True)
    classes_multiselect = Bool(True).tag(sync=True)
    priors = Dict().tag(sync=True)
    thresholds = Dict().tag(sync=True)
    tta = Int(1).tag(sync=True)
    rows = List().tag(sync=True)  # the class table: name, description, colour, selected, prior, threshold, flagged
    device = Unicode("").tag(sync=True)
    model_name = Unicode("").tag(sync=True)
    flagged = Dict().tag(sync=True)
    export_format_items = List().tag(sync=True)
    export_format_selected = Unicode("").tag(sync=True)
    export_classes_items = List().tag(sync=True)
    export_classes_selected = Any([]).tag(sync=True)
    export_classes_multiselect = Bool(True).tag(sync=True)
    export_filename = Unicode("").tag(sync=True)
    export_folder = Unicode("").tag(sync=True)  # where a relative filename is written
    export_min_area = Float(MIN_REGION_AREA).tag(sync=True)
    export_status = Unicode("").tag(sync=True)  # the last export, under its button (the run's summary stays)
    has_result = Bool(False).tag(sync=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._plugin_description = "Flag cosmic rays, trails, bad pixels and other contaminants."
        self._card = find_model(self.task.param("model").default)
        self.model_name = f"{self._card.name} {self._card.version}"
        self.classes = SelectPluginComponent(self, items="classes_items", selected="classes_selected",
                                             multiselect="classes_multiselect", manual_options=list(CLASSES))
        self.classes.selected = list(MAXIMASK.foreground)
        self.export_classes = SelectPluginComponent(self, items="export_classes_items",
                                                    selected="export_classes_selected",
                                                    multiselect="export_classes_multiselect",
                                                    manual_options=list(CLASSES))
        self.export_format = SelectPluginComponent(self, items="export_format_items", selected="export_format_selected",
                                                   manual_options=list(SUFFIXES))
        self.priors = dict(MAXIMASK.default_priors, **self._card.get("default_priors", {}))
        self.thresholds = default_thresholds(self._card, self.priors)

    def _expose(self):
        return (*super()._expose(), "classes", "priors", "thresholds", "tta", "export_regions", "export_classes",
                "export_format", "export_filename", "export_min_area")

    def _readonly(self):
        return (*super()._readonly(), "device", "model_name", "flagged")

    @validate("priors")
    def _valid_priors(self, proposal):
        return _merged(self.priors, proposal["value"], "prior", lambda p: 0.0 < p < 1.0, "(0, 1)")

    @validate("thresholds")
    def _valid_thresholds(self, proposal):
        return _merged(self.thresholds, proposal["value"], "threshold", lambda t: 0.0 <= t <= 1.0, "[0, 1]")

    @validate("export_min_area")
    def _valid_min_area(self, proposal):
        area = float(proposal["value"])
        if not area >= 0:
            raise BadInputError(f"smallest region area must be >= 0 pixels², got {proposal['value']}")
        return area

    @validate("tta")
    def _valid_tta(self, proposal):
        return self.task.param("tta").parse(proposal["value"])

    @observe("plugin_opened")
    def _describe_device(self, *args):
        """Shown once the plugin is opened (or run): torch is not imported at app start."""
        if self.device:
            return
        from ..core.device import describe_device

        try:
            self.device = describe_device()
        except BadInputError as err:  # e.g. ASTRODL_DEVICE=cuda without CUDA: Run will say so too
            self.device = str(err)

    @observe("priors")
    def _reset_thresholds(self, change):
        moved = {c: p for c, p in change["new"].items() if change["old"] and change["old"].get(c) != p}
        if moved:
            self.thresholds = default_thresholds(self._card, moved)

    @observe("classes_selected", "priors", "thresholds", "flagged")
    def _update_rows(self, *args):
        if not hasattr(self, "classes"):
            return
        selected = self.classes.selected
        self.rows = [{"name": c, "description": MAXIMASK.descriptions[c], "colour": MAXIMASK.colours[c],
                      "selected": c in selected, "prior": self.priors[c], "threshold": round(self.thresholds[c], 4),
                      "flagged": f"{self.flagged[c]:.2%}" if c in self.flagged else ""}
                     for c in CLASSES if c in self.priors and c in self.thresholds]

    @observe("dataset_selected", "export_format_selected")
    def _default_filename(self, *args):
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.dataset_selected or "image").strip("_")
        self.export_filename = f"{stem}_contaminants{SUFFIXES.get(self.export_format_selected, '.reg')}"
        self.export_folder = str(Path.cwd())

    def vue_toggle_class(self, name):
        selected = self.classes.selected
        self.classes.selected = [c for c in CLASSES if (c in selected) != (c == name)]

    def _set_from_table(self, trait, data):
        """A prior or threshold typed in the class table; an invalid one is reported and the
        table shows the previous value again."""
        try:
            setattr(self, trait, {data["name"]: data["value"]})
        except (BadInputError, ValueError, TypeError) as err:
            self._notify(f"{self._plugin_name}: invalid {trait[:-1]} of {data['name']}: {err}", "error")
            self.send_state("rows")

    def vue_set_prior(self, data):
        self._set_from_table("priors", data)

    def vue_set_threshold(self, data):
        self._set_from_table("thresholds", data)

    def layer_label(self, image_label, layer):
        if layer.kind == BITMASK:
            return f"{image_label} contaminant bitmask"
        return super().layer_label(image_label, layer)

    def task_kwargs(self):
        classes = list(self.classes.selected)
        if not classes:
            raise BadInputError("no class selected")
        self._describe_device()
        return dict(super().task_kwargs(), classes=classes, priors={c: self.priors[c] for c in classes}, tta=self.tta)

    def _show(self, job, result):
        result.thresholds.update({c: self.thresholds[c] for c in result.classes})
        message = super()._show(job, result)
        self.has_result = True
        self.flagged = result.flagged_fractions()
        self.export_classes.selected = [c for c in result.classes if c != MAXIMASK.background]
        return message

    def run(self, dataset=None, classes=None, priors=None, thresholds=None, tta=None):
        """Detect contaminants (blocking) and add the results; returns the `ContaminantDetection`.

        Arguments given here update the plugin's settings first (see the class docstring).
        """
        classes = None if classes is None else [c.upper() for c in classes]
        return super().run(dataset=dataset, classes=classes, priors=priors, thresholds=thresholds, tta=tta)

    def vue_write_regions(self, *args):
        try:
            self.export_regions()
        except Exception:  # already reported in the snackbar
            pass

    def vue_set_min_area(self, value):
        """The smallest-region field; an invalid entry is reported and the field shows the
        value in use again."""
        try:
            self.export_min_area = float(value)
            return
        except BadInputError as err:
            self._export_notify(f"{self._plugin_name}: {err}", "error")
        except ValueError:
            self._export_notify(f"{self._plugin_name}: smallest region area must be a number, got {value!r}", "error")
        self.send_state("export_min_area")

    def _export_notify(self, text, color):
        """Report an export under its button and in the snackbar; the run's summary stays."""
        self.export_status = text
        self.hub.broadcast(SnackbarMessage(text, color=color, sender=self))

    def export_regions(self, filename=None, classes=None, format=None, min_area=None):
        """Write contour polygons of the flagged pixels of ``classes`` (default: the export
        selection) of the last run to a region file: ``format`` ``'ds9'``, ``'crtf'`` or
        ``'fits'`` (default: the selection, or the suffix of ``filename``); polygons under
        ``min_area`` pixels² (default ``export_min_area``) are dropped. Returns the path."""
        from regions import Regions

        try:
            if self.result is None:
                raise BadInputError("run the detection first")
            classes = [c.upper() for c in (classes or self.export_classes.selected)]
            missing = [c for c in classes if c not in self.result.classes]
            if not classes or missing:
                raise BadInputError(f"choose classes computed by the last run ({', '.join(self.result.classes)})")
            filename = filename or self.export_filename
            if format is None:
                format = REGION_FORMATS.get(Path(filename).suffix.lower(), self.export_format.selected)
            min_area = self.export_min_area if min_area is None else min_area
            regs = Regions([r for c in classes for r in self.result.to_regions(c, self.result.thresholds[c],
                                                                               min_area=min_area)])
            path = Path(write_regions(regs, filename, format=format, wcs=self.result.wcs)).resolve()
        except Exception as err:
            self._export_notify(f"{self._plugin_name}: export failed: {err}", "error")
            raise
        self._export_notify(f"{len(regs)} regions of {', '.join(classes)} written to {path.name} in {path.parent}",
                            "success")
        return str(path)
