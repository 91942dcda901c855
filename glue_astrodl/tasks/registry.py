"""The task registry: every science task declares itself once, and the front ends are built
from that declaration.

A task module in ``glue_astrodl/tasks`` calls `register_task` with a `Task` (its name, label,
input kind, typed `Param` list, models and ``run`` function); `tasks` finds every module of
the package and every entry point of the group ``glue_astrodl.tasks`` (another package's
``module:attribute`` naming a `Task`), so adding a task touches no front-end file. The
``astrodl`` subcommands (`glue_astrodl.cli`), the Dask file job (`glue_astrodl.jobs`), the
glue tools and results (`glue_astrodl.glue`) and the jdaviz tray plugins
(`glue_astrodl.jdaviz`) are all generated from it.

Task modules must not import torch at module level: the registry is read when ``astrodl
--help`` runs and when a viewer starts.
"""

import importlib
import pkgutil
from dataclasses import dataclass, field

from ..core.errors import BadInputError

__all__ = ["IMAGE", "IMAGE_CATALOGUE", "BANDS_CATALOGUE", "KINDS", "Param", "Task", "register_task", "get_task",
           "tasks", "positive", "fraction", "ENTRY_POINT_GROUP"]

IMAGE = "image"  # one image in
IMAGE_CATALOGUE = "image+catalogue"  # one image and a catalogue of positions on it
BANDS_CATALOGUE = "bands+catalogue"  # several band images (linked by WCS) and a catalogue
KINDS = (IMAGE, IMAGE_CATALOGUE, BANDS_CATALOGUE)
ENTRY_POINT_GROUP = "glue_astrodl.tasks"


@dataclass(frozen=True)
class Param:
    """A typed task parameter, from which every front end builds its control.

    Parameters
    ----------
    name : str
        Keyword argument of the task's ``run``; the CLI flag is ``--name`` (``_`` -> ``-``).
    type : callable
        Turns the text a user typed (CLI, viewer field) into the value, e.g. ``float``, or a
        parser such as ``parse_priors``; values that are not text are passed to
        ``validate`` as they are.
    default : object
        Value when the user gives none (``None``: the task decides, e.g. from the header).
    help : str
        One line shown by ``--help`` and as the viewer field's hint.
    choices : tuple, optional
        The allowed values (a menu in the viewers, ``choices=`` in argparse).
    validate : callable, optional
        ``validate(value) -> value``; raises `BadInputError` (or ``ValueError``) with a
        one-line reason.
    label : str, optional
        The viewer field's label (default: ``help`` up to its first comma or colon).

    Examples
    --------
    >>> p = Param("threshold", float, 5.0, "S/N threshold of the table", validate=positive)
    >>> p.parse("3")
    3.0
    >>> p.parse("-1")
    Traceback (most recent call last):
    ...
    glue_astrodl.core.errors.BadInputError: threshold: must be positive, got -1.0
    """

    name: str
    type: object = str
    default: object = None
    help: str = ""
    choices: tuple = None
    validate: object = None
    label: str = None

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")

    @property
    def title(self):
        return self.label or self.help.split(":")[0].split(",")[0].strip() or self.name

    def parse(self, value):
        """The typed, validated value of ``value`` (text or already typed); `BadInputError` if not.

        Empty text and ``None`` give ``None`` (the task's own default rule) unless the
        parameter has a default.
        """
        if value is None or (isinstance(value, str) and not value.strip()):
            return self.default
        try:
            if isinstance(value, str) and self.type is not str:
                value = self.type(value.strip())
            if self.choices is not None and value not in self.choices:
                raise BadInputError(f"must be one of {', '.join(map(str, self.choices))}, got {value!r}")
            if self.validate is not None:
                value = self.validate(value)
        except (BadInputError, ValueError, TypeError) as err:
            text = str(err).removeprefix(f"{self.name}: ")
            raise BadInputError(f"{self.name}: {text}") from None
        return value


def positive(value):
    """Validator: a number > 0 (its type kept)."""
    if not float(value) > 0:
        raise BadInputError(f"must be positive, got {value}")
    return value


def fraction(value):
    """Validator: a number in the open interval (0, 1) (its type kept)."""
    if not 0 < float(value) < 1:
        raise BadInputError(f"must be in (0, 1), got {value}")
    return value


@dataclass(frozen=True)
class Task:
    """A science task, declared once.

    Parameters
    ----------
    name : str
        Registry key and ``astrodl`` subcommand, e.g. ``"photometry"``.
    label : str
        What users read in the viewers, e.g. ``"Forced Photometry"``.
    kind : str
        `IMAGE`, `IMAGE_CATALOGUE` or `BANDS_CATALOGUE`: the inputs ``run`` takes first
        (an image; an image and a catalogue; a list of band images and a catalogue).
    run : callable
        ``run(inputs..., *, progress, callback, **params) -> Result``; the Python API
        function (e.g. `glue_astrodl.detect_contaminants`).
    params : tuple of Param
        The parameters every front end offers.
    models : tuple of str
        Names of the installed models the task uses (``astrodl models`` lists them).
    description : str
        One sentence: what the user gets.
    tag : str
        Output file tag, ``<input>_<tag>.fits`` (default: ``name``).
    products : tuple of str
        FITS products a file job can write (first is the default), e.g. ``("proba",
        "masks", "bitmask")``; a task that writes one kind leaves the default.
    takes_mask : bool
        The task ignores flagged pixels given as a mask: the front ends offer ``--mask
        FILE`` and ``--mask-contaminants`` (see `glue_astrodl.tasks.masks`).
    demo_input : str
        The simulated frame ``astrodl demo`` runs the task on: ``"sky"`` (stars and
        galaxies; catalogue tasks get its truth catalogue) or ``"raw"`` (a raw frame with
        detector defects and artefacts).
    write : callable, optional
        ``write(input, output, *, product, regions=None, region_min_area, progress=False,
        **params) -> str`` for tasks that stream their products to the FITS file ``output``
        tile by tile (and a region file to ``regions``, without polygons under
        ``region_min_area`` pixels²), returning the one-line summary; by default the
        file job (`glue_astrodl.jobs.task_job`) calls ``run`` and ``Result.to_fits``.

    Examples
    --------
    >>> from glue_astrodl.tasks.registry import IMAGE, Param, Task, get_task
    >>> task = Task("peaks", "Find Peaks", IMAGE, run=lambda image, **kw: None,
    ...             params=(Param("threshold", float, 5.0, "S/N threshold", validate=positive),))
    >>> task.parse_params({"threshold": "3.5"}), task.output_tag, task.needs_catalogue
    ({'threshold': 3.5}, 'peaks', False)
    >>> get_task("sources").label
    'Detect Sources'
    """

    name: str
    label: str
    kind: str
    run: object
    params: tuple = ()
    models: tuple = ()
    description: str = ""
    tag: str = None
    products: tuple = ("fits",)
    takes_mask: bool = False
    demo_input: str = "sky"
    write: object = None
    module: str = field(default=None, compare=False)

    def __post_init__(self):
        if self.module is None:
            object.__setattr__(self, "module", getattr(self.run, "__module__", None))
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name!r}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"task {self.name!r}: duplicate parameter names {names}")

    @property
    def output_tag(self):
        return self.tag or self.name

    @property
    def needs_catalogue(self):
        return self.kind in (IMAGE_CATALOGUE, BANDS_CATALOGUE)

    def param(self, name):
        """The `Param` called ``name``."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"task {self.name!r} has no parameter {name!r}")

    def parse_params(self, values):
        """``{name: value}`` (text or typed) -> typed, validated keyword arguments of ``run``;
        parameters left out are not passed (``run``'s own default applies)."""
        unknown = set(values) - {p.name for p in self.params}
        if unknown:
            raise BadInputError(f"{self.name}: unknown parameter(s) {', '.join(sorted(unknown))}")
        return {name: self.param(name).parse(value) for name, value in values.items()}


_TASKS = {}
_discovered = False


def register_task(task):
    """Add ``task`` to the registry (re-registering the same name from the same module replaces
    it; another module taking a name raises ``ValueError``). Returns ``task``.

    A task module ends with ``TASK = register_task(Task(...))``; a module of
    ``glue_astrodl/tasks`` is found by itself, another package names its ``Task`` in the
    entry-point group ``glue_astrodl.tasks`` instead.

    Examples
    --------
    >>> sorted(t.name for t in tasks())[:3]
    ['contaminants', 'photometry', 'sources']
    """
    old = _TASKS.get(task.name)
    if old is not None and old.module != task.module:
        raise ValueError(f"task {task.name!r} is already registered by {old.module}")
    _TASKS[task.name] = task
    return task


def _discover():
    """Import every module of this package (they register their tasks) and the entry points."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    from importlib.metadata import entry_points

    package = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{__package__}.{info.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        task = ep.load()
        if isinstance(task, Task) and task.name not in _TASKS:
            register_task(task)


def tasks():
    """Every registered `Task`, in registration order (built-in modules alphabetically)."""
    _discover()
    return list(_TASKS.values())


def get_task(name):
    """The task called ``name``; `BadInputError` listing the known ones if none."""
    _discover()
    try:
        return _TASKS[name]
    except KeyError:
        raise BadInputError(f"unknown task {name!r} (known: {', '.join(_TASKS)})") from None
