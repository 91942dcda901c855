import subprocess
import sys
from pathlib import Path


def test_sphinx_docs_build_without_warnings(tmp_path):
    docs = Path(__file__).parents[1] / "docs"
    res = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-W", "--keep-going", "-b", "html", str(docs),
                          str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "detect_sources" in (tmp_path / "api.html").read_text()
    for page, image in (("detect_contaminants", "detect_contaminants.png"), ("detect_sources", "detect_sources.png")):
        assert f"_images/{image}" in (tmp_path / f"{page}.html").read_text()  # screenshots of tests/test_browser.py


DOCTEST_MODULES = ["glue_astrodl.core.taxonomy", "glue_astrodl.core.predictor", "glue_astrodl.tasks.registry",
                   "glue_astrodl.tasks.results", "glue_astrodl.tasks.contaminants", "glue_astrodl.tasks.sources",
                   "glue_astrodl.jobs", "glue_astrodl.products", "glue_astrodl.glue.results",
                   "glue_astrodl.core.cutouts", "glue_astrodl.tasks.catalogue", "glue_astrodl.tasks.photometry",
                   "glue_astrodl.core.calibration", "glue_astrodl.core.weights", "glue_astrodl.core.normalise",
                   "glue_astrodl.core.psf", "glue_astrodl.core.significance", "glue_astrodl.core.device",
                   "glue_astrodl.core.batch", "glue_astrodl.core.symmetry", "glue_astrodl.core.fusion",
                   "glue_astrodl.core.calibrated_net", "glue_astrodl.core.atomic", "glue_astrodl.core.errors",
                   "glue_astrodl.io.regions", "glue_astrodl.io.quicklook", "glue_astrodl.tasks.inputs",
                   "glue_astrodl.tasks.fwhm", "glue_astrodl.tasks.contaminant_classes", "glue_astrodl.glue.links",
                   "glue_astrodl.glue.exporters", "glue_astrodl.glue.factories", "glue_astrodl.glue.products",
                   "glue_astrodl.glue.tools",
                   "glue_astrodl.sim", "glue_astrodl.sim.scene", "glue_astrodl.sim.frame", "glue_astrodl.sim.wcs",
                   "glue_astrodl.sim.galaxies", "glue_astrodl.sim.render", "glue_astrodl.sim.contaminants",
                   "glue_astrodl.sim.detector_defects", "glue_astrodl.sim.optical_artefacts",
                   "glue_astrodl.models.contaminant_net", "glue_astrodl.models.matched_filter",
                   "glue_astrodl.models.registry", "glue_astrodl.train.contaminants",
                   "glue_astrodl.sim.real_backgrounds"]


def test_docstring_examples_run():
    """The Examples sections of the public API are true (run as doctests)."""
    import doctest
    import importlib

    for name in DOCTEST_MODULES:
        failed, attempted = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
        assert attempted > 0 and failed == 0, name
