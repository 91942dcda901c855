"""Running a plugin's task off the UI thread, with progress, Cancel and snackbar messages.

The UI's Run button starts the task in a worker thread, so the app stays responsive;
the task reports ``callback(done, total)`` after each batch of tiles (progress bar) and
stops at the next one once Cancel is pressed (`glue_astrodl.core.errors.Cancelled`).
Results are added to the app only when the task completes and Cancel was not pressed.
The outcome reaches the user as a one-line snackbar message, errors included; the
Python API runs the same code in the calling thread and raises the error as well.
"""

import threading
import time
from pathlib import Path

from glue.core.hub import HubListener
from ipyvuetify import VuetifyTemplate
from jdaviz.core.events import SnackbarMessage
from traitlets import Bool, Float, Unicode

from ..core.errors import Cancelled
from ..products import one_line

__all__ = ["BackgroundRunMixin", "vue_component"]


def vue_component(name):
    """The text of the ``.vue`` component ``name`` shipped beside this module."""
    return (Path(__file__).parent / f"{name}.vue").read_text()


class BackgroundRunMixin(VuetifyTemplate, HubListener):
    """Mixin for tray plugins: ``running``, ``progress`` (0-100), ``stage`` and ``run_status``
    traitlets, the Run/Cancel/progress controls (``<astrodl-run-controls>`` in the template),
    and ``timings`` (seconds the last run spent running the task and adding its results)."""

    running = Bool(False).tag(sync=True)
    progress = Float(0).tag(sync=True)
    stage = Unicode("").tag(sync=True)  # what the running task is doing, under the progress bar
    run_status = Unicode("").tag(sync=True)  # last outcome, shown under the Run button

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cancel = threading.Event()
        self._thread = None
        self.timings = {}
        self.components = {**(self.components or {}), "astrodl-run-controls": vue_component("run_controls")}

    def _notify(self, text, color):
        self.run_status = text
        self.hub.broadcast(SnackbarMessage(text, color=color, sender=self))

    def _callback(self, done, total):
        """Inference progress: the first half of the bar (adding results is the second)."""
        self.progress = 50.0 * done / max(total, 1)
        self.stage = f"running: {done}/{total} tile{'s' * (total != 1)}"
        return not self._cancel.is_set()

    def _step(self, fraction, stage):
        """Progress of adding the results: ``fraction`` of them added, now doing ``stage``."""
        self.progress, self.stage = 50.0 + 50.0 * fraction, stage

    def _failed(self, err, subject, raise_errors):
        """Report ``err`` in one line (the app keeps running); raise it when ``raise_errors``."""
        self.running, self.stage = False, ""
        where = f" on {subject}" if subject else ""
        self._notify(f"{self._plugin_name} failed{where}: {one_line(err)}", "error")
        if raise_errors:
            raise err
        return None

    def _execute(self, work, finish, raise_errors, subject):
        """``finish(work(callback))``, reporting the outcome; returns ``work``'s value or None."""
        try:
            start = time.perf_counter()
            result = work(self._callback)
            if self._cancel.is_set():
                raise Cancelled("cancelled")
            added = time.perf_counter()
            message = finish(result)
            self.timings = {"run": added - start, "add": time.perf_counter() - added}
        except Cancelled:
            self.running, self.stage = False, ""
            self._notify(f"{self._plugin_name}: cancelled, nothing added", "warning")
            return None
        except Exception as err:  # the user sees one line, the app keeps running
            return self._failed(err, subject, raise_errors)
        self.progress, self.running, self.stage = 100.0, False, ""
        self._notify(f"{message} ({self.timings['run'] + self.timings['add']:.1f} s)", "success")
        return result

    def _start(self, prepare, wait, subject=None):
        """Run a task on ``subject`` (named in errors): ``prepare()``, in this thread, reads the
        controls and returns ``(work, finish)``; ``finish(work(callback))`` then runs in this
        thread when ``wait`` (returning the result and raising errors), else in a worker."""
        if self.running:
            self._notify(f"{self._plugin_name} is already running", "warning")
            return None
        self._cancel.clear()
        self.running, self.progress, self.run_status, self.stage = True, 0.0, "", "starting"
        try:
            work, finish = prepare()
        except Exception as err:
            return self._failed(err, subject, wait)
        if wait:
            return self._execute(work, finish, True, subject)
        self._thread = threading.Thread(target=self._execute, args=(work, finish, False, subject), daemon=True,
                                        name=f"astrodl {self._plugin_name}")
        self._thread.start()
        return None

    def cancel(self):
        """Stop the running task at its next batch of tiles; nothing is added."""
        if self.running:
            self._cancel.set()

    def wait(self, timeout=None):
        """Block until a task started from the UI has finished (for scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def vue_cancel(self, *args):
        self.cancel()
