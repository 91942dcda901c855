"""Train the contaminant segmentation model on simulated tiles.

``python -m glue_astrodl.train contaminants --steps 16000 --seed 0`` trains
`ContaminantNet` on a pool of tiles from `glue_astrodl.sim.contaminants` with per-pixel
loss weights inversely proportional to the class fractions (smoothed by a 3x3 Gaussian,
as MaxiMask does), then uses two held-out simulated sets (other seeds):

* a *calibration* set: per-class Platt scaling of the logits (`fit_platt`), so that
  ``sigmoid(a * logit + b)`` is a calibrated posterior at that set's class fractions,
  which the card records as ``training_priors``; `prior_shift_sigmoid` moves it to the
  user's priors. MCC-optimal thresholds at the default priors come from this set too.
* a *test* set: the held-out metrics of the card (ROC AUC per class, expected calibration
  error after prior correction to the test set's true fractions).

It writes ``weights/contaminants.safetensors`` + ``contaminants.json``.
"""

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..core.calibration import (expected_calibration_error, fit_platt, mcc_optimal_threshold,
                                plot_reliability, prior_shift_sigmoid, reliability_curve, roc_auc, tpr_at_fpr)
from ..core.device import resolve_device
from ..core.normalise import NORMALISER_VERSIONS, asinh_stretch, robust_level_noise
from ..core.predictor import Predictor, fit_normaliser
from ..tasks.contaminant_classes import CLASSES, DEFAULT_PRIORS
from ..core.weights import load_model, save_model
from ..models.registry import ARCHITECTURES
from ..models.contaminant_net import ContaminantNet
from ..sim.contaminants import CONTAMINANT_VERSION, simulate_contaminant_tile, tile_batch

__all__ = ["NORMALISER", "normalise_image", "make_set", "make_real_set", "cached_set", "unpack_masks", "pack_masks",
           "pixel_weights", "loss_weights", "resolve_precision", "train_contaminants", "calibrate", "evaluate",
           "plot_held_out", "evaluate_saved"]

MODEL_NAME = "contaminants"
K = len(CLASSES)
_BITS = torch.tensor([1 << k for k in range(K)], dtype=torch.int32)
#: Tile overlap at inference: 99.9% of the network's receptive field lies within 267 px
#: (impulse response, tests/test_tiling_invariance.py), rounded up to the 16 px grid.
RECEPTIVE_FIELD_OVERLAP = 320
#: Smallest training tile whose 1/16-resolution map (16x16) gives the context block's
#: dilation-8 taps content: fine-tuning on 128 px tiles dropped the held-out CR AUC from
#: 0.99 to 0.78 (those taps, padding in training, see a frame at inference).
MIN_TILE = 256
CALIBRATION_SEED_OFFSET = 1_000_003
TEST_SEED_OFFSET = 2_000_003


#: The input normaliser the model is trained with and its card declares (`glue_astrodl.core.normalise`).
NORMALISER = {"name": "sky-mode-asinh", "softening": 1.0}


def normalise_image(image, stats=None):
    """Model input of one tile, exactly as inference normalises a frame (`NORMALISER`):
    fitted to the tile, or given the ``stats`` ``(level, noise)`` of the frame it belongs to.

    Examples
    --------
    >>> import numpy as np
    >>> from glue_astrodl.sim import simulate_contaminant_tile
    >>> tile = simulate_contaminant_tile(64, rng=0, classes=["CR"])
    >>> x = normalise_image(tile.image)  # what the network sees, as at inference
    >>> x.shape, x.dtype, round(float(np.median(x)), 1)
    ((64, 64), dtype('float32'), 0.0)
    """
    if stats is None:
        return fit_normaliser(NORMALISER, image)[0](np.asarray(image, np.float32), None)
    return asinh_stretch(np.asarray(image, np.float32), *stats, NORMALISER["softening"])


def make_set(n, size, seed, chunk=64, config=None, raw=False, gradient=0.0):
    """``n`` simulated tiles: images ``(n, 1, s, s)`` -- normalised float16 for training, or raw
    float32 (``raw=True``) for the held-out sets, which go through `Predictor` as frames do
    at inference -- and class masks packed as bits (bit ``k`` = ``CLASSES[k]``) ``(n, s, s)``
    uint16, 9x less memory than boolean planes, so large pools fit in RAM. ``config``: a
    `ContaminantConfig` (dict). ``gradient``: the fraction of tiles given a smooth sky
    gradient of up to +-10% of the sky (`add_sky_gradient`, saturated and overscan pixels
    left alone), labels unchanged: such gradients are background. Each such tile is a
    window of a frame 1-16 times its side that the gradient spans, normalised with the
    level and noise the tile had before it (the frame's, as at inference), so it meets the
    offsets from the sky far from a frame's centre. The tiles are the same tiles with or
    without it (the gradients draw from their own generator).

    Examples
    --------
    >>> images, bits = make_set(2, 32, seed=0)
    >>> images.shape, images.dtype, bits.shape, bits.dtype  # normalised, masks packed as bits
    ((2, 1, 32, 32), dtype('float16'), (2, 32, 32), dtype('uint16'))
    >>> make_set(2, 32, seed=0, raw=True)[0].dtype  # raw ADU, for held-out sets
    dtype('float32')
    """
    rng = np.random.default_rng(seed)
    images = np.empty((n, 1, size, size), np.float32 if raw else np.float16)
    bits = np.empty((n, size, size), np.uint16)
    if gradient > 0:
        from ..sim.real_backgrounds import add_sky_gradient

        grng = np.random.default_rng([int(seed), 0x6AD])
        for i in range(n):
            t = simulate_contaminant_tile(size, rng, config=config)
            img = t.image
            stats = None
            if grng.random() < gradient:
                stats = robust_level_noise(img)
                side = int(size * 2 ** grng.uniform(0, 4))
                img, _ = add_sky_gradient(img, t.meta["sky"], grng, keep=t.mask("SAT") | t.mask("OV"), frame=side)
                img = np.minimum(np.round(img), t.meta["saturation"]).astype(np.float32)
            images[i, 0] = img if raw else normalise_image(img, stats)
            bits[i] = pack_masks(t.masks)
        return images, bits
    for i in range(0, n, chunk):
        k = min(chunk, n - i)
        img, msk = tile_batch(k, size, rng, config)
        images[i:i + k] = img if raw else [normalise_image(t) for t in img]
        bits[i:i + k] = pack_masks(msk)
    return images, bits


def pack_masks(masks):
    """Boolean class planes ``(..., K, s, s)`` -> bits ``(..., s, s)`` uint16 (bit k = ``CLASSES[k]``).

    Examples
    --------
    >>> import numpy as np
    >>> masks = np.zeros((14, 2, 2), bool)
    >>> masks[0, 0, 0] = masks[13, 1, 1] = True  # a CR pixel, a BG pixel
    >>> pack_masks(masks)
    array([[   1,    0],
           [   0, 8192]], dtype=uint16)
    """
    weights = (1 << np.arange(K, dtype=np.uint16))[:, None, None]
    return (np.asarray(masks, bool) * weights).sum(axis=-3, dtype=np.uint16)


def make_real_set(n, size, seed, config=None, raw=False, split="train"):
    """``n`` real-background tiles with injected contaminants (`real_tile_pool`, frames of
    ``split`` only): ``(images, bits, ignore, frames)`` as `make_set`'s, plus ``ignore``
    ``(n, s, s)`` bool (the frames' own contaminants: loss weight 0) and the id of the frame
    each tile was cut from. Normalised with the level and noise of the whole frame, as
    inference sees the frame.

    Examples
    --------
    >>> images, bits, ignore, frames = make_real_set(2, 32, seed=0)  # doctest: +SKIP
    """
    from ..sim.real_backgrounds import real_tile_pool

    raw_images, masks, ignore, used, stats = real_tile_pool(n, size, seed, split=split, config=config)
    images = raw_images if raw else np.stack([normalise_image(t, s) for t, s in zip(raw_images[:, 0], stats)])[:, None]
    images = images.astype(np.float32 if raw else np.float16)
    return images, pack_masks(masks), ignore, np.array(used)


def cached_set(kind, cache_dir, key, build, shard=2048):
    """A tile pool cached as compressed ``.npz`` shards of ``shard`` tiles, keyed by ``kind``
    and ``key`` (a JSON-able dict: generator version, seed, size, count, options); built by
    ``build()`` (a tuple of arrays of the same length) only when absent. Shards are written
    to a temporary name and renamed, so an interrupted run never leaves a partial pool.
    ``cache_dir=None`` builds without caching.

    Examples
    --------
    >>> import tempfile
    >>> calls = []
    >>> build = lambda: calls.append(1) or make_set(2, 32, seed=0)
    >>> cache = tempfile.mkdtemp()
    >>> a = cached_set("sim", cache, {"seed": 0, "n": 2, "size": 32}, build)
    >>> b = cached_set("sim", cache, {"seed": 0, "n": 2, "size": 32}, build)  # read back, not simulated
    >>> len(calls), bool((a[1] == b[1]).all())
    (1, True)
    """
    if cache_dir is None:
        return build()
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    stem = Path(cache_dir) / f"{kind}-s{key.get('seed', 'x')}-n{key.get('n', 'x')}-{key.get('size', 'x')}px-{digest}"
    index = stem.with_suffix(".json")
    if index.is_file():
        n_shards = json.loads(index.read_text())["shards"]
        parts = []
        for j in range(n_shards):
            with np.load(f"{stem}-{j:04d}.npz") as z:
                parts.append([z[f"a{i}"] for i in range(len(z.files))])
        return tuple(np.concatenate(p) for p in zip(*parts))
    arrays = build()
    stem.parent.mkdir(parents=True, exist_ok=True)
    n_shards = max(1, -(-len(arrays[0]) // shard))
    for j in range(n_shards):
        tmp = Path(f"{stem}-{j:04d}.tmp.npz")
        np.savez_compressed(tmp, **{f"a{i}": a[j * shard:(j + 1) * shard] for i, a in enumerate(arrays)})
        os.replace(tmp, f"{stem}-{j:04d}.npz")
    tmp = index.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "shards": n_shards, "tiles": len(arrays[0])}, default=str))
    os.replace(tmp, index)
    return arrays


def unpack_masks(bits):
    """``(n, s, s)`` packed masks (array or tensor) -> ``(n, K, s, s)`` float32 tensor.

    Examples
    --------
    >>> import numpy as np
    >>> from glue_astrodl.sim import tile_batch
    >>> _, bits = make_set(2, 32, seed=0)
    >>> masks = unpack_masks(bits)
    >>> masks.shape, masks.dtype
    (torch.Size([2, 14, 32, 32]), torch.float32)
    >>> _, truth = tile_batch(2, 32, np.random.default_rng(0))  # the same tiles, unpacked
    >>> bool((masks.numpy().astype(bool) == truth).all())
    True
    """
    bits = torch.as_tensor(np.asarray(bits, dtype=np.int32) if isinstance(bits, np.ndarray) else bits).int()
    return ((bits[:, None] & _BITS[None, :, None, None]) > 0).float()


_SMOOTH = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0  # 3x3 Gaussian


def pixel_weights(masks, fractions, cap=1e3):
    """Per-pixel loss weights: 1 / fraction of the rarest class a pixel belongs to, smoothed.

    ``masks`` ``(n, K, s, s)`` float tensor, ``fractions`` the K class fractions of the
    training pool; returns ``(n, s, s)``, unnormalised (divide by its pool mean).

    Examples
    --------
    >>> import torch
    >>> masks = torch.zeros(1, 2, 4, 4)
    >>> masks[0, 1] = 1.0  # class 1 everywhere (fraction 0.9)
    >>> masks[0, 0, 1, 1] = 1.0  # one pixel of the rare class 0 (fraction 0.01)
    >>> pixel_weights(masks, [0.01, 0.9])[0].round(decimals=1)
    tensor([[ 7.3000, 13.5000,  7.3000,  1.1000],
            [13.5000, 25.8000, 13.5000,  1.1000],
            [ 7.3000, 13.5000,  7.3000,  1.1000],
            [ 1.1000,  1.1000,  1.1000,  1.1000]])
    """
    inv = torch.as_tensor(1.0 / np.maximum(np.asarray(fractions, np.float64), 1.0 / cap), dtype=torch.float32)
    w = (masks * inv[None, :, None, None]).amax(dim=1, keepdim=True)
    return F.conv2d(F.pad(w, (1, 1, 1, 1), mode="replicate"), _SMOOTH[None, None])[:, 0]


def loss_weights(masks, fractions, weight_mean, ignore=None):
    """`pixel_weights` over their pool mean, and 0 where ``ignore`` (``(n, s, s)``, e.g. a
    real frame's own cosmic rays, whose truth is unknown) is set.

    Examples
    --------
    >>> import torch
    >>> masks = torch.zeros(1, 2, 2, 2)
    >>> masks[0, 1] = 1.0
    >>> ignore = torch.tensor([[[True, False], [False, False]]])
    >>> loss_weights(masks, [0.5, 0.5], 2.0, ignore)[0]
    tensor([[0., 1.],
            [1., 1.]])
    """
    w = pixel_weights(masks, fractions) / weight_mean
    if ignore is not None:
        w = w * (~torch.as_tensor(np.asarray(ignore, bool) if isinstance(ignore, np.ndarray) else ignore)).float()
    return w


def _pool_statistics(bits, chunk=512, pools=None):
    """Class fractions of the pool and the mean of its unnormalised pixel weights; with
    ``pools`` (``[(bits, share), ...]``) those of a mixture drawn in these shares."""
    pools = pools or [(bits, 1.0)]
    fractions = np.zeros(K)
    for b, share in pools:
        counts = np.zeros(K)
        for i in range(0, len(b), chunk):
            counts += unpack_masks(b[i:i + chunk]).sum(dim=(0, 2, 3)).numpy()
        fractions += share * counts / b.size
    mean = 0.0
    for b, share in pools:
        mean += share * sum(float(pixel_weights(unpack_masks(b[i:i + chunk]), fractions).sum())
                            for i in range(0, len(b), chunk)) / b.size
    return fractions, mean


def resolve_precision(precision, device):
    """``'bf16'`` or ``'float32'`` for training: ``'auto'`` is bf16 on CUDA devices that
    support it and on CPUs with native bf16 (``avx512_bf16`` or ``amx_bf16`` in
    ``/proc/cpuinfo``), float32 elsewhere.

    Examples
    --------
    >>> import torch
    >>> resolve_precision("float32", torch.device("cpu")), resolve_precision("bf16", torch.device("cpu"))
    ('float32', 'bf16')
    """
    if precision not in ("auto", "bf16", "float32"):
        raise ValueError(f"precision must be auto, bf16 or float32, got {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "float32"
    if device.type == "cpu":
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return "float32"
        return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"
    return "float32"


def _augment(tensors, rng):
    """The same random symmetry of the square applied to every tensor."""
    k, flip = int(rng.integers(4)), bool(rng.integers(2))
    out = [torch.rot90(t, k, dims=(-2, -1)) for t in tensors]
    return [torch.flip(t, dims=(-1,)) for t in out] if flip else out


def _inference_card(overlap=RECEPTIVE_FIELD_OVERLAP):
    """The card keys `Predictor` needs, as the saved card declares them (the normaliser with
    the version of its arithmetic the network was trained on)."""
    normaliser = dict(NORMALISER, version=NORMALISER_VERSIONS[NORMALISER["name"]])
    return {"task": MODEL_NAME, "outputs": list(CLASSES), "normaliser": normaliser, "calibration_kind": "none",
            "receptive_field_overlap": overlap}


def predict_logits(model, raw_images, device, card=None):
    """Logits ``(n, K, s, s)`` of raw tiles through `Predictor` (the inference path).

    Examples
    --------
    >>> from glue_astrodl.core.device import resolve_device
    >>> images, _ = make_set(2, 32, seed=0, raw=True)
    >>> net = ContaminantNet(n_classes=K, widths=(4, 4, 4, 4, 4)).eval()
    >>> predict_logits(net, images, resolve_device("cpu")).shape  # normalised and tiled as at inference
    (2, 14, 32, 32)
    """
    return Predictor(card or _inference_card(), model, device).logits(raw_images[:, 0])


def _pixels(masks, max_pixels, seed, keep=None):
    """Random (not strided: strides miss columns) pixel subset of a set, for fitting, of the
    pixels in ``keep`` (default: all)."""
    n = masks.shape[0] * masks.shape[-2] * masks.shape[-1]
    if keep is not None:
        kept = np.flatnonzero(keep)
        return kept if kept.size <= max_pixels else np.sort(np.random.default_rng(seed).choice(kept, max_pixels,
                                                                                               replace=False))
    if n <= max_pixels:
        return slice(None)
    return np.sort(np.random.default_rng(seed).choice(n, max_pixels, replace=False))


def calibrate(logits, bits, max_pixels=4_000_000, seed=0, keep=None):
    """Per-class Platt ``(a, b)``, class fractions (the calibrated priors) and MCC thresholds.

    Thresholds are MCC-optimal on this set after moving the calibrated probabilities to
    `DEFAULT_PRIORS`. ``keep``: the pixels fitted (``(n, s, s)`` bool; a real frame's own
    contaminants are left out).

    Examples
    --------
    >>> import numpy as np
    >>> images, bits = make_set(4, 32, seed=0, raw=True)
    >>> masks = unpack_masks(bits).numpy()
    >>> logits = 2.0 * masks - 1.0 + np.random.default_rng(0).normal(0.0, 1.0, masks.shape)  # a fake net
    >>> scales, priors, thresholds = calibrate(logits, bits)
    >>> a, b = scales["BG"]  # Platt scaling of the class's logits
    >>> round(a), round(priors["BG"], 3), 0.0 < thresholds["BG"] < 1.0  # slope 2: the fake net's log-odds
    (2, 0.492, True)
    """
    masks = unpack_masks(bits).numpy().astype(bool)
    pick = _pixels(masks[:, 0], max_pixels, seed, keep)
    scales, priors, thresholds = {}, {}, {}
    kept = slice(None) if keep is None else np.asarray(keep, bool).ravel()
    for k, name in enumerate(CLASSES):
        priors[name] = float(np.clip(masks[:, k].ravel()[kept].mean(), 1e-6, 1 - 1e-6))
        y, z = masks[:, k].ravel()[pick], logits[:, k].ravel()[pick]
        if y.all() or not y.any():
            continue
        a, b = fit_platt(y, z)
        scales[name] = [a, b]
        p = prior_shift_sigmoid(1.0 / (1.0 + np.exp(-(a * z + b))), priors[name], DEFAULT_PRIORS[name])
        thresholds[name] = float(mcc_optimal_threshold(y, p)[0])
    return scales, priors, thresholds


def _held_out_classes(logits, bits, scales, priors, max_pixels, seed, keep=None):
    """``(name, labels, logits, probabilities)`` per evaluable class of a held-out set (its
    ``keep`` pixels); the probabilities are calibrated and corrected to the set's true class
    fraction."""
    masks = unpack_masks(bits).numpy().astype(bool)
    pick = _pixels(masks[:, 0], max_pixels, seed, keep)
    for k, name in enumerate(CLASSES):
        y, z = masks[:, k].ravel()[pick], logits[:, k].ravel()[pick]
        if y.all() or not y.any() or name not in scales:
            continue
        a, b = scales[name]
        p = prior_shift_sigmoid(1.0 / (1.0 + np.exp(-(a * z + b))), priors[name], np.clip(y.mean(), 1e-6, 1 - 1e-6))
        yield name, y, z, p


def evaluate(logits, bits, scales, priors, max_pixels=8_000_000, seed=1, keep=None):
    """Held-out ROC AUC per class and ECE after correcting to the set's true fractions
    (``keep``: the pixels scored).

    Examples
    --------
    >>> import numpy as np
    >>> images, bits = make_set(4, 32, seed=0, raw=True)
    >>> masks = unpack_masks(bits).numpy()
    >>> logits = 2.0 * masks - 1.0 + np.random.default_rng(0).normal(0.0, 1.0, masks.shape)  # a fake net
    >>> scales, priors, _ = calibrate(logits, bits)
    >>> metrics = evaluate(logits, bits, scales, priors)
    >>> sorted(metrics), metrics["auc"]["BG"] > 0.9
    (['auc', 'ece'], True)
    """
    metrics = {"auc": {}, "ece": {}}
    for name, y, z, p in _held_out_classes(logits, bits, scales, priors, max_pixels, seed, keep):
        metrics["auc"][name] = round(float(roc_auc(y, z)), 5)
        metrics["ece"][name] = round(float(expected_calibration_error(y, p)), 5)
    return metrics


def plot_held_out(logits, bits, scales, priors, path, max_pixels=8_000_000, seed=1):
    """Figure of a held-out set, saved to ``path``: ROC curves of every class (log FPR) and
    one reliability diagram per class after correction to the set's true fractions.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> images, bits = make_set(4, 32, seed=0, raw=True)
    >>> masks = unpack_masks(bits).numpy()
    >>> logits = 2.0 * masks - 1.0 + np.random.default_rng(0).normal(0.0, 1.0, masks.shape)  # a fake net
    >>> scales, priors, _ = calibrate(logits, bits)
    >>> path = plot_held_out(logits, bits, scales, priors, Path(tempfile.mkdtemp()) / "held_out.png")
    >>> path.read_bytes()[1:4]
    b'PNG'
    """
    from matplotlib.figure import Figure  # no pyplot: no backend or global state touched

    fig = Figure(figsize=(13, 13), layout="constrained")
    axes = fig.subplots(4, 4)
    roc, grid = axes.flat[0], np.logspace(-6, 0, 121)
    classes = _held_out_classes(logits, bits, scales, priors, max_pixels, seed)
    for i, (ax, (name, y, z, p)) in enumerate(zip(axes.flat[1:], classes)):
        roc.plot(grid, tpr_at_fpr(y, z, grid), ls="-" if i < 10 else "--", label=f"{name} {roc_auc(y, z):.3f}")
        plot_reliability(reliability_curve(y, p, n_bins=10), ax=ax).get_legend().remove()
        ax.set_title(f"{name}: ECE {expected_calibration_error(y, p):.4f}, {int(y.sum())} px")
    roc.set(xscale="log", xlim=(1e-6, 1), ylim=(0, 1.01), title="ROC (AUC in legend)",
            xlabel="false-positive rate", ylabel="true-positive rate")
    roc.legend(fontsize=7, loc="lower right")
    for ax in axes.flat[1 + len(roc.lines):]:
        ax.axis("off")
    fig.savefig(path, dpi=80)
    return path


def evaluate_saved(model="contaminants", n_val=150, val_tile=256, device=None, plot=None, real=False):
    """Re-run a saved model's held-out test (its card's seed) with the current code:
    returns the metrics, as the card records them (``real``: with ``real_backgrounds``, the
    held-out real units); ``plot``: path of `plot_held_out`.

    Examples
    --------
    >>> metrics = evaluate_saved("contaminants", n_val=2, val_tile=64)  # the card's run uses n_val=150, 256 px
    >>> sorted(metrics), 0.0 <= metrics["auc"]["BG"] <= 1.0  # two tiles need not hold every class
    (['auc', 'ece'], True)
    """
    net, card = load_model(model, architectures=ARCHITECTURES)
    dev = resolve_device(device)
    images, bits = make_set(n_val, val_tile, card["seed"] + TEST_SEED_OFFSET, raw=True)
    logits = predict_logits(net.to(dev), images, dev, card)
    if plot is not None:
        plot_held_out(logits, bits, card["calibration"], card["training_priors"], plot)
    metrics = evaluate(logits, bits, card["calibration"], card["training_priors"])
    if real:
        z, b, keep = _real_held_out(net, dev, "test", card["seed"] + TEST_SEED_OFFSET, val_tile, rounds=3)
        metrics["real_backgrounds"] = dict(evaluate(z, b, card["calibration"], card["training_priors"], keep=keep),
                                           tiles=len(z))
    return metrics


def boosted_config(boost):
    """Tile-generator config with rare classes drawn more often: ``{class: factor}``
    multiplies the class's presence probability (at most 0.9) and its counts per tile.

    Examples
    --------
    >>> config = boosted_config({"TRL": 2.0, "SP": 10.0})
    >>> config["presence"]["TRL"], config["presence"]["SP"], config["tile_counts"]["TRL"]  # presence at most 0.9
    (0.6, 0.9, 2.0)
    """
    from ..sim.contaminants import DEFAULT_PRESENCE, TILE_COUNTS

    presence, counts = dict(DEFAULT_PRESENCE), dict(TILE_COUNTS)
    for name, factor in boost.items():
        presence[name] = min(0.9, presence[name] * factor)
        if name in counts:
            counts[name] *= factor
    return {"presence": presence, "tile_counts": counts}


def _training_data(n_train, tile, seed, gradient, real_fraction, n_real_batch, n_real, real_ids, frames,
                   calibration="sim+real"):
    """The card's record of the training data: which frames were used for what (``real_fraction``:
    the share of each batch actually drawn from real backgrounds)."""
    from ..sim.real_backgrounds import REAL_BACKGROUND_VERSION

    held_out = (f"calibration and test: simulated tiles of seeds seed + {CALIBRATION_SEED_OFFSET} and seed + "
                f"{TEST_SEED_OFFSET}")
    if n_real_batch:
        held_out += "; with real backgrounds, "
        if calibration == "sim+real":
            held_out += "the calibration adds the training units with fresh injections (2 rounds) and "
        held_out += ("metrics.real_backgrounds scores the held-out units (3 rounds), each whole frame through the "
                     "network, cut into tiles, its own contaminants left out")
    return {
        "simulated": {"tiles": n_train, "tile": tile, "seed": seed, "generator": CONTAMINANT_VERSION,
                      "sky_gradient_fraction": gradient},
        "real_backgrounds": {"batch_fraction": real_fraction, "tiles": n_real if n_real_batch else 0,
                             "version": REAL_BACKGROUND_VERSION,
                             "train_frames": real_ids,
                             "held_out_frames": [f["id"] for f in frames("test")],
                             "unused_train_frames": sorted({f["id"] for f in frames("train")} - set(real_ids))},
        "held_out_sets": held_out,
    }


def _real_held_out(model, device, split, seed, size, rounds):
    """``(logits, bits, keep)`` of `real_frame_sets.injected_frames` of ``split``: whole units
    through the network, cut into ``size`` tiles; ``keep``: not the units' own contaminants."""
    from .real_frame_sets import frame_logit_tiles, injected_frames

    z, masks, ignore = frame_logit_tiles(Predictor(_inference_card(), model, device),
                                         injected_frames(split, seed, rounds=rounds), size)
    return z, pack_masks(masks), ~ignore


def _join(*sets):
    return tuple(np.concatenate(parts) for parts in zip(*sets))


def _save_checkpoint(path, state):
    """Write a training checkpoint atomically (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _run_key(**kwargs):
    """What a checkpoint must agree on to be resumed (the schedule and the data)."""
    return json.dumps(kwargs, sort_keys=True, default=str)


def train_contaminants(steps=16000, batch=16, tile=128, n_train=16000, n_val=150, val_tile=256, seed=0,
                       lr=3e-3, device=None, out=None, widths=(12, 24, 32, 48, 64), init=None, boost=None,
                       progress=True, log=print, precision="float32", real_fraction=0.0, n_real=None,
                       gradient=0.0, cache_dir=None, checkpoint=None, checkpoint_every=0, resume=False,
                       stop_after=None, calibration="sim+real"):
    """Train, calibrate, evaluate, and save (when ``out`` is given); returns ``(card, model)``.

    ``init``: a saved model (``.safetensors`` + card) to fine-tune instead of starting from
    random weights; ``boost``: ``{class: factor}`` for the training pool (`boosted_config`).
    The held-out calibration and test sets always come from the default generator.

    ``precision``: 'float32', 'bf16' (autocast; the loss in float32) or 'auto'
    (`resolve_precision`). ``real_fraction``: the share of each batch drawn from a pool of
    ``n_real`` real-background tiles (`make_real_set`, train frames only; default
    ``n_train * real_fraction``), whose ignore masks weigh 0 in the loss. ``gradient``: the
    fraction of simulated tiles given a smooth sky gradient (`make_set`). ``cache_dir``: keep
    the tile pools there as compressed shards (`cached_set`), keyed by generator version,
    seed, size and options. ``checkpoint``: a path where model, optimiser, scheduler, step and
    random states are written every ``checkpoint_every`` steps (and at ``stop_after``);
    ``resume=True`` continues from it on the same schedule (it must be the same run);
    ``stop_after``: stop after this many steps in all, returning ``(None, model)`` -- a long
    schedule split over several runs.
    ``calibration``: 'sim+real' fits the Platt scaling and thresholds on the simulated
    calibration tiles plus the train units with fresh injections (when real backgrounds are
    used), 'sim' on the simulated tiles alone (the units' own cosmic rays that L.A.Cosmic
    misses count as negatives there, and pulled the CR threshold up: GMOS recall 79% vs 90%).

    Examples
    --------
    >>> card, model = train_contaminants(steps=16000, seed=0, out="weights/contaminants")  # doctest: +SKIP
    >>> card["metrics"]["auc"]["CR"]  # doctest: +SKIP
    """
    from .. import __version__
    from ..sim.real_backgrounds import REAL_BACKGROUND_VERSION, frames

    if calibration not in ("sim", "sim+real"):  # before hours of training, not after
        raise ValueError(f"calibration must be 'sim' or 'sim+real', got {calibration!r}")
    if tile < MIN_TILE:
        log(f"warning: tiles of {tile} px leave the context block (1/16 resolution, dilation up to 8) mostly on "
            f"padding; a model trained so does not carry over to frames (use --tile {MIN_TILE} or more)")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    t0 = time.time()
    config = boosted_config(boost) if boost else None
    sim_key = dict(version=CONTAMINANT_VERSION, normaliser=NORMALISER, seed=seed, n=n_train, size=tile, config=config,
                   gradient=gradient, gradient_frames=[1, 16] if gradient else None)
    images, bits = cached_set("sim", cache_dir, sim_key,
                              lambda: make_set(n_train, tile, seed, config=config, gradient=gradient))
    log(f"simulated {n_train} training tiles in {time.time() - t0:.0f} s")
    real_fraction = float(real_fraction)
    if not 0.0 <= real_fraction < 1.0:
        raise ValueError(f"real_fraction must be in [0, 1), got {real_fraction}")
    n_real_batch = int(round(batch * real_fraction))
    real = None
    if n_real_batch:
        n_real = int(n_real or max(batch, round(n_train * real_fraction)))
        real_key = dict(version=REAL_BACKGROUND_VERSION, generator=CONTAMINANT_VERSION, normaliser=NORMALISER,
                        seed=seed, n=n_real, size=tile, config=config)
        real = cached_set("real", cache_dir, real_key, lambda: make_real_set(n_real, tile, seed, config=config))
        fractions, weight_mean = _pool_statistics(None, pools=[(bits, 1.0 - n_real_batch / batch),
                                                               (real[1], n_real_batch / batch)])
        log(f"{n_real} real-background tiles from {sorted(set(real[3].tolist()))} ({time.time() - t0:.0f} s)")
    else:
        fractions, weight_mean = _pool_statistics(bits)

    if init is not None:
        model, init_card = load_model(init, architectures=ARCHITECTURES)
        widths = init_card.arch_kwargs["widths"]
        model = model.to(dev)
    else:
        model = ContaminantNet(n_classes=K, widths=widths).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    run_key = _run_key(steps=steps, batch=batch, tile=tile, n_train=n_train, seed=seed, lr=lr, widths=list(widths),
                       init=str(init), boost=boost, precision=prec, real_fraction=real_fraction, n_real=n_real,
                       gradient=gradient)
    losses, start = [], 0
    if resume:
        if checkpoint is None or not Path(checkpoint).is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint}")
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if state["run"] != run_key:
            raise ValueError(f"checkpoint {checkpoint} belongs to another run: {state['run']}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        losses, start = list(state["losses"]), int(state["step"])
        log(f"resumed {checkpoint} at step {start}/{steps}")
    end = steps if stop_after is None else min(steps, int(stop_after))

    def save(step):
        _save_checkpoint(checkpoint, {"run": run_key, "step": step, "model": model.state_dict(),
                                      "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                      "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                                      "losses": losses})

    model.train()
    for step in tqdm(range(start, end), desc="training", disable=not progress, initial=start, total=steps):
        idx = np.sort(rng.integers(0, n_train, batch - n_real_batch))
        y = unpack_masks(bits[idx])
        x = torch.from_numpy(images[idx].astype(np.float32))
        ignore = torch.zeros(y.shape[0], tile, tile, dtype=torch.bool)
        if n_real_batch:
            ridx = np.sort(rng.integers(0, len(real[0]), n_real_batch))
            x = torch.cat([x, torch.from_numpy(real[0][ridx].astype(np.float32))])
            y = torch.cat([y, unpack_masks(real[1][ridx])])
            ignore = torch.cat([ignore, torch.from_numpy(real[2][ridx])])
        w = loss_weights(y, fractions, weight_mean, ignore)
        x, y, w = (t.to(dev) for t in _augment([x, y, w], rng))
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=prec == "bf16"):
            logits = model(x)
        loss = (F.binary_cross_entropy_with_logits(logits.float(), y, reduction="none") * w[:, None]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress and (step + 1) % max(1, steps // 40) == 0:
            log(f"step {step + 1}/{steps} loss {np.mean(losses[-100:]):.4f} ({time.time() - t0:.0f} s)")
        if checkpoint is not None and ((checkpoint_every and (step + 1) % checkpoint_every == 0) or step + 1 == end):
            save(step + 1)
    if end < steps:
        log(f"stopped after step {end}/{steps}; continue with --resume")
        model.cpu().eval()
        return None, model
    real_ids = sorted(set(real[3].tolist())) if real is not None else []
    del images, bits, real

    cal_images, cal_bits = make_set(n_val, val_tile, seed + CALIBRATION_SEED_OFFSET, raw=True)
    cal = (predict_logits(model, cal_images, dev), cal_bits, np.ones(cal_bits.shape, bool))
    del cal_images
    if n_real_batch and calibration == "sim+real":  # also real backgrounds: training units, fresh injections
        cal = _join(cal, _real_held_out(model, dev, "train", seed + CALIBRATION_SEED_OFFSET, val_tile, rounds=2))
    scales, priors, thresholds = calibrate(cal[0], cal[1], keep=cal[2])
    del cal
    test_images, test_bits = make_set(n_val, val_tile, seed + TEST_SEED_OFFSET, raw=True)
    metrics = evaluate(predict_logits(model, test_images, dev), test_bits, scales, priors)
    del test_images
    if n_real_batch:  # held-out real units (never cut for training), injected contaminants
        z, b, keep = _real_held_out(model, dev, "test", seed + TEST_SEED_OFFSET, val_tile, rounds=3)
        metrics["real_backgrounds"] = dict(evaluate(z, b, scales, priors, keep=keep), tiles=len(z))
    metrics["train_loss_first_last"] = [round(float(np.mean(losses[:20])), 5), round(float(np.mean(losses[-20:])), 5)]
    command = (f"python -m glue_astrodl.train contaminants --steps {steps} --batch {batch} --tile {tile} "
               f"--n-train {n_train} --n-val {n_val} --lr {lr} --seed {seed}")
    if prec != "float32":
        command += f" --precision {prec}"
    if n_real_batch:
        command += f" --real-fraction {real_fraction:g} --n-real {n_real}"
    if gradient:
        command += f" --gradient {gradient:g}"
    if calibration != "sim+real":
        command += f" --calibration {calibration}"
    if boost:
        command += " --boost " + ",".join(f"{c}={f:g}" for c, f in boost.items())
    if init is not None:  # the whole recipe: the run that made ``init``, then this one
        stem = str(init).removesuffix(".safetensors")
        command = f"{init_card['training_command']} --out {stem} && {command} --init {stem}.safetensors"
    card = {
        "name": MODEL_NAME,
        "version": "1.2",
        "description": "14-class contaminant segmentation (MaxiMask taxonomy), trained on simulations",
        "architecture": "contaminant-unet",
        "arch_kwargs": {"n_classes": K, "in_channels": 1, "widths": list(widths)},
        "outputs": list(CLASSES),
        "normalisation": ("asinh((x - level) / noise); level: sky mode, noise: MAD of horizontal pixel differences "
                          "/ sqrt 2, both of the whole frame (core.normalise.robust_level_noise)"),
        **_inference_card(),
        "calibration_kind": "platt",
        "calibration": scales,
        "training_priors": priors,
        "generator_fractions": {c: float(f) for c, f in zip(CLASSES, fractions)},
        "default_priors": dict(DEFAULT_PRIORS),
        "thresholds": thresholds,
        "metrics": metrics,
        "training_command": command,
        "seed": seed,
        "precision": prec,
        "training_data": _training_data(n_train, tile, seed, gradient, n_real_batch / batch, n_real_batch, n_real,
                                        real_ids, frames, calibration),
        "data_version": CONTAMINANT_VERSION,
        "package_version": __version__,
        "train_seconds": round(time.time() - t0),
    }
    model.cpu().eval()
    if out is not None:
        card = save_model(model, out, card, architectures=ARCHITECTURES).data
        log(f"wrote {out}.safetensors and {out}.json")
    log(json.dumps(metrics, indent=1))
    return card, model
