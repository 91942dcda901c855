"""Many files through Dask: one output each, failures isolated, re-runs finish the job."""

import functools
import os
import signal
import threading
import time

import pytest
from astropy.table import Table
from conftest import run_cli

from glue_astrodl.core.batch import Job, run_batch
from glue_astrodl.jobs import default_output, task_job
from glue_astrodl.sim import simulate_point_sources


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    d = tmp_path_factory.mktemp("frames")
    paths = []
    for i in range(20):
        f = simulate_point_sources((384, 384), snr=(12, 30), n_per_snr=8, fwhm=2.5, seed=100 + i)
        f.write(d / f"f{i:02d}.fits")
        paths.append(d / f"f{i:02d}.fits")
    return paths


sources_job = functools.partial(task_job, "sources")  # the CLI's job for `astrodl sources`


def _jobs(paths, outdir):
    return [Job(sources_job, str(p), str(default_output(p, "sources", outdir=outdir)), {}) for p in paths]


def _n_sources(path):
    return len(Table.read(path, hdu="SOURCES"))


def test_default_output_names(tmp_path):
    assert default_output("/a/b/img.fits.fz", "sources").name == "img_sources.fits"
    assert default_output("x.fit.gz", "cr", outdir=tmp_path) == tmp_path / "x_cr.fits"


def test_killed_worker_then_rerun_gives_all_outputs(frames, tmp_path):
    from dask.distributed import Client, LocalCluster

    outdir = tmp_path / "out"
    reference = {p.name: _n_sources(sources_job_output(p, tmp_path / "ref")) for p in frames}
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        with Client(cluster) as client:
            pids = list(client.run(os.getpid).values())

        def kill_one():
            while len(list(outdir.glob("*.fits"))) < 3:
                time.sleep(0.05)
            os.kill(pids[0], signal.SIGKILL)

        killer = threading.Thread(target=kill_one)
        killer.start()
        first = run_batch(_jobs(frames, outdir), scheduler=cluster.scheduler_address, progress=False)
        killer.join()
        assert sum(r.status == "done" for r in first) >= 3
        second = run_batch(_jobs(frames, outdir), scheduler=cluster.scheduler_address, progress=False)
    finally:
        cluster.close()
    assert all(r.status in ("done", "skipped") for r in second), [r.message for r in second]
    outputs = sorted(outdir.glob("*.fits"))
    assert len(outputs) == 20 and not list(outdir.glob(".*part*"))
    for p in frames:  # identical to an in-process run of the same file
        assert _n_sources(default_output(p, "sources", outdir=outdir)) == reference[p.name]


def sources_job_output(path, outdir):
    out = default_output(path, "sources", outdir=outdir)
    sources_job(str(path), str(out))
    return out


def test_cli_batch_local_cluster_with_a_bad_file(frames, tmp_path):
    bad = tmp_path / "bad.fits"
    bad.write_text("not fits")
    outdir = tmp_path / "out"
    res = run_cli("sources", *frames[:4], bad, "-o", outdir, "--workers", "2", "--quiet")
    assert res.returncode == 2, res.stderr
    assert len(list(outdir.glob("*.fits"))) == 4
    assert res.stderr.count("astrodl: error:") == 1 and "bad.fits" in res.stderr
    again = run_cli("sources", str(frames[0].parent / "f0[0-3].fits"), "-o", outdir, "--workers", "2")
    assert again.returncode == 0 and again.stdout.count("skipped") == 4


def test_in_process_single_job_reports_failure(tmp_path):
    res = run_batch([Job(sources_job, str(tmp_path / "missing.fits"), str(tmp_path / "o.fits"), {})])
    assert res[0].status == "bad-input" and "no such file" in res[0].message
    assert not (tmp_path / "o.fits").exists()


def test_rerun_removes_temporaries_of_a_killed_job(frames, tmp_path):
    """SIGKILL skips cleanup: the next run of that job deletes the job's stale temporaries."""
    out = default_output(frames[0], "sources", outdir=tmp_path)
    stale = tmp_path / f".{out.name}.abc123.part.fits"
    stale.write_bytes(b"half-written")
    other = tmp_path / ".other.fits.abc123.part.fits"  # not this job's: left alone
    other.write_bytes(b"")
    res = run_batch([Job(sources_job, str(frames[0]), str(out), {})], progress=False)
    assert res[0].status == "done" and out.exists()
    assert not stale.exists() and other.exists()
