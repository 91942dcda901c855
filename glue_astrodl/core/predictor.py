"""One model card's inference: normalise, tile, calibrate, average over symmetries.

`Predictor` is the only place that turns a card's declarations into computation, and both
the tasks (inference) and the training code (held-out evaluation) use it, so the two
cannot drift apart. A card used for inference declares, besides the weights registry's
required keys (`glue_astrodl.core.weights`):

* ``task``: the task it serves (e.g. ``"contaminants"``);
* ``normaliser``: ``{"name": <one of NORMALISERS>, **params}``;
* ``calibration_kind``: ``"platt"`` (``calibration = {output: [a, b]}`` and
  ``training_priors = {output: prior}`` required) or ``"none"``;
* ``receptive_field_overlap``: tile overlap in pixels (>= the receptive-field radius).

and, for a task's inference, the keys that task reads (`TASK_KEYS`, e.g. the contaminant
task's per-output ``thresholds``; training's held-out evaluation runs before they exist).
`check_card` validates them, and the optional per-output maps (``thresholds``,
``default_priors``) where present, and raises a one-line `BadInputError` naming the card.
"""

import math

import numpy as np

from .errors import BadInputError
from .normalise import NORMALISERS

__all__ = ["CALIBRATION_KINDS", "TASK_KEYS", "Predictor", "check_card", "fit_normaliser"]

CALIBRATION_KINDS = ("platt", "none")
INFERENCE_KEYS = ("task", "outputs", "normaliser", "calibration_kind", "receptive_field_overlap")
#: Card keys each task reads besides `INFERENCE_KEYS`: ``{task: (key, ...)}``.
TASK_KEYS = {"contaminants": ("thresholds",)}
#: Optional ``{output: number}`` maps, checked where present: ``key: (low, high, closed)``.
_OUTPUT_MAPS = {"thresholds": (0.0, 1.0, True), "default_priors": (0.0, 1.0, False)}


def _number(value):
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _where(card):
    return getattr(card, "path", None) or getattr(card, "name", None) or "model card"


def fit_normaliser(spec, image):
    """``(preprocess(tile, window), stats)`` of the normaliser ``spec`` (``{"name": ..., **params}``,
    as a card declares it) fitted to ``image``."""
    spec = dict(spec)
    return NORMALISERS[spec.pop("name")](image, **spec)


def check_card(card, task=None):
    """Validate the inference keys of ``card`` (a `ModelCard`, or a card dict during training)
    and, given ``task``, the keys that task reads (`TASK_KEYS`); returns its data dict.

    Examples
    --------
    >>> from glue_astrodl.core.weights import find_model
    >>> check_card(find_model("contaminants"), task="contaminants")["calibration_kind"]
    'platt'
    """
    data = card.data if hasattr(card, "data") else card
    where = _where(card)

    def bad(text):
        return BadInputError(f"{where}: {text}")

    missing = [k for k in INFERENCE_KEYS if k not in data]
    if missing:
        raise bad(f"model card lacks {', '.join(missing)} (needed for inference)")
    if task is not None and data["task"] != task:
        raise bad(f"model card is for task {data['task']!r}, not {task!r}")
    missing = [k for k in TASK_KEYS.get(task, ()) if k not in data]
    if missing:
        raise bad(f"model card lacks {', '.join(missing)} (needed by task {task!r})")
    outputs = data["outputs"]
    if not (isinstance(outputs, list) and outputs and all(isinstance(o, str) for o in outputs)):
        raise bad(f"outputs must be a non-empty list of names, got {outputs!r}")
    for key, (low, high, closed) in _OUTPUT_MAPS.items():
        if key not in data:
            continue
        values = data[key]
        if not isinstance(values, dict):
            raise bad(f"{key} must be an object ({{output: number}}), got {values!r}")
        for name in outputs:
            value = values.get(name, (low + high) / 2)
            inside = _number(value) and (low <= value <= high if closed else low < value < high)
            if not inside:
                interval = f"[{low:g}, {high:g}]" if closed else f"({low:g}, {high:g})"
                raise bad(f"{key} of {name} must be a number in {interval}, got {value!r}")
    norm = data["normaliser"]
    if not isinstance(norm, dict) or norm.get("name") not in NORMALISERS:
        raise bad(f"normaliser must be {{'name': one of {', '.join(NORMALISERS)}, ...}}, got {norm!r}")
    kind = data["calibration_kind"]
    if kind not in CALIBRATION_KINDS:
        raise bad(f"calibration_kind must be one of {', '.join(CALIBRATION_KINDS)}, got {kind!r}")
    if kind == "platt":
        for key in ("calibration", "training_priors"):
            if not isinstance(data.get(key), dict):
                raise bad(f"calibration_kind 'platt' needs a {key!r} object ({{output: ...}}), got {data.get(key)!r}")
        priors = data["training_priors"]
        for name in outputs:
            pair = data["calibration"].get(name, [1.0, 0.0])
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(_number(v) for v in pair)):
                raise bad(f"calibration of {name} must be [a, b] (two finite numbers), got {pair!r}")
            if not (_number(priors.get(name)) and 0 < priors[name] < 1):
                raise bad(f"training_priors of {name} must be a number in (0, 1), got {priors.get(name)!r}")
    overlap = data["receptive_field_overlap"]
    if not (isinstance(overlap, int) and not isinstance(overlap, bool) and overlap > 0):
        raise bad(f"receptive_field_overlap must be a positive integer, got {overlap!r}")
    return data


class Predictor:
    """Inference of the network ``net`` described by ``card`` (a `ModelCard`).

    Parameters
    ----------
    card : ModelCard or dict
        Validated with `check_card` (``task``: the task it must serve, if given).
    net : torch.nn.Module
        The loaded network (outputs ``card.outputs``, as logits).
    device : str or torch.device
    tta : int
        Test-time augmentation: symmetries of the square averaged (1, 2, 4 or 8).
    precision : {"auto", "bf16", "fp32"}, optional
        The network's precision (`glue_astrodl.core.device.resolve_precision`; None:
        ``$ASTRODL_PRECISION``, else ``auto``, bf16 where the device computes it natively).
        The resolved value is `precision`; the calibration runs in float32 either way.

    Examples
    --------
    >>> import numpy as np
    >>> from glue_astrodl.core.weights import load_model
    >>> from glue_astrodl.models.registry import ARCHITECTURES
    >>> net, card = load_model("contaminants", architectures=ARCHITECTURES)
    >>> pred = Predictor(card, net)
    >>> image = np.random.default_rng(0).normal(100, 5, (128, 128))
    >>> probs, stats = pred.predict(image, channels=["CR"])
    >>> probs.shape
    (1, 128, 128)
    """

    def __init__(self, card, net, device="cpu", tta=1, task=None, precision=None):
        from .device import resolve_precision
        from .symmetry import check_symmetries

        self.data = check_card(card, task)
        self.card, self.net, self.device, self.tta = card, net, device, check_symmetries(tta)
        self._forced = precision is not None and str(precision).lower() != "auto"
        self.precision = resolve_precision(device, precision)

    @property
    def outputs(self):
        return list(self.data["outputs"])

    @property
    def overlap(self):
        return int(self.data["receptive_field_overlap"])

    def normaliser(self, image):
        """``(preprocess(tile, window), stats)`` of the card's normaliser fitted to ``image``."""
        return fit_normaliser(self.data["normaliser"], image)

    def _scaling(self, channels):
        if self.data["calibration_kind"] == "none":
            return [(1.0, 0.0)] * len(channels)
        return [tuple(self.data["calibration"].get(c, (1.0, 0.0))) for c in channels]

    def calibrated(self, channels, priors=None):
        """The module ``tile -> calibrated probabilities of channels``, prior-shifted to
        ``priors`` (``{output: prior}``; the training priors where left out)."""
        from .calibrated_net import CalibratedSigmoid
        from .calibration import prior_shift_logit
        from .symmetry import DihedralMean

        index = [self.outputs.index(c) for c in channels]
        shift = np.zeros(len(channels))
        if priors:
            train = self.data.get("training_priors")
            if not isinstance(train, dict):
                raise BadInputError(f"{_where(self.card)}: model card has no training_priors to shift priors from")
            shift = prior_shift_logit([train[c] for c in channels], [priors.get(c, train[c]) for c in channels])
        folded = _fold_calibration(self.net, index, self._scaling(channels), shift)
        if folded is not None:  # the affine calibration done by the output convolution
            calibrated = _Sigmoid(DihedralMean(folded, self.tta) if self.tta > 1 else folded)
        else:
            logits = DihedralMean(self.net, self.tta) if self.tta > 1 else self.net
            calibrated = CalibratedSigmoid(logits, index, self._scaling(channels), shift)
        # An explicit precision runs under its own autocast; auto is the tiled inference's.
        return _Autocast(calibrated, self.device, self.precision) if self._forced else calibrated

    def predict(self, image, channels=None, priors=None, *, tile=None, batch_size=None, out=None, postprocess=None,
                progress=False, callback=None, desc="inference"):
        """Calibrated probabilities ``(K, H, W)`` of ``channels`` (default: every output) over
        ``image`` in overlapping tiles; returns ``(probabilities, normaliser stats)``.

        ``out`` and ``postprocess`` are passed to `glue_astrodl.core.tiling.tiled_inference`
        (a memory-mapped output; per-tile products such as thresholded masks).
        """
        from .tiling import tiled_inference

        channels = list(channels or self.outputs)
        preprocess, stats = self.normaliser(image)
        tile = max(tile or _default_tile(self.overlap), 4 * self.overlap)
        batch_size = batch_size or (max(1, 8 * 512 ** 2 // tile ** 2) if str(self.device).startswith("cuda") else 1)
        probs = tiled_inference(self.calibrated(channels, priors), image, tile=tile,
                                overlap=self.overlap, batch_size=batch_size, device=self.device,
                                preprocess=preprocess, out=out, postprocess=postprocess, progress=progress,
                                desc=desc, callback=callback)
        return probs, stats

    def logits(self, tiles, batch=16):
        """Raw logits ``(n, K, h, w)`` float32 of ``tiles`` ``(n, h, w)``, each normalised on its
        own as `predict` normalises a frame (training's held-out evaluation)."""
        import torch

        self.net.eval()
        out = np.empty((len(tiles), len(self.outputs)) + tuple(tiles.shape[-2:]), np.float32)
        with torch.inference_mode():
            for i in range(0, len(tiles), batch):
                x = np.stack([self.normaliser(t)[0](np.asarray(t, np.float32)[None], None) for t in tiles[i:i + batch]])
                out[i:i + batch] = self.net(torch.from_numpy(x).to(self.device)).float().cpu().numpy()
        return out


def _default_tile(overlap):
    """The default tile side: 512 px, or for a wide overlap 6.4 times it (rounded up to 16 px),
    so that a tile's two overlaps take under a third of its side.

    Examples
    --------
    >>> _default_tile(64), _default_tile(320)
    (512, 2048)
    """
    return max(512, -(-32 * overlap // 5 // 16) * 16)


def _Autocast(module, device, precision):
    """``module`` run under `glue_astrodl.core.device.autocast` ``(device, precision)``."""
    import torch

    from .device import autocast

    class Autocast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = module  # ``net``: where `glue_astrodl.core.tiling` looks for the model's stride

        def forward(self, x):
            with autocast(device, precision):
                return self.net(x)

    return Autocast()


def _fold_calibration(net, index, scaling, shift):
    """A copy of ``net`` whose 1x1 output convolution ``head`` emits the calibrated,
    prior-shifted logits ``a * logit + b + shift`` of the output channels ``index`` only, so
    that no per-pixel selection or affine pass over the 14 maps of each tile is left; it
    shares every other layer with ``net``. None when ``net`` has no such ``head``."""
    import copy

    import torch

    head = getattr(net, "head", None)
    if not (isinstance(head, torch.nn.Conv2d) and head.kernel_size == (1, 1) and head.groups == 1):
        return None
    a, b = np.asarray(scaling, np.float64).reshape(-1, 2).T
    b = b + np.asarray(shift, np.float64)
    with torch.no_grad():
        weight = head.weight.detach().double()[index] * torch.from_numpy(a)[:, None, None, None]
        bias = head.bias.detach().double()[index] if head.bias is not None else torch.zeros(len(index))
        new = torch.nn.Conv2d(head.in_channels, len(index), 1).to(head.weight.device)
        new.weight.copy_(weight.float())
        new.bias.copy_((bias * torch.from_numpy(a) + torch.from_numpy(b)).float())
    folded = copy.copy(net)
    folded._modules = dict(net._modules)  # a shallow copy that does not change ``net``'s head
    folded.head = _Float32(new)
    return folded


def _Float32(module):
    """``module`` run in float32 even under bf16 autocast (the calibrated logits keep
    float32's resolution; a 1x1 convolution costs little)."""
    import torch

    class Float32(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.module = module

        def forward(self, x):
            with torch.autocast(x.device.type, enabled=False):
                return self.module(x.float())

    return Float32()


def _Sigmoid(module):
    """``x -> sigmoid(module(x))`` in float32."""
    import torch

    class Sigmoid(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = module  # ``net``: where `glue_astrodl.core.tiling` looks for the model's stride

        def forward(self, x):
            return torch.sigmoid(self.net(x).float())

    return Sigmoid()
