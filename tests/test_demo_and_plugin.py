"""The built-in example and the glue plugin entry point."""

import re
from importlib.metadata import entry_points

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from conftest import builtin_tasks, run_cli
from matplotlib.colors import to_rgb
from regions import Regions

SIZE, SEED = 512, 1


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """``(outdir, stdout)`` of one ``astrodl demo`` run, shared by the tests below."""
    out = tmp_path_factory.mktemp("demo")
    res = run_cli("demo", out, "--size", SIZE, "--seed", SEED, "--quiet")
    assert res.returncode == 0, res.stderr
    return out, res.stdout


def test_demo_runs_every_registered_task(demo):
    from scipy.spatial import cKDTree

    out, stdout = demo
    names = {p.name for p in out.iterdir()}
    assert {"demo_frame.fits", "demo_raw_frame.fits", "demo_catalogue.ecsv", "demo_sources.fits", "demo_sources.png",
            "demo_contaminants.png", *(f"demo_contaminants_{k}.fits" for k in ("proba", "masks", "bitmask"))} <= names
    for task in builtin_tasks():  # a summary line and a region file for every task the command has
        assert f"{task.label}: " in stdout and f"demo_{task.name}.reg" in names
    assert (out / "demo_sources.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(Regions.read(out / "demo_sources.reg")) > 20
    # the written source table against the written truth catalogue, matched here
    found, truth = Table.read(out / "demo_sources.fits", hdu="SOURCES"), Table.read(out / "demo_catalogue.ecsv")
    truth = truth[truth["snr"] >= 10]
    d, _ = cKDTree(np.c_[found["x"], found["y"]]).query(np.c_[truth["x"], truth["y"]])
    recovered = np.mean(d <= fits.getheader(out / "demo_frame.fits")["FWHM"])
    assert recovered >= 0.85
    printed = int(stdout.split("% of true objects")[0].split()[-1])
    assert abs(printed - 100 * recovered) <= 1


def _table(stdout):
    """``{class: (true, flagged, recovered or None, false flags)}`` (fractions) of the printed table."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "per class against the simulation's truth" in line) + 2
    rows = {}
    for line in lines[start:]:
        if line.startswith("  ("):
            break
        m = re.fullmatch(r"  (\w+): .+?\s+([\d.]+)%\s+([\d.]+)%\s+(?:([\d.]+)%|-)\s+([\d.]+)%", line)
        assert m, line
        true, flagged, recovered, false = (None if v is None else float(v) / 100 for v in m.groups()[1:])
        rows[m[1]] = (true, flagged, recovered, false)
    return rows


def _block(stdout, heading):
    """The class names listed under the summary line containing ``heading``."""
    lines = stdout.splitlines()
    at = [i for i, line in enumerate(lines) if heading in line]
    if not at:
        return set()
    names = set()
    for line in lines[at[0] + 1:]:
        if not line.startswith("  "):
            break
        names.add(line.split(":")[0].strip())
    return names


def test_demo_contaminant_products_against_the_truth(demo):
    """The written masks, bit-mask and probabilities agree with each other, the printed table
    is what they give against the simulator's truth (recomputed here), the findings name every
    class the model misses or over-flags, and the quick look shows the image under the flags."""
    from glue_astrodl.sim import simulate_contaminant_frame

    out, stdout = demo
    frame = simulate_contaminant_frame((SIZE, SIZE), seed=SEED)  # the truth, drawn again here
    np.testing.assert_array_equal(fits.getdata(out / "demo_raw_frame.fits"), frame.image)

    proba, ph = fits.getdata(out / "demo_contaminants_proba.fits", header=True)
    masks, mh = fits.getdata(out / "demo_contaminants_masks.fits", header=True)
    bitmask, bh = fits.getdata(out / "demo_contaminants_bitmask.fits", header=True)
    classes = [mh[f"CLASS{i + 1}"] for i in range(masks.shape[0])]
    assert classes == [ph[f"CLASS{i + 1}"] for i in range(proba.shape[0])]
    for i, c in enumerate(classes):  # masks are the probabilities at the written thresholds
        np.testing.assert_array_equal(masks[i].astype(bool), proba[i] >= np.float32(mh[f"THRESH{i + 1}"]), c)
    expected = np.zeros(bitmask.shape, np.int64)
    for key in (k for k in bh if re.fullmatch(r"BIT\d\d", k)):  # the OR of the bit of every flagged class
        expected[masks[classes.index(bh[key])].astype(bool)] |= 1 << int(key[3:])
    np.testing.assert_array_equal(bitmask, expected)

    foreground = [c for c in classes if c != "BG"]
    flags = {c: masks[classes.index(c)].astype(bool) for c in foreground}
    truth = {c: frame.mask(c) for c in foreground}
    rows = _table(stdout)
    assert set(rows) == {c for c in foreground if flags[c].any() or truth[c].any()}
    for c, (true, flagged, recovered, false) in rows.items():
        t, f = truth[c], flags[c]
        assert abs(true - t.mean()) <= 6e-6 and abs(flagged - f.mean()) <= 6e-6, c
        assert abs(false - (f & ~t).sum() / (~t).sum()) <= 6e-6, c
        if t.any():
            assert abs(recovered - (f & t).sum() / t.sum()) <= 6e-4, c
        else:
            assert recovered is None, c
    # the findings are honest: every class with true pixels recovered under half is named as missed,
    # every class with more false flags than true pixels (on >= 0.01% of the frame) as over-flagged
    assert "recovering under 50% of their true pixels" in stdout or "every class present" in stdout
    missed = {c for c in foreground if truth[c].any() and (flags[c] & truth[c]).sum() < 0.5 * truth[c].sum()}
    assert _block(stdout, "model misses") == missed
    false = {c: (flags[c] & ~truth[c]).sum() for c in foreground}
    assert _block(stdout, "model over-flags") == {c for c in foreground
                                                 if false[c] >= 1e-4 * SIZE**2 and false[c] > truth[c].sum()}

    _check_quicklook(out / "demo_contaminants.png", flags, truth)


def _panels(png):
    """``[(row0, row1, col0, col1)]`` of the two image panels of a quick look (the long runs of
    non-white pixels across its middle row, then down each just inside its left edge, clear of
    the title and the tick marks)."""

    def runs(line, min_len=200):
        idx = np.flatnonzero(line)
        cuts = np.flatnonzero(np.diff(idx) > 3)  # a few white (saturated) pixels do not end a panel
        spans = [(seg[0], seg[-1]) for seg in np.split(idx, cuts + 1) if len(seg)]
        return [s for s in spans if s[1] - s[0] >= min_len]

    ink = (png < 0.98).any(axis=2)
    boxes = []
    for c0, c1 in runs(ink[png.shape[0] // 2]):
        (r0, r1), = runs(ink[:, c0 + 3])
        boxes.append((r0, r1, c0, c1))
    assert len(boxes) == 2, boxes
    return boxes


def _check_quicklook(path, flags, truth):
    from matplotlib.image import imread
    from scipy.ndimage import binary_dilation

    from glue_astrodl.tasks.contaminant_classes import COLOURS

    png = imread(path)[..., :3]
    (flag_box, truth_box) = _panels(png)

    def sample(box, where, margin=6):
        """PNG pixels of ``box`` over the image pixels of ``where`` at least ``margin`` pixels inside."""
        inside = ~binary_dilation(~where, iterations=margin)
        r0, r1, c0, c1 = box
        rows, cols = np.mgrid[r0 + 2:r1 - 1, c0 + 2:c1 - 1]
        y = ((r1 - rows) / (r1 - r0) * SIZE).astype(int).clip(0, SIZE - 1)
        x = ((cols - c0) / (c1 - c0) * SIZE).astype(int).clip(0, SIZE - 1)
        keep = inside[y, x]
        return png[rows[keep], cols[keep]]

    def shows_image(pixels):
        grey = pixels.mean(axis=1)
        return len(pixels) > 500 and grey.std() > 0.02 and len(np.unique(np.round(grey, 3))) > 20

    anything = np.any(list(flags.values()) + list(truth.values()), axis=0)
    clean = sample(flag_box, ~anything)  # no flag, no truth: the plain grey image
    assert shows_image(clean)
    assert np.mean(np.ptp(clean, axis=1) < 0.01) > 0.95  # neutral grey, not tinted
    for box, masks in ((flag_box, flags), (truth_box, truth)):  # the largest class, tinted, the image showing
        big = max(masks, key=lambda c: masks[c].sum())
        alone = masks[big] & ~np.any([m for c, m in masks.items() if c != big], axis=0)
        under = sample(box, alone)
        assert shows_image(under), big
        tint = np.asarray(to_rgb(COLOURS[big])) - to_rgb("#808080")
        assert np.mean((under - under.mean(axis=1, keepdims=True)) @ tint > 0) > 0.9, big  # in the legend's colour


def test_glue_entry_point_registers_the_data_factory(tmp_path):
    (ep,) = [e for e in entry_points(group="glue.plugins") if e.name == "glue_astrodl"]
    assert ep.value == "glue_astrodl:setup"
    from glue.config import data_factory
    from glue.main import load_plugins

    load_plugins(require_qt_plugins=False)
    labels = [f.label for f in data_factory.members]
    assert "glue-astrodl product (FITS)" in labels


def test_data_factory_reads_products(tmp_path, star_field):
    from glue.core import DataCollection
    from glue.core.data_factories import load_data

    from glue_astrodl import detect_sources

    path = detect_sources(star_field.image, star_field.header).to_fits(tmp_path / "p.fits")
    from glue_astrodl.glue import register

    register()
    loaded = load_data(str(path))
    loaded = loaded if isinstance(loaded, list) else [loaded]
    dc = DataCollection(loaded)
    image = dc[0]
    assert {"SOURCE", "SIGNIFICANCE"} <= {c.label for c in image.main_components}
    np.testing.assert_allclose(image["SOURCE"], fits.getdata(path)[0])
    assert image.coords is not None and image.coords.pixel_to_world_values(0, 0) is not None
    catalogue = dc[1]
    assert catalogue.size == len(star_field.truth)
