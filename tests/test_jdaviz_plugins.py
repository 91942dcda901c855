"""jdaviz tray plugins, one per registered task, in a headless ``jdaviz.App()``: the hand-written
"Detect Contaminants" and "Detect Sources", the generated ones (toy tasks registered here,
forced photometry) and the private-API compatibility module.

The plugins are compared with the Python API run on the same pixels (never with fixed
model outputs, which change when the model is retrained).
"""

import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from regions import Regions

from glue_astrodl.core.errors import BadInputError
from glue_astrodl.core.taxonomy import Taxonomy
from glue_astrodl.io.regions import MIN_REGION_AREA
from glue_astrodl.jdaviz import _compat, plugins, register
from glue_astrodl.products import SUBSET_FLOOR, SUBSET_VEIL, data_table, image_input
from glue_astrodl.tasks.contaminant_classes import CLASSES, COLOURS, MAXIMASK
from glue_astrodl.tasks.contaminants import default_thresholds, detect_contaminants
from glue_astrodl.tasks.registry import BANDS_CATALOGUE, IMAGE, Param, Task, positive, register_task, tasks
from glue_astrodl.tasks.results import BITMASK, MASK, CatalogueColumns, Layer, Result, SubsetSpec
from glue_astrodl.tasks.sources import detect_sources

CLASSES_RUN = ["CR", "HCL", "TRL", "SAT", "OV", "BBG"]  # a few classes keep the tests quick


@pytest.fixture(scope="module")
def raw_fits(tmp_path_factory):
    from glue_astrodl.sim import simulate_contaminant_frame

    frame = simulate_contaminant_frame((128, 128), seed=2)
    path = tmp_path_factory.mktemp("jdaviz") / "raw.fits"
    fits.PrimaryHDU(frame.image, frame.header).writeto(path)
    return path


@pytest.fixture(scope="module")
def stars_fits(tmp_path_factory, star_field):
    path = tmp_path_factory.mktemp("jdaviz") / "stars.fits"
    star_field.write(path)
    return path


class Session:
    """A jdaviz App as a user has it, with the snackbar messages it showed."""

    def __init__(self, *paths):
        import jdaviz
        from jdaviz.core.events import SnackbarMessage

        warnings.simplefilter("ignore")
        self.app = jdaviz.App()
        self.messages = []
        self.japp = self.app._app  # the Application behind the App (its glue data collection, viewers)
        self.japp.hub.subscribe(self.japp, SnackbarMessage, handler=lambda m: self.messages.append((m.color, m.text)))
        for path in paths:
            self.app.load(str(path), format="Image", data_label=path.stem)

    @property
    def dc(self):
        return self.japp.data_collection

    def plugin(self, name):
        return self.app.plugins[name]

    def subset_mask(self, label, data="raw"):
        index = [g.label for g in self.dc.subset_groups].index(label)
        return self.dc[data].subsets[index].to_mask()

    def errors(self):
        return [text for color, text in self.messages if color == "error"]


def test_every_task_has_a_plugin_in_a_new_app_without_any_import(raw_fits):
    """A fresh interpreter: only jdaviz is imported, the entry point does the rest, and every
    registered task really got its plugin (glue's load_plugins swallows errors)."""
    code = textwrap.dedent(f"""
        import sys, warnings
        warnings.simplefilter("ignore")
        import jdaviz
        assert "glue_astrodl" not in sys.modules
        app = jdaviz.App()
        app.load({str(raw_fits)!r}, format="Image", data_label="raw")
        assert "torch" not in sys.modules, "torch imported at app start"
        from glue.main import _loaded_plugins
        from jdaviz.core.registries import tray_registry
        from glue_astrodl.jdaviz import plugins
        viewer = app.app.get_viewer("Image")
        print(repr(("glue_astrodl" in _loaded_plugins,
                    [(c.task.name, c.tray_name, c.task.label, tray_registry.members[c.tray_name]["category"],
                      c.task.label in app.plugins) for c in plugins().values()],
                    sorted(t for t in viewer.toolbar.tools if t.startswith("astrodl")))))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    loaded, plugins, tools = eval(res.stdout.strip().splitlines()[-1])
    assert loaded
    names = [t.name for t in tasks()]
    assert sorted(p[0] for p in plugins) == sorted(names) and {"contaminants", "sources"} <= set(names)
    for name, tray_name, label, category, in_app in plugins:
        assert category == "data:analysis" and in_app, name
        assert tray_name == {"contaminants": "astrodl-detect-contaminants",
                             "sources": "astrodl-detect-sources"}.get(name, f"astrodl-{name}")
    assert tools == sorted(f"astrodl:open_{n}" for n in names)


def test_run_from_the_ui_adds_layers_subsets_and_a_data_quality_layer(raw_fits):
    s = Session(raw_fits)
    plg = s.plugin("Detect Contaminants")
    assert plg.dataset.selected == "raw"
    assert plg.classes.selected == [c for c in CLASSES if c != "BG"]  # default: every contaminant
    assert plg.model_name.startswith("contaminants")
    assert plg.device == ""  # described once the plugin is opened (or run): no torch at app start
    plg._obj.plugin_opened = True
    assert plg.device.startswith("cpu")
    plg.classes = CLASSES_RUN
    obj = plg._obj
    assert [row["name"] for row in obj.rows if row["selected"]] == CLASSES_RUN
    obj.vue_toggle_class("DP")  # the class table's check boxes
    assert plg.classes.selected == [*CLASSES_RUN[:2], "DP", *CLASSES_RUN[2:]]
    obj.vue_toggle_class("DP")

    obj.vue_start()  # the Run button: inference in a worker thread
    assert obj.running and obj._thread.is_alive()
    obj.export_filename = "typed_while_running.reg"  # the app responds meanwhile
    assert obj.wait(300) and not obj.running
    assert obj.progress == pytest.approx(100.0, abs=5)

    image = fits.getdata(raw_fits)
    expected = detect_contaminants(image, fits.getheader(raw_fits), classes=CLASSES_RUN)
    for name in CLASSES_RUN:
        layer = s.dc[f"raw P({name})"]
        values = layer.get_component(layer.main_components[0]).data
        assert values.shape == image.shape
        assert np.nanmin(values) >= 0 and np.nanmax(values) <= 1
        np.testing.assert_allclose(values, expected[name], atol=1e-6)
    # subsets: the classes flagged on at least SUBSET_FLOOR of the pixels, named and coloured as in the legend
    shown = {c: m for c, m in zip(CLASSES_RUN, expected.masks()) if m.mean() >= SUBSET_FLOOR}
    assert shown and len(shown) < len(CLASSES_RUN)  # the frame has classes under the floor: no subset for them
    assert {g.label for g in s.dc.subset_groups} == {f"raw {MAXIMASK.label(c)}" for c in shown}
    for name, mask in shown.items():
        label = f"raw {MAXIMASK.label(name)}"
        assert np.array_equal(s.subset_mask(label), mask), name
        assert s.dc.subset_groups[[g.label for g in s.dc.subset_groups].index(label)].style.color == COLOURS[name]
    bitmask = s.dc["raw contaminant bitmask"]
    dq = bitmask.get_component(bitmask.main_components[0]).data  # unflagged = NaN, as jdaviz shows DQ
    assert np.array_equal(np.nan_to_num(dq, nan=0).astype(np.int16), expected.bitmask())
    assert np.isnan(dq[expected.bitmask() == 0]).all()
    assert s.japp._data_associations["raw"]["children"][-1] == "raw contaminant bitmask"

    # a default run leaves the image in view: the bit-mask is in the viewer but hidden, the
    # probability layers wait in the data menu, only the subsets are drawn over the image
    menu = s.japp.get_viewer("Image").data_menu
    assert "raw contaminant bitmask" in menu.data_labels_loaded
    assert set(menu.data_labels_visible) == {"raw"}
    assert not any(label.startswith("raw P(") for label in menu.data_labels_loaded)
    on_image = {lyr.layer.label: lyr.visible for lyr in s.japp.get_viewer("Image").layers
                if lyr.layer.data.label == "raw" and lyr.layer is not lyr.layer.data}
    assert on_image == {f"raw {MAXIMASK.label(c)}": m.mean() <= SUBSET_VEIL for c, m in shown.items()}
    assert any(m.mean() > SUBSET_VEIL for m in shown.values())  # one covers most of the frame: it starts hidden

    dq = s.plugin("Data Quality")._obj  # jdaviz's own plugin decodes our bits, in the legend's colours
    assert dq.irrelevant_msg == "" and dq.dq_layer_selected == "raw contaminant bitmask"
    assert dq.flag_map_selected == "MaxiMask"
    names = {v["name"] for flag in dq.decoded_flags for v in flag["decomposed"].values() if isinstance(v, dict)}
    assert names and names <= set(CLASSES)
    for flag in dq.decoded_flags:
        first = min(map(int, flag["decomposed"]))
        assert flag["color"] == COLOURS[CLASSES[first]], flag
    dq.init_decoding()  # what choosing the layer anew does: jdaviz draws new colours, ours come back
    assert [f["color"] for f in dq.decoded_flags] == [COLOURS[CLASSES[min(map(int, f["decomposed"]))]]
                                                      for f in dq.decoded_flags]

    # each stage said what it did, and the time to results is measured
    assert set(obj.timings) == {"run", "add"} and obj.timings["add"] > 0
    assert obj.stage == "" and s.messages[-1][1].endswith(" s)")

    flagged = expected.flagged_fractions()
    assert plg.flagged == pytest.approx(flagged)
    assert [row["flagged"] for row in obj.rows if row["selected"]] == [f"{flagged[c]:.2%}" for c in CLASSES_RUN]
    assert s.messages[-1][0] == "success" and s.errors() == []

    obj.vue_start()  # a re-run updates the same layers in place
    obj.wait(300)
    assert sum(d.label.startswith("raw P(") for d in s.dc) == len(CLASSES_RUN)
    assert s.japp._data_associations["raw"]["children"].count("raw P(CR)") == 1


def test_priors_thresholds_and_api_run(raw_fits):
    s = Session(raw_fits)
    plg = s.plugin("Detect Contaminants")
    card_thresholds = dict(plg.thresholds)
    plg.priors = {"CR": 0.01}
    assert plg.priors["CR"] == 0.01 and plg.priors["TRL"] == s.plugin("Detect Contaminants").priors["TRL"]
    from glue_astrodl.core.weights import find_model

    assert plg.thresholds["CR"] == pytest.approx(default_thresholds(find_model("contaminants"), {"CR": 0.01})["CR"])
    assert plg.thresholds["TRL"] == card_thresholds["TRL"]
    with pytest.raises(BadInputError, match="prior of CR"):
        plg.priors = {"CR": 2}
    with pytest.raises(BadInputError, match="unknown class"):
        plg.thresholds = {"XX": 0.5}
    assert plg.priors["CR"] == 0.01
    plg._obj.vue_set_prior({"name": "TRL", "value": "abc"})  # typed in the table
    assert len(s.errors()) == 1 and "\n" not in s.errors()[0]

    with pytest.raises(BadInputError, match="tta: must be one of"):
        plg.tta = 3
    result = plg.run(classes=["CR", "TRL"], thresholds={"TRL": 0.2}, tta=2)
    expected = detect_contaminants(fits.getdata(raw_fits), fits.getheader(raw_fits), classes=["CR", "TRL"],
                                   priors={"CR": 0.01}, tta=2)
    assert plg.tta == 2 and result.meta["tta"] == 2
    assert result.thresholds["TRL"] == 0.2
    np.testing.assert_allclose(result.probabilities, expected.probabilities, atol=1e-6)
    masks = dict(zip(["CR", "TRL"], expected.masks({"TRL": 0.2})))
    assert any(mask.mean() >= SUBSET_FLOOR for mask in masks.values())
    for name, mask in masks.items():
        if mask.mean() >= SUBSET_FLOOR:
            assert np.array_equal(s.subset_mask(f"raw {MAXIMASK.label(name)}"), mask)


@pytest.mark.parametrize("fmt", ["ds9", "crtf", "fits"])
def test_export_regions_round_trips(raw_fits, tmp_path, fmt):
    s = Session(raw_fits)
    plg = s.plugin("Detect Contaminants")
    plg._obj.vue_write_regions()  # nothing to export yet: a message, no exception
    assert "run the detection first" in s.errors()[-1]
    result = plg.run(classes=CLASSES_RUN)
    flagged = [c for c in CLASSES_RUN if (result[c] >= result.thresholds[c]).any()]
    assert plg.export_classes.selected == CLASSES_RUN
    plg.export_classes = flagged
    plg.export_format = fmt
    plg.export_filename = str(tmp_path / f"out.{ {'ds9': 'reg', 'crtf': 'crtf', 'fits': 'fits'}[fmt]}")
    plg._obj.vue_write_regions()  # the Export button
    path = plg.export_filename
    back = Regions.read(path, format=fmt)
    expected = [r for c in flagged for r in result.to_regions(c)]
    assert len(back) == len(expected) > 0
    if fmt == "ds9":
        assert [r.meta["tag"] for r in back] == [r.meta["tag"] for r in expected]
    first = back[0].to_pixel(result.wcs) if hasattr(back[0], "to_pixel") else back[0]
    ref = expected[0].to_pixel(result.wcs)
    np.testing.assert_allclose(first.vertices.x[: len(ref.vertices.x)], ref.vertices.x, atol=1e-4)
    assert s.messages[-1][0] == "success"
    obj = plg._obj  # the export says where it wrote, under its button; the run's summary stays
    written = f"{len(back)} regions of {', '.join(flagged)} written to {Path(path).name} in {tmp_path}"
    assert obj.export_status == written
    assert obj.run_status.startswith(f"raw: {result.summary()}")
    with pytest.raises(BadInputError):
        plg.export_regions(classes=["DP"])  # not computed by this run
    assert s.errors()[-1].startswith("Detect Contaminants: export failed")


def test_export_drops_region_slivers_below_the_smallest_area(raw_fits, tmp_path):
    s = Session(raw_fits)
    plg = s.plugin("Detect Contaminants")
    result = plg.run(classes=CLASSES_RUN)
    assert plg.export_min_area == MIN_REGION_AREA == 0.1
    every = [r for c in CLASSES_RUN for r in result.to_regions(c, min_area=0)]
    areas = np.array([r.to_pixel(result.wcs).area for r in every])
    assert (areas < 0.1).any() and (areas >= 0.1).any()  # the frame has slivers and real regions
    kept = Regions.read(plg.export_regions(str(tmp_path / "default.reg"), classes=CLASSES_RUN))
    assert len(kept) == (areas >= 0.1).sum()
    assert len(Regions.read(plg.export_regions(str(tmp_path / "all.reg"), min_area=0))) == len(every)
    plg._obj.vue_set_min_area("-1")  # typed in the field: refused, the value stays
    assert "must be >= 0" in s.errors()[-1] and plg.export_min_area == 0.1


def test_cancel_adds_nothing_and_the_app_keeps_working(raw_fits):
    s = Session(raw_fits)
    obj = s.plugin("Detect Contaminants")._obj
    obj.classes.selected = ["CR"]
    before = len(s.dc)
    obj.vue_start()
    obj.vue_start()  # a second click while running is refused
    assert s.messages[-1] == ("warning", "Detect Contaminants is already running")
    obj.vue_cancel()
    assert obj.wait(300) and not obj.running
    assert len(s.dc) == before and s.messages[-1] == ("warning", "Detect Contaminants: cancelled, nothing added")
    obj.vue_start()
    obj.wait(300)
    assert "raw P(CR)" in s.dc and s.messages[-1][0] == "success"


def test_bad_input_shows_an_error_and_the_app_stays_usable(raw_fits, tmp_path):
    flat = tmp_path / "flat.fits"
    fits.PrimaryHDU(np.full((64, 64), 7.0, np.float32)).writeto(flat)
    s = Session(flat, raw_fits)
    plg = s.plugin("Detect Contaminants")
    plg.dataset = "flat"
    plg.classes = ["CR"]
    before = len(s.dc)
    plg._obj.vue_start()
    plg._obj.wait(300)
    (error,) = s.errors()
    assert error.startswith("Detect Contaminants failed on flat: ") and "\n" not in error and "Traceback" not in error
    assert len(s.dc) == before and not plg._obj.running
    with pytest.raises(BadInputError):
        plg.run()
    plg.run(dataset="raw")
    assert "raw P(CR)" in s.dc
    plg.classes = []
    plg._obj.vue_start()
    plg._obj.wait(300)
    assert s.errors()[-1] == "Detect Contaminants failed on raw: no class selected"


def test_detect_sources_adds_maps_markers_and_a_linked_catalogue(stars_fits):
    s = Session(stars_fits)
    plg = s.plugin("Detect Sources")
    obj = plg._obj
    fields = {f["name"]: f for f in obj.fields}  # one control per parameter of the task
    assert [f["name"] for f in obj.fields] == ["fwhm", "profile", "threshold", "prior"]
    assert fields["fwhm"]["label"] == "PSF FWHM (pixels)" and "header" in fields["fwhm"]["hint"]
    assert fields["profile"]["choices"] == ["gaussian", "moffat"] and fields["threshold"]["text"] == "5.0"
    assert plg.fwhm is None and plg.mask.selected == "None"
    obj.vue_set_param({"name": "fwhm", "value": "-1"})  # typed in the field: shown there, Run blocked
    assert obj.fields[0]["error"] == "must be positive, got -1.0" and obj.fields[0]["text"] == "-1"
    assert obj.blocked == "PSF FWHM (pixels): must be positive, got -1.0" and plg.fwhm is None
    obj.vue_start()
    assert s.errors()[-1] == "Detect Sources failed on stars: PSF FWHM (pixels): must be positive, got -1.0"
    assert "stars sources" not in s.dc
    with pytest.raises(BadInputError, match="threshold: must be positive"):
        plg.threshold = 0
    obj.vue_set_param({"name": "fwhm", "value": ""})  # empty again: from the header
    assert obj.blocked == "" and plg.fwhm is None
    obj.vue_start()
    assert obj.wait(300) and s.messages[-1][0] == "success", s.messages[-3:]

    expected = detect_sources(str(stars_fits))
    assert s.messages[-1][1].startswith(f"stars: {expected.summary()}; added 2 layers, catalogue 'stars sources'")
    for label, values in (("stars significance", expected.significance), ("stars P(source)", expected.probability)):
        layer = s.dc[label]
        np.testing.assert_allclose(layer.get_component(layer.main_components[0]).data, values, atol=1e-5)
    cat = s.dc["stars sources"]
    assert cat.size == len(expected.table) == plg.n_sources > 0
    assert {"ra", "dec", "snr", "flux", "prob", "flag"} <= {c.label for c in cat.components}
    np.testing.assert_allclose(np.sort(cat["ra"]), np.sort(expected.table["ra"]))
    image = s.dc["stars"]
    x = cat[image.pixel_component_ids[1]]  # the catalogue through jdaviz's links to the image
    np.testing.assert_allclose(np.sort(x), np.sort(expected.table["x"]), atol=1e-3)
    (markers,) = [layer for layer in s.japp.get_viewer("Image").layers if layer.layer.label == "stars sources"]
    assert markers.state.visible and markers.state.size == 50
    (subset,) = expected.subsets()
    assert np.array_equal(s.subset_mask(f"stars {subset.name}", "stars"), subset.mask)

    plg.run(fwhm=2.5, threshold=8)
    assert plg.n_sources == len(detect_sources(str(stars_fits), fwhm=2.5, threshold=8).table)
    assert s.dc["stars sources"].size == plg.n_sources


def test_detect_sources_ignores_the_contaminants_of_the_same_image(raw_fits):
    """Tasks compose: Detect Sources offers the contaminant bit-mask computed for its image."""
    s = Session(raw_fits)
    sources = s.plugin("Detect Sources")
    assert sources.mask.choices == ["None", "Run Detect Contaminants first"]
    s.plugin("Detect Contaminants").run(classes=CLASSES_RUN)
    assert sources.mask.choices == ["None", "raw contaminant bitmask", "Run Detect Contaminants first"]
    sources.mask = "raw contaminant bitmask"
    result = sources.run()
    image, header = fits.getdata(raw_fits), fits.getheader(raw_fits)
    contaminants = detect_contaminants(image, header, classes=CLASSES_RUN)
    expected = detect_sources(image, header, mask=contaminants)
    assert result.meta["n_masked"] == expected.meta["n_masked"] > 0
    np.testing.assert_array_equal(result.table["flag"], expected.table["flag"])
    np.testing.assert_allclose(s.dc["raw sources"]["snr"], expected.table["snr"])

    sources.mask = "Run Detect Contaminants first"
    result = sources.run()
    assert result.meta["n_masked"] == detect_sources(image, header, mask="contaminants").meta["n_masked"]


def test_sources_on_an_image_without_a_flux_unit_keep_the_subsets_the_user_hid(raw_fits, tmp_path):
    """A frame without BUNIT (jdaviz then has no flux unit): Detect Sources adds its markers
    without an error, and the contaminant subsets the user hid stay hidden."""
    with fits.open(raw_fits) as hdul:
        del hdul[0].header["BUNIT"]
        hdul.writeto(tmp_path / "raw.fits")
    s = Session(tmp_path / "raw.fits")
    contaminants = s.plugin("Detect Contaminants").run(classes=CLASSES_RUN)
    shown = [f"raw {MAXIMASK.label(c)}" for c, m in zip(contaminants.classes, contaminants.masks())
             if m.mean() >= SUBSET_FLOOR]
    assert len(shown) >= 2
    viewer = s.japp.get_viewer("Image")
    hidden, kept = shown[0], shown[1]
    viewer.data_menu.set_layer_visibility(hidden, False)  # what the eye icon in the data menu does

    s.plugin("Detect Sources").run(fwhm=2.5)
    assert s.errors() == [] and s.messages[-1][0] == "success", s.messages[-3:]
    (markers,) = [lyr for lyr in viewer.layers if lyr.layer.label == "raw sources"]
    assert markers.visible and s.dc["raw sources"].size > 0
    layers = {label: {lyr.layer.data.label: lyr.visible for lyr in viewer.layers if lyr.layer.label == label}
              for label in (hidden, kept)}
    assert {"raw", "raw sources"} <= set(layers[hidden]) and not any(layers[hidden].values())  # the catalogue too
    assert layers[kept]["raw"] and layers[kept]["raw sources"]


M51 = Path(__file__).parent / "data" / "m51_iraf_dev_pix.fits.gz"  # a real frame filled by a spiral galaxy


def test_default_runs_on_a_real_galaxy_frame_leave_the_galaxy_in_view():
    """What a new user meets on M51 (IRAF's dev$pix, see tests/data/README.md): Detect
    Contaminants draws no subset over most of the frame, and Detect Sources finds the stars
    with a sensible FWHM and no error snackbar."""
    s = Session(M51)
    label = s.dc[0].label
    viewer = s.japp.get_viewer("Image")
    result = s.plugin("Detect Contaminants").run()
    assert set(viewer.data_menu.data_labels_visible) == {label}  # the image alone, no bit-mask
    fractions = result.flagged_fractions()
    shown = {}
    for lyr in viewer.layers:
        if lyr.layer.data.label == label and lyr.layer is not lyr.layer.data and lyr.visible:
            shown[lyr.layer.label] = lyr.layer.to_mask()
    veiled = np.any(list(shown.values()), axis=0).mean() if shown else 0.0
    assert veiled <= SUBSET_VEIL, (veiled, sorted(shown))  # at least half the galaxy is seen as it is
    groups = {g.label for g in s.dc.subset_groups}
    for name, fraction in fractions.items():
        subset = f"{label} {MAXIMASK.label(name)}"
        assert (subset in groups) == (name != "BG" and fraction >= SUBSET_FLOOR), name
        if fraction > SUBSET_VEIL and name != "BG":  # made, but hidden: the summary names it
            assert subset not in shown and MAXIMASK.label(name) in s.messages[-1][1]

    sources = s.plugin("Detect Sources").run()
    assert s.errors() == [], s.errors()
    assert sources.fwhm == pytest.approx(2.5, rel=0.15) and len(sources.table) > 100


def test_choosing_an_image_reads_none_of_its_pixels(raw_fits, stars_fits, monkeypatch):
    """The plugins' controls follow the chosen image from its header alone (the FWHM hint)."""
    from glue.core.data import Data

    s = Session(raw_fits, stars_fits)
    plg = s.plugin("Detect Sources")
    reads = []
    get_data = Data.get_data
    monkeypatch.setattr(Data, "get_data", lambda self, *a, **k: reads.append(self.label) or get_data(self, *a, **k))
    for label in ("stars", "raw", "stars"):
        plg.dataset = label
        assert plg.dataset.selected == label
    assert not [label for label in reads if label in ("raw", "stars")]
    hint = {f["name"]: f["hint"] for f in plg._obj.fields}["fwhm"]
    assert hint == f"Empty: from the header: {fits.getheader(stars_fits)['FWHM']:.2f} px"


def test_viewer_buttons_open_the_plugins_on_the_active_layer(raw_fits, stars_fits):
    s = Session(raw_fits)
    s.app.load(str(stars_fits), format="Image", data_label="stars")
    viewer = s.japp.get_viewer("Image")
    active = viewer.active_image_layer.layer.label
    for cls in plugins().values():
        tool_id, name = f"astrodl:open_{cls.task.name}", cls.task.label
        plugin = s.plugin(name)
        plugin.dataset = "raw" if active != "raw" else "stars"
        viewer.toolbar.tools[tool_id].activate()
        assert plugin.dataset.selected == active
        open_items = [s.japp.state.tray_items[i]["label"] for i in s.japp.state.tray_items_open]
        assert name in open_items


def test_deprecated_imviz_gets_the_plugins_with_add_to_tray(raw_fits):
    from jdaviz import Imviz

    from glue_astrodl.jdaviz import add_to_tray

    warnings.simplefilter("ignore")
    imviz = Imviz()
    imviz.load(str(raw_fits), data_label="raw")
    assert not [k for k in imviz.plugins if k.startswith("Detect")]
    imviz.app.get_viewer("imviz-0").toolbar.tools["astrodl:open_sources"].activate()  # the button adds them
    add_to_tray(imviz)  # idempotent
    assert imviz.plugins["Detect Sources"].dataset.selected == "raw"
    assert [k for k in imviz.plugins if k.startswith("Detect")] == ["Detect Contaminants", "Detect Sources"]
    imviz.plugins["Detect Contaminants"].run(classes=["CR"])
    assert "raw P(CR)" in imviz.app.data_collection


TOY_FLAGS = Taxonomy(("HIGH", "LOW", "OK"), {"HIGH": "above", "LOW": "below", "OK": "neither"},
                     {"HIGH": "#ff00ff", "LOW": "#00ffff", "OK": "#000000"}, {}, background="OK")


class ToyResult(Result):
    """Pixels above a level: a bit-mask layer (first, hidden), a visible mask layer and a subset."""

    def __init__(self, mask, level):
        self.mask, self.level = mask, level

    def layers(self):
        return [Layer("flags", self.mask.astype(np.int16), BITMASK, taxonomy=TOY_FLAGS),
                Layer("mask", self.mask.astype(np.uint8), MASK, visible=True)]

    def subsets(self):
        return [SubsetSpec("above", self.mask, "#ff00ff")]

    def summary(self):
        return f"{int(self.mask.sum())} pixels above {self.level:g} sigma"


def toy_threshold(image, *, level=3.0, side="above", callback=None):
    data = np.asarray(image.data, dtype=float)
    d = data - np.median(data)
    z = d / (1.4826 * np.median(np.abs(d)))
    return ToyResult(z > level if side == "above" else z < -level, level)


TOY = Task("toy-threshold", "Toy Threshold", IMAGE, toy_threshold, module=__name__, params=(
    Param("level", float, 3.0, "level in sigma above the median", validate=positive, label="Level (sigma)"),
    Param("side", str, "above", "which side of the median", choices=("above", "below"))))


def toy_band_sum(bands, catalog, *, callback=None):
    from astropy.table import Table

    x, y = (np.round(np.asarray(catalog[c])).astype(int) for c in ("x", "y"))
    return CatalogueColumns(catalog, Table({"band_sum": sum(np.asarray(b.data)[y, x] for b in bands)}))


TOY_BANDS = Task("toy-bands", "Toy Band Sum", BANDS_CATALOGUE, toy_band_sum, module=__name__)


@pytest.fixture(scope="module")
def toys():
    """The toy tasks, registered (the plugins of tasks registered after start-up come with
    the next ``register()``, which every new App runs)."""
    for task in (TOY, TOY_BANDS):
        register_task(task)
    register()
    return plugins()


def test_a_generated_plugin_gets_controls_from_the_params_and_shows_its_results(raw_fits, toys):
    from jdaviz.core.registries import tray_registry

    assert toys["toy-threshold"].__module__ == "glue_astrodl.jdaviz.task_plugin"  # no jdaviz file for it
    assert tray_registry.members["astrodl-toy-threshold"]["category"] == "data:analysis"
    s = Session(raw_fits)
    plg = s.plugin("Toy Threshold")
    obj = plg._obj
    assert "astrodl:open_toy-threshold" in s.japp.get_viewer("Image").toolbar.tools
    assert obj.fields == [
        {"name": "level", "label": "Level (sigma)", "hint": "level in sigma above the median", "text": "3.0",
         "error": "", "choices": None},
        {"name": "side", "label": "which side of the median", "hint": "which side of the median", "text": "above",
         "error": "", "choices": ["above", "below"]}]
    assert not obj.needs_catalogue and not obj.takes_mask and "level" in plg.__doc__

    obj.vue_set_param({"name": "level", "value": "zero"})
    assert obj.blocked == "Level (sigma): could not convert string to float: 'zero'" and plg.level == 3.0
    plg.level = 2  # the API sets a valid value: the field shows it, Run is free again
    assert obj.fields[0]["text"] == "2" and obj.blocked == ""
    obj.vue_set_param({"name": "level", "value": "-4"})
    before = len(s.dc)
    with pytest.raises(BadInputError, match="Level"):
        plg.run()  # never with the previous value
    assert len(s.dc) == before
    assert s.errors()[-1] == "Toy Threshold failed on raw: Level (sigma): must be positive, got -4.0"
    obj.vue_set_param({"name": "level", "value": "2"})
    obj.vue_set_param({"name": "side", "value": "below"})
    obj.vue_start()
    assert obj.wait(60) and s.messages[-1][0] == "success", s.messages[-2:]

    expected = toy_threshold(image_input(s.dc["raw"]), level=2.0, side="below")
    assert plg.result.level == 2.0 and plg.side == "below" and expected.mask.any()
    assert re.fullmatch(rf"raw: {re.escape(expected.summary())}; added 2 layers, 1 subset \(\d+\.\d s\)",
                        s.messages[-1][1]), s.messages[-1][1]
    layer = s.dc["raw mask"]
    np.testing.assert_array_equal(layer.get_component(layer.main_components[0]).data, expected.mask)
    viewer = s.japp.get_viewer("Image")
    assert layer in [a.layer for a in viewer.layers] and "raw mask" in viewer.data_menu.data_labels_visible
    # a bit-mask layer is known by its kind, wherever it comes among the layers: a hidden
    # data-quality layer of the image, offered as a mask to the tasks that take one
    menu = viewer.data_menu
    assert "raw flags" in menu.data_labels_loaded and "raw flags" not in menu.data_labels_visible
    assert s.japp._data_associations["raw flags"]["parent"] == "raw"
    assert "raw flags" in s.plugin("Detect Sources").mask.choices
    group = s.dc.subset_groups[[g.label for g in s.dc.subset_groups].index("raw above")]
    assert group.style.color == "#ff00ff"
    assert np.array_equal(s.subset_mask("raw above"), expected.mask)


@pytest.mark.skipif("photometry" not in {t.name for t in tasks()}, reason="no photometry task yet")
def test_forced_photometry_adds_its_columns_and_shows_them_in_a_table_viewer(stars_fits, star_field):
    from glue_astrodl.tasks.photometry import forced_photometry

    assert plugins()["photometry"].__module__ == "glue_astrodl.jdaviz.task_plugin"  # generated
    s = Session(stars_fits)
    s.app.load(star_field.truth["id", "ra", "dec"], format="Catalog", data_label="truth", col_other=["id"])
    plg = s.plugin("Forced Photometry")
    assert plg.catalog.selected == "truth" and plg.dataset.selected == "stars"
    assert [f["name"] for f in plg._obj.fields] == [p.name for p in plugins()["photometry"].task.params]
    result = plg.run()
    cat = s.dc["truth"]
    expected = forced_photometry(image_input(s.dc["stars"]), data_table(cat))
    for name in ("mf_flux", "mf_flux_err", "mf_snr", "mf_flag"):
        np.testing.assert_allclose(cat[name], expected.columns[name])
        np.testing.assert_allclose(result.columns[name], expected.columns[name])
    assert cat.get_component("mf_flux").units == str(expected.columns["mf_flux"].unit)
    assert "added columns mf_flux, mf_flux_err, mf_snr, mf_flag to 'truth' (table viewer 'truth table')" \
        in s.messages[-1][1]
    table = s.app.viewers["truth table"]._obj.glue_viewer
    assert {"mf_flux", "mf_snr"} <= {h["text"] for h in table.widget_table.headers}
    plg.run(fwhm=2.5)  # a re-run updates the columns in the same table
    np.testing.assert_allclose(cat["mf_flux"], forced_photometry(image_input(s.dc["stars"]), data_table(cat),
                                                                 fwhm=2.5).columns["mf_flux"])
    assert [v for v in s.app.viewers if "table" in v] == ["truth table"]


def test_catalogue_columns_in_a_table_viewer_whose_tools_work_headless(stars_fits, toys):
    """The band task's columns, and jdaviz's table tools on them (zoom to rows, subset of rows)."""
    from astropy.table import Table

    s = Session(stars_fits)
    pixels = Table({"x": [20.0, 100.0, 200.0], "y": [30.0, 120.0, 210.0]})
    s.app.load(pixels, format="Catalog", data_label="pixels", col_other=["x", "y"])
    plg = s.plugin("Toy Band Sum")
    assert plg._obj.multiselect and plg._obj.needs_catalogue
    plg.dataset = ["stars"]
    plg.catalog = "pixels"
    plg.run()
    image = fits.getdata(stars_fits)
    np.testing.assert_allclose(s.dc["pixels"]["band_sum"], image[[30, 120, 210], [20, 100, 200]])

    table = s.app.viewers["pixels table"]._obj.glue_viewer
    viewer = s.japp.get_viewer("Image")
    viewer.shape = (400, 400)
    tools = table.toolbar.tools
    tools["jdaviz:table_zoom_to_selected"].activate()
    table.widget_table.checked = [0]
    tools["jdaviz:table_apply_zoom"].activate()
    assert (viewer.state.zoom_center_x, viewer.state.zoom_center_y) == pytest.approx((20, 30))
    assert viewer.state.y_max - viewer.state.y_min < 100
    table.toolbar.restore_tools()
    tools["jdaviz:table_subset"].activate()
    table.widget_table.checked = [1, 2]
    groups = len(s.dc.subset_groups)
    tools["jdaviz:table_apply_subset"].activate()
    assert len(s.dc.subset_groups) == groups + 1
    assert s.dc["pixels"].subsets[-1].to_mask().tolist() == [False, True, True]


def test_private_api_calls_are_checked_on_the_installed_versions():
    """Fails on a jdaviz or glue-jupyter version the calls in _compat were not tested with:
    check every function there, then add the version to _compat.TESTED."""
    assert _compat.untested() == [], "untested host versions: check glue_astrodl/jdaviz/_compat.py"
    assert _compat.untested({"jdaviz": ("4.2",)})[0][0] == "jdaviz"


def test_untested_versions_warn(monkeypatch):
    monkeypatch.setattr(_compat, "TESTED", {"jdaviz": ("4.2",)})
    with pytest.warns(RuntimeWarning, match="tested with jdaviz 4.2.x, not 5"):
        assert [d for d, _ in _compat.check_versions()] == ["jdaviz"]


def test_compat_imports_neither_jdaviz_nor_glue_jupyter():
    code = ("import sys; import glue_astrodl.jdaviz._compat; "
            "print([m for m in ('jdaviz', 'glue_jupyter') if m in sys.modules])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "[]", res.stderr[-2000:]


def test_plugins_register_when_jdaviz_comes_after_a_glue_session():
    """glue loads its plugins once per process: a glue-jupyter session opened before the first
    jdaviz app must still give that app every task's plugin."""
    code = textwrap.dedent("""
        import sys, warnings
        warnings.simplefilter("ignore")
        from glue_jupyter import jglue
        jglue()
        assert "jdaviz" not in sys.modules
        import jdaviz
        print(sorted(k for k in jdaviz.App().plugins if k.startswith(("Detect", "Forced"))))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "['Detect Contaminants', 'Detect Sources', 'Forced Photometry']"
