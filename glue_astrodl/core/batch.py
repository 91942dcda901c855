"""Run one file-to-file job per input through Dask distributed.

A LocalCluster is started by default (one single-threaded-task worker process per core,
torch threads split between them); pass a scheduler address to use an existing cluster.
Every job writes its outputs atomically, so a job that is killed half-way leaves nothing
behind; outputs that already exist are skipped, so re-running a batch finishes it. A job
that fails is reported and the others carry on, also when it kills the worker running it
(a crash in compiled code, memory exhausted): Dask retries it on other workers
(``distributed.scheduler.allowed-failures`` times) and it is then reported as failed.
"""

import logging
import os
import traceback
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..core.atomic import remove_stale_parts
from .errors import BadInputError

__all__ = ["Job", "JobResult", "run_batch", "run_job"]


@dataclass
class Job:
    """``func(input, output, **kwargs)`` must write ``output`` (last, atomically).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> def shout(src, dst, suffix=""):  # a job writes its output last
    ...     Path(dst).write_text(Path(src).read_text().upper() + suffix)
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("hello")
    >>> job = Job(shout, str(folder / "a.txt"), str(folder / "A.txt"), {"suffix": "!"})
    >>> run_job(job).status, (folder / "A.txt").read_text()
    ('done', 'HELLO!')
    """

    func: object
    input: str
    output: str
    kwargs: dict


@dataclass
class JobResult:
    """Outcome of one `Job`: ``status`` and a one-line ``message`` (the error, for failures).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from glue_astrodl.core.errors import BadInputError
    >>> def reject(src, dst):
    ...     raise BadInputError(f"{src}: not a FITS file")
    >>> def crash(src, dst):
    ...     return 1 / 0
    >>> out = str(Path(tempfile.mkdtemp()) / "out.fits")
    >>> r = run_job(Job(reject, "notes.txt", out, {}))
    >>> r.status, r.message
    ('bad-input', 'notes.txt: not a FITS file')
    >>> r = run_job(Job(crash, "a.fits", out, {}))  # reported, never raised
    >>> r.status, r.message
    ('failed', 'a.fits: ZeroDivisionError: division by zero')
    """

    input: str
    output: str
    status: str  # 'done', 'skipped', 'bad-input' or 'failed'
    message: str = ""
    traceback: str = ""  # of the error, for 'bad-input' and 'failed' (``astrodl --debug`` shows it)


def run_job(job, overwrite=False, threads=None):
    """Run one job, turning every exception into a `JobResult` (never raises).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> def copy(src, dst):
    ...     Path(dst).write_text(Path(src).read_text())
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("hello")
    >>> job = Job(copy, str(folder / "a.txt"), str(folder / "b.txt"), {})
    >>> run_job(job).status, run_job(job).status  # an existing output is skipped
    ('done', 'skipped')
    >>> run_job(job, overwrite=True).status
    'done'
    """
    if threads:
        os.environ["ASTRODL_THREADS"] = str(threads)
    for owned in (job.output, job.kwargs.get("regions")):  # a job killed earlier leaves temporaries
        if owned:
            remove_stale_parts(owned)
    if not overwrite and Path(job.output).exists():
        return JobResult(job.input, job.output, "skipped", "output exists")
    try:
        message = job.func(job.input, job.output, **job.kwargs) or ""
        return JobResult(job.input, job.output, "done", message)
    except BadInputError as err:
        text = str(err)
        return JobResult(job.input, job.output, "bad-input", text if job.input in text else f"{job.input}: {text}",
                         traceback.format_exc())
    except Exception as err:  # reported per file; the batch goes on
        return JobResult(job.input, job.output, "failed", f"{job.input}: {_first_line(err)}", traceback.format_exc())


def _first_line(err):
    """``"Type: first line of the message"``: what a user reads of an unexpected error."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _lost(job, err):
    """The `JobResult` of a job whose future raised ``err`` (the job itself never raises):
    its worker died each time it was run, or the cluster failed. The temporaries its killed
    writers left are removed (no worker runs it any more)."""
    from distributed import KilledWorker

    for owned in (job.output, job.kwargs.get("regions")):
        if owned:
            remove_stale_parts(owned)
    if isinstance(err, KilledWorker):
        text = (f"every Dask worker that ran it died ({err.allowed_failures + 1} tries: a crash, or memory "
                "exhausted); no output written")
    else:
        text = _first_line(err)
    return JobResult(job.input, job.output, "failed", f"{job.input}: {text}", "".join(traceback.format_exception(err)))


def run_batch(jobs, *, scheduler=None, n_workers=None, overwrite=False, progress=True, desc="files"):
    """Run ``jobs`` (a list of `Job`) and return their `JobResult` in input order.

    A single job without ``scheduler`` runs in this process (no cluster start-up); jobs whose
    output exists are skipped here, without a cluster (unless ``overwrite``). A job whose
    workers all died is 'failed', with a one-line message naming its input.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> def copy(src, dst):
    ...     Path(dst).write_text(Path(src).read_text())
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("hello")
    >>> jobs = [Job(copy, str(folder / "a.txt"), str(folder / "b.txt"), {})]
    >>> [r.status for r in run_batch(jobs, progress=False)]  # one job: no cluster is started
    ['done']
    """
    jobs = list(jobs)
    if len(jobs) == 1 and scheduler is None:
        return [run_job(jobs[0], overwrite)]
    results = [None] * len(jobs)
    if not overwrite:  # finished earlier: no cluster needed for them
        for i, job in enumerate(jobs):
            if Path(job.output).exists():
                results[i] = run_job(job)  # 'skipped', and stale temporaries removed
    todo = [i for i, r in enumerate(results) if r is None]
    if not todo:
        return results
    from dask.distributed import Client, LocalCluster, as_completed

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cluster = None
    if scheduler is None:
        n_workers = max(1, min(n_workers or cores, len(todo)))
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.CRITICAL)  # failures are reported per file
        threads = max(1, cores // n_workers)
    else:
        threads = None  # a real cluster's workers are configured by their owner
    client = Client(cluster if cluster is not None else scheduler)
    try:
        futures = {client.submit(run_job, jobs[i], overwrite, threads, pure=False,
                                 key=f"astrodl-{i}-{Path(jobs[i].input).name}"): i for i in todo}
        with tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=desc, unit="file", disable=not progress) as bar:
            # Each result is fetched as soon as its job ends, then released, so that a worker
            # dying later does not make Dask run the finished job again.
            for future, result in as_completed(futures, with_results=True, raise_errors=False):
                i = futures[future]
                if future.status == "error":  # e.g. a worker died too often while running it
                    result = _lost(jobs[i], future.exception())
                elif future.status != "finished":  # cancelled: ``result`` is the CancelledError
                    result = _lost(jobs[i], result)
                elif result.status == "skipped":  # its output did not exist when the batch started
                    result = JobResult(result.input, result.output, "done", "written during this run; its summary "
                                       "was lost (its worker died after finishing it)")
                results[i] = result
                future.release()
                bar.update()
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
