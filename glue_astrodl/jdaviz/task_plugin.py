"""`TaskPlugin`: the jdaviz tray plugin of a registered task, built from its declaration.

Inputs follow the task's kind: the image (several band images for
`~glue_astrodl.tasks.registry.BANDS_CATALOGUE`), a catalogue of the app for catalogue tasks,
and a mask for tasks that take one (none, a bit-mask layer computed for the same image, or
"run Detect Contaminants first"). Every `~glue_astrodl.tasks.registry.Param` gets a control
(a menu when it has ``choices``, else a text field; label `Param.title`, hint
`Param.help`) and a plugin attribute holding its typed value. An invalid entry is shown on
its field and blocks Run with the reason, so a run never uses a value the user did not
see. Run works in a worker thread (`glue_astrodl.jdaviz.worker`) and adds the `Result`
through `glue_astrodl.jdaviz.results`; its summary is the success message.

A task gets this generic plugin (`plugin_class`) unless a subclass of `TaskPlugin` with its
``task`` exists: the subclass may take some parameters over (``own_params``) and use its
own ``.vue``.
"""

import types
from dataclasses import dataclass
from functools import partial

from glue.core.message import DataCollectionAddMessage, DataCollectionDeleteMessage
from jdaviz.core.template_mixin import DatasetMultiSelectMixin, DatasetSelect, PluginTemplateMixin, \
    SelectPluginComponent
from jdaviz.core.user_api import PluginUserApi
from traitlets import Bool, List, Unicode, observe

from ..core.errors import BadInputError
from ..products import data_table, image_input, one_line
from ..tasks.masks import RUN_CONTAMINANTS
from ..tasks.registry import BANDS_CATALOGUE, get_task
from .results import add_result, mask_layers, mask_of
from .worker import BackgroundRunMixin, vue_component

__all__ = ["TaskPlugin", "Job", "plugin_class", "NO_MASK"]

NO_MASK = "None"  # the mask choice "no mask"


def _text(value):
    """A typed parameter value as its field shows it (what `Param.parse` reads back)."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


@dataclass
class Job:
    """What one run works on, read from the controls when Run is pressed."""

    images: list  # glue Data: the image (or the bands)
    catalog: object  # glue Data of the catalogue, or None
    kwargs: dict  # keyword arguments of the task's run

    @property
    def image(self):
        """The image the results belong to (the first band)."""
        return self.images[0]


class _ParamValue:
    """A plugin attribute holding a task parameter's typed value; setting it parses and
    validates (`BadInputError` with the reason, the value unchanged)."""

    def __init__(self, param):
        self.param = param
        self.__doc__ = param.help

    def __get__(self, plugin, owner=None):
        return self if plugin is None else plugin._values[self.param.name]

    def __set__(self, plugin, value):
        plugin._set_param(self.param.name, value)


class TaskPlugin(BackgroundRunMixin, PluginTemplateMixin, DatasetMultiSelectMixin):
    """Base of the tray plugins of tasks (see the module docstring).

    Public API (``app.plugins[task.label]``): ``dataset`` (the image; several for band
    tasks), ``catalog`` (catalogue tasks), ``mask`` (tasks that take one), one attribute
    per task parameter, :meth:`run`, :meth:`cancel`, and ``result`` (read-only: the last
    `Result`).
    """

    task = None  # the Task
    tray_name = None  # tray registry name (default "astrodl-<task name>")
    own_params = ()  # parameters a subclass shows and passes itself (see task_kwargs)
    flag_map = None  # Data Quality flag-map name of bit-mask layers (default: the task's label)
    template_file = __file__, "task_plugin.vue"

    fields = List().tag(sync=True)  # one control per parameter: name, label, hint, text, choices, error
    blocked = Unicode("").tag(sync=True)  # why Run is disabled (invalid fields), or ""
    needs_catalogue = Bool(False).tag(sync=True)
    takes_mask = Bool(False).tag(sync=True)
    catalog_items = List().tag(sync=True)
    catalog_selected = Unicode("").tag(sync=True)
    mask_items = List().tag(sync=True)
    mask_selected = Unicode("").tag(sync=True)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.task is None:
            return
        cls.tray_name = cls.tray_name or f"astrodl-{cls.task.name}"
        cls.flag_map = cls.flag_map or cls.task.label
        for param in cls._params():
            current = getattr(cls, param.name, None)
            if current is not None and not isinstance(current, _ParamValue):
                raise ValueError(f"task {cls.task.name!r}: parameter {param.name!r} clashes with a jdaviz plugin "
                                 "attribute; rename it or list it in own_params")
            setattr(cls, param.name, _ParamValue(param))

    @classmethod
    def _params(cls):
        """The parameters with generated controls."""
        return [p for p in cls.task.params if p.name not in cls.own_params]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        task = self.task
        self.plugin_key = task.label
        self._plugin_description = self.docs_description = task.description
        self.components = {**self.components, "astrodl-param-fields": vue_component("param_fields")}
        self.multiselect = task.kind == BANDS_CATALOGUE
        self.dataset.add_filter("is_image_not_spectrum", "not_from_this_plugin")
        self._values = {p.name: p.default for p in self._params()}
        self.fields = [self._field(p) for p in self._params()]
        self.result = None
        self.subsets_made = {}  # image label -> names of the subsets the last run made on it
        self.needs_catalogue, self.takes_mask = task.needs_catalogue, task.takes_mask
        if task.needs_catalogue:
            self.catalog = DatasetSelect(self, "catalog_items", "catalog_selected", filters=["is_catalog"])
        if task.takes_mask:
            self._run_first = f"Run {get_task(RUN_CONTAMINANTS).label} first"
            self.mask = SelectPluginComponent(self, items="mask_items", selected="mask_selected",
                                              manual_options=[NO_MASK, self._run_first])
            for message in (DataCollectionAddMessage, DataCollectionDeleteMessage):
                self.hub.subscribe(self, message, handler=self._update_masks)
            self._update_masks()

    @property
    def user_api(self):
        return PluginUserApi(self, expose=self._expose(), readonly=self._readonly())

    def _expose(self):
        inputs = ["dataset"] + ["catalog"] * self.task.needs_catalogue + ["mask"] * self.task.takes_mask
        return (*inputs, *(p.name for p in self._params()), "run", "cancel")

    def _readonly(self):
        return ("result",)

    # parameters ------------------------------------------------------------------------

    def field_hint(self, param):
        """The hint under ``param``'s control (default: `Param.help`)."""
        return param.help

    def _field(self, param, text=None, error=""):
        return {"name": param.name, "label": param.title, "hint": self.field_hint(param),
                "text": _text(self._values[param.name]) if text is None else str(text), "error": error,
                "choices": None if param.choices is None else [_text(c) for c in param.choices]}

    def _show_field(self, name, **field):
        self.fields = [self._field(self.task.param(name), **field) if f["name"] == name else f for f in self.fields]

    def _set_param(self, name, value, from_ui=False):
        """Set parameter ``name``; an invalid value raises, or from the UI stays on its field
        with the reason (blocking Run) while the parameter keeps its value."""
        try:
            typed = self.task.param(name).parse(value)
        except BadInputError as err:
            if not from_ui:
                raise
            self._show_field(name, text=value, error=one_line(err).removeprefix(f"{name}: "))
            return
        self._values[name] = typed
        self._show_field(name)

    def vue_set_param(self, data):
        self._set_param(data["name"], data["value"], from_ui=True)

    @observe("fields")
    def _block_run(self, *args):
        self.blocked = "; ".join(f"{f['label']}: {f['error']}" for f in self.fields if f["error"])

    @observe("dataset_selected")
    def _update_for_image(self, *args):
        if not hasattr(self, "_values"):  # during __init__
            return
        self.fields = [dict(f, hint=self.field_hint(self.task.param(f["name"]))) for f in self.fields]
        if self.task.takes_mask:
            self._update_masks()

    def _update_masks(self, *args):
        """Mask choices: none, the bit-mask layers computed for the selected image, or running
        the contaminant task first."""
        choices = [NO_MASK, *mask_layers(self._app.data_collection, self.dataset.selected), self._run_first]
        self.mask.choices = choices
        if self.mask.selected not in choices:
            self.mask.selected = NO_MASK

    def _mask_value(self):
        choice = self.mask.selected
        if choice == NO_MASK:
            return None
        if choice == self._run_first:
            return RUN_CONTAMINANTS
        return mask_of(self._app.data_collection[choice])

    def task_kwargs(self):
        """Keyword arguments of the task's run from the controls (subclasses add their own)."""
        return dict(self._values)

    # running ---------------------------------------------------------------------------

    def _job(self):
        """The `Job` of the controls now; `BadInputError` saying why there is none."""
        images = self.dataset.selected_dc_item
        images = [d for d in (images if isinstance(images, list) else [images]) if d is not None]
        if not images:
            raise BadInputError("no image selected")
        if self.blocked:
            raise BadInputError(self.blocked)
        catalog = None
        if self.task.needs_catalogue:
            catalog = self.catalog.selected_dc_item
            if catalog is None:
                raise BadInputError("no catalogue selected")
        kwargs = self.task_kwargs()
        if self.task.takes_mask:
            kwargs["mask"] = self._mask_value()
        return Job(images, catalog, kwargs)

    def _compute(self, job, callback):
        inputs = [image_input(d) for d in job.images]
        args = [inputs if self.task.kind == BANDS_CATALOGUE else inputs[0]]
        if job.catalog is not None:
            args.append(data_table(job.catalog))
        return self.task.run(*args, callback=callback, **job.kwargs)

    def _show(self, job, result):
        """Add ``result`` to the app; returns the success message."""
        added = add_result(self, job, result)
        self.result = result
        return f"{job.image.label}: {result.summary()}; added {', '.join(added)}"

    def layer_label(self, image_label, layer):
        """The data label of a result `Layer` of the image ``image_label``."""
        return f"{image_label} {layer.name}"

    def _prepare(self):
        job = self._job()
        return partial(self._compute, job), partial(self._show, job)

    def _subject(self):
        selected = self.dataset.selected
        return ", ".join(selected) if isinstance(selected, list) else selected

    def vue_start(self, *args):
        """The Run button: run in a worker thread."""
        self._start(self._prepare, False, self._subject())

    def run(self, **settings):
        """Run the task (blocking) and add its results; returns the `Result`.

        ``settings`` (e.g. ``dataset="raw"`` or a parameter) are applied first, as the
        attributes of the user API are; None leaves a setting as it is.
        """
        api = self.user_api
        for name, value in settings.items():
            if value is not None:
                setattr(api, name, value)
        return self._start(self._prepare, True, self._subject())


def _api_doc(task):
    """The generated plugin's docstring: the task and its parameters."""
    params = "\n".join(f"    * ``{p.name}``: {p.help}" for p in task.params)
    return f"""{task.label}: {task.description}

    Generated from the task's declaration (`glue_astrodl.tasks.registry.Task`
    ``{task.name!r}``); see `TaskPlugin` for the inputs, :meth:`run` and :meth:`cancel`.
    Parameters (plugin attributes):

{params}
    """


def plugin_class(task):
    """The `TaskPlugin` subclass of ``task``: the existing one (hand-written, or generated by
    an earlier call), else a new one generated from the declaration."""
    stack = list(TaskPlugin.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls.task is not None and cls.task.name == task.name:
            return cls
        stack.extend(cls.__subclasses__())
    name = "".join(w.capitalize() for w in task.name.replace("-", "_").split("_")) + "Plugin"
    return types.new_class(name, (TaskPlugin,), exec_body=lambda ns: ns.update(
        task=task, __doc__=_api_doc(task), __module__=__name__))
