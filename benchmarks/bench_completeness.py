#!/usr/bin/env python
"""Detection completeness vs S/N at equal false-detection rate: astrodl vs sep vs photutils.

Simulated frames of isolated point sources (``glue_astrodl.sim.simulate_point_sources``,
Gaussian PSF of known FWHM, several S/N values, different seeds) are searched by three
detectors on the same pixels in the same run:

* ``astrodl``: ``glue_astrodl.tasks.sources.detect_sources`` with the true FWHM, run once
  at ``threshold=3``; the table is then cut on its ``snr`` column (the sub-pixel refined
  peak S/N). This can keep a few more peaks than re-running with ``threshold=t``, which
  selects on the pixel-centre significance before refinement.
* ``sep``: ``sep.Background`` then ``sep.extract(data - bkg, thresh, err=bkg.globalrms)``
  with sep's default 3x3 filter kernel and default minarea/deblending, as users run it.
  (With a scalar ``err`` sep convolves and thresholds at ``thresh * globalrms``, the
  *unfiltered* pixel noise, as SExtractor's DETECT_THRESH does.)
* ``photutils``: the image-segmentation route of the photutils documentation:
  ``Background2D`` (64 px boxes, 3x3 filter, sigma clipping, median estimator), convolution
  with ``make_2dgaussian_kernel(fwhm, size)``, ``detect_sources(convolved, t * rms,
  n_pixels=5)`` and ``SourceCatalog`` centroids. No ``deblend_sources``: the sources are
  isolated by construction (>= 6 FWHM apart), so deblending can only add noise splits.

Each detector's threshold is scanned. A true source counts as found when a detection lies
within ``--radius`` pixels of it (nearest neighbour, scipy cKDTree); a detection with no
true source within the radius is a false detection. For each method the threshold is the
lowest one whose false-detection rate (per megapixel of searched image) is at most the
common target ``--target`` (a coarse scan downwards, then bisection). Completeness per
S/N is reported at that threshold with binomial standard errors ``sqrt(p (1 - p) / N)``.

Writes a markdown report to stdout, ``benchmarks/results/completeness.png`` (completeness
vs S/N, and completeness at S/N 5 vs false-detection rate) and ``completeness.json``.
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

RESULTS = Path(__file__).resolve().parent / "results"
SNRS = (2, 3, 4, 5, 6, 7, 8, 10)


# ---------------------------------------------------------------------------- frames

def simulate(n_frames, size, seed, n_per_snr, fwhm, snrs):
    """List of ``(image, truth_xy, truth_snr)`` for ``n_frames`` independent frames."""
    from glue_astrodl.sim.scene import simulate_point_sources

    frames = []
    for i in range(n_frames):
        f = simulate_point_sources((size, size), snr=snrs, n_per_snr=n_per_snr, fwhm=fwhm,
                                   psf_profile="gaussian", seed=seed + i)
        xy = np.column_stack([np.asarray(f.truth["x"]), np.asarray(f.truth["y"])])
        frames.append((f.image, xy, np.asarray(f.truth["snr"]), f.sky_sigma))
    return frames


# ---------------------------------------------------------------------------- detectors
# Each detector: ``prepare(image, fwhm) -> state`` (threshold-independent work, done once
# per frame) and ``detect(state, threshold) -> (N, 2) array of x, y`` (0-based pixels).

class Ours:
    name = "astrodl"
    label = "astrodl matched filter (snr cut)"
    unit = "matched-filter S/N"
    coarse = np.arange(8.0, 2.99, -0.25)

    def prepare(self, image, fwhm):
        from glue_astrodl.tasks.sources import detect_sources

        res = detect_sources(image, fwhm=fwhm, profile="gaussian", threshold=3.0, device="cpu")
        t = res.table
        return np.column_stack([np.asarray(t["x"]), np.asarray(t["y"])]), np.asarray(t["snr"])

    def detect(self, state, threshold):
        xy, snr = state
        return xy[snr >= threshold]


class Sep:
    name = "sep"
    label = "sep (default 3x3 filter)"
    unit = "x globalrms (unfiltered pixel noise)"
    coarse = np.arange(4.0, 0.79, -0.1)

    def __init__(self):
        import sep

        self.sep = sep
        sep.set_extract_pixstack(2_000_000)
        sep.set_sub_object_limit(8192)

    def prepare(self, image, fwhm):
        data = np.ascontiguousarray(image, dtype=np.float32)
        bkg = self.sep.Background(data)
        return data - bkg, bkg.globalrms

    def detect(self, state, threshold):
        sub, rms = state
        objs = self.sep.extract(sub, threshold, err=rms)
        return np.column_stack([objs["x"], objs["y"]])


class Photutils:
    name = "photutils"
    label = "photutils (Gaussian conv + segmentation)"
    unit = "x background_rms (unfiltered pixel noise)"
    coarse = np.arange(2.5, 0.39, -0.05)

    def prepare(self, image, fwhm):
        from astropy.convolution import convolve
        from astropy.stats import SigmaClip
        from photutils.background import Background2D, MedianBackground
        from photutils.segmentation import make_2dgaussian_kernel

        bkg = Background2D(image, (64, 64), filter_size=(3, 3), sigma_clip=SigmaClip(sigma=3.0),
                           bkg_estimator=MedianBackground())
        sub = image - bkg.background
        size = max(5, 2 * int(np.ceil(fwhm)) - 1)  # odd; photutils docs: fwhm=3 -> size=5
        kernel = make_2dgaussian_kernel(fwhm, size=size)
        return sub, convolve(sub, kernel), bkg.background_rms

    def detect(self, state, threshold):
        from photutils.segmentation import SourceCatalog, detect_sources

        sub, conv, rms = state
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NoDetectionsWarning at high thresholds
            segm = detect_sources(conv, threshold * rms, n_pixels=5)
        if segm is None:
            return np.zeros((0, 2))
        cat = SourceCatalog(sub, segm, convolved_data=conv)
        xy = np.column_stack([np.asarray(cat.x_centroid), np.asarray(cat.y_centroid)])
        return xy[np.all(np.isfinite(xy), axis=1)]


# ---------------------------------------------------------------------------- scoring

def score(det_xy, truth_xy, radius):
    """``(found, n_false)``: bool per true source, and detections with no truth within radius."""
    found = np.zeros(len(truth_xy), bool)
    if len(det_xy) == 0:
        return found, 0
    d, _ = cKDTree(det_xy).query(truth_xy, distance_upper_bound=radius)
    found = np.isfinite(d)
    d, _ = cKDTree(truth_xy).query(det_xy, distance_upper_bound=radius)
    return found, int(np.sum(~np.isfinite(d)))


class Scan:
    """Evaluate one method at thresholds over all frames, caching the results."""

    def __init__(self, method, states, frames, radius, snrs, area_mpix):
        self.method, self.states, self.frames = method, states, frames
        self.radius, self.snrs, self.area = radius, snrs, area_mpix
        self.points = {}

    def __call__(self, t):
        t = float(round(t, 6))
        if t not in self.points:
            n_found = np.zeros(len(self.snrs), int)
            n_true = np.zeros(len(self.snrs), int)
            n_false = n_det = 0
            for state, (_, txy, tsnr, _) in zip(self.states, self.frames):
                det = self.method.detect(state, t)
                found, nf = score(det, txy, self.radius)
                n_false += nf
                n_det += len(det)
                for k, s in enumerate(self.snrs):
                    sel = np.isclose(tsnr, s)
                    n_true[k] += sel.sum()
                    n_found[k] += found[sel].sum()
            self.points[t] = dict(threshold=t, n_det=n_det, n_false=n_false,
                                  fdr=n_false / self.area, n_found=n_found, n_true=n_true)
        return self.points[t]

    def find(self, target, roc_max, n_bisect):
        """Lowest threshold with false rate <= target (coarse scan down, then bisection)."""
        grid = list(self.method.coarse)
        ok = bad = None
        for t in grid:  # descending
            p = self(t)
            if p["fdr"] <= target:
                ok = t
            elif bad is None:
                bad = t
            if p["fdr"] > roc_max:
                break
        if ok is None:
            raise RuntimeError(f"{self.method.name}: even threshold {grid[0]} exceeds the target")
        if bad is None:
            print(f"warning: {self.method.name}: lowest scanned threshold {grid[-1]} is still "
                  f"under the target; using it", file=sys.stderr)
            return self(ok)
        # bisection between bad (too many false) and the lowest ok above it
        hi = min(t for t in self.points if t > bad and self.points[t]["fdr"] <= target)
        lo = bad
        for _ in range(n_bisect):
            mid = 0.5 * (lo + hi)
            if self(mid)["fdr"] <= target:
                hi = mid
            else:
                lo = mid
        return self(hi)


def completeness(p):
    c = p["n_found"] / np.maximum(p["n_true"], 1)
    err = np.sqrt(c * (1 - c) / np.maximum(p["n_true"], 1))
    return c, err


# ---------------------------------------------------------------------------- report

def plot(results, snrs, target, area, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.8))
    k5 = list(snrs).index(5) if 5 in snrs else len(snrs) // 2
    for r in results:
        c, e = np.array(r["completeness"]), np.array(r["completeness_err"])
        a1.errorbar(snrs, c, e, marker="o", capsize=3,
                    label=f"{r['label']} (thr {r['threshold']:.3g}, {r['fdr']:.2f}/Mpix)")
        pts = sorted(r["scan"], key=lambda q: -q["threshold"])
        floor = 0.5 / area  # zero false detections drawn at half a count
        a2.plot([max(q["fdr"], floor) for q in pts], [q["completeness"][k5] for q in pts],
                marker=".", label=r["label"])
    a1.set_xlabel("true optimal S/N")
    a1.set_ylabel("completeness")
    a1.set_ylim(-0.02, 1.02)
    a1.grid(alpha=0.3)
    a1.legend(fontsize=8, loc="lower right")
    a1.set_title(f"completeness at <= {target:g} false detections / Mpix")
    a2.axvline(target, color="grey", ls="--", lw=1)
    a2.set_xscale("log")
    a2.set_xlabel("false detections per Mpix (0 drawn at half a count)")
    a2.set_ylabel(f"completeness at S/N {snrs[k5]}")
    a2.grid(alpha=0.3)
    a2.legend(fontsize=8)
    a2.set_title("threshold scan")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(results, snrs):
    names = [r["name"] for r in results]
    lines = ["| S/N | N | " + " | ".join(names) + " |",
             "|---:|---:|" + "---:|" * len(names)]
    for k, s in enumerate(snrs):
        cells = [f"{r['completeness'][k]:.3f} ± {r['completeness_err'][k]:.3f}" for r in results]
        lines.append(f"| {s:g} | {results[0]['n_true'][k]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=8, help="number of simulated frames")
    ap.add_argument("--size", type=int, default=2048, help="frame side in pixels")
    ap.add_argument("--seed", type=int, default=1000, help="seed of the first frame (+i for frame i)")
    ap.add_argument("--n-per-snr", type=int, default=400, help="sources per S/N value per frame")
    ap.add_argument("--fwhm", type=float, default=3.0, help="Gaussian PSF FWHM in pixels")
    ap.add_argument("--target", type=float, default=2.0, help="false detections per Mpix")
    ap.add_argument("--radius", type=float, default=1.5, help="match radius in pixels")
    ap.add_argument("--bisect", type=int, default=7, help="bisection steps after the coarse scan")
    ap.add_argument("--roc-max", type=float, default=30.0,
                    help="stop the coarse scan once the false rate exceeds this (per Mpix)")
    ap.add_argument("--methods", default="astrodl,sep,photutils")
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 frame of 1024, 100 per S/N")
    ap.add_argument("--outdir", help="where the PNG and JSON go (default: benchmarks/results, "
                    "benchmarks/results/quick with --quick)")
    args = ap.parse_args(argv)
    if args.quick:
        args.frames, args.size, args.n_per_snr, args.bisect = 1, 1024, 100, 4
    if args.outdir is None:
        args.outdir = str(RESULTS / "quick" if args.quick else RESULTS)
    os.makedirs(args.outdir, exist_ok=True)
    snrs = SNRS
    t0 = time.perf_counter()
    frames = simulate(args.frames, args.size, args.seed, args.n_per_snr, args.fwhm, snrs)
    area = args.frames * args.size**2 / 1e6
    t_sim = time.perf_counter() - t0
    print("# Completeness at equal false-detection rate\n")
    print(f"- {args.frames} frame(s) {args.size}x{args.size} (seeds {args.seed}..{args.seed + args.frames - 1}), "
          f"Gaussian PSF FWHM {args.fwhm:g} px, {args.n_per_snr} isolated sources per S/N per frame, "
          f"sky sigma {frames[0][3]:.2f} ADU; searched area {area:.2f} Mpix; simulation {t_sim:.1f} s")
    print(f"- target: <= {args.target:g} false detections / Mpix; match radius {args.radius:g} px\n")

    available = {"astrodl": Ours, "sep": Sep, "photutils": Photutils}
    results = []
    for name in args.methods.split(","):
        method = available[name]()
        t1 = time.perf_counter()
        states = [method.prepare(img, args.fwhm) for img, *_ in frames]
        t_prep = time.perf_counter() - t1
        scan = Scan(method, states, frames, args.radius, snrs, area)
        best = scan.find(args.target, args.roc_max, args.bisect)
        del states
        c, e = completeness(best)
        pts = [dict(threshold=q["threshold"], fdr=q["fdr"], n_det=q["n_det"],
                    completeness=completeness(q)[0].tolist()) for q in scan.points.values()]
        results.append(dict(name=name, label=method.label, unit=method.unit,
                            threshold=best["threshold"], fdr=best["fdr"], n_false=best["n_false"],
                            n_det=best["n_det"], n_true=best["n_true"].tolist(),
                            n_found=best["n_found"].tolist(), completeness=c.tolist(),
                            completeness_err=e.tolist(), scan=pts, prepare_s=t_prep,
                            scan_s=time.perf_counter() - t1 - t_prep, n_evaluated=len(pts)))
        print(f"  [{name}: prepare {t_prep:.1f} s, {len(pts)} thresholds scanned in "
              f"{results[-1]['scan_s']:.1f} s]", file=sys.stderr)

    print("## Operating points\n")
    print("| method | threshold | threshold unit | false det. | false / Mpix | detections |")
    print("|---|---:|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['name']} | {r['threshold']:.4g} | {r['unit']} | {r['n_false']} | "
              f"{r['fdr']:.2f} | {r['n_det']} |")
    print("\n## Completeness (± binomial standard error)\n")
    print(markdown(results, snrs))
    if 5 in snrs:
        k = list(snrs).index(5)
        ours = next((r for r in results if r["name"] == "astrodl"), None)
        if ours is not None:
            print("\n## Ratio at S/N 5\n")
            a, ea = ours["completeness"][k], ours["completeness_err"][k]
            for r in results:
                if r is ours:
                    continue
                b, eb = r["completeness"][k], r["completeness_err"][k]
                ratio = a / b if b > 0 else float("inf")
                err = ratio * np.hypot(ea / a if a else 0, eb / b if b else 0)
                print(f"- astrodl / {r['name']} = {a:.3f} / {b:.3f} = **{ratio:.3f} ± {err:.3f}**")
    png = Path(args.outdir) / "completeness.png"
    plot(results, snrs, args.target, area, png)
    meta = dict(args=vars(args), snrs=list(snrs), area_mpix=area, machine=platform.node(),
                cpus=os.cpu_count(), date=time.strftime("%Y-%m-%d %H:%M"), results=results,
                total_s=time.perf_counter() - t0)
    (Path(args.outdir) / "completeness.json").write_text(json.dumps(meta, indent=1, default=float))
    print(f"\nplot: {png}; total time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
