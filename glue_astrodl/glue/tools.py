"""Toolbar buttons "Detect contaminants" and "Detect sources" for glue-jupyter image viewers.

A click runs the task with default settings on the viewer's active layer (the top
visible image) and adds the results (`glue_astrodl.glue.detect`); the catalogue of
sources is also shown in the viewer as markers. The outcome, or the error, is one line
in the viewer's output area. (jdaviz viewers get buttons that open the tray plugins
instead, see `glue_astrodl.jdaviz.tools`.)
"""

import contextlib
from pathlib import Path

from glue.core import Data
from glue.viewers.common.tool import Tool

from .detect import detect_in_glue

__all__ = ["active_image", "DetectContaminantsTool", "DetectSourcesTool", "ICONS"]

ICONS = Path(__file__).parent / "icons"


def active_image(viewer):
    """The top visible 2-D dataset of a glue image viewer, or None."""
    layers = [s for s in viewer.state.layers if s.visible and isinstance(s.layer, Data) and s.layer.ndim == 2]
    return max(layers, key=lambda s: s.zorder).layer if layers else None


def one_line(err):
    """An exception as one line for the user (no traceback)."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


class _DetectTool(Tool):
    task = None
    message = ""  # the last outcome shown to the user

    def _show(self, result, image):
        """Show ``result`` in the viewer; return a one-line summary."""
        raise NotImplementedError

    def activate(self):
        image = active_image(self.viewer)
        try:
            if image is None:
                raise ValueError("no visible image in this viewer")
            result = detect_in_glue(self.task, self.viewer.session.data_collection, image)
            self.message = f"{self.action_text}: {self._show(result, image)}"
        except Exception as err:  # any failure is reported in one line; the viewer keeps working
            self.message = f"{self.action_text} failed: {one_line(err)}"
        with self.viewer._output_widget or contextlib.nullcontext():
            print(self.message)


class DetectContaminantsTool(_DetectTool):
    """Per-class contaminant probabilities, bit-mask and per-class subsets of the active image."""

    icon = str(ICONS / "contaminants.svg")
    tool_id = "astrodl:contaminants"
    action_text = "Detect contaminants"
    tool_tip = "Detect contaminants (cosmic rays, trails, hot pixels, ...) in the active image"
    task = "contaminants"

    def _show(self, result, image):
        flagged = {c: f for c, f in result.flagged_fractions().items() if f > 0}
        top = ", ".join(f"{c} {f:.2%}" for c, f in sorted(flagged.items(), key=lambda kv: -kv[1])[:3])
        return f"'{image.label} contaminants' and a subset per flagged class added; flagged: {top or 'nothing'}"


class DetectSourcesTool(_DetectTool):
    """Matched-filter maps, linked source catalogue (shown as markers) and a P(source) subset."""

    icon = str(ICONS / "sources.svg")
    tool_id = "astrodl:sources"
    action_text = "Detect sources"
    tool_tip = "Detect sources (matched filter) in the active image"
    task = "sources"

    def _show(self, result, image):
        self.viewer.add_data(self.viewer.session.data_collection[f"{image.label} sources"])
        return f"{len(result.table)} sources in '{image.label} sources' (FWHM {result.fwhm:.2f} px)"
