"""The "Detect Sources" tray plugin: the generic task plugin, plus the hint saying where the
PSF FWHM comes from when the field is empty."""

from ..core.psf import fwhm_from_header
from ..products import image_header
from ..tasks.registry import get_task
from .task_plugin import TaskPlugin

__all__ = ["DetectSources"]


class DetectSources(TaskPlugin):
    """Detect point-like sources in an image with the matched filter of the PSF.

    Run adds, for the chosen image ``<data>``: the layers ``<data> significance`` (S/N of a
    point source centred on each pixel) and ``<data> P(source)`` (calibrated probability
    that a pixel holds source signal), in the data menu; the catalogue ``<data> sources``
    (x, y, RA/Dec, S/N, PSF flux and error, probability, flag), drawn as markers and linked
    to the image; and the subset ``<data> P(source) >= 0.5``. A re-run updates them.

    Public API (``app.plugins['Detect Sources']``):

    * ``dataset``: the image.
    * ``mask``: pixels to ignore: ``'None'``, a contaminant bit-mask layer of the image
      (``'<data> contaminant bitmask'``, after *Detect Contaminants*), or ``'Run Detect
      Contaminants first'``. Sources near masked pixels get bit 1 of ``flag``.
    * ``fwhm``: PSF FWHM in pixels, or None for the header's (``FWHM``, ``PSF_FWHM``,
      ``SEEING`` with a WCS), else an estimate from bright stars.
    * ``profile``: ``'gaussian'`` or ``'moffat'``; ``threshold``: S/N threshold of the
      catalogue (default 5); ``prior``: fraction of pixels holding sources (default:
      measured).
    * ``n_sources``, ``result`` (read-only): the last run's source count and `SourceDetection`.
    * :meth:`run`, :meth:`cancel`.
    """

    task = get_task("sources")
    tray_name = "astrodl-detect-sources"

    def _readonly(self):
        return (*super()._readonly(), "n_sources")

    @property
    def n_sources(self):
        """Number of sources found by the last run (-1 before any)."""
        return -1 if self.result is None else len(self.result.table)

    def field_hint(self, param):
        data = self.dataset.selected_dc_item if param.name == "fwhm" else None
        if data is None or self.fwhm is not None or data.ndim != 2:
            return param.help
        header_fwhm = fwhm_from_header(*image_header(data))  # the header only: no pixels read
        return "Empty: " + (f"from the header: {header_fwhm:.2f} px" if header_fwhm
                            else "estimated from bright stars when run")
