"""Quick-look PNGs: the image in an arcsinh stretch with detections overlaid."""

import numpy as np

from ..core.atomic import atomic_path

__all__ = ["quicklook_contaminants", "quicklook_sources"]


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


def _block_any(mask, step):
    """``mask`` shrunk ``step`` times, a block flagged when any of its pixels is (so that
    one-pixel cosmic rays and columns survive), on the grid of ``image[::step, ::step]``."""
    if step == 1:
        return mask
    padded = np.pad(mask, ((0, -mask.shape[0] % step), (0, -mask.shape[1] % step)))
    return padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step).any(axis=(1, 3))


def _outline(mask, width=1):
    """The pixels of ``mask`` with a 4-neighbour outside it (the image border counts as inside),
    grown to ``width`` pixels."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    edge = mask & ~inner
    for _ in range(width - 1):
        grown = edge.copy()
        grown[1:] |= edge[:-1]
        grown[:-1] |= edge[1:]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge


def _overlay(grey, layers, fill=0.3, edge=1):
    """uint8 RGB: the ``grey`` image with each ``(mask, colour)`` of ``layers`` blended in
    (opacity ``fill``) and outlined opaquely (``edge`` pixels wide), later layers on top."""
    from matplotlib.colors import to_rgb

    rgb = np.repeat(np.asarray(grey, np.float32)[..., None], 3, axis=2)
    flat = rgb.reshape(-1, 3)
    for mask, colour in layers:
        colour = np.asarray(to_rgb(colour), np.float32)
        inside = np.flatnonzero(mask)
        flat[inside] += fill * (colour - flat[inside])
        flat[np.flatnonzero(_outline(mask, edge))] = colour
    return (rgb * 255 + 0.5).astype(np.uint8)


def quicklook_contaminants(path, image, detection, truth=None, max_side=1600):
    """Write a PNG: the image (arcsinh stretch) with the flagged pixels of each class drawn over
    it, translucent and outlined in the class's colour, beside the plain image, or beside the
    true pixels drawn the same way when ``truth`` (``{class: true mask}``) is given.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from glue_astrodl import detect_contaminants
    >>> image = np.random.default_rng(1).normal(100.0, 5.0, (128, 128)).astype(np.float32)
    >>> image[60, 40:44] += 400.0  # a cosmic-ray track
    >>> detection = detect_contaminants(image, classes=["CR", "HP"])
    >>> truth = {"CR": np.zeros((128, 128), bool), "HP": np.zeros((128, 128), bool)}
    >>> truth["CR"][60, 40:44] = True
    >>> path = quicklook_contaminants(Path(tempfile.mkdtemp()) / "flags.png", image, detection, truth=truth)
    >>> path.read_bytes()[1:4]
    b'PNG'
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    taxonomy = detection.taxonomy
    step = max(1, int(np.ceil(max(image.shape) / max_side)))
    grey = _stretch(image[::step, ::step], detection.meta["level"], detection.meta["noise"])
    flags = {c: _block_any(m, step) for c, m in zip(detection.classes, detection.masks()) if c != taxonomy.background}
    fractions = detection.flagged_fractions()
    truth = None if truth is None else {c: np.asarray(truth.get(c, np.zeros(image.shape, bool)), bool) for c in flags}
    true = {c: float(np.mean(truth[c])) for c in flags} if truth is not None else {}
    shown = [c for c in flags if fractions[c] or true.get(c)]
    shown.sort(key=lambda c: -max(fractions[c], true.get(c, 0.0)))  # the largest drawn first, the small on top
    colour = {c: taxonomy.colours.get(c, "#ff00ff") for c in shown}
    edge = max(1, round(max(grey.shape) / 450))

    def draw(masks):
        return _overlay(grey, [(masks[c], colour[c]) for c in shown], edge=edge)

    panels = [("flagged pixels over the image (arcsinh stretch)", draw(flags))]
    if truth is None:
        panels.insert(0, ("image (arcsinh stretch)", grey))
    else:
        panels.append(("true pixels (the simulation's truth)", draw({c: _block_any(truth[c], step) for c in shown})))
    fig, axes = plt.subplots(1, 2, figsize=(17, 8), sharex=True, sharey=True)
    extent = (0, image.shape[1], 0, image.shape[0])
    for ax, (title, view) in zip(axes, panels):
        ax.imshow(view, origin="lower", cmap="gray", vmin=0, vmax=1, interpolation="nearest", extent=extent)
        ax.set_title(title)
        ax.set_xlabel("x [pix]")
    axes[0].set_ylabel("y [pix]")

    def text(c):
        return f"{taxonomy.label(c)}\nflagged {fractions[c]:.3%}" + (f", true {true[c]:.3%}" if truth is not None else "")

    hidden = [c for c in flags if c not in shown]
    axes[1].legend(handles=[Patch(facecolor=colour[c], edgecolor=colour[c], label=text(c)) for c in shown],
                   title=f"none flagged{' or true' if truth is not None else ''}: {', '.join(hidden)}"
                   if hidden else None, title_fontsize=7,
                   loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, labelspacing=0.9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path
