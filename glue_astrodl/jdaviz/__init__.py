"""jdaviz tray plugins "Detect Contaminants" and "Detect Sources", registered by
``glue_astrodl.setup`` (every jdaviz app loads glue plugins), plus image-viewer toolbar
buttons that open them on the active layer.

``jdaviz.App()`` lists the plugins by itself. The deprecated configured apps (``Imviz``)
only show the plugins of their configuration file: `add_to_tray` adds ours.
"""

__all__ = ["register", "add_to_tray", "PLUGINS"]

#: tray registry names of our plugins
PLUGINS = ("astrodl-detect-contaminants", "astrodl-detect-sources")

_registered = False


def register():
    """Register the tray plugins and viewer tools with jdaviz (idempotent)."""
    global _registered
    if _registered:
        return
    from glue.config import viewer_tool
    from jdaviz.configs.imviz.plugins.viewers import ImvizImageView

    from . import contaminants, sources  # noqa: F401  (the modules register their plugins)
    from .tools import TOOL_IDS, OpenDetectContaminants, OpenDetectSources

    for tool in (OpenDetectContaminants, OpenDetectSources):
        viewer_tool(tool)
    if TOOL_IDS not in ImvizImageView.tools_nested:
        ImvizImageView.tools_nested = [*ImvizImageView.tools_nested, TOOL_IDS]
    _registered = True


def add_to_tray(viz):
    """Add our plugins to the tray of a configured jdaviz app (e.g. ``Imviz()``), if missing."""
    from jdaviz.core.registries import tray_registry

    register()
    app = viz.app
    present = {item["name"] for item in app.state.tray_items}
    app.state.tray_items = [*app.state.tray_items, *(app._create_tray_item(tray_registry.members[name])
                                                     for name in PLUGINS if name not in present)]
    return viz
