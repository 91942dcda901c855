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
    "PhotometryColumns": "tasks.photometry",
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


class _AfterImport:
    """A meta-path finder that calls ``hook()`` once module ``name`` has been imported."""

    def __init__(self, name, hook):
        self.name, self.hook = name, hook

    def find_spec(self, name, path=None, target=None):
        import importlib.util
        import sys

        if name != self.name:
            return None
        sys.meta_path.remove(self)  # find the real spec, once
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            exec_module, hook = spec.loader.exec_module, self.hook

            def run_then_hook(module):
                exec_module(module)
                hook()

            spec.loader.exec_module = run_then_hook
        return spec


def _register_jdaviz():
    from . import jdaviz

    jdaviz.register()


def setup():
    """Entry point for ``glue.plugins``: register with glue (data factory, one viewer button per
    task, exporters, links) and with jdaviz (one tray plugin per task).

    glue's desktop application starts without importing jdaviz: when jdaviz is not imported
    yet, its plugins are registered as soon as it is (glue loads its plugins once per
    process, so a glue session opened before a jdaviz app still gets them).
    """
    import sys

    from . import glue

    glue.register()
    if "jdaviz" in sys.modules:
        _register_jdaviz()
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport("jdaviz", _register_jdaviz))
