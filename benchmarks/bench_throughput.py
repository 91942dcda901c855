#!/usr/bin/env python
"""Throughput of `detect_contaminants` (megapixels per second) on one device and frame size.

``python benchmarks/bench_throughput.py --device cuda --size 8192`` is the issue's GPU
measurement; ``--device cpu --size 2048`` the CPU one. In-process and end to end for the
API: normalisation, tiled network, calibration, prior shift and stitching into the host
``(14, H, W)`` float32 cube; not imports or file I/O (``bench_contaminants.py`` times
the whole CLI).

The frame is a simulated 2048x2048 frame with every class (seed 0), repeated to the
requested size: realistic content at any size without minutes of simulation (speed does
not depend on what the pixels show). Each (tile, batch size) pair of the sweep runs once
to warm up (CUDA context, cuDNN algorithm choice) on a 1024x1024 cut-out, then
``--repeat`` times on the whole frame; the median is reported, with the peak GPU memory
(CUDA) and the peak host RSS of the process.
"""

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def _frame(size, seed):
    import numpy as np

    from glue_astrodl.tasks.contaminant_classes import CLASSES
    from glue_astrodl.sim import simulate_contaminant_frame

    base = simulate_contaminant_frame((min(size, 2048),) * 2, seed=seed, classes=list(CLASSES)).image
    reps = -(-size // base.shape[0])
    return np.ascontiguousarray(np.tile(base, (reps, reps))[:size, :size], dtype=np.float32)


def _time(call, device):
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t = time.perf_counter()
    call()
    sync()
    return time.perf_counter() - t


def measure(frame, device, tile, batch, repeat):
    """Median seconds over ``repeat`` runs and the peak GPU memory (GB, CUDA only)."""
    import torch

    from glue_astrodl import detect_contaminants

    run = lambda img: detect_contaminants(img, device=device, tile=tile, batch_size=batch)  # noqa: E731
    _time(lambda: run(frame[:1024, :1024]), device)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    seconds = statistics.median(_time(lambda: run(frame), device) for _ in range(repeat))
    gpu_gb = torch.cuda.max_memory_allocated() / 1e9 if cuda else None
    return seconds, gpu_gb


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    ap.add_argument("--size", type=int, default=2048, help="frame side in pixels")
    ap.add_argument("--tiles", default=None, help="comma list of tile sides (default: 512 on CPU, 512,1024,2048 on CUDA)")
    ap.add_argument("--batches", default=None, help="comma list of tiles per forward pass (default: 1 on CPU, 4,16 on CUDA)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per setting (median)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--outdir", default=str(HERE.parent / "results"))
    args = ap.parse_args(argv)

    import torch

    from glue_astrodl.core.device import describe_device, resolve_device

    device = str(resolve_device(args.device))
    cuda = device.startswith("cuda")
    tiles = [int(t) for t in (args.tiles or ("512,1024,2048" if cuda else "512")).split(",")]
    batches = [int(b) for b in (args.batches or ("4,16" if cuda else "1")).split(",")]
    t = time.perf_counter()
    frame = _frame(args.size, args.seed)
    print(f"{args.size}x{args.size} frame ready in {time.perf_counter() - t:.1f} s; device {describe_device(device)}",
          file=sys.stderr, flush=True)

    rows = []
    for tile in tiles:
        for batch in batches:
            seconds, gpu_gb = measure(frame, device, tile, batch, args.repeat)
            rows.append(dict(tile=tile, batch=batch, seconds=round(seconds, 3),
                             mpix_per_s=round(frame.size / 1e6 / seconds, 2),
                             gpu_peak_gb=None if gpu_gb is None else round(gpu_gb, 2)))
            print(f"tile {tile} batch {batch}: {seconds:.2f} s, {rows[-1]['mpix_per_s']} Mpix/s", file=sys.stderr, flush=True)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6

    lines = [f"`detect_contaminants` throughput, {args.size}x{args.size}, all 14 classes, "
             f"{describe_device(device)}, torch {torch.__version__}, {platform.node()} "
             f"({time.strftime('%Y-%m-%d')}); median of {args.repeat}; peak host RSS {rss_gb:.1f} GB", "",
             "| tile | batch | seconds | Mpix/s | peak GPU memory [GB] |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['tile']} | {r['batch']} | {r['seconds']:.2f} | {r['mpix_per_s']:.1f} | "
              f"{'-' if r['gpu_peak_gb'] is None else r['gpu_peak_gb']} |" for r in rows]
    print("\n".join(lines))
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    name = f"throughput_{device.replace(':', '')}_{args.size}.json"
    (out / name).write_text(json.dumps(dict(args=vars(args), device=describe_device(device),
                                            torch=torch.__version__, host_rss_gb=rss_gb, rows=rows), indent=1))


if __name__ == "__main__":
    main()
