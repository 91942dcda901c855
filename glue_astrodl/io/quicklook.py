"""Quick-look PNGs: the image in an arcsinh stretch with detections overlaid."""

import numpy as np

from ..core.atomic import atomic_path

__all__ = ["quicklook_sources", "quicklook_contaminants"]


def _stretch(image, background, rms):
    z = np.arcsinh((np.asarray(image, dtype=np.float32) - background) / (3.0 * rms))
    lo, hi = np.nanpercentile(z, [1, 99.8])
    return np.clip((z - lo) / (hi - lo), 0, 1)


def quicklook_sources(path, image, detection, truth=None, max_side=1600):
    """Write a PNG of ``image`` with detected sources circled (and true ones dotted).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from glue_astrodl import detect_sources
    >>> from glue_astrodl.sim import simulate_point_sources
    >>> frame = simulate_point_sources((96, 96), snr=(20,), n_per_snr=3, fwhm=2.5, seed=1)
    >>> detection = detect_sources(frame.image, fwhm=2.5)
    >>> path = quicklook_sources(Path(tempfile.mkdtemp()) / "sources.png", frame.image, detection, truth=frame.truth)
    >>> path.read_bytes()[1:4]
    b'PNG'
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    step = max(1, int(np.ceil(max(image.shape) / max_side)))
    view = _stretch(image[::step, ::step], detection.meta["background"], detection.meta["noise"])
    fig, (ax, axp) = plt.subplots(1, 2, figsize=(14, 7), sharex=True, sharey=True)
    ax.imshow(view, origin="lower", cmap="gray", extent=(0, image.shape[1], 0, image.shape[0]))
    t = detection.table
    ax.scatter(t["x"], t["y"], s=60, facecolors="none", edgecolors="tab:orange", lw=0.8,
               label=f"detected (S/N >= {detection.meta['threshold']:g}): {len(t)}")
    if truth is not None:
        ax.scatter(truth["x"], truth["y"], s=4, c="tab:cyan", lw=0, label=f"true: {len(truth)}")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("image (arcsinh stretch)")
    im = axp.imshow(detection.probability[::step, ::step], origin="lower", cmap="magma", vmin=0, vmax=1,
                    extent=(0, image.shape[1], 0, image.shape[0]))
    axp.set_title("P(source | matched-filter S/N)")
    fig.colorbar(im, ax=axp, fraction=0.046)
    for a in (ax, axp):
        a.set_xlabel("x [pix]")
    ax.set_ylabel("y [pix]")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def quicklook_contaminants(path, image, detection, max_side=1600):
    """Write a PNG: the image beside a map of flagged pixels coloured by class.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from glue_astrodl import detect_contaminants
    >>> image = np.random.default_rng(1).normal(100.0, 5.0, (128, 128)).astype(np.float32)
    >>> image[60, 40:44] += 400.0  # a cosmic-ray track
    >>> detection = detect_contaminants(image, classes=["CR", "HP"])
    >>> path = quicklook_contaminants(Path(tempfile.mkdtemp()) / "flags.png", image, detection)
    >>> path.read_bytes()[1:4]
    b'PNG'
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    step = max(1, int(np.ceil(max(image.shape) / max_side)))
    level, noise = detection.meta["level"], detection.meta["noise"]
    view = _stretch(image[::step, ::step], level, noise)
    masks = detection.masks()[:, ::step, ::step]
    names = [c for c in detection.classes if c != detection.taxonomy.background]
    label = np.zeros(masks.shape[1:], np.int16)
    for i, name in enumerate(names, start=1):  # later classes drawn on top of earlier ones
        label[masks[detection.classes.index(name)]] = i
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, 20))[: len(names)]
    cmap = ListedColormap([(0, 0, 0, 1), *colours])
    fig, (ax, axm) = plt.subplots(1, 2, figsize=(14, 7), sharex=True, sharey=True)
    extent = (0, image.shape[1], 0, image.shape[0])
    ax.imshow(view, origin="lower", cmap="gray", extent=extent)
    ax.set_title("image (arcsinh stretch)")
    axm.imshow(label, origin="lower", cmap=cmap, vmin=0, vmax=len(names), interpolation="nearest", extent=extent)
    axm.set_title("flagged pixels by class")
    fractions = detection.flagged_fractions()
    axm.legend(handles=[Patch(color=colours[i], label=f"{n} {fractions[n]:.2%}") for i, n in enumerate(names)],
               loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    for a in (ax, axm):
        a.set_xlabel("x [pix]")
    ax.set_ylabel("y [pix]")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path
