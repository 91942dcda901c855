"""jdaviz image-viewer toolbar buttons, one per task, that open the task's tray plugin on the
viewer's active image layer (the plugin then runs with its settings). In a configured app
(Imviz) a button first adds our plugins to its tray."""

import types

from glue.viewers.common.tool import Tool

from ..products import icon

__all__ = ["OpenPluginTool", "open_tool", "tool_id", "TOOL_PREFIX"]

TOOL_PREFIX = "astrodl:open_"


class OpenPluginTool(Tool):
    """Opens the tray plugin ``plugin`` (its tray registry name) on the active image layer."""

    plugin = None

    def activate(self):
        app = self.viewer.jdaviz_app
        try:
            plugin = app.get_tray_item_from_name(self.plugin)
        except KeyError:  # a configured app (Imviz) whose tray lacks our plugins
            from . import add_to_tray
            from ._compat import helper

            add_to_tray(helper(app))
            plugin = app.get_tray_item_from_name(self.plugin)
        plugin.open_in_tray(scroll_to=True)
        layer = self.viewer.active_image_layer
        if layer is not None and layer.layer.label in plugin.dataset.choices:
            plugin.dataset.selected = layer.layer.label


def tool_id(task):
    """The id of the button of ``task``: ``astrodl:open_<task name>``."""
    return f"{TOOL_PREFIX}{task.name}"


def open_tool(plugin_cls):
    """The `OpenPluginTool` subclass (id `tool_id`) of a `TaskPlugin` class."""
    task = plugin_cls.task
    return types.new_class(f"Open{plugin_cls.__name__}", (OpenPluginTool,), exec_body=lambda ns: ns.update(
        icon=icon(task.name), tool_id=tool_id(task), action_text=task.label,
        tool_tip=f"{task.label} on the active image (opens the plugin)", plugin=plugin_cls.tray_name))
