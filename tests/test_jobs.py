"""The file jobs as a batch user meets them: a real Dask cluster (``--scheduler``), a file that
kills every worker running it, and Cancel in the middle of a multi-tile run."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from conftest import noise_image, run_cli, write_fits

from glue_astrodl.core.errors import Cancelled

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed: pip install 'dask[distributed]'")


# ---- astrodl --scheduler: a real `dask scheduler` and `dask worker` on loopback ----

def _start(args, log):
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT)


def _stop(procs):
    """SIGTERM to each of ``procs`` in turn, last started first (a worker closes cleanly while
    its scheduler is up), SIGKILL to one still running 15 s later."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture
def dask_cluster(tmp_path):
    """``(address, logs)`` of a scheduler and one worker (no nanny: one process each) started
    as an administrator would, on 127.0.0.1; both are stopped afterwards."""
    info, logs, procs = tmp_path / "scheduler.json", tmp_path / "dask.log", []
    with open(logs, "w") as log:
        try:
            procs.append(_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                                 "--no-dashboard", "--scheduler-file", str(info)], log))
            deadline = time.monotonic() + 60
            while not (info.exists() and info.read_text().strip()):
                assert procs[0].poll() is None and time.monotonic() < deadline, logs.read_text()
                time.sleep(0.1)
            address = json.loads(info.read_text())["address"]
            procs.append(_start(["distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
                                 "--no-dashboard", "--local-directory", str(tmp_path / "worker")], log))
            yield address, logs
        finally:
            _stop(procs)
    assert all(p.poll() is not None for p in procs)


def test_scheduler_option_runs_the_files_on_that_cluster(dask_cluster, tmp_path, star_field):
    """``astrodl sources a b --scheduler tcp://127.0.0.1:PORT --regions .reg``: the files run as
    tasks of that cluster (its scheduler has seen them), each output and its own region
    file equal to an in-process run of the same file."""
    from regions import Regions

    from glue_astrodl.sim import simulate_point_sources

    address, logs = dask_cluster
    assert address.startswith("tcp://127.0.0.1:")
    a = star_field.write(tmp_path / "a.fits")
    b = simulate_point_sources((128, 128), snr=(30,), n_per_snr=4, fwhm=2.5, seed=8).write(tmp_path / "b.fits")
    out = tmp_path / "out"
    res = run_cli("sources", a, b, "-o", out, "--regions", ".reg", "--scheduler", address)
    assert res.returncode == 0, res.stderr + logs.read_text()
    assert res.stdout.splitlines() == [f"{out / 'a_sources.fits'}: done (18 sources at S/N >= 5 (FWHM 2.50 px))",
                                       f"{out / 'b_sources.fits'}: done (4 sources at S/N >= 5 (FWHM 2.50 px))"]
    assert sorted(p.name for p in out.iterdir()) == ["a_sources.fits", "a_sources.reg", "b_sources.fits",
                                                     "b_sources.reg"]
    from glue_astrodl import detect_sources

    for stem, path in (("a", a), ("b", b)):
        table, regs = Table.read(out / f"{stem}_sources.fits", hdu="SOURCES"), Regions.read(out / f"{stem}_sources.reg")
        here = detect_sources(path).table
        np.testing.assert_allclose(table["flux"], here["flux"])
        assert len(regs) == len(table)
        np.testing.assert_allclose([r.center.ra.deg for r in regs], table["ra"], atol=1e-7)
    with distributed.Client(address, timeout=30) as client:
        assert "astrodl" in client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))


# ---- a file whose job kills the Dask worker running it, every time ----

def _job_that_kills_its_worker(task_name, input, output, **params):
    """A file job that writes its output atomically, as the tasks' jobs do, except that for
    inputs named ``crash*`` the worker process dies half way through writing it (as on a
    segfault, or when the kernel's OOM killer picks it)."""
    from pathlib import Path

    from glue_astrodl.core.atomic import atomic_path

    with atomic_path(output) as tmp:
        tmp.write_bytes(b"half-written")
        if Path(input).name.startswith("crash"):
            os._exit(9)
        tmp.write_text(f"{task_name} of {input}")
    return "written"


def test_a_file_that_kills_its_worker_fails_alone(tmp_path, monkeypatch, capsys):
    """``astrodl`` on three files, one of which kills every worker that runs it: after Dask's
    retries one line names that file, the other files are done, nothing is left of the
    crashing file's output (not even the temporary its worker was writing), exit code 1."""
    import cloudpickle
    import dask

    import glue_astrodl.jobs
    from glue_astrodl.cli import main

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    monkeypatch.setattr(glue_astrodl.jobs, "task_job", _job_that_kills_its_worker)
    inputs = [write_fits(tmp_path / name, noise_image((16, 16))) for name in ("a.fits", "crash.fits", "c.fits")]
    out = tmp_path / "out"
    try:
        with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
            code = main(["sources", *map(str, inputs), "-o", str(out), "--workers", "2", "--quiet"])
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    stdout, stderr = capsys.readouterr()
    assert code == 1 and not stdout
    assert stderr.splitlines() == [(f"astrodl: error: {inputs[1]}: every Dask worker that ran it died (2 tries: a "
                                    "crash, or memory exhausted); no output written")]
    assert sorted(p.name for p in out.iterdir()) == ["a_sources.fits", "c_sources.fits"]
    assert [(out / f"{n}_sources.fits").read_text() for n in "ac"] == [f"sources of {p}" for p in inputs[::2]]


# ---- Cancel in the middle of a multi-tile run ----

def _cancel_after(n, calls):
    """A progress callback that records ``(done, total)`` and cancels once ``done >= n``."""

    def callback(done, total):
        calls.append((done, total))
        return done < n

    return callback


@pytest.fixture(scope="module")
def tiny_contaminants(tmp_path_factory):
    import torch

    from glue_astrodl.core.weights import save_model
    from glue_astrodl.models.contaminant_net import ContaminantNet
    from glue_astrodl.models.registry import ARCHITECTURES
    from glue_astrodl.tasks.contaminant_classes import CLASSES, DEFAULT_PRIORS

    torch.manual_seed(0)
    card = {"name": "tiny", "version": "0", "architecture": "contaminant-unet",
            "arch_kwargs": {"n_classes": 14, "in_channels": 1, "widths": [4, 4, 4, 4, 4]},
            "outputs": list(CLASSES), "training_priors": dict.fromkeys(CLASSES, 0.1),
            "default_priors": dict(DEFAULT_PRIORS), "thresholds": dict.fromkeys(CLASSES, 0.5),
            "receptive_field_overlap": 32, "task": "contaminants", "normaliser": {"name": "sky-mode-asinh"},
            "calibration_kind": "platt", "calibration": {}}
    path = tmp_path_factory.mktemp("weights") / "tiny"
    save_model(ContaminantNet(widths=(4, 4, 4, 4, 4)).eval(), path, card, architectures=ARCHITECTURES)
    return path.with_suffix(".safetensors")


def test_cancel_stops_contaminant_inference_after_the_tiles_done(tiny_contaminants):
    """The callback is told after each tile; once it answers False no further tile is computed
    (it is never called again) and `Cancelled` is raised, with no result."""
    from glue_astrodl import detect_contaminants

    calls = []
    with pytest.raises(Cancelled):
        detect_contaminants(noise_image((256, 256)), model=tiny_contaminants, tile=128, classes=["CR"],
                            callback=_cancel_after(2, calls))
    assert calls == [(1, 9), (2, 9)]  # 2 of 9 tiles
    every = []
    detect_contaminants(noise_image((256, 256)), model=tiny_contaminants, tile=128, classes=["CR"],
                        callback=lambda done, total: every.append(done))
    assert every == list(range(1, 10))


def test_cancel_of_the_file_job_leaves_no_output(tiny_contaminants, tmp_path):
    """The contaminant file job streams its product tile by tile into a temporary file: a
    Cancel after two of the first image's nine tiles stops it there (the second image is
    never started), raises `Cancelled`, and leaves neither the output, nor its region file,
    nor a temporary; an older output of that name is kept as it was."""
    from glue_astrodl.jobs import task_job

    mef = tmp_path / "mef.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(noise_image((256, 256), seed=1)),
                  fits.ImageHDU(noise_image((256, 256), seed=2))]).writeto(mef)
    old = tmp_path / "old_bitmask.fits"
    old.write_bytes(b"an earlier result")
    for output in (tmp_path / "new_bitmask.fits", old):
        calls = []
        with pytest.raises(Cancelled):
            task_job("contaminants", mef, output, product="bitmask", regions=tmp_path / "r.reg", model=tiny_contaminants,
                     classes=["CR", "SAT"], tile=128, callback=_cancel_after(2, calls))
        assert calls == [(1, 9), (2, 9)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mef.fits", "old_bitmask.fits"]
    assert old.read_bytes() == b"an earlier result"


def test_cancel_stops_source_detection_and_photometry(star_field):
    from glue_astrodl import detect_sources, forced_photometry

    calls = []
    with pytest.raises(Cancelled):
        detect_sources(star_field.image, star_field.header, tile=64, callback=_cancel_after(1, calls))
    assert len(calls) == 1 and calls[0][0] < calls[0][1]  # the first batch of tiles, of several
    calls = []
    with pytest.raises(Cancelled):
        forced_photometry(star_field.image, star_field.truth, star_field.header, batch=4, callback=_cancel_after(4, calls))
    assert calls == [(4, 18)]
