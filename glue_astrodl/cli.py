"""The ``astrodl`` command line.

Exit codes: 0 success, 1 failure, 2 bad input. Errors are one line on stderr; ``--debug``
prints the traceback above it (the exit code stays the same).
"""

import argparse
import glob
import sys
import traceback
import warnings
from pathlib import Path

from .core.errors import BadInputError
from .io.regions import MIN_REGION_AREA

__all__ = ["main"]


def _expand(patterns):
    files = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise BadInputError(f"{pattern}: no file matches")
        files.extend(matches)
    return files


def _outputs(inputs, out, tag, suffix=".fits"):
    """One output path per input: ``-o`` is a file for one input, a directory for many."""
    from .jobs import default_output

    if out is None:
        return [default_output(p, tag, suffix) for p in inputs]
    out = Path(out)
    if len(inputs) == 1 and not out.is_dir():
        return [out]
    if out.exists() and not out.is_dir():
        raise BadInputError(f"{out}: -o must be a directory when several inputs are given")
    return [default_output(p, tag, suffix, outdir=out) for p in inputs]


def _regions_paths(inputs, outputs, regions):
    if not regions:
        return [None] * len(inputs)
    if regions.startswith("."):  # an extension: one file beside each output
        return [str(Path(o).with_suffix("")) + regions for o in outputs]
    if len(inputs) > 1:
        raise BadInputError(f"--regions {regions}: with several inputs give an extension (.reg, .crtf, .fits)")
    return [regions]


def _output_suffix(task, args):
    """Catalogue tasks keep the catalogue's format (ECSV, CSV or FITS); image tasks write FITS."""
    if not task.needs_catalogue:
        return ".fits"
    suffix = Path(args.catalog).suffix.lower()
    return suffix if suffix in (".ecsv", ".csv", ".fits") else ".ecsv"


def _task_params(task, args):
    """The task's parameters the user gave, typed and validated (`BadInputError` if not)."""
    given = {p.name: getattr(args, p.name) for p in task.params if getattr(args, p.name) is not None}
    params = task.parse_params(given)
    if task.takes_mask and (args.mask or args.mask_contaminants):
        if args.mask and args.mask_contaminants:
            raise BadInputError("give either --mask FILE or --mask-contaminants, not both")
        from .tasks.masks import RUN_CONTAMINANTS

        params["mask"] = args.mask or RUN_CONTAMINANTS
    for name in ("hdu", "plane", "device"):
        if getattr(args, name, None) is not None:
            params[name] = getattr(args, name)
    return params


def cmd_task(args):
    """Run the task ``args.task`` on every input (one Dask job each) and report per file."""
    import functools

    from .core.batch import Job, run_batch
    from .jobs import task_job
    from .tasks.registry import get_task

    task = get_task(args.task)
    params = _task_params(task, args)
    if args.device and args.scheduler is None:  # refused once, before any file is read or cluster started
        from .core.device import resolve_device

        resolve_device(args.device)
    product = getattr(args, "product", None)
    tag = task.output_tag if product in (None, task.products[0]) else product
    inputs = _expand(args.images)
    if task.needs_catalogue:
        _expand([args.catalog])
        params["catalog"] = args.catalog
        stems = [Path(args.catalog)] * len(inputs) if len(inputs) == 1 else inputs
    else:
        stems = inputs
    outputs = _outputs(stems, args.output, tag, _output_suffix(task, args))
    regions = _regions_paths(inputs, outputs, args.regions)
    if not args.region_min_area >= 0:
        raise BadInputError(f"--region-min-area must be >= 0 pixels², got {args.region_min_area}")
    single = len(inputs) == 1 and args.scheduler is None
    job = functools.partial(task_job, task.name)
    jobs = [Job(job, str(i), str(o), dict(params, product=product, regions=r, region_min_area=args.region_min_area,
                                          progress=single and not args.quiet))
            for i, o, r in zip(inputs, outputs, regions)]
    results = run_batch(jobs, scheduler=args.scheduler, n_workers=args.workers, overwrite=args.overwrite,
                        progress=not args.quiet and not single, desc=task.name)
    for res in results:
        if res.status in ("done", "skipped"):
            if not args.quiet:
                print(f"{res.output}: {res.status}" + (f" ({res.message})" if res.message else ""))
        else:
            if args.debug and res.traceback:
                print(res.traceback.rstrip(), file=sys.stderr)
            print(f"astrodl: error: {res.message}", file=sys.stderr)
    statuses = {r.status for r in results}
    return 1 if "failed" in statuses else 2 if "bad-input" in statuses else 0


def cmd_models(args):
    from .core.weights import list_models

    with warnings.catch_warnings(record=True) as skipped:
        warnings.simplefilter("always")
        cards = list_models()
    for warning in skipped:  # an unreadable card: one line, the others are still listed
        print(f"astrodl: warning: {' '.join(str(warning.message).split())}", file=sys.stderr)
    if not cards:
        print("no models installed (shipped models live in glue_astrodl/weights; add your own with ASTRODL_WEIGHTS_PATH)")
    for card in cards:
        description = f": {card.get('description')}" if card.get("description") else ""
        print(f"{card.name} {card.version} (task {card.get('task', '?')}){description}")
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


class _DeprecatedAlias(argparse.Action):
    """An old flag that still works, with a warning naming the new one."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"astrodl: warning: {option_string} is deprecated; use {self.metavar_new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _batch_options(p, task):
    p.add_argument("images", nargs="+", help="FITS files or glob patterns" + (
        " (the band images)" if task.kind == "bands+catalogue" else ""))
    tag = task.output_tag
    where = "<catalog>" if task.needs_catalogue else "<input>"
    p.add_argument("-o", "--out", dest="output", help=f"output file (one input) or directory (default: {where}_{tag}...)")
    if task.needs_catalogue:
        p.add_argument("--catalog", required=True, help="catalogue (FITS, ECSV or CSV table) with ra/dec or x/y "
                       "(0-based pixel) columns; the output is this table plus the new columns")
    p.add_argument("--hdu", help="HDU index or EXTNAME (default: first image HDU)")
    p.add_argument("--plane", type=int, help="plane of a data cube")
    p.add_argument("--regions", help="regions file (.reg ds9, .crtf, .fits), or an extension for one per input")
    p.add_argument("--region-min-area", type=float, default=MIN_REGION_AREA, metavar="PX2",
                   help=f"drop region polygons smaller than this, in pixels² (default {MIN_REGION_AREA}: slivers "
                   "around pixels barely above the threshold)")
    p.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster)")
    p.add_argument("--workers", type=int, help="local Dask workers (default: one per core)")
    p.add_argument("--overwrite", action="store_true", help="redo inputs whose output exists")
    if len(task.products) > 1:
        p.add_argument("--product", choices=task.products, default=task.products[0],
                       help=f"what to write (default {task.products[0]})")
        p.add_argument("--output", dest="product", choices=task.products, action=_DeprecatedAlias,
                       help=argparse.SUPPRESS).metavar_new = "--product"
    if task.takes_mask:
        p.add_argument("--mask", help="FITS image of pixels to ignore (non-zero = bad), e.g. an astrodl "
                       "contaminants bitmask")
        p.add_argument("--mask-contaminants", action="store_true",
                       help="run the contaminant task first and ignore the pixels it flags as defects")


def _task_parser(sub, common, task):
    p = sub.add_parser(task.name, parents=[common], help=task.description.split(":")[0].split(". ")[0],
                       description=task.description)
    _batch_options(p, task)
    for param in task.params:
        metavar = f"{{{','.join(map(str, param.choices))}}}" if param.choices else param.name.upper()
        default = f" (default {param.default})" if param.default is not None and "default" not in param.help else ""
        p.add_argument(param.flag, dest=param.name, metavar=metavar, help=param.help + default)
    p.set_defaults(func=cmd_task, task=task.name)


def build_parser():
    from .tasks.registry import tasks

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    common.add_argument("--quiet", action="store_true", help="no progress bars or per-file lines")
    common.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: $ASTRODL_DEVICE, else cuda if present)")
    parser = argparse.ArgumentParser(prog="astrodl", description="Deep-learning inference for astronomical images.")
    sub = parser.add_subparsers(dest="command", required=True)
    for task in tasks():
        _task_parser(sub, common, task)
    sub.add_parser("models", parents=[common], help="list installed models and their cards").set_defaults(func=cmd_models)
    sub.add_parser("info", parents=[common], help="versions and device").set_defaults(func=cmd_info)
    p = sub.add_parser("demo", parents=[common], help="simulate a frame and run everything on it")
    p.add_argument("outdir")
    p.add_argument("--size", type=int, default=1024, help="frame side in pixels")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_demo)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings reach the user as one line, without the source line Python prints."""
    print(f"astrodl: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "hdu", None) is not None and str(args.hdu).lstrip("-").isdigit():
        args.hdu = int(args.hdu)
    try:
        with warnings.catch_warnings():
            if not args.debug:
                warnings.showwarning = _one_line_warning
            return args.func(args)
    except BadInputError as err:
        if args.debug:
            traceback.print_exc()
        print(f"astrodl: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("astrodl: interrupted", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 -- the last resort: one line and exit 1, the traceback with --debug
        if args.debug:
            traceback.print_exc()
        first = str(err).splitlines()[0] if str(err).strip() else ""
        hint = "" if args.debug else " (rerun with --debug for details)"
        print(f"astrodl: failed: {type(err).__name__}: {first}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
