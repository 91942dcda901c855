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
           "set_toolbar_group", "output_widget", "fix_table_viewer_layout", "fix_catalogues_without_flux_unit"]

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


def fix_catalogues_without_flux_unit():
    """Let jdaviz 5.0 show a catalogue on an image without a flux unit (idempotent).

    Until a flux unit is chosen (an image without ``BUNIT`` chooses none), jdaviz's Unit
    Conversion plugin reads ``.unit`` of every data added to a viewer; a catalogue is a
    ``QTable``, which has none, so adding one to an image viewer raised ``'QTable' object
    has no attribute 'unit'`` inside the hub and showed "Failed to add <catalogue> to
    viewers" although the markers were drawn (the rest of the add was skipped). A
    catalogue has no flux unit to take, so the plugin now passes over 1-D data in image
    viewers.
    """
    from glue_jupyter.bqplot.image import BqplotImageView
    from jdaviz.configs.specviz.plugins.unit_conversion.unit_conversion import UnitConversion

    if getattr(UnitConversion, "_astrodl_catalogues", False):
        return
    on_add = UnitConversion._on_add_data_to_viewer

    def _on_add_data_to_viewer(self, msg):
        if isinstance(msg.viewer, BqplotImageView) and msg.data.ndim == 1:
            return None
        return on_add(self, msg)

    UnitConversion._on_add_data_to_viewer = _on_add_data_to_viewer
    UnitConversion._astrodl_catalogues = True
