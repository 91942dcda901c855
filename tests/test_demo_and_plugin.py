"""The built-in example and the glue plugin entry point."""

from importlib.metadata import entry_points

import numpy as np
from astropy.io import fits
from conftest import run_cli
from regions import Regions


def test_demo_runs_every_registered_task(tmp_path):
    from glue_astrodl.tasks.registry import tasks

    res = run_cli("demo", tmp_path, "--size", "512", "--quiet")
    assert res.returncode == 0, res.stderr
    names = {p.name for p in tmp_path.iterdir()}
    assert {"demo_frame.fits", "demo_raw_frame.fits", "demo_catalogue.ecsv", "demo_sources.fits",
            "demo_sources.png", *(f"demo_contaminants_{k}.fits" for k in ("proba", "masks", "bitmask"))} <= names
    for task in tasks():  # a summary line and a region file for every task
        assert f"{task.label}: " in res.stdout and f"demo_{task.name}.reg" in names
    assert (tmp_path / "demo_sources.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(Regions.read(tmp_path / "demo_sources.reg")) > 20
    recovered = int(res.stdout.split("% of true objects")[0].split()[-1])
    assert recovered >= 85


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
