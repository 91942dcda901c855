"""Every private jdaviz and glue-jupyter API the viewer front ends use, in one place.

Each function wraps one private attribute or method, so that a jdaviz or glue-jupyter
release that changes it breaks here, under the versions the calls were checked on
(`TESTED`). `untested` lists installed versions outside them; the test suite fails on
any, and `check_versions` (called when the plugins register) warns the user. What a
plugin class inherits from jdaviz's ``PluginTemplateMixin`` (``self._app``, ``self.hub``)
is the plugin-author API and is used directly.

Importing this module imports neither jdaviz nor glue-jupyter (the glue desktop
application imports it too): each function imports what it wraps.
"""

import warnings
from importlib.metadata import PackageNotFoundError, version

__all__ = ["TESTED", "untested", "check_versions", "helper", "plugin_object", "mark_extname", "tray_item",
           "set_toolbar_group", "output_widget", "fix_table_viewer_layout"]

#: ``{distribution: (major.minor, ...)}`` on which every call below was checked.
TESTED = {"jdaviz": ("5.0",), "glue-jupyter": ("0.29",)}


def untested(tested=None):
    """``[(distribution, version)]`` of installed host packages outside ``tested`` (default `TESTED`).

    Examples
    --------
    >>> untested({"jdaviz": ("0.1",)})  # doctest: +ELLIPSIS
    [('jdaviz', '5...')]
    """
    out = []
    for dist, minors in (tested or TESTED).items():
        try:
            installed = version(dist)
        except PackageNotFoundError:
            continue
        if ".".join(installed.split(".")[:2]) not in minors:
            out.append((dist, installed))
    return out


def check_versions():
    """Warn about every untested host version (see `untested`); returns them."""
    found = untested()
    for dist, installed in found:
        warnings.warn(f"glue-astrodl's viewer plugins were tested with {dist} {', '.join(TESTED[dist])}.x, "
                      f"not {installed}: check glue_astrodl/jdaviz/_compat.py", RuntimeWarning, stacklevel=2)
    return found


def helper(app):
    """The jdaviz ``App`` (``load``, ``plugins``, ``loaders``, ``new_viewers``) behind a plugin's
    ``Application``."""
    return app._jdaviz_helper


def plugin_object(api):
    """The plugin behind a ``PluginUserApi`` (e.g. ``helper(app).plugins['Data Quality']``)."""
    return api._obj


def mark_extname(data, extname):
    """Set the extension name jdaviz reads from loaded data (``'DQ'``: a data-quality layer)."""
    data.meta["_extname"] = extname


def tray_item(app, name):
    """A tray entry for the registered plugin ``name``, to add to ``app.state.tray_items``."""
    from jdaviz.core.registries import tray_registry

    return app._create_tray_item(tray_registry.members[name])


def set_toolbar_group(viewer_cls, tool_ids, prefix):
    """Make ``tool_ids`` one group of the nested toolbar of ``viewer_cls`` (replacing the group
    of tools whose ids start with ``prefix``, if any); viewers made later show it."""
    groups = [g for g in viewer_cls.tools_nested if not (g and all(str(t).startswith(prefix) for t in g))]
    viewer_cls.tools_nested = [*groups, list(tool_ids)]


def output_widget(viewer):
    """A glue-jupyter viewer's output area (a context manager capturing ``print``), or None."""
    return getattr(viewer, "_output_widget", None)


def fix_table_viewer_layout():
    """Let jdaviz 5.0 create table viewers with ipyvue >= 1.13 (idempotent).

    jdaviz's ``Application._on_new_viewer`` sets ``viewer.figure_widget.layout.height``;
    a table viewer's figure widget is a ``VuetifyTemplate``, whose ``layout`` ipyvue 1.13
    made ``None`` by default, so every table viewer (the Catalog loader's
    ``viewer.create_new = 'Table'``, ``new_viewers['Table']``) failed with
    ``AttributeError: 'NoneType' object has no attribute 'height'``. Table viewers now
    start with a ``Layout``, as they did before ipyvue 1.13.
    """
    from ipywidgets import Layout
    from jdaviz.configs.default.plugins.viewers import JdavizTableViewer

    if getattr(JdavizTableViewer, "_astrodl_layout", False):
        return
    init = JdavizTableViewer.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if self.figure_widget.layout is None:
            self.figure_widget.layout = Layout()

    JdavizTableViewer.__init__ = __init__
    JdavizTableViewer._astrodl_layout = True
