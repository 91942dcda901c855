"""Train the contaminant segmentation model on simulated tiles.

``python -m glue_astrodl.train contaminants --steps 3000 --seed 0`` trains
`ContaminantNet` on tiles from `glue_astrodl.sim.contaminants`, with per-pixel weights
inversely proportional to the class fractions (smoothed by a 3x3 Gaussian, as MaxiMask
does), evaluates it on a held-out simulated set (different seed), and writes
``weights/contaminants.safetensors`` + ``contaminants.json``. The model card records:

* ``training_priors``: the *effective* class priors the network was trained under, i.e.
  the weighted fraction of positive pixels per class. Dividing them out (Bayesian prior
  shift, `glue_astrodl.core.calibration.prior_shift_sigmoid`) and multiplying in the
  priors of the user's data gives calibrated posteriors.
* ``generator_fractions``: raw pixel fractions of each class in the simulated tiles.
* ``thresholds``: MCC-optimal threshold per class on the held-out set, for the default
  priors; ``metrics``: held-out ROC AUC per class and the expected calibration error after
  prior correction.
"""

import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from tqdm.auto import tqdm

from ..core.calibration import expected_calibration_error, mcc_optimal_threshold, prior_shift_sigmoid, roc_auc
from ..core.device import resolve_device
from ..core.normalise import asinh_stretch, robust_level_noise
from ..core.taxonomy import CLASSES, DEFAULT_PRIORS
from ..core.weights import save_model
from ..models.contaminant_net import ContaminantNet
from ..sim.contaminants import tile_batch

__all__ = ["normalise_image", "make_set", "pixel_weights", "train_contaminants", "evaluate"]

MODEL_NAME = "contaminants"


def normalise_image(image):
    """Model input: ``asinh((x - median) / noise)`` with the frame's global level and noise.

    A global (not local) background keeps bright background, nebulosity and fringes
    visible to the network; they are classes to detect, not sky to remove.
    """
    level, noise = robust_level_noise(image)
    return asinh_stretch(image, level, noise)


def make_set(n, size, seed, chunk=64):
    """``n`` simulated tiles: normalised images (n, 1, s, s) float32, masks (n, 14, s, s) uint8."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, 1, size, size), np.float32)
    masks = np.empty((n, len(CLASSES), size, size), np.uint8)
    for i in range(0, n, chunk):
        k = min(chunk, n - i)
        img, msk = tile_batch(k, size, rng)
        images[i:i + k] = [normalise_image(t) for t in img]
        masks[i:i + k] = msk
    return images, masks


def pixel_weights(masks, fractions, cap=1e3):
    """Per-pixel loss weights: 1 / fraction of the rarest class a pixel belongs to, smoothed.

    ``masks`` (n, K, s, s); returns (n, s, s) float32 with mean 1 over the set.
    """
    inv = (1.0 / np.maximum(fractions, 1.0 / cap)).astype(np.float32)
    w = np.max(masks * inv[None, :, None, None], axis=1)
    w = gaussian_filter(w, sigma=(0, 0.85, 0.85), truncate=1.2)  # 3x3 Gaussian
    return (w / w.mean()).astype(np.float32)


def _augment(x, y, w, rng):
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    out = []
    for t in (x, y, w):
        t = torch.rot90(t, k, dims=(-2, -1))
        out.append(torch.flip(t, dims=(-1,)) if flip else t)
    return out


def evaluate(model, images, masks, training_priors, fractions, device, batch=16):
    """Held-out AUC, MCC thresholds at the default priors and ECE after prior correction."""
    model.eval()
    probs = np.empty(masks.shape, np.float32)
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i:i + batch]).to(device)
            probs[i:i + batch] = torch.sigmoid(model(x)).float().cpu().numpy()
    t_priors = np.array([training_priors[c] for c in CLASSES])
    true_priors = np.array([fractions[c] for c in CLASSES])
    default = np.array([DEFAULT_PRIORS[c] for c in CLASSES])
    calibrated = prior_shift_sigmoid(probs.transpose(1, 0, 2, 3), t_priors, true_priors)
    at_default = prior_shift_sigmoid(probs.transpose(1, 0, 2, 3), t_priors, default)
    metrics, thresholds = {"auc": {}, "ece": {}}, {}
    for k, name in enumerate(CLASSES):
        y = masks[:, k].ravel().astype(bool)
        if y.all() or not y.any():
            continue
        step = max(1, y.size // 4_000_000)  # subsample for speed; still millions of pixels
        metrics["auc"][name] = round(float(roc_auc(y[::step], probs[:, k].ravel()[::step])), 5)
        metrics["ece"][name] = round(float(expected_calibration_error(y[::step], calibrated[k].ravel()[::step])), 5)
        thr, _ = mcc_optimal_threshold(y[::step], at_default[k].ravel()[::step])
        thresholds[name] = float(thr)
    return metrics, thresholds


def train_contaminants(steps=6000, batch=16, tile=128, n_train=8000, n_val=150, val_tile=256, seed=0,
                       lr=3e-3, device=None, out=None, widths=(12, 24, 32, 48, 64), progress=True, log=print):
    """Train, evaluate, and save; returns the model card dict."""
    from .. import __version__
    from ..sim import GENERATOR_VERSION

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = resolve_device(device)
    t0 = time.time()
    images, masks = make_set(n_train, tile, seed)
    fractions = masks.reshape(len(masks), len(CLASSES), -1).mean(axis=(0, 2))
    weights = pixel_weights(masks, fractions)
    weighted = (masks * weights[:, None]).reshape(len(masks), len(CLASSES), -1).sum(axis=(0, 2)) / weights.sum()
    log(f"simulated {n_train} training tiles in {time.time() - t0:.0f} s")

    model = ContaminantNet(n_classes=len(CLASSES), widths=widths).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    losses = []
    model.train()
    for step in tqdm(range(steps), desc="training", disable=not progress):
        idx = rng.integers(0, n_train, batch)
        x, y, w = (torch.from_numpy(a[idx]).to(dev) for a in (images, masks, weights))
        x, y, w = _augment(x, y.float(), w, rng)
        loss = (F.binary_cross_entropy_with_logits(model(x), y, reduction="none") * w[:, None]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress and (step + 1) % max(1, steps // 20) == 0:
            log(f"step {step + 1}/{steps} loss {np.mean(losses[-50:]):.4f}")

    val_images, val_masks = make_set(n_val, val_tile, seed + 1_000_003)
    training_priors = {c: float(p) for c, p in zip(CLASSES, np.clip(weighted, 1e-6, 1 - 1e-6))}
    fraction_map = {c: float(f) for c, f in zip(CLASSES, np.clip(fractions, 1e-6, 1 - 1e-6))}
    metrics, thresholds = evaluate(model, val_images, val_masks, training_priors, fraction_map, dev)
    metrics["train_loss_first_last"] = [round(float(np.mean(losses[:20])), 5), round(float(np.mean(losses[-20:])), 5)]
    card = {
        "name": MODEL_NAME,
        "version": "1.0",
        "description": "14-class contaminant segmentation (MaxiMask taxonomy), trained on simulations",
        "architecture": "contaminant-unet",
        "arch_kwargs": {"n_classes": len(CLASSES), "in_channels": 1, "widths": list(widths)},
        "outputs": list(CLASSES),
        "normalisation": "asinh((x - median) / noise); median and noise (MAD of horizontal pixel differences / sqrt 2) of the whole frame",
        "training_priors": training_priors,
        "generator_fractions": fraction_map,
        "default_priors": dict(DEFAULT_PRIORS),
        "thresholds": thresholds,
        "metrics": metrics,
        "training_command": f"python -m glue_astrodl.train contaminants --steps {steps} --batch {batch} --tile {tile} --n-train {n_train} --seed {seed}",
        "seed": seed,
        "data_version": GENERATOR_VERSION,
        "package_version": __version__,
        "receptive_field_overlap": 64,
        "train_seconds": round(time.time() - t0),
    }
    model.cpu().eval()
    if out is not None:
        card = save_model(model, out, card).data
        log(f"wrote {out}.safetensors and {out}.json")
    log(json.dumps(metrics, indent=1))
    return card, model
