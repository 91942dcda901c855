#!/usr/bin/env python
"""Peak memory and wall time of `astrodl contaminants` on frames larger than memory allows.

For each frame side (default 8192 and 20000) a float32 frame is written band by band to a
FITS file in a work directory (sky, noise, stars and cosmic-ray hits; memory-mapped, never
held whole), and the real command

    python -m glue_astrodl.cli contaminants FRAME -o OUT --product KIND --quiet

is run once per product kind, each as a fresh process whose own peak resident set size
(``ru_maxrss``, what ``/usr/bin/time -v`` reports) is measured by `bench_speed.measure`.
That peak counts the pages of the memory-mapped input and output the process has touched
(file pages the kernel may drop at any time), so the peak of its anonymous memory (RSS less
file-backed pages, sampled every 0.2 s with psutil) is reported beside it. The output is
checked (shape, dtype) and deleted before the next run. A run whose output does not fit on
the work directory's disk is reported as skipped, with the space it needs.

    python benchmarks/bench_memory.py                         # 8192 and 20000, every product
    python benchmarks/bench_memory.py --sizes 2048 --products bitmask
    python benchmarks/bench_memory.py --src /path/to/old/checkout   # the same runs on other code
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from bench_speed import measure

HERE = Path(__file__).resolve().parent
PRODUCTS = {"proba": (14, 4), "masks": (14, 1), "bitmask": (1, 2)}  # planes, bytes per pixel
BAND = 512  # rows simulated at a time


def _band(rng, rows, width, n_stars, n_crs):
    """``rows`` x ``width`` of sky (100 ADU, noise 5 ADU) with Gaussian stars (FWHM 3 px) and
    cosmic-ray hits of 1-4 pixels."""
    band = rng.normal(100.0, 5.0, (rows, width)).astype(np.float32)
    yy, xx = np.mgrid[-7:8, -7:8]
    psf = np.exp(-(xx**2 + yy**2) / (2 * (3.0 / 2.355) ** 2)).astype(np.float32)
    psf /= psf.sum()
    for y, x, flux in zip(rng.integers(7, rows - 7, n_stars), rng.integers(7, width - 7, n_stars),
                          rng.lognormal(7.0, 1.0, n_stars)):
        band[y - 7:y + 8, x - 7:x + 8] += np.float32(flux) * psf
    for y, x, length in zip(rng.integers(0, rows, n_crs), rng.integers(0, width - 4, n_crs),
                            rng.integers(1, 5, n_crs)):
        band[y, x:x + length] += rng.uniform(200.0, 2000.0)
    return band


def write_frame(path, side, seed=0):
    """A ``side`` x ``side`` float32 frame written band by band through a memory map."""
    from astropy.io import fits

    from glue_astrodl.io.fits import memmap_fits

    per_mpix = side * BAND / 1e6
    with memmap_fits(path, [(fits.Header({"BUNIT": "adu"}), (side, side), np.float32)]) as out:
        for i, y in enumerate(range(0, side, BAND)):
            rows = min(BAND, side - y)
            out.data[0][y:y + rows] = _band(np.random.default_rng([seed, i]), rows, side, int(20 * per_mpix),
                                            int(50 * per_mpix))
            out.release(0, (y, y + rows))
    return path


class PeakAnonymous(threading.Thread):
    """Samples, until stopped, the anonymous resident memory (RSS less file-backed pages) of
    every ``glue_astrodl.cli`` process below this one; ``peak_mb`` is the largest seen."""

    def __init__(self, every=0.2):
        super().__init__(daemon=True)
        self.every, self.peak_mb, self.stop = every, 0.0, threading.Event()

    def run(self):
        me = psutil.Process()
        while not self.stop.wait(self.every):
            for proc in me.children(recursive=True):
                try:
                    if "glue_astrodl.cli" in proc.cmdline():
                        mem = proc.memory_info()
                        self.peak_mb = max(self.peak_mb, (mem.rss - mem.shared) / 1e6)
                except psutil.Error:  # it ended between listing and reading
                    pass


def _check(path, side, kind):
    from astropy.io import fits

    planes, nbytes = PRODUCTS[kind]
    with fits.open(path) as hdul:
        data = hdul[0].data
        shape = (side, side) if kind == "bitmask" else (planes, side, side)
        if data.shape != shape or data.dtype.itemsize != nbytes:
            raise RuntimeError(f"{path}: got {data.shape} {data.dtype}, expected {shape} of {nbytes} bytes")


def run(frame, side, kind, workdir, env):
    """One measured run: ``{"wall_s", "rss_mb", "anon_mb", "output_gb"}`` or ``{"skipped": reason}``."""
    planes, nbytes = PRODUCTS[kind]
    need = planes * side * side * nbytes
    free = shutil.disk_usage(workdir).free
    if free < need + 1e9:
        return dict(skipped=f"needs {need / 1e9:.1f} GB of disk, {free / 1e9:.1f} GB free in {workdir}")
    out = Path(workdir) / f"out_{kind}.fits"
    cmd = [sys.executable, "-m", "glue_astrodl.cli", "contaminants", frame, "-o", out, "--product", kind,
           "--quiet", "--overwrite"]
    sampler = PeakAnonymous()
    sampler.start()
    try:
        wall, rss, _ = measure(cmd, env, workdir)
        _check(out, side, kind)
    finally:
        sampler.stop.set()
        out.unlink(missing_ok=True)
    return dict(wall_s=wall, rss_mb=rss, anon_mb=sampler.peak_mb, output_gb=need / 1e9)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="8192,20000", help="frame sides, comma-separated")
    ap.add_argument("--products", default="proba,masks,bitmask", help="product kinds, comma-separated")
    ap.add_argument("--workdir", help="where frames and outputs go (default: a new temporary directory)")
    ap.add_argument("--src", help="run the command from this source tree (PYTHONPATH), e.g. an older checkout")
    ap.add_argument("--out", default=HERE / "results" / "memory.json", type=Path, help="JSON results")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = [k for k in args.products.split(",") if k]
    env = dict(os.environ, ASTRODL_DEVICE=os.environ.get("ASTRODL_DEVICE", "cpu"))
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve())
    out_json, here = args.out.resolve(), os.getcwd()
    workdir = tempfile.mkdtemp(prefix="astrodl-memory-", dir=args.workdir)
    os.chdir(workdir)  # `python -m` imports from the working directory first: not a checkout's
    rows = []
    try:
        for side in sizes:
            t = time.perf_counter()
            frame = write_frame(Path(workdir) / f"frame_{side}.fits", side)
            print(f"{side}x{side} frame written in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
            for kind in kinds:
                res = dict(side=side, product=kind, **run(frame, side, kind, workdir, env))
                print(f"  {kind}: {res}", file=sys.stderr, flush=True)
                rows.append(res)
            frame.unlink()
    finally:
        os.chdir(here)
        shutil.rmtree(workdir, ignore_errors=True)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(dict(rows=rows, src=args.src, date=time.strftime("%Y-%m-%d"),
                                        cores=os.cpu_count(), python=platform.python_version()), indent=1))
    print(f"# astrodl contaminants: peak memory, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores"
          + (f", code from {args.src}" if args.src else "") + "\n")
    print("| frame | --product | output [GB] | wall time [s] | peak RSS [MB] | peak anonymous [MB] |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['side']}x{r['side']} | {r['product']} | — | skipped: {r['skipped']} | — | — |")
        else:
            print(f"| {r['side']}x{r['side']} | {r['product']} | {r['output_gb']:.2f} | {r['wall_s']:.0f} | "
                  f"{r['rss_mb']:.0f} | {r['anon_mb']:.0f} |")
    for r in rows:
        if r["side"] == 8192 and r["product"] == "bitmask" and "rss_mb" in r:
            print(f"\nTarget: 8192x8192 bitmask peak RSS <= 1.5 GB: {r['rss_mb']:.0f} MB -> "
                  f"**{'PASS' if r['rss_mb'] <= 1500 else 'FAIL'}**")


if __name__ == "__main__":
    main()
