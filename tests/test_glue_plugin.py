"""glue plugin: registration through the entry point, data factory (ours and MaxiMask's),
links, subsets on images and catalogues, exporters, and the glue-jupyter viewer tools."""

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from conftest import builtin_tasks
from glue.core import Data, DataCollection
from regions import Regions
from scipy import ndimage

from glue_astrodl.products import SUBSET_FLOOR
from glue_astrodl.tasks.contaminant_classes import COLOURS, MAXIMASK
from glue_astrodl.tasks.contaminants import ContaminantDetection, detect_contaminants


@pytest.fixture(scope="module", autouse=True)
def plugins():
    """Load glue plugins the way every glue / glue-jupyter / jdaviz application does."""
    from glue.main import _loaded_plugins, load_plugins

    load_plugins(require_qt_plugins=False)
    assert "glue_astrodl" in _loaded_plugins  # load_plugins swallows exceptions: check it really loaded


def _wcs(shape, frame="icrs"):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"] if frame == "icrs" else ["GLON-TAN", "GLAT-TAN"]
    w.wcs.crval = [150.1, 2.2]
    w.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    w.wcs.cdelt = [-1e-4, 1e-4]
    return w


def _image(label="frame", shape=(64, 80), wcs=True):
    data = Data(label=label, coords=_wcs(shape) if wcs else None)
    data.add_component(np.random.default_rng(0).normal(size=shape).astype(np.float32), "DATA")
    return data


def _fake_detection(shape=(64, 80)):
    """A ContaminantDetection with known probabilities (no model involved)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    probs = np.zeros((3, *shape), np.float32)
    probs[0, 10:14, 20:23] = 0.9  # CR blob
    probs[1][np.hypot(yy - 40, xx - 50) < 6] = 0.8  # SAT disc
    probs[2, :, 70] = 0.7  # HCL column
    header = _wcs(shape).to_header()
    return ContaminantDetection(probs, ["CR", "SAT", "HCL"], {"CR": 1e-3, "SAT": 1e-3, "HCL": 1e-3},
                                {"CR": 0.5, "SAT": 0.5, "HCL": 0.5}, fits.Header(header), _wcs(shape))


def test_entry_point_registers_every_glue_extension():
    from glue.config import autolinker, data_exporter, data_factory, link_helper, subset_mask_exporter, viewer_tool
    from glue_jupyter.bqplot.image import BqplotImageView

    assert "glue-astrodl product (FITS)" in [f.label for f in data_factory.members]
    assert {"astrodl:contaminants", "astrodl:sources"} <= set(viewer_tool.members)
    assert {"astrodl:contaminants", "astrodl:sources"} <= set(BqplotImageView.tools)
    exporters = [e.label for e in data_exporter.members]
    assert "Regions: subset polygons (ds9 .reg, CRTF, FITS)" in exporters
    assert "glue-astrodl product (FITS with WCS)" in exporters
    assert "Regions: pixel polygons (ds9 .reg, CRTF)" in [e.label for e in subset_mask_exporter.members]
    assert "SkyToPixelLink" in [h.helper.__name__ for h in link_helper.members]
    assert "glue-astrodl products" in [label for label, _ in autolinker]


def test_factory_reads_contaminant_products_and_links_them_to_the_parent(tmp_path):
    from glue.core.data_factories import load_data

    det = _fake_detection()
    parent = _image()
    dc = DataCollection([parent])
    for kind in ("proba", "masks", "bitmask"):
        path = det.to_fits(tmp_path / f"frame_{kind}.fits", product=kind)
        data = load_data(str(path))
        dc.append(data)
        assert data.coords.wcs.compare(parent.coords.wcs, tolerance=1e-9)
        names = [c.label for c in data.main_components]
        if kind == "bitmask":
            assert names == ["BITMASK", "CR", "SAT", "HCL"]
            assert np.array_equal(data["BITMASK"], det.bitmask())
            assert np.array_equal(data["SAT"], det.masks()[1])
        else:
            assert names == ["CR", "SAT", "HCL"]
            expected = det.probabilities if kind == "proba" else det.masks()
            assert np.array_equal(data["SAT"], expected[1])
    from glue_astrodl.glue.links import link_products

    assert len(link_products(dc)) == 6  # two pixel axes x three products
    assert link_products(dc) == []  # idempotent
    for product in dc[1:]:
        assert np.array_equal(product[parent.pixel_component_ids[1]], parent[parent.pixel_component_ids[1]])


def test_factory_reads_maximask_files(tmp_path):
    """MaxiMask writes one HDU per input HDU, planes named by ``<class>_DIM``, no WCS."""
    from glue_astrodl.glue.factories import is_product, read_product

    rng = np.random.default_rng(1)
    proba = rng.random((3, 32, 40)).astype(np.float32)
    hdr = fits.Header({"MM_UTC": "now", "PRIORS": "Yes", "THRESH": "No", "SMASK": "No"})
    for k, name in enumerate(["CR", "TRL", "BG"]):
        hdr[name], hdr[f"{name}_DIM"] = f"{name}: ...", str(k)
    fits.HDUList([fits.PrimaryHDU(proba, hdr), fits.ImageHDU(proba[::-1], hdr)]).writeto(tmp_path / "raw.mask.fits")
    bits = (proba[0] > 0.5).astype(np.int16) * 1 + (proba[1] > 0.5).astype(np.int16) * 64
    bhdr = fits.Header({"MM_UTC": "now", "SMASK": "Yes", "CR_SM": "1.0", "TRL_SM": "64.0", "BG_SM": "0.0",
                        "CR_DIM": "0", "TRL_DIM": "1", "BG_DIM": "2"})
    fits.PrimaryHDU(bits, bhdr).writeto(tmp_path / "single.mask.fits")
    fits.PrimaryHDU(proba).writeto(tmp_path / "plain.fits")

    assert is_product(tmp_path / "raw.mask.fits") and is_product(tmp_path / "single.mask.fits")
    assert not is_product(tmp_path / "plain.fits") and not is_product(tmp_path / "missing.fits")
    first, second = read_product(tmp_path / "raw.mask.fits")
    assert (first.label, second.label) == ("raw[0]", "raw[1]")
    assert [c.label for c in first.main_components] == ["CR", "TRL", "BG"]
    assert np.array_equal(first["TRL"], proba[1]) and np.array_equal(second["CR"], proba[2])
    assert first.coords is None and first.meta["astrodl_product"] == "probability"
    (single,) = read_product(tmp_path / "single.mask.fits")
    assert [c.label for c in single.main_components] == ["BITMASK", "CR", "TRL"]
    assert np.array_equal(single["TRL"], proba[1] > 0.5) and single.meta["astrodl_product"] == "bitmask"

    from glue_astrodl.glue.links import link_products

    raw = Data(label="raw", coords=None)
    raw.add_component(proba[0], "DATA")
    other = Data(label="other")
    other.add_component(proba[0], "DATA")
    dc = DataCollection([other, raw, first, single])
    link_products(dc)
    linked = {frozenset((link.data1.label, link.data2.label)) for link in dc.external_links}
    assert linked == {frozenset(("raw[0]", "raw")), frozenset(("single", "other"))}


@pytest.mark.parametrize("frame", ["icrs", "galactic"])
def test_sky_to_pixel_link_places_catalogue_rows_on_the_image(frame):
    from glue_astrodl.glue.links import catalogue_links

    image = Data(label="img", coords=_wcs((50, 60), frame))
    image.add_component(np.zeros((50, 60)), "DATA")
    x, y = np.array([3.2, 30.0, 58.7, -5.0]), np.array([4.9, 25.5, 48.1, 10.0])
    sky = image.coords.pixel_to_world(x, y).icrs
    cat = Data(label="cat", ra=sky.ra.deg, dec=sky.dec.deg)
    dc = DataCollection([image, cat])
    dc.add_link(catalogue_links(cat, image))
    np.testing.assert_allclose(cat[image.pixel_component_ids[1]], x, atol=1e-6)
    np.testing.assert_allclose(cat[image.pixel_component_ids[0]], y, atol=1e-6)
    world = image.coords.pixel_to_world(12.0, 7.0).icrs
    back = SkyCoord(image[cat.id["ra"]][7, 12], image[cat.id["dec"]][7, 12], unit="deg")
    assert back.separation(world).arcsec < 1e-6


def test_image_mask_subsets_select_the_catalogue_rows_on_masked_pixels():
    from glue_astrodl.glue.links import catalogue_links
    from glue_astrodl.products import PixelMaskSubsetState, set_mask_subsets

    image = _image()
    mask = np.zeros(image.shape, bool)
    mask[10:20, 30:40] = True
    x = np.array([30.0, 39.4, 39.6, 29.4, 35.0, -0.6, 79.6, np.nan, 1e30])
    y = np.array([10.0, 19.4, 15.0, 15.0, 20.6, 0.0, 63.0, 12.0, 12.0])
    ok = np.isfinite(x) & (np.abs(x) < 1e6)
    sky = image.coords.pixel_to_world(np.where(ok, x, 0), y).icrs
    cat = Data(label="cat", ra=np.where(ok, sky.ra.deg, x), dec=sky.dec.deg)
    dc = DataCollection([image, cat])
    dc.add_link(catalogue_links(cat, image))
    (group,) = set_mask_subsets(dc, image, {"CR": mask}, COLOURS, prefix="frame ")
    assert group.label == "frame CR" and group.style.color == COLOURS["CR"]
    rows = cat.subsets[0].to_mask()
    # our own row mask: the mask at the nearest pixel, False off the image or where undefined
    expected = np.zeros(len(x), bool)
    for i, (xi, yi) in enumerate(zip(x, y)):
        j, k = (int(np.round(yi)), int(np.round(xi))) if ok[i] else (-1, -1)
        expected[i] = 0 <= j < mask.shape[0] and 0 <= k < mask.shape[1] and mask[j, k]
    assert rows.tolist() == expected.tolist() == [True, True, False, False, False, False, False, False, False]
    assert np.array_equal(image.subsets[0].to_mask(), mask)
    # updating keeps one group per label; empty masks make no new group
    set_mask_subsets(dc, image, {"CR": ~mask, "TRL": np.zeros_like(mask)}, prefix="frame ")
    assert len(dc.subset_groups) == 1 and np.array_equal(image.subsets[0].to_mask(), ~mask)
    assert isinstance(dc.subset_groups[0].subset_state.copy(), PixelMaskSubsetState)
    # a mask under min_fraction of the image makes no group and empties an existing one
    few = np.zeros_like(mask)
    few[0, :3] = True  # 3 of 5120 pixels
    assert set_mask_subsets(dc, image, {"CR": few, "HP": few}, prefix="frame ", min_fraction=1e-3) == []
    assert len(dc.subset_groups) == 1 and not image.subsets[0].to_mask().any()
    (group,) = set_mask_subsets(dc, image, {"HP": few}, prefix="frame ", min_fraction=1e-4)
    assert group.label == "frame HP" and image.subsets[1].to_mask().sum() == 3
    with pytest.raises(ValueError, match="shape"):
        set_mask_subsets(dc, image, {"bad": mask[:5]})


@pytest.mark.parametrize("suffix", [".reg", ".crtf", ".fits"])
def test_subset_regions_export_round_trips(tmp_path, suffix):
    from glue_astrodl.glue.exporters import export_mask_regions, export_regions
    from glue_astrodl.products import set_mask_subsets

    det = _fake_detection()
    image = _image()
    dc = DataCollection([image])
    masks = dict(zip(det.classes, det.masks()))
    set_mask_subsets(dc, image, masks, COLOURS)
    path = export_regions(tmp_path / f"all{suffix}", image)
    regs = Regions.read(path, format={".reg": "ds9", ".crtf": "crtf", ".fits": "fits"}[suffix])
    assert len(regs) == sum(ndimage.label(m)[1] for m in masks.values()) == 3
    for reg in regs:  # every polygon encloses the pixels of one mask blob
        pix = reg.to_pixel(image.coords) if hasattr(reg, "to_pixel") else reg
        covered = pix.to_mask(mode="center").to_image(image.shape).astype(bool)
        assert any(np.array_equal(covered, m) for m in masks.values())
    one = Regions.read(export_regions(tmp_path / f"sat{suffix}", image.subsets[1]))
    assert len(one) == 1
    if suffix != ".fits":
        pix = Regions.read(export_mask_regions(tmp_path / f"px{suffix}", masks))
        assert len(pix) == 3 and all(type(r).__name__ == "PolygonPixelRegion" for r in pix)


def test_fits_exporter_writes_products_the_factory_reads_back(tmp_path):
    from glue_astrodl.glue.exporters import export_fits
    from glue_astrodl.glue.factories import read_product
    from glue_astrodl.glue.products import layers_data
    from glue_astrodl.products import set_mask_subsets

    det = _fake_detection()
    data = layers_data("frame contaminants", det)
    names = ["P(CR)", "P(SAT)", "P(HCL)", "bitmask"]
    assert [c.label for c in data.main_components] == names
    (back,) = read_product(export_fits(tmp_path / "p.fits", data))
    assert [c.label for c in back.main_components] == names
    assert np.array_equal(back["P(SAT)"], det["SAT"]) and np.array_equal(back["bitmask"], det.bitmask())
    assert back.coords.wcs.compare(det.wcs.wcs, tolerance=1e-9)
    dc = DataCollection([data])
    set_mask_subsets(dc, data, {"CR": det.masks()[0]})
    (mask,) = read_product(export_fits(tmp_path / "m.fits", data.subsets[0]))
    assert mask.meta["astrodl_product"] == "masks" and np.array_equal(mask["CR"], det.masks()[0])


@pytest.fixture(scope="module")
def raw_frame():
    from glue_astrodl.sim import simulate_contaminant_frame

    return simulate_contaminant_frame((160, 160), seed=2)


def _viewer(image_array, header):
    from glue_jupyter import jglue
    from glue_jupyter.bqplot.image import BqplotImageView

    app = jglue()
    data = Data(label="raw", coords=WCS(header).celestial if "CTYPE1" in header else None)
    data.add_component(image_array, "DATA")
    app.add_data(data)
    return app, data, app.new_data_viewer(BqplotImageView, data=data, show=False)


def test_viewer_tools_run_on_the_active_image(raw_frame):

    app, data, viewer = _viewer(raw_frame.image, raw_frame.header)
    dc = app.data_collection
    tool = viewer.toolbar.tools["astrodl:contaminants"]
    tool.activate()  # the work runs in a thread: the viewer stays responsive
    assert tool.message == "Detect Contaminants: running on raw..."
    assert tool.wait(300)
    expected = detect_contaminants(raw_frame.image, raw_frame.header)
    assert tool.message == f"Detect Contaminants: raw: {expected.summary()}", tool.message
    out = dc["raw contaminants"]
    assert [c.label for c in out.main_components] == [*(f"P({c})" for c in MAXIMASK.foreground), "bitmask"]
    groups = {g.label: g for g in dc.subset_groups}
    for name, mask in zip(expected.classes, expected.masks()):
        if name == MAXIMASK.background:
            continue
        np.testing.assert_allclose(out[f"P({name})"], expected[name])
        label = f"raw {MAXIMASK.label(name)}"
        if mask.mean() < SUBSET_FLOOR:  # no subset for a class with (almost) nothing flagged
            assert label not in groups
            continue
        group = groups[label]
        assert np.array_equal(data.subsets[dc.subset_groups.index(group)].to_mask(), mask), name
        assert group.style.color == COLOURS[name]
    assert np.all((out["P(CR)"] >= 0) & (out["P(CR)"] <= 1))
    assert np.array_equal(out["bitmask"], expected.bitmask())

    sources = viewer.toolbar.tools["astrodl:sources"]
    data.meta["FWHM"] = raw_frame.meta["fwhm"]  # no unsaturated star here to measure it on
    sources.activate()
    assert sources.wait(300) and sources.message.startswith("Detect Sources: raw: "), sources.message
    cat = dc["raw sources catalogue"]
    assert cat in [layer.layer for layer in viewer.state.layers]  # shown as markers
    group = next(g for g in dc.subset_groups if g.label == "raw P(source) >= 0.5")
    pmap = dc["raw sources"]["P(source)"]
    rows = cat.subsets[dc.subset_groups.index(group)].to_mask()
    xi, yi = np.round(cat["x"]).astype(int), np.round(cat["y"]).astype(int)
    assert cat.size > 0 and rows.tolist() == (pmap[yi, xi] >= 0.5).tolist()


def test_viewer_tool_reports_bad_input_in_one_line():
    app, data, viewer = _viewer(np.full((64, 64), 3.0, np.float32), fits.Header())
    before = len(app.data_collection)
    tool = viewer.toolbar.tools["astrodl:contaminants"]
    tool.activate()
    assert tool.wait(300)
    assert tool.message.startswith("Detect Contaminants failed: ") and "\n" not in tool.message, tool.message
    assert len(app.data_collection) == before
    sources = viewer.toolbar.tools["astrodl:sources"]
    sources.activate()  # the viewer keeps working
    assert sources.wait(300) and "\n" not in sources.message and sources.message.startswith("Detect Sources failed")


def test_glue_start_registers_without_importing_jdaviz_or_torch():
    """glue's desktop (or a plain glue-jupyter session) loads the plugin without jdaviz."""
    import subprocess
    import sys

    code = ("import sys\nfrom glue.main import load_plugins, _loaded_plugins\nload_plugins(require_qt_plugins=False)\n"
            "from glue.config import viewer_tool\n"
            "print('glue_astrodl' in _loaded_plugins, 'jdaviz' in sys.modules, 'torch' in sys.modules,"
            " sorted(t for t in viewer_tool.members if t.startswith('astrodl:')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    loaded, jdaviz, torch, tools = res.stdout.strip().split(" ", 3)
    assert (loaded, jdaviz, torch) == ("True", "False", "False"), res.stdout + res.stderr[-2000:]
    assert tools == str(sorted(f"astrodl:{t.name}" for t in builtin_tasks()))


def test_photometry_columns_join_the_catalogue_and_its_subsets_show_on_the_image(tmp_path):
    """Catalogue in, columns out: the new columns are components of the same catalogue Data,
    still linked to the image, so a subset on them selects rows that the image viewer draws."""
    from glue_jupyter import jglue
    from glue_jupyter.bqplot.image import BqplotImageView

    from glue_astrodl import forced_photometry
    from glue_astrodl.glue.links import catalogue_links
    from glue_astrodl.glue.results import run_task
    from glue_astrodl.sim import simulate_point_sources

    frame = simulate_point_sources((192, 192), snr=(5, 40), n_per_snr=6, fwhm=2.5, seed=8)
    frame.write(tmp_path / "field.fits")
    frame.truth["id", "ra", "dec"].write(tmp_path / "cat.fits")
    app = jglue()
    image = app.load_data(str(tmp_path / "field.fits"))
    cat = app.load_data(str(tmp_path / "cat.fits"))
    dc = app.data_collection
    dc.add_link(catalogue_links(cat, image))
    viewer = app.new_data_viewer(BqplotImageView, data=image, show=False)
    viewer.add_data(cat)
    tool = viewer.toolbar.tools["astrodl:photometry"]  # generated from the registry
    tool.activate()
    assert tool.wait(300) and tool.message.startswith("Forced Photometry: field: "), tool.message
    expected = forced_photometry(str(tmp_path / "field.fits"), str(tmp_path / "cat.fits")).to_table()
    np.testing.assert_allclose(cat["mf_flux"], expected["mf_flux"])
    assert cat.get_component("mf_flux").units == str(expected["mf_flux"].unit)
    assert {"mf_flux_err", "mf_snr", "mf_flag"} <= {c.label for c in cat.components}
    bright = dc.new_subset_group("bright", cat.id["mf_snr"] > 20)
    rows = cat.subsets[dc.subset_groups.index(bright)].to_mask()
    assert rows.tolist() == (expected["mf_snr"] > 20).tolist() and 0 < rows.sum() < len(rows)
    (layer,) = [s for s in viewer.state.layers if s.layer is cat.subsets[dc.subset_groups.index(bright)]]
    assert layer.visible  # the bright rows are drawn on the image
    run_task("photometry", dc, image, cat, fwhm="2.5")  # a re-run updates the columns in place
    assert sum(c.label == "mf_flux" for c in cat.components) == 1


def test_a_run_that_flags_no_pixel_adds_no_subset_and_no_error():
    """Pure noise: no pixel reaches P(source) >= 0.5, so the glue front end makes no subset
    (it used to unpack exactly one group and fail)."""
    from glue_astrodl.glue.results import run_task

    image = _image("noise")
    dc = DataCollection([image])
    result = run_task("sources", dc, image, fwhm="2.5")
    assert not (result.probability >= 0.5).any()  # the case under test
    assert len(dc.subset_groups) == 0
    assert "noise sources" in dc and result.summary().startswith(f"{len(result.table)} sources")
