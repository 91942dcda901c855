"""jdaviz tray plugins, one per registered task, and image-viewer toolbar buttons that open
them on the active layer, registered by ``glue_astrodl.setup`` (every jdaviz app loads glue
plugins).

Each task of `glue_astrodl.tasks.registry.tasks` gets the tray plugin ``astrodl-<task
name>`` (label: the task's label, category ``data:analysis``): its `TaskPlugin` subclass
if one exists (*Detect Contaminants* and *Detect Sources* have one here), else one
generated from its declaration. ``jdaviz.App()`` lists the plugins by itself. The
deprecated configured apps (``Imviz``) only show the plugins of their configuration file:
`add_to_tray` adds ours.

Importing this package does not import jdaviz; `register` does.
"""

__all__ = ["register", "add_to_tray", "plugins"]

CATEGORY = "data:analysis"
_HAND_WRITTEN = ("contaminants", "sources")  # modules of this package holding TaskPlugin subclasses


def plugins():
    """``{task name: TaskPlugin class}`` of every registered task (generating missing ones)."""
    import importlib

    from ..tasks.registry import tasks
    from .task_plugin import plugin_class

    for module in _HAND_WRITTEN:
        importlib.import_module(f"{__name__}.{module}")
    return {task.name: plugin_class(task) for task in tasks()}


def register():
    """Register a tray plugin and a viewer button per registered task with jdaviz; tasks
    registered since the last call are added (idempotent). Warns on jdaviz or glue-jupyter
    versions the private calls were not tested with (see `glue_astrodl.jdaviz._compat`)."""
    from glue.config import viewer_tool
    from jdaviz.configs.imviz.plugins.viewers import ImvizImageView
    from jdaviz.core.registries import tray_registry

    from . import _compat
    from .tools import TOOL_PREFIX, open_tool, tool_id

    _compat.check_versions()
    _compat.fix_table_viewer_layout()
    _compat.fix_catalogues_without_flux_unit()
    classes = plugins().values()
    for cls in classes:
        if cls.tray_name not in tray_registry.members:
            tray_registry(cls.tray_name, label=cls.task.label, category=CATEGORY)(cls)
        if tool_id(cls.task) not in viewer_tool.members:
            viewer_tool(open_tool(cls))
    _compat.set_toolbar_group(ImvizImageView, [tool_id(cls.task) for cls in classes], TOOL_PREFIX)


def add_to_tray(viz):
    """Add our plugins to the tray of a configured jdaviz app (e.g. ``Imviz()``), if missing."""
    from ._compat import tray_item

    register()
    app = viz.app
    present = {item["name"] for item in app.state.tray_items}
    app.state.tray_items = [*app.state.tray_items, *(tray_item(app, cls.tray_name) for cls in plugins().values()
                                                     if cls.tray_name not in present)]
    return viz
