"""The ``astrodl`` command line.

Exit codes: 0 success, 1 failure, 2 bad input. Errors are one line on stderr; ``--debug``
shows the traceback.
"""

import argparse
import glob
import sys
from pathlib import Path

from .core.errors import BadInputError

__all__ = ["main"]


def _expand(patterns):
    files = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise BadInputError(f"{pattern}: no file matches")
        files.extend(matches)
    return files


def _outputs(inputs, out, tag):
    """One output path per input: ``-o`` is a file for one input, a directory for many."""
    from .jobs import default_output

    if out is None:
        return [default_output(p, tag) for p in inputs]
    out = Path(out)
    if len(inputs) == 1 and not out.is_dir():
        return [out]
    if out.exists() and not out.is_dir():
        raise BadInputError(f"{out}: -o must be a directory when several inputs are given")
    return [default_output(p, tag, outdir=out) for p in inputs]


def _regions_paths(inputs, outputs, regions):
    if not regions:
        return [None] * len(inputs)
    if regions.startswith("."):  # an extension: one file beside each output
        return [str(o).removesuffix(".fits") + regions for o in outputs]
    if len(inputs) > 1:
        raise BadInputError(f"--regions {regions}: with several inputs give an extension (.reg, .crtf, .fits)")
    return [regions]


def _run_jobs(args, func, tag, kwargs):
    from .core.batch import Job, run_batch

    inputs = _expand(args.images)
    outputs = _outputs(inputs, args.output, tag)
    regions = _regions_paths(inputs, outputs, args.regions)
    single = len(inputs) == 1 and args.scheduler is None
    jobs = [Job(func, str(i), str(o), dict(kwargs, regions=r, progress=single and not args.quiet))
            for i, o, r in zip(inputs, outputs, regions)]
    results = run_batch(jobs, scheduler=args.scheduler, n_workers=args.workers, overwrite=args.overwrite,
                        progress=not args.quiet and not single, desc=tag)
    for res in results:
        if res.status in ("done", "skipped"):
            if not args.quiet:
                print(f"{res.output}: {res.status}" + (f" ({res.message})" if res.message else ""))
        else:
            print(f"astrodl: error: {res.message}", file=sys.stderr)
    statuses = {r.status for r in results}
    return 1 if "failed" in statuses else 2 if "bad-input" in statuses else 0


def cmd_sources(args):
    from .jobs import sources_job

    kwargs = dict(fwhm=args.fwhm, profile=args.profile, threshold=args.threshold, prior=args.prior,
                  hdu=args.hdu, plane=args.plane, device=args.device)
    return _run_jobs(args, sources_job, "sources", kwargs)


def cmd_contaminants(args):
    from .jobs import contaminants_job
    from .tasks.contaminants import parse_priors

    classes = [c.strip().upper() for c in args.classes.split(",") if c.strip()] if args.classes else None
    kwargs = dict(classes=classes, priors=parse_priors(args.priors or ""), output_kind=args.output_kind,
                  hdu=args.hdu, plane=args.plane, device=args.device, model=args.model, tta=args.tta)
    return _run_jobs(args, contaminants_job, args.output_kind if args.output_kind != "proba" else "contaminants", kwargs)


def cmd_models(args):
    from .core.weights import list_models

    cards = list_models()
    if not cards:
        print("no models installed (shipped models live in glue_astrodl/weights; add your own with ASTRODL_WEIGHTS_PATH)")
    for card in cards:
        print(f"{card.name} {card.version}: {card.get('description', '')}")
        print(f"  architecture {card.architecture}, outputs {', '.join(card.outputs)}")
        print(f"  sha256 {card.weights_sha256}  card {card.path}")
        for key, value in (card.get("metrics") or {}).items():
            print(f"  {key}: {value}")
    return 0


def cmd_info(args):
    import astropy
    import numpy
    import torch

    from . import __version__
    from .core.device import describe_device

    print(f"glue-astrodl {__version__}")
    print(f"python {sys.version.split()[0]}, numpy {numpy.__version__}, astropy {astropy.__version__}, torch {torch.__version__}")
    print(f"device: {describe_device(args.device)}")
    return 0


def cmd_demo(args):
    from .demo import run_demo

    for line in run_demo(args.outdir, size=args.size, seed=args.seed, progress=not args.quiet):
        print(line)
    return 0


def _batch_options(p, tag):
    p.add_argument("images", nargs="+", help="FITS files or glob patterns")
    p.add_argument("-o", "--out", dest="output", help=f"output file (one input) or directory (default: <input>_{tag}.fits)")
    p.add_argument("--hdu", help="HDU index or EXTNAME (default: first image HDU)")
    p.add_argument("--plane", type=int, help="plane of a data cube")
    p.add_argument("--regions", help="regions file (.reg ds9, .crtf, .fits), or an extension for one per input")
    p.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster)")
    p.add_argument("--workers", type=int, help="local Dask workers (default: one per core)")
    p.add_argument("--overwrite", action="store_true", help="redo inputs whose output exists")


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    common.add_argument("--quiet", action="store_true", help="no progress bars or per-file lines")
    common.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: $ASTRODL_DEVICE, else cuda if present)")
    parser = argparse.ArgumentParser(prog="astrodl", description="Deep-learning inference for astronomical images.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sources", parents=[common], help="matched-filter source detection")
    _batch_options(p, "sources")
    p.add_argument("--fwhm", type=float, help="PSF FWHM in pixels (default: header, else estimated)")
    p.add_argument("--profile", choices=["gaussian", "moffat"], default="gaussian", help="PSF profile")
    p.add_argument("--threshold", type=float, default=5.0, help="S/N threshold for the source table")
    p.add_argument("--prior", type=float, help="fraction of pixels holding sources (default: measured)")
    p.set_defaults(func=cmd_sources)

    p = sub.add_parser("contaminants", parents=[common], help="14-class contaminant probabilities (MaxiMask classes)")
    _batch_options(p, "contaminants")
    p.add_argument("--classes", help="comma-separated classes (default: all 14), e.g. CR,TRL")
    p.add_argument("--priors", help="class priors of your data, e.g. CR=5e-4,TRL=1e-4 (default: model card)")
    p.add_argument("--output", dest="output_kind", choices=["proba", "masks", "bitmask"], default="proba",
                   help="probability cube, uint8 masks or int16 bit-mask")
    p.add_argument("--model", default="contaminants", help="installed model name or .safetensors path")
    p.add_argument("--tta", type=int, choices=[1, 2, 4, 8], default=1,
                   help="average over this many rotations/flips of each tile: more accurate, that many times slower")
    p.set_defaults(func=cmd_contaminants)

    sub.add_parser("models", parents=[common], help="list installed models and their cards").set_defaults(func=cmd_models)
    sub.add_parser("info", parents=[common], help="versions and device").set_defaults(func=cmd_info)
    p = sub.add_parser("demo", parents=[common], help="simulate a frame and run everything on it")
    p.add_argument("outdir")
    p.add_argument("--size", type=int, default=1024, help="frame side in pixels")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "hdu", None) is not None and str(args.hdu).lstrip("-").isdigit():
        args.hdu = int(args.hdu)
    try:
        return args.func(args)
    except BadInputError as err:
        if args.debug:
            raise
        print(f"astrodl: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("astrodl: interrupted", file=sys.stderr)
        return 1
    except Exception as err:
        if args.debug:
            raise
        print(f"astrodl: failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''} (rerun with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
