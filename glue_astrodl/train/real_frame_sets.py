"""Held-out sets on whole real frames: injected contaminants for calibration and scores, and
false alarms on the frames as they are.

A real unit (`glue_astrodl.sim.real_frames`) is used whole, as a user's frame: the network
sees it through `Predictor` with the frame's own normalisation and full context, and only
then are its logits cut into tiles for the pooled metrics of `glue_astrodl.train.contaminants`.

* `injected_frames`: each installed unit of a split with the simulator's contaminants
  injected (`inject_contaminants`, exact labels) and its own contaminants to ignore.
  Training-split units with fresh injections calibrate; test-split units score.
* `false_alarms`: the fraction of each clean held-out frame flagged per class by
  `detect_contaminants` at the default priors and thresholds -- the real-frame gates.
"""

import numpy as np

from ..sim.real_backgrounds import _Unit, frame_path, frames, inject_contaminants

__all__ = ["IN_DOMAIN", "GATED", "STRICT", "LIMITS", "own_classes", "installed_units", "injected_frames",
           "frame_logit_tiles", "false_alarms", "gradient_frame"]

#: The held-out units in the model's domain (direct images); the long-slit spectrum and the
#: radio map are held out too, but only reported.
IN_DOMAIN = ("m51_kpno", "saao_raw", "wfpc2_omegacen_wf4")
#: Classes a frame free of them may flag on at most 0.5% of its pixels ...
GATED = ("FR", "BBG", "NEB", "TRL", "SP", "P", "OV", "HCL", "DCL")
#: ... and these on at most 0.05%.
STRICT = ("HP", "DP", "CR")
LIMITS = {**{c: 5e-3 for c in GATED}, **{c: 5e-4 for c in STRICT}}


def own_classes(entry):
    """The classes a real frame holds itself (manifest ``own_classes``, and CR where ``own_crs``)."""
    return list(entry.get("own_classes", [])) + (["CR"] if entry.get("own_crs") else [])


def installed_units(split, ids=None):
    """The installed units of ``split`` (or of those of ``ids``), loaded once for cutting."""
    return [_Unit(e) for e in frames(split) if frame_path(e) is not None and (ids is None or e["id"] in ids)]


def injected_frames(split, seed, rounds=1, ids=None, config=None, units=None, classes=None):
    """``[(id, image, masks, ignore)]``: every installed unit of ``split`` (or of ``ids``),
    ``rounds`` times, with contaminants injected anew each time (seeded by ``seed``), the
    image cropped to a multiple of 16 px. ``masks`` ``(14, h, w)`` bool, ``ignore`` the
    unit's own contaminants (`own_contaminants`), kept out of every score. ``classes``: inject
    exactly these (default: each by its presence probability); ``units``: units already loaded.

    Examples
    --------
    >>> (name, image, masks, ignore), = injected_frames("train", seed=0, ids=["m13_photographic"])
    >>> name, image.shape, masks.shape, bool(masks[:-1].any())
    ('m13_photographic', (288, 288), (14, 288, 288), True)
    """
    rng = np.random.default_rng([int(seed), 0x4EA1])
    units = units or installed_units(split, ids)
    out = []
    for _ in range(rounds):
        for u in units:
            ny, nx = (s // 16 * 16 for s in u.image.shape)
            tile = inject_contaminants(u.image[:ny, :nx], rng, u.sky, u.noise, u.entry.get("zero", 0.0),
                                       classes=classes, config=config, ignore=u.ignore[:ny, :nx],
                                       fwhm=u.entry.get("fwhm", 2.5))
            out.append((u.entry["id"], tile.image, tile.masks, tile.ignore))
    return out


def _starts(n, size):
    starts = list(range(0, n - size + 1, size))
    return starts + [n - size] if n % size >= size // 4 else starts


def frame_logit_tiles(predictor, frames_, size):
    """Logits of whole frames (`Predictor.logits`: each frame normalised on its own, in one
    pass) cut into ``size`` tiles: ``(logits (n, K, s, s), masks (n, 14, s, s), ignore (n, s, s))``.
    Tiles cover each frame (the last row and column flush with its edge); frames smaller than
    ``size`` are left out."""
    logits, masks, ignore = [], [], []
    for _, image, m, ign in frames_:
        if min(image.shape) < size:
            continue
        z = predictor.logits(image[None])[0]
        for y in _starts(image.shape[0], size):
            for x in _starts(image.shape[1], size):
                cut = np.s_[..., y:y + size, x:x + size]
                logits.append(z[cut])
                masks.append(m[cut])
                ignore.append(ign[cut])
    return np.stack(logits), np.stack(masks), np.stack(ignore)


def gradient_frame(size=1024, seed=0, max_fraction=0.1):
    """A simulated raw frame with stars and galaxies but no contaminant, given a smooth sky
    gradient of up to ``max_fraction`` of the sky (peak to mean) across it: ``(image, amplitude
    as a fraction of the sky)``."""
    from ..sim.contaminants import simulate_contaminant_tile
    from ..sim.real_backgrounds import add_sky_gradient

    rng = np.random.default_rng(seed)
    t = simulate_contaminant_tile(size, rng, classes=[])
    keep = t.mask("SAT") | t.mask("OV")
    image, params = add_sky_gradient(t.image, t.meta["sky"], rng, max_fraction=max_fraction, keep=keep)
    image = np.minimum(np.round(image), t.meta["saturation"]).astype(np.float32)
    return image, params["amplitude"] / t.meta["sky"]


def false_alarms(model="contaminants", ids=None, split="test", **kwargs):
    """``{frame id: {class: fraction flagged}}`` on the clean units of ``split`` (or ``ids``)
    by `detect_contaminants` at the default priors and thresholds (``kwargs`` passed on).
    A frame's own classes (the manifest's ``own_classes``, and CR where ``own_crs``) are None:
    it is not free of them."""
    from ..tasks.contaminants import detect_contaminants

    out = {}
    for u in installed_units(split, ids):
        result = detect_contaminants(u.image, model=model, **kwargs)
        fractions = result.flagged_fractions()
        for c in own_classes(u.entry):
            fractions[c] = None
        out[u.entry["id"]] = fractions
    return out
