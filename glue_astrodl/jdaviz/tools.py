"""jdaviz viewer toolbar buttons that open "Detect Contaminants" / "Detect Sources" on the
viewer's active image layer (the plugin then runs with its settings). In a configured app
(Imviz) they first add the plugins to its tray."""

from glue.viewers.common.tool import Tool

from ..glue.tools import ICONS

__all__ = ["OpenDetectContaminants", "OpenDetectSources", "TOOL_IDS"]


class _OpenPlugin(Tool):
    plugin = None  # tray registry name (see glue_astrodl.jdaviz.PLUGINS)

    def activate(self):
        app = self.viewer.jdaviz_app
        try:
            plugin = app.get_tray_item_from_name(self.plugin)
        except KeyError:  # a configured app (Imviz) whose tray lacks our plugins
            from . import add_to_tray

            add_to_tray(app._jdaviz_helper)
            plugin = app.get_tray_item_from_name(self.plugin)
        plugin.open_in_tray(scroll_to=True)
        layer = self.viewer.active_image_layer
        if layer is not None and layer.layer.label in plugin.dataset.choices:
            plugin.dataset.selected = layer.layer.label


class OpenDetectContaminants(_OpenPlugin):
    icon = str(ICONS / "contaminants.svg")
    tool_id = "astrodl:open_contaminants"
    action_text = "Detect contaminants"
    tool_tip = "Detect contaminants in the active image (opens the plugin)"
    plugin = "astrodl-detect-contaminants"


class OpenDetectSources(_OpenPlugin):
    icon = str(ICONS / "sources.svg")
    tool_id = "astrodl:open_sources"
    action_text = "Detect sources"
    tool_tip = "Detect sources in the active image (opens the plugin)"
    plugin = "astrodl-detect-sources"


TOOL_IDS = [OpenDetectContaminants.tool_id, OpenDetectSources.tool_id]
