"""glue-astrodl: deep-learning inference for astronomical images in glue and jdaviz.

The Python API is one function per registered task (`detect_contaminants`,
`detect_sources`, `forced_photometry`, ...; see `glue_astrodl.tasks.registry`) and the
result classes they return, all importable from here without importing torch.
"""

__version__ = "0.1.0"

# Result classes: name -> defining module (tasks' own functions are found through the registry).
_RESULTS = {
    "Result": "tasks.results",
    "CatalogueColumns": "tasks.results",
    "ContaminantDetection": "tasks.contaminants",
    "SourceDetection": "tasks.sources",
}

__all__ = ["__version__", "detect_contaminants", "detect_sources", "forced_photometry", *_RESULTS, "setup"]


def __getattr__(name):
    # Lazy public API: importing the package must stay cheap (the glue plugin loader
    # imports it at every viewer start-up).
    import importlib

    if name in _RESULTS:
        return getattr(importlib.import_module(f".{_RESULTS[name]}", __name__), name)
    if not name.startswith("_"):
        from .tasks.registry import tasks

        for task in tasks():
            if task.run.__name__ == name:
                return task.run
    raise AttributeError(f"module 'glue_astrodl' has no attribute {name!r}")


def __dir__():
    from .tasks.registry import tasks

    return sorted({*globals(), *_RESULTS, *(t.run.__name__ for t in tasks())})


def setup():
    """Entry point for ``glue.plugins``: register with glue (data factory, one viewer button per
    task, exporters, links) and, when jdaviz is running, its tray plugins (one per task).

    glue's desktop application starts without importing jdaviz: the jdaviz plugins are
    registered only when jdaviz has been imported (every jdaviz app has, before it loads the
    glue plugins); call `glue_astrodl.jdaviz.register` if you import jdaviz later.
    """
    import sys

    from . import glue

    glue.register()
    if "jdaviz" in sys.modules:
        from . import jdaviz

        jdaviz.register()
