"""``python -m glue_astrodl.train TASK ...``: reproduce the shipped weights."""

import argparse
import json
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m glue_astrodl.train")
    sub = parser.add_subparsers(dest="task", required=True)
    p = sub.add_parser("contaminants", help="14-class contaminant segmentation")
    p.add_argument("--steps", type=int, default=16000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--tile", type=int, default=128)
    p.add_argument("--n-train", type=int, default=16000)
    p.add_argument("--n-val", type=int, default=150, help="tiles in each held-out set (calibration, test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--init", help="fine-tune this saved model (.safetensors with its card) instead of starting afresh")
    p.add_argument("--boost", default="",
                   help="draw rare classes more often in the training pool, e.g. HP=4,DP=4 (presence and counts)")
    p.add_argument("--precision", choices=("auto", "bf16", "float32"), default="float32",
                   help="training precision: bf16 autocast (the loss in float32), float32, or auto: bf16 on CPUs "
                        "with native bf16 (avx512_bf16/amx_bf16) and CUDA devices that have it")
    p.add_argument("--real-fraction", type=float, default=0.0,
                   help="share of each batch drawn from real backgrounds with injected contaminants "
                        "(train frames of glue_astrodl.sim.real_frames; their own CRs weigh 0 in the loss)")
    p.add_argument("--n-real", type=int, help="real-background tiles in the pool (default n-train x real-fraction)")
    p.add_argument("--gradient", type=float, default=0.0,
                   help="fraction of simulated tiles given a smooth sky gradient of up to +-10%% (background)")
    p.add_argument("--cache", help="directory of cached tile pools (compressed .npz shards keyed by generator "
                                   "version, seed, size and options): simulated once, read back afterwards")
    p.add_argument("--checkpoint", help="training checkpoint (model, optimiser, scheduler, step, random states)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="write --checkpoint every N steps")
    p.add_argument("--resume", action="store_true", help="continue the run from --checkpoint on the same schedule")
    p.add_argument("--stop-after", type=int,
                   help="stop after this many steps in all (checkpoint written); continue later with --resume")
    p.add_argument("--calibration", choices=("sim+real", "sim"), default="sim+real",
                   help="fit the calibration on simulated tiles plus real backgrounds (default), or simulated alone")
    p.add_argument("--device")
    p.add_argument("--out", default=str(WEIGHTS / "contaminants"), help="output path without suffix")
    p.add_argument("--evaluate", metavar="MODEL",
                   help="do not train: re-run this saved model's held-out test (metrics as its card records them)")
    p.add_argument("--plot", help="with --evaluate: write the ROC and reliability figure here (PNG)")
    args = parser.parse_args(argv)
    if (args.resume or args.stop_after) and not args.checkpoint:
        parser.error("--resume and --stop-after need --checkpoint")
    from .contaminants import evaluate_saved, train_contaminants

    if args.evaluate:
        print(json.dumps(evaluate_saved(args.evaluate, n_val=args.n_val, device=args.device, plot=args.plot,
                                        real=True), indent=1))
        return

    train_contaminants(steps=args.steps, batch=args.batch, tile=args.tile, n_train=args.n_train, n_val=args.n_val,
                       seed=args.seed, lr=args.lr, device=args.device, out=args.out, init=args.init,
                       precision=args.precision, real_fraction=args.real_fraction, n_real=args.n_real,
                       gradient=args.gradient, cache_dir=args.cache, checkpoint=args.checkpoint,
                       checkpoint_every=args.checkpoint_every if args.checkpoint else 0, resume=args.resume,
                       stop_after=args.stop_after, calibration=args.calibration,
                       boost={k.strip().upper(): float(v) for k, _, v in
                              (item.partition("=") for item in args.boost.split(",") if item.strip())})


if __name__ == "__main__":
    main()
