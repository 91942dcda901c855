#!/usr/bin/env python
"""Wall time and peak memory of source detection on one large frame: astrodl vs sep vs photutils.

One frame (default 4096x4096, ``simulate_frame`` with stars and galaxies) is written to a
FITS file in a temporary directory. Every measurement is a fresh Python process, started
here and reaped with ``os.wait4``, whose resource usage gives that process's own peak
resident set size (``ru_maxrss``); the wall time is measured around the whole process, so
it includes interpreter start-up, imports, reading the FITS file and (for astrodl) writing
the products. The work timed inside each process (``compute``) is reported too.

Rows:

* ``astrodl CLI``: ``astrodl sources FILE -o OUT --fwhm F --profile P --quiet`` (the full
  command: read, background, matched filter, probabilities, table, FITS write).
* ``sep``: read FITS, ``sep.Background``, ``sep.extract(data - bkg, 5, err=bkg.globalrms)``.
* ``photutils``: read FITS, ``Background2D`` (64 px boxes, 3x3 filter), convolution with
  ``make_2dgaussian_kernel(F, 5)``, ``detect_sources(conv, 1.5 * rms, n_pixels=5)`` (the
  photutils-documentation recipe) and ``SourceCatalog`` centroids and fluxes.
* ``photutils + deblend``: the same with ``deblend_sources`` before the catalogue.
* ``python + imports``: the astrodl imports only (torch included), a fixed cost.

``--contaminants`` times ``astrodl contaminants`` instead (issue 14: no slower than
astroscrappy end to end), on one ``simulate_contaminant_frame`` (default 2048x2048):

* ``astrodl contaminants FILE -o OUT --product P --quiet`` for each product (``proba``,
  ``masks``, ``bitmask``), at the default precision (bf16 where the CPU has it natively)
  and, with ``--fp32``, also forced to float32;
* ``astroscrappy``: a fresh process that reads the FITS file, runs
  ``astroscrappy.detect_cosmics`` (gain, read noise and saturation from the header, bias
  subtracted) and writes the uint8 mask to FITS, so that both sides pay start-up, reading
  and writing;
* ``maximask`` (``--peers-python PY`` with MaxiMask installed there, once: ~100 s a run):
  its CLI with ``--proba_thresh False --prior_modif False``.

The commands run in turn (ours, astroscrappy, ours, ...) ``--repeat`` times, and each
ratio to astroscrappy is the median of the per-round ratios, so drift of a shared
machine's load hits both sides alike.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


# ---------------------------------------------------------------------------- workers
# Run in their own process: ``bench_speed.py --worker NAME FILE [options]``. Each prints
# one JSON line ``{"n": detections, "compute_s": seconds}`` as its last output.

def _read(path):
    import numpy as np
    from astropy.io import fits

    data = fits.getdata(path)
    return np.ascontiguousarray(data, dtype=np.float32)  # native byte order for sep / numpy


def worker_sep(path, fwhm, thresh):
    import sep

    t = time.perf_counter()
    data = _read(path)
    bkg = sep.Background(data)
    sub = data - bkg
    extra = {}
    while True:  # sep's default pixel stack (300000); grown only if the frame needs it
        try:
            objs = sep.extract(sub, thresh, err=bkg.globalrms)
            break
        except Exception as err:
            if "pixel buffer full" not in str(err) and "object buffer full" not in str(err):
                raise
            sep.set_extract_pixstack(4 * sep.get_extract_pixstack())
            extra["pixstack"] = sep.get_extract_pixstack()
    return dict(n=len(objs), compute_s=time.perf_counter() - t, **extra)


def worker_photutils(path, fwhm, thresh, deblend=False):
    import warnings

    from astropy.convolution import convolve
    from astropy.stats import SigmaClip
    from photutils.background import Background2D, MedianBackground
    from photutils.segmentation import (SourceCatalog, deblend_sources, detect_sources,
                                        make_2dgaussian_kernel)

    t = time.perf_counter()
    data = _read(path)
    bkg = Background2D(data, (64, 64), filter_size=(3, 3), sigma_clip=SigmaClip(sigma=3.0),
                       bkg_estimator=MedianBackground())
    sub = data - bkg.background
    kernel = make_2dgaussian_kernel(fwhm, size=max(5, 2 * int(-(-fwhm // 1)) - 1))
    conv = convolve(sub, kernel)
    segm = detect_sources(conv, thresh * bkg.background_rms, n_pixels=5)
    extra = {}
    if deblend:
        t1 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            segm = deblend_sources(conv, segm, n_pixels=5, progress_bar=False)
        extra["deblend_s"] = time.perf_counter() - t1
    cat = SourceCatalog(sub, segm, convolved_data=conv)
    tab = cat.to_table(columns=["label", "x_centroid", "y_centroid", "segment_flux"])
    return dict(n=len(tab), compute_s=time.perf_counter() - t, **extra)


def worker_imports(path, fwhm, thresh):
    t = time.perf_counter()
    import glue_astrodl.cli  # noqa: F401
    import glue_astrodl.jobs  # noqa: F401
    import glue_astrodl.tasks.sources  # noqa: F401
    import torch  # noqa: F401

    return dict(n=0, compute_s=time.perf_counter() - t)


def worker_api(path, fwhm, thresh, out, profile):
    """astrodl Python API in-process: detect_sources + to_fits (for the compute time)."""
    from glue_astrodl.tasks.sources import detect_sources

    t = time.perf_counter()
    res = detect_sources(path, fwhm=fwhm, profile=profile, threshold=thresh)
    res.to_fits(out)
    return dict(n=len(res.table), compute_s=time.perf_counter() - t)


def worker_astroscrappy(path, fwhm, thresh, out):
    """Read the FITS frame, ``astroscrappy.detect_cosmics``, write the CR mask to FITS."""
    import astroscrappy
    import numpy as np
    from astropy.io import fits

    t = time.perf_counter()
    with fits.open(path) as hdul:
        img, hdr = np.asarray(hdul[0].data, np.float32), hdul[0].header
    bias = float(hdr.get("BIASLEV", 0.0))
    mask, _clean = astroscrappy.detect_cosmics(img - bias, gain=float(hdr.get("GAIN", 1.0)),
                                               readnoise=float(hdr.get("RDNOISE", 5.0)),
                                               satlevel=float(hdr.get("SATURATE", 65535.0)) - bias)
    fits.writeto(out, mask.astype(np.uint8), overwrite=True)
    return dict(n=int(mask.sum()), compute_s=time.perf_counter() - t)


def worker_contaminant_imports(path, fwhm, thresh):
    t = time.perf_counter()
    import glue_astrodl.cli  # noqa: F401
    import glue_astrodl.core.tiling  # noqa: F401
    import glue_astrodl.jobs  # noqa: F401
    import glue_astrodl.tasks.contaminants  # noqa: F401

    return dict(n=0, compute_s=time.perf_counter() - t)


WORKERS = {"sep": worker_sep, "photutils": worker_photutils, "imports": worker_imports,
           "api": worker_api, "astroscrappy": worker_astroscrappy, "contaminant-imports": worker_contaminant_imports}


def run_worker(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("name", choices=sorted(WORKERS))
    ap.add_argument("file")
    ap.add_argument("--fwhm", type=float, required=True)
    ap.add_argument("--thresh", type=float, default=5.0)
    ap.add_argument("--deblend", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--profile", default="gaussian")
    a = ap.parse_args(argv)
    kw = {}
    if a.name == "photutils":
        kw["deblend"] = a.deblend
    if a.name == "api":
        kw.update(out=a.out, profile=a.profile)
    if a.name == "astroscrappy":
        kw.update(out=a.out)
    res = WORKERS[a.name](a.file, a.fwhm, a.thresh, **kw)
    res["vmhwm_mb"] = _vmhwm_mb()
    print(json.dumps(res))


def _vmhwm_mb():
    """The process's own peak RSS from /proc (cross-check of the launcher's ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return None


# ---------------------------------------------------------------------------- measuring

# A fork of a large process (vfork included) starts with the parent's pages, and Linux
# keeps that pre-exec high-water mark in the child's ru_maxrss. So every measured command is
# started by this tiny launcher (a few MB), never by the benchmark process that holds the
# simulated frame; the launcher reaps it with wait4 and reports that process's own usage.
LAUNCHER = r"""
import json, os, subprocess, sys, time
cmd, out, err = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(out, "wb") as fo, open(err, "wb") as fe:
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=fo, stderr=fe)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
print(json.dumps(dict(wall=wall, maxrss_kib=ru.ru_maxrss, rc=os.waitstatus_to_exitcode(status))))
"""


def measure(cmd, env, tmp):
    """Run ``cmd``; return (wall_s, peak_rss_mb, stdout) of that process alone."""
    out, err = Path(tmp) / "stdout.txt", Path(tmp) / "stderr.txt"
    launch = [sys.executable, "-I", "-S", "-c", LAUNCHER, json.dumps([str(c) for c in cmd]),
              str(out), str(err)]
    res = json.loads(subprocess.run(launch, env=env, check=True, capture_output=True,
                                    text=True).stdout)
    if res["rc"] != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({res['rc']}):\n{err.read_text()[-2000:]}")
    # ru_maxrss is in KiB on Linux; MB = 1e6 bytes
    return res["wall"], res["maxrss_kib"] * 1024 / 1e6, out.read_text()


def astrodl_command():
    exe = Path(sys.executable).with_name("astrodl")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "glue_astrodl.cli"]


def count_rows(path):
    from astropy.io import fits

    with fits.open(path) as hdul:
        return len(hdul["SOURCES"].data)


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--worker"]:
        return run_worker(argv[1:])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=4096, help="frame side in pixels")
    ap.add_argument("--threads", type=int, default=cores,
                    help="OMP/MKL/torch threads in the measured processes (default: all cores)")
    ap.add_argument("--stars", type=int, default=3000)
    ap.add_argument("--galaxies", type=int, default=1500)
    ap.add_argument("--fwhm", type=float, default=3.0)
    ap.add_argument("--psf", choices=["gaussian", "moffat"], default="gaussian",
                    help="simulated PSF profile (also passed to astrodl --profile)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3, help="runs per method (median time, max RSS)")
    ap.add_argument("--sep-thresh", type=float, default=5.0)
    ap.add_argument("--phot-thresh", type=float, default=1.5)
    ap.add_argument("--no-deblend", action="store_true", help="skip the photutils + deblend row")
    ap.add_argument("--api", action="store_true", help="also time the astrodl Python API in-process")
    ap.add_argument("--contaminants", action="store_true",
                    help="time `astrodl contaminants` (every product) against astroscrappy instead (size 2048)")
    ap.add_argument("--fp32", action="store_true", help="--contaminants: also time --precision fp32")
    ap.add_argument("--peers-python", help="--contaminants: a Python with MaxiMask installed (timed once)")
    args = ap.parse_args(argv)
    if args.contaminants:
        return contaminants_main(args, cores, ap)

    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "ASTRODL_THREADS"):
        env[key] = str(args.threads)
    env.setdefault("ASTRODL_DEVICE", "cpu")
    env["PYTHONWARNINGS"] = "ignore"

    from glue_astrodl.sim.scene import simulate_frame

    tmp = Path(tempfile.mkdtemp(prefix="astrodl_bench_"))
    try:
        t = time.perf_counter()
        frame = simulate_frame((args.size, args.size), n_stars=args.stars, n_galaxies=args.galaxies,
                               fwhm=args.fwhm, psf_profile=args.psf, seed=args.seed)
        path = tmp / "frame.fits"
        frame.write(path)
        t_sim = time.perf_counter() - t
        del frame
        fw = ["--fwhm", str(args.fwhm)]
        worker = [sys.executable, str(HERE), "--worker"]
        out = tmp / "frame_sources.fits"
        rows = [("python + imports (astrodl, torch)", worker + ["imports", str(path)] + fw, None),
                ("astrodl CLI (`astrodl sources`)",
                 astrodl_command() + ["sources", str(path), "-o", str(out), "--fwhm", str(args.fwhm),
                                      "--profile", args.psf, "--quiet", "--overwrite"], out)]
        if args.api:
            rows.append(("astrodl Python API (detect_sources + to_fits)",
                         worker + ["api", str(path), "--out", str(tmp / "api.fits"), "--profile",
                                   args.psf] + fw, None))
        rows.append((f"sep (Background + extract at {args.sep_thresh:g} sigma)",
                     worker + ["sep", str(path), "--thresh", str(args.sep_thresh)] + fw, None))
        rows.append((f"photutils (Background2D + conv + detect_sources at {args.phot_thresh:g} + SourceCatalog)",
                     worker + ["photutils", str(path), "--thresh", str(args.phot_thresh)] + fw, None))
        if not args.no_deblend:
            rows.append(("photutils + deblend_sources",
                         worker + ["photutils", str(path), "--thresh", str(args.phot_thresh), "--deblend"] + fw,
                         None))
        results = []
        for label, cmd, product in rows:
            walls, rsss, infos = [], [], []
            for _ in range(args.repeat):
                if product is not None and product.exists():
                    product.unlink()
                wall, rss, stdout = measure(cmd, env, tmp)
                walls.append(wall)
                rsss.append(rss)
                if product is not None:
                    infos.append(dict(n=count_rows(product)))
                else:
                    infos.append(json.loads(stdout.strip().splitlines()[-1]))
            res = dict(label=label, wall_s=statistics.median(walls), walls=walls, rss_mb=max(rsss),
                       n=infos[-1]["n"], compute_s=statistics.median([i["compute_s"] for i in infos])
                       if "compute_s" in infos[-1] else None,
                       deblend_s=infos[-1].get("deblend_s"))
            results.append(res)
            res["vmhwm_mb"] = max((i.get("vmhwm_mb") or 0) for i in infos) or None
            print(f"  {label}: {res['wall_s']:.2f} s, {res['rss_mb']:.0f} MB "
                  f"(in-process VmHWM {res['vmhwm_mb'] or float('nan'):.0f} MB), n={res['n']}",
                  file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ours = next(r for r in results if r["label"].startswith("astrodl CLI"))
    print(f"# Speed and memory, {args.size}x{args.size} frame\n")
    print(f"- {time.strftime('%Y-%m-%d')}, {platform.node()}: {cores} cores (`nproc`), "
          f"{args.threads} threads per measured process, Python {platform.python_version()}")
    print(f"- frame: simulate_frame({args.size}x{args.size}, {args.stars} stars + {args.galaxies} galaxies, "
          f"{args.psf} PSF FWHM {args.fwhm:g} px, seed {args.seed}); simulated and written in {t_sim:.1f} s")
    print(f"- each row: median wall time of {args.repeat} fresh processes (start-up and imports included), "
          "max peak RSS of the process, detections in its catalogue\n")
    print("| method | wall time [s] | in-process work [s] | peak RSS [MB] | detections | time / astrodl CLI |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        work = "—" if r["compute_s"] is None else f"{r['compute_s']:.2f}"
        if r["deblend_s"] is not None:
            work += f" (deblend {r['deblend_s']:.2f})"
        print(f"| {r['label']} | {r['wall_s']:.2f} | {work} | {r['rss_mb']:.0f} | {r['n']} | "
              f"{r['wall_s'] / ours['wall_s']:.2f} |")
    verdict = "PASS" if ours["rss_mb"] < 1500 else "FAIL"
    print(f"\nTarget: `astrodl sources` peak RSS < 1.5 GB (1500 MB) on a {args.size}x{args.size} frame: "
          f"{ours['rss_mb']:.0f} MB -> **{verdict}**")


def _bench_env(threads):
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "ASTRODL_THREADS"):
        env[key] = str(threads)
    env.setdefault("ASTRODL_DEVICE", "cpu")
    env["PYTHONWARNINGS"] = "ignore"
    return env


def contaminants_main(args, cores, ap):
    """``--contaminants``: `astrodl contaminants` (every product) against astroscrappy, in turn."""
    import numpy as np
    from astropy.io import fits

    from glue_astrodl.core.device import native_bf16
    from glue_astrodl.sim import simulate_contaminant_frame

    size = args.size if args.size != ap.get_default("size") else 2048
    env = _bench_env(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="astrodl_bench_"))
    try:
        t = time.perf_counter()
        sim = simulate_contaminant_frame((size, size), seed=args.seed)
        path = tmp / "frame.fits"
        fits.writeto(path, np.asarray(sim.image, np.float32), sim.header)
        t_sim = time.perf_counter() - t
        del sim
        worker = [sys.executable, str(HERE), "--worker"]
        rows = [("python + imports (contaminant path, torch)", worker + ["contaminant-imports", str(path),
                                                                       "--fwhm", "3"], None)]
        precisions = ["default"] + (["fp32"] if args.fp32 else [])
        for prec in precisions:
            for product in ("proba", "masks", "bitmask"):
                out = tmp / f"out_{product}_{prec}.fits"
                extra = [] if prec == "default" else ["--precision", prec]
                rows.append((f"astrodl contaminants --product {product}" + (f" --precision {prec}" if extra else ""),
                             astrodl_command() + ["contaminants", str(path), "-o", str(out), "--product", product,
                                                  "--quiet", "--overwrite"] + extra, out))
        peer = ("astroscrappy (read FITS, detect_cosmics, write mask)",
                worker + ["astroscrappy", str(path), "--fwhm", "3", "--out", str(tmp / "scrappy.fits")], None)
        rows.append(peer)
        walls = {label: [] for label, _, _ in rows}
        rss = dict.fromkeys(walls, 0.0)
        for _ in range(args.repeat):
            for label, cmd, _ in rows:
                wall, mb, _ = measure(cmd, env, tmp)
                walls[label].append(wall)
                rss[label] = max(rss[label], mb)
                print(f"  {label}: {wall:.2f} s", file=sys.stderr, flush=True)
        precision = fits.getheader(tmp / "out_proba_default.fits").get("PRECISN", "?")
        maximask = None
        if args.peers_python:
            wd = tmp / "maximask"
            wd.mkdir()
            shutil.copy(path, wd / "frame.fits")
            exe = Path(args.peers_python).with_name("maximask")
            cmd = [str(exe)] if exe.exists() else [args.peers_python, "-m",
                                                   "maximask_and_maxitrack.maximask.maximask"]
            cmd += [str(wd / "frame.fits"), "--proba_thresh", "False", "--prior_modif", "False"]
            scrappy = measure(peer[1], env, tmp)[0]
            wall, mb, _ = measure(cmd, env, wd)
            maximask = dict(wall=wall, rss=mb, scrappy=scrappy)
            print(f"  maximask: {wall:.2f} s (astroscrappy beside it {scrappy:.2f} s)", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    base = walls[peer[0]]
    print(f"# `astrodl contaminants` vs astroscrappy, {size}x{size} frame, end to end\n")
    print(f"- {time.strftime('%Y-%m-%d')}, {platform.node()}: {cores} cores (`nproc`), {args.threads} threads per "
          f"process, Python {platform.python_version()}; native bf16: {native_bf16()}, default precision "
          f"{precision}")
    print(f"- frame: simulate_contaminant_frame(({size}, {size}), seed={args.seed}), float32 FITS; simulated in "
          f"{t_sim:.1f} s")
    print(f"- {args.repeat} rounds, each command a fresh process, run in turn; time: median wall time; ratio: "
          "median over rounds of (time / astroscrappy's time in the same round)\n")
    print("| command | wall time [s] (min-max) | peak RSS [MB] | / astroscrappy |")
    print("|---|---:|---:|---:|")
    for label, _, _ in rows:
        w = walls[label]
        ratio = statistics.median(a / b for a, b in zip(w, base))
        print(f"| {label} | {statistics.median(w):.2f} ({min(w):.2f}-{max(w):.2f}) | {rss[label]:.0f} | "
              f"{ratio:.2f} |")
    if maximask:
        print(f"| MaxiMask CLI (one run) | {maximask['wall']:.1f} | {maximask['rss']:.0f} | "
              f"{maximask['wall'] / maximask['scrappy']:.1f} (astroscrappy beside it: {maximask['scrappy']:.2f} s) |")
    worst = max(statistics.median(a / b for a, b in zip(walls[label], base))
                for label, _, _ in rows if label.startswith("astrodl") and "--precision" not in label)
    verdict = "PASS" if worst <= 1.0 else "FAIL"
    print(f"\nTarget: every product no slower than astroscrappy (ratio <= 1): worst {worst:.2f} -> **{verdict}**")


if __name__ == "__main__":
    main()
