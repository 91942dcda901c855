"""``astrodl demo``: simulate frames and run every registered task on them.

Two frames are simulated: a reduced sky frame (PSF-convolved stars and Sérsic galaxies, with
its truth catalogue) and a raw frame with detector defects and artefacts (with its truth
masks). Each task runs on the frame it declares (`Task.demo_input`; catalogue tasks take the
truth catalogue) and writes its products as the file job does: FITS (each product kind) or
the catalogue with its new columns, a region file, a quick-look PNG where the result draws
one, and what it found against the simulation's truth where the result can tell. A result with
per-class masks on a frame simulated with per-class truth (the contaminant task on the raw
frame) gets a table per class (true, flagged and recovered pixels, false flags), its findings
(the classes the model misses or over-flags) and a quick look with the truth beside the flags.
"""

from pathlib import Path

__all__ = ["run_demo"]

#: A class the model recovers on less than this share of its true pixels is "missed".
MISSED = 0.5
#: A class is "over-flagged" when it has more false flags than true pixels, on at least this
#: share of the frame.
OVERFLAG_FLOOR = 1e-4


def _frames(outdir, size, seed):
    """``{"sky": (path, frame), "raw": (path, frame)}`` and the simulated catalogue's path."""
    from astropy.io import fits

    from .sim import simulate_contaminant_frame, simulate_frame

    scale = (size / 1024) ** 2
    sky = simulate_frame((size, size), n_stars=int(300 * scale), n_galaxies=int(150 * scale), seed=seed)
    sky.write(outdir / "demo_frame.fits")
    catalogue = outdir / "demo_catalogue.ecsv"
    sky.truth.write(catalogue, overwrite=True)
    raw = simulate_contaminant_frame((size, size), seed=seed)
    fits.PrimaryHDU(raw.image, raw.header).writeto(outdir / "demo_raw_frame.fits", overwrite=True)
    return {"sky": (outdir / "demo_frame.fits", sky), "raw": (outdir / "demo_raw_frame.fits", raw)}, catalogue


def _products(task, result, outdir):
    """Write the result as a file job would; yield the paths."""
    stem = outdir / f"demo_{task.name}"
    if result.table_kind == "columns":
        yield result.write(stem.with_suffix(".ecsv"))
        return
    kinds = task.products if len(task.products) > 1 else (None,)
    for kind in kinds:
        yield result.to_fits(Path(f"{stem}_{kind}.fits") if kind else stem.with_suffix(".fits"), kind)


def _class_scores(flags, truth):
    """Per class of ``truth`` (``{class: true mask}``): the fractions of pixels that are true
    and flagged (``flags``: ``{class: flagged mask}``), the share of the true pixels flagged
    (``recovered``, None when none is true), the share of the other pixels flagged
    (``false_flags``, also as a fraction of the frame, ``false_frame``) and, on the true pixels,
    the other class flagged most (``flagged_as``, ``(class, share)``).
    """
    scores = {}
    for c, t in truth.items():
        f, n_true = flags[c], int(t.sum())
        false = int((f & ~t).sum())
        others = [(d, float((flags[d] & t).sum() / n_true)) for d in flags if d != c] if n_true else []
        scores[c] = {"true": n_true / t.size, "flagged": float(f.mean()),
                     "recovered": float((f & t).sum() / n_true) if n_true else None,
                     "false_flags": false / max(t.size - n_true, 1), "false_frame": false / t.size,
                     "flagged_as": max(others, key=lambda o: o[1]) if others else None}
    return scores


def _classes(n):
    return f"{n} class" if n == 1 else f"{n} classes"


def _class_report(label, scores, taxonomy, shape):
    """The per-class table of ``scores`` (`_class_scores`) and the model's findings, as lines."""
    shown = [c for c, s in scores.items() if s["true"] or s["flagged"]]
    width = max(len(taxonomy.label(c)) for c in shown) if shown else 5
    yield f"{label}: per class against the simulation's truth (% of the {shape[1]}x{shape[0]} pixels):"
    yield f"  {'class':<{width}}  {'true':>8}  {'flagged':>8}  {'recovered':>9}  {'false flags':>11}"
    for c in shown:
        s = scores[c]
        recovered = "-" if s["recovered"] is None else f"{s['recovered']:.1%}"
        yield (f"  {taxonomy.label(c):<{width}}  {s['true']:>8.3%}  {s['flagged']:>8.3%}  {recovered:>9}  "
               f"{s['false_flags']:>11.3%}")
    absent = [c for c in scores if c not in shown]
    yield ("  (recovered: share of the true pixels flagged; false flags: share of the other pixels flagged"
           + (f"; neither true nor flagged: {', '.join(absent)})" if absent else ")"))
    missed, over = [], []
    for c, s in scores.items():
        if s["recovered"] is not None and s["recovered"] < MISSED:
            confused = s["flagged_as"]
            also = f"; {confused[0]} flagged on {confused[1]:.0%} of them" if confused and confused[1] >= 0.25 else ""
            missed.append(f"  {taxonomy.label(c):<{width}}  recovered {s['recovered']:.0%} of {s['true']:.3%} true{also}")
        if s["false_frame"] >= OVERFLAG_FLOOR and s["false_frame"] > s["true"]:
            over.append(f"  {taxonomy.label(c):<{width}}  {s['flagged']:.3%} flagged vs {s['true']:.3%} true")
    if missed:
        yield f"{label}: model misses {_classes(len(missed))}, recovering under {MISSED:.0%} of their true pixels:"
        yield from missed
    else:
        yield f"{label}: model recovers at least {MISSED:.0%} of the true pixels of every class present"
    if over:
        yield f"{label}: model over-flags {_classes(len(over))}, with more false flags than true pixels:"
        yield from over


def run_demo(outdir, size=1024, seed=1, progress=True):
    """Write the simulated frames and every task's products to ``outdir``; yield one line each."""
    from .io.regions import write_regions
    from .tasks.contaminant_classes import MAXIMASK
    from .tasks.registry import tasks

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    frames, catalogue = _frames(outdir, size, seed)
    sky, raw = frames["sky"][1], frames["raw"][1]
    yield (f"{frames['sky'][0]}: simulated {size}x{size} sky frame, {len(sky.truth)} objects, "
           f"FWHM {sky.header['FWHM']:.2f} px (truth catalogue {catalogue})")
    present = [c for c, m in zip(MAXIMASK.classes, raw.masks) if m.any() and c != MAXIMASK.background]
    yield f"{frames['raw'][0]}: simulated raw frame with {', '.join(present)}"
    for task in tasks():
        path, frame = frames[task.demo_input]
        inputs = (path, catalogue) if task.needs_catalogue else (path,)
        result = task.run(*inputs, progress=progress)
        for product in _products(task, result, outdir):
            yield f"{product}: {task.label}"
        yield f"{task.label}: {result.summary()}"
        if hasattr(result, "truth_report"):
            yield f"{task.label}: {result.truth_report(frame)} (against the simulation's truth)"
        truth = result.truth_masks(frame) if hasattr(result, "truth_masks") else None
        if truth is not None:
            flags = {c: m for c, m in zip(result.classes, result.masks()) if c in truth}
            yield from _class_report(task.label, _class_scores(flags, truth), result.taxonomy, frame.image.shape)
        regions = outdir / f"demo_{task.name}.reg"
        write_regions(result.to_regions(), regions, wcs=result.wcs)
        yield f"{regions}: {task.label} regions"
        if hasattr(result, "quicklook"):  # beside the truth when the frame carries it
            yield f"{result.quicklook(outdir / f'demo_{task.name}.png', frame.image, frame)}: quick look"
