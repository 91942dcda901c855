"""Running a plugin's task off the UI thread, with progress, Cancel and snackbar messages.

The UI's Run button starts the task in a worker thread, so the app stays responsive;
the task reports ``callback(done, total)`` after each batch of tiles (progress bar) and
stops at the next one once Cancel is pressed (`glue_astrodl.core.errors.Cancelled`).
Results are added to the app only when the task completes and Cancel was not pressed.
The outcome reaches the user as a one-line snackbar message, errors included; the
Python API runs the same code in the calling thread and raises the error as well.
"""

import threading
from pathlib import Path

from glue.core.hub import HubListener
from ipyvuetify import VuetifyTemplate
from jdaviz.core.events import SnackbarMessage
from traitlets import Bool, Float, TraitError, Unicode

from ..core.errors import BadInputError, Cancelled
from ..glue.tools import one_line

__all__ = ["BackgroundRunMixin"]

RUN_CONTROLS = (Path(__file__).parent / "run_controls.vue").read_text()


class BackgroundRunMixin(VuetifyTemplate, HubListener):
    """Mixin for tray plugins: ``running``, ``progress`` (0-100) and ``run_status`` traitlets,
    the Run/Cancel/progress controls (``<astrodl-run-controls>`` in the template)."""

    running = Bool(False).tag(sync=True)
    progress = Float(0).tag(sync=True)
    run_status = Unicode("").tag(sync=True)  # last outcome, shown under the Run button

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cancel = threading.Event()
        self._thread = None
        self.components = {"astrodl-run-controls": RUN_CONTROLS}

    def _notify(self, text, color):
        self.run_status = text
        self.hub.broadcast(SnackbarMessage(text, color=color, sender=self))

    def _callback(self, done, total):
        """Inference progress: the first half of the bar (adding results is the second)."""
        self.progress = 50.0 * done / max(total, 1)
        return not self._cancel.is_set()

    def _step(self, fraction):
        """Progress of adding the results (``fraction`` of them added)."""
        self.progress = 50.0 + 50.0 * fraction

    def _execute(self, work, finish, raise_errors, subject):
        """``finish(work(callback))``, reporting the outcome; returns ``work``'s value or None."""
        try:
            result = work(self._callback)
            if self._cancel.is_set():
                raise Cancelled("cancelled")
            message = finish(result)
            self.progress = 100.0
        except Cancelled:
            self._notify(f"{self._plugin_name}: cancelled, nothing added", "warning")
            return None
        except Exception as err:  # the user sees one line, the app keeps running
            where = f" on {subject}" if subject else ""
            self._notify(f"{self._plugin_name} failed{where}: {one_line(err)}", "error")
            if raise_errors:
                raise
            return None
        finally:
            self.running = False
        self._notify(message, "success")
        return result

    def _start(self, work, finish, wait, subject=None):
        """Run ``work`` then ``finish`` on ``subject`` (named in errors): in this thread when
        ``wait`` (returning the result and raising errors), else in a worker thread."""
        if self.running:
            self._notify(f"{self._plugin_name} is already running", "warning")
            return None
        self._cancel.clear()
        self.running, self.progress, self.run_status = True, 0.0, ""
        if wait:
            return self._execute(work, finish, True, subject)
        self._thread = threading.Thread(target=self._execute, args=(work, finish, False, subject), daemon=True,
                                        name=f"astrodl {self._plugin_name}")
        self._thread.start()
        return None

    def _set_from_ui(self, trait, value, shown=None):
        """Set ``trait`` from a control; an invalid value is reported (snackbar) and the control
        shows the previous one again (``shown``: the trait the control displays)."""
        try:
            setattr(self, trait, value)
        except (BadInputError, TraitError, ValueError, TypeError) as err:
            self._notify(f"{self._plugin_name}: invalid {trait}: {one_line(err)}", "error")
            self.send_state(shown or trait)

    def _run_with(self, **settings):
        """Apply the settings that are not None as the user API does, then run in this thread."""
        api = self.user_api
        for name, value in settings.items():
            if value is not None:
                setattr(api, name, value)
        return self._run(wait=True)

    def vue_start(self, *args):
        """The Run button: ``self._run(wait=False)``, which plugins define."""
        self._run(wait=False)

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
