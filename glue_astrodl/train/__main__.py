"""``python -m glue_astrodl.train TASK ...``: reproduce the shipped weights."""

import argparse
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
    p.add_argument("--device")
    p.add_argument("--out", default=str(WEIGHTS / "contaminants"), help="output path without suffix")
    args = parser.parse_args(argv)
    from .contaminants import train_contaminants

    train_contaminants(steps=args.steps, batch=args.batch, tile=args.tile, n_train=args.n_train, n_val=args.n_val,
                       seed=args.seed, lr=args.lr, device=args.device, out=args.out, init=args.init,
                       boost={k.strip().upper(): float(v) for k, _, v in
                              (item.partition("=") for item in args.boost.split(",") if item.strip())})


if __name__ == "__main__":
    main()
