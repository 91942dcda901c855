"""Every private jdaviz / glue-jupyter API call of glue-astrodl, in one place.

Importing this module does not import jdaviz (glue's desktop start must not).
"""

__all__ = ["output_widget"]


def output_widget(viewer):
    """The output area of a glue-jupyter viewer (private ``_output_widget``), or None."""
    return getattr(viewer, "_output_widget", None)
