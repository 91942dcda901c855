"""glue-astrodl: deep-learning inference for astronomical images in glue and jdaviz."""

__version__ = "0.1.0"

__all__ = ["__version__", "detect_contaminants", "detect_sources", "setup"]


def __getattr__(name):
    # Lazy public API: importing the package must stay cheap (the glue plugin loader
    # imports it at every viewer start-up).
    if name == "detect_contaminants":
        from .tasks.contaminants import detect_contaminants

        return detect_contaminants
    if name == "detect_sources":
        from .tasks.sources import detect_sources

        return detect_sources
    raise AttributeError(f"module 'glue_astrodl' has no attribute {name!r}")


def setup():
    """Entry point for ``glue.plugins``: register with glue and jdaviz (data factory, viewer
    tools, exporters, links, the "Detect Contaminants" / "Detect Sources" tray plugins)."""
    from . import glue, jdaviz

    glue.register()
    jdaviz.register()
