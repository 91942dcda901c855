"""The "Detect Sources" tray plugin."""

from jdaviz.core.registries import tray_registry
from jdaviz.core.template_mixin import DatasetSelectMixin, PluginTemplateMixin, SelectPluginComponent
from jdaviz.core.user_api import PluginUserApi
from traitlets import Any, CFloat, Int, List, Unicode, observe, validate

from ..core.errors import BadInputError
from ..core.psf import fwhm_from_header
from ..glue.products import image_input, source_hdus
from ..tasks.sources import detect_sources
from .layers import add_catalogue, add_image_layers
from .worker import BackgroundRunMixin

__all__ = ["DetectSources"]

METHODS = ["Matched filter"]
CATALOGUE_COLUMNS = ("id", "snr", "flux", "flux_err", "prob")


@tray_registry("astrodl-detect-sources", label="Detect Sources", category="data:analysis")
class DetectSources(BackgroundRunMixin, PluginTemplateMixin, DatasetSelectMixin):
    """Detect point-like sources in an image.

    Run adds, for the chosen image ``<data>``: the layers ``<data> significance`` (S/N of a
    point source centred on each pixel) and ``<data> P(source)`` (calibrated probability
    that a pixel holds source signal), in the data menu, and the catalogue ``<data>
    sources`` (x, y, RA/Dec, S/N, PSF flux and error, probability), drawn as markers and
    linked to the image. A re-run updates the layers.

    Public API (``app.plugins['Detect Sources']``):

    * ``dataset``: the image; ``method``: ``'Matched filter'``.
    * ``fwhm``: PSF FWHM in pixels, or None for the header's (``FWHM``, ``PSF_FWHM``,
      ``SEEING`` with a WCS), else an estimate from bright stars.
    * ``threshold``: S/N threshold of the catalogue (default 5).
    * ``n_sources``, ``result`` (read-only): the last run's source count and `SourceDetection`.
    * :meth:`run`, :meth:`cancel`.
    """

    template_file = __file__, "sources.vue"

    method_items = List().tag(sync=True)
    method_selected = Unicode("").tag(sync=True)
    fwhm = Any(None, allow_none=True).tag(sync=True)
    fwhm_hint = Unicode("").tag(sync=True)
    threshold = CFloat(5.0).tag(sync=True)
    n_sources = Int(-1).tag(sync=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._plugin_description = "Find sources with a matched filter: maps, markers and a catalogue."
        self.docs_description = ("Matched-filter source detection: significance and probability layers and "
                                 "a catalogue linked to the image.")
        self.dataset.add_filter("is_image_not_spectrum", "not_from_this_plugin")
        self.method = SelectPluginComponent(self, items="method_items", selected="method_selected",
                                            manual_options=METHODS)
        self.result = None
        self._update_hint()

    @property
    def user_api(self):
        return PluginUserApi(self, expose=("dataset", "method", "fwhm", "threshold", "run", "cancel"),
                             readonly=("n_sources", "result"))

    @validate("fwhm")
    def _valid_fwhm(self, proposal):
        value = proposal["value"]
        if value is None or not str(value).strip():
            return None
        if not float(value) > 0:
            raise BadInputError(f"FWHM must be a positive number of pixels, got {value}")
        return float(value)

    @validate("threshold")
    def _valid_threshold(self, proposal):
        if not proposal["value"] > 0:
            raise BadInputError(f"threshold must be a positive S/N, got {proposal['value']}")
        return proposal["value"]

    @observe("dataset_selected", "fwhm")
    def _update_hint(self, *args):
        data = self.dataset.selected_dc_item if hasattr(self, "dataset") else None
        if self.fwhm is not None:
            self.fwhm_hint = "given"
        elif data is not None and data.ndim == 2:
            img = image_input(data)
            header_fwhm = fwhm_from_header(img.header, img.wcs)
            self.fwhm_hint = (f"from the header: {header_fwhm:.2f} px" if header_fwhm
                              else "estimated from bright stars when run")

    def vue_set_fwhm(self, value):
        self._set_from_ui("fwhm", value)

    def vue_set_threshold(self, value):
        self._set_from_ui("threshold", value)

    def run(self, dataset=None, fwhm=None, threshold=None):
        """Detect sources (blocking) and add the results; returns the `SourceDetection`.

        Arguments given here update the plugin's settings first.
        """
        return self._run_with(dataset=dataset, fwhm=fwhm, threshold=threshold)

    def _run(self, wait):
        data = self.dataset.selected_dc_item
        fwhm, threshold = self.fwhm, self.threshold

        def work(callback):
            if data is None:
                raise BadInputError("no image selected")
            return detect_sources(image_input(data), fwhm=fwhm, threshold=threshold, callback=callback)

        def finish(result):
            label = data.label
            significance, probability = source_hdus(result)
            add_image_layers(self, label, [(f"{label} significance", significance),
                                           (f"{label} P(source)", probability)])
            if len(result.table):
                add_catalogue(self, f"{label} sources", result.table, CATALOGUE_COLUMNS)
            self.result, self.n_sources = result, len(result.table)
            return (f"{label}: {len(result.table)} sources at S/N >= {threshold:g} (FWHM {result.fwhm:.2f} px); "
                    "significance and probability layers" + (", catalogue added" if len(result.table) else " added"))

        return self._start(work, finish, wait, subject=getattr(data, "label", None))
