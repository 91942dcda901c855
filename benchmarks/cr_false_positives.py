#!/usr/bin/env python
"""Where the cosmic-ray false positives sit at a false-positive rate of 1e-4.

On the benchmark frame of `bench_contaminants.py` (``simulate_contaminant_frame``, all
classes) and on the held-out real units in the model's domain with cosmic rays injected
(as `bench_contaminants.py --real` scores them), the CR probability is cut
where 1e-4 of the defect-free pixels (truth: no class) lie above it, and every false
positive there is put in the first category it meets:

* ``CR edge``: within 2 px of a CR pixel (the deposit's faint wings below the truth's cut);
* ``defect neighbour``: within 2 px of a hot or dead pixel or column, or a saturated core;
* ``trail / spike / ghost edge``: within 3 px of a TRL, SP or P pixel;
* ``source light``: on an object -- the frame's 3x3 median at least 5 sigma above the sky;
* ``noise tail``: anywhere else.

Usage: ``python benchmarks/cr_false_positives.py [--size 2048] [--model contaminants]``.
"""

import argparse
import sys


def categorise(cr_prob, truth, image, sky, sigma, fpr=1e-4):
    """``(threshold, {category: false positives}, TPR)`` at ``fpr`` on the defect-free pixels."""
    import numpy as np
    from scipy import ndimage

    from glue_astrodl.tasks.contaminant_classes import CLASSES

    def near(names, r):
        m = np.zeros(truth.shape[1:], bool)
        for c in names:
            m |= truth[CLASSES.index(c)]
        return ndimage.binary_dilation(m, iterations=r) if m.any() else m

    bg = truth[CLASSES.index("BG")]
    thr = np.quantile(cr_prob[bg], 1 - fpr)
    fp = bg & (cr_prob > thr)
    light = ndimage.median_filter(image, 3) > sky + 5 * sigma
    cats, left = {}, fp.copy()
    for name, where in (("CR edge", near(["CR"], 2)), ("defect neighbour", near(["HP", "DP", "HCL", "DCL", "SAT"], 2)),
                        ("trail / spike / ghost edge", near(["TRL", "SP", "P"], 3)), ("source light", light),
                        ("noise tail", np.ones_like(fp))):
        cats[name] = int((left & where).sum())
        left &= ~where
    tpr = float((cr_prob[truth[CLASSES.index("CR")]] > thr).mean())
    return float(thr), cats, tpr


def main(argv=None):
    import numpy as np

    from glue_astrodl.sim import simulate_contaminant_frame
    from glue_astrodl.tasks.contaminants import detect_contaminants
    from glue_astrodl.train.real_frame_sets import IN_DOMAIN, injected_frames, installed_units

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="contaminants")
    args = ap.parse_args(argv)
    sim = simulate_contaminant_frame((args.size, args.size), seed=args.seed)
    cases = [(f"simulated {args.size}x{args.size}", sim.image, sim.masks, np.zeros(sim.image.shape, bool),
              sim.meta["bias"] + sim.meta["sky"], sim.meta["sigma"])]
    units = installed_units("test", IN_DOMAIN)
    for (name, image, masks, ignore), u in zip(injected_frames("test", args.seed, units=units, classes=["CR"]),
                                               units):
        cases.append((f"{name} (real, CRs injected)", image, masks, ignore, u.sky, u.noise))
    rows = []
    for name, image, masks, ignore, sky, sigma in cases:
        prob = detect_contaminants(image, classes=["CR"], model=args.model).probabilities[0]
        masks = masks & ~ignore  # a real frame's own contaminants are neither positive nor negative
        thr, cats, tpr = categorise(prob, masks, image, sky, sigma)
        total = sum(cats.values())
        rows.append(f"| {name} | {tpr:.3f} | {total} | " + " | ".join(f"{v} ({100 * v / max(total, 1):.0f}%)"
                                                                     for v in cats.values()) + " |")
        print(f"{name}: done", file=sys.stderr, flush=True)
    print("| frame | CR TPR @ FPR 1e-4 | false positives | " + " | ".join(cats) + " |")
    print("|---|---:|---:|" + "---:|" * len(cats))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
