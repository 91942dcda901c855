"""Weights registry: find, verify and load trained models; save them for the training code.

A model is two files side by side, ``<name>.safetensors`` (the state dict; never pickle)
and ``<name>.json`` (its *model card*, a JSON object). Shipped models live in the
package directory ``glue_astrodl/weights``; more directories can be listed in the
environment variable ``ASTRODL_WEIGHTS_PATH`` (``os.pathsep``-separated). They are
searched in that order and the first match wins.

Required card keys:

``name``            model name (normally the file stem)
``version``         model version (string, e.g. ``"1.0.0"``)
``architecture``    name registered with ``glue_astrodl.models.registry.register_architecture``
``arch_kwargs``     dict of keyword arguments for the architecture's constructor
``outputs``         list of output / class names
``weights_sha256``  sha256 hex digest of the ``.safetensors`` file (checked before loading)

Recommended keys (not required): ``description``, ``normalisation`` (how inputs are
scaled), ``training_priors`` (simulation/prior settings), ``thresholds`` (suggested
decision thresholds), ``training_command``, ``seed``, ``data_version``, ``metrics``
(validation scores), ``created`` (ISO 8601 UTC; ``save_model`` fills it if absent). Where
present, ``description`` must be a string and ``training_priors``, ``thresholds`` and
``metrics`` objects.

Every problem with a model file or card raises ``BadInputError`` with a one-line message
naming the file.
"""

import datetime
import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from glue_astrodl.core.atomic import atomic_path
from glue_astrodl.core.errors import BadInputError

__all__ = [
    "ENV_VAR",
    "RECOMMENDED_KEYS",
    "REQUIRED_KEYS",
    "ModelCard",
    "file_sha256",
    "find_model",
    "list_models",
    "load_model",
    "save_model",
    "weights_dirs",
]

ENV_VAR = "ASTRODL_WEIGHTS_PATH"
REQUIRED_KEYS = ("name", "version", "architecture", "arch_kwargs", "outputs", "weights_sha256")
RECOMMENDED_KEYS = (
    "description",
    "normalisation",
    "training_priors",
    "thresholds",
    "training_command",
    "seed",
    "data_version",
    "metrics",
    "created",
)
#: Types of the recommended keys that are read (``astrodl models``, the tasks), checked where present.
_RECOMMENDED_TYPES = (("description", str, "a string"), ("training_priors", dict, "an object"),
                      ("thresholds", dict, "an object"), ("metrics", dict, "an object"))
WEIGHTS_SUFFIX = ".safetensors"
CARD_SUFFIX = ".json"
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_CHUNK = 1 << 20


def _bad(msg):
    """``BadInputError`` with the message collapsed onto one line."""
    return BadInputError(" ".join(str(msg).split()))


def _validate(data, where):
    """Check required keys and their types; raise ``BadInputError`` naming ``where``."""
    if not isinstance(data, dict):
        raise _bad(f"{where}: model card must be a JSON object, got {type(data).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise _bad(f"{where}: model card is missing required key(s): {', '.join(missing)}")
    checks = (
        ("name", isinstance(data["name"], str) and data["name"] != "", "a non-empty string"),
        ("version", isinstance(data["version"], (str, int)) and not isinstance(data["version"], bool),
         "a string"),
        ("architecture", isinstance(data["architecture"], str) and data["architecture"] != "",
         "a non-empty string"),
        ("arch_kwargs", isinstance(data["arch_kwargs"], dict), "an object"),
        ("outputs", isinstance(data["outputs"], list) and bool(data["outputs"])
         and all(isinstance(o, str) and o for o in data["outputs"]) and len(set(data["outputs"])) == len(data["outputs"]),
         "a non-empty list of distinct names"),
        ("weights_sha256", isinstance(data["weights_sha256"], str) and bool(_SHA256_RE.match(data["weights_sha256"])),
         "a 64-digit sha256 hex string"),
    )
    for key, ok, what in checks:
        if not ok:
            raise _bad(f"{where}: model card key {key!r} must be {what}, got {data[key]!r}")
    for key, kind, what in _RECOMMENDED_TYPES:
        if key in data and not isinstance(data[key], kind):
            raise _bad(f"{where}: model card key {key!r} must be {what}, got {data[key]!r}")


@dataclass(frozen=True, eq=False)
class ModelCard:
    """A validated model card: attribute access for the required keys, ``.get`` for the rest.

    ``data`` is the full card dict, ``path`` the ``.json`` it came from (``None`` for a
    card given as a dict) and ``weights_path`` the ``.safetensors`` file it describes,
    where known.

    Examples
    --------
    >>> card = ModelCard({"name": "demo", "version": "1.0", "architecture": "contaminant-unet",
    ...                   "arch_kwargs": {"n_classes": 2}, "outputs": ["CR", "BG"],
    ...                   "weights_sha256": 64 * "0", "thresholds": {"CR": 0.5}})
    >>> card.name, card.outputs, card.get("thresholds"), card.get("metrics", {})
    ('demo', ['CR', 'BG'], {'CR': 0.5}, {})
    >>> ModelCard({"name": "demo"})
    Traceback (most recent call last):
    ...
    glue_astrodl.core.errors.BadInputError: model card: model card is missing required key(s): version, architecture, arch_kwargs, outputs, weights_sha256
    """

    data: dict
    path: Path = None
    weights_path: Path = field(default=None)

    def __post_init__(self):
        _validate(self.data, self.path or "model card")

    @classmethod
    def from_file(cls, path, weights_path=None):
        """Read and validate a ``.json`` card; ``weights_path`` defaults to the file beside it."""
        path = Path(path)
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            raise _bad(f"{path}: model card not found") from None
        except (OSError, UnicodeDecodeError) as err:
            raise _bad(f"{path}: cannot read model card ({err})") from None
        except json.JSONDecodeError as err:
            raise _bad(f"{path}: model card is not valid JSON ({err})") from None
        if weights_path is None:
            weights_path = path.with_suffix(WEIGHTS_SUFFIX)
        return cls(data, path, Path(weights_path))

    name = property(lambda self: self.data["name"])
    version = property(lambda self: self.data["version"])
    architecture = property(lambda self: self.data["architecture"])
    arch_kwargs = property(lambda self: self.data["arch_kwargs"])
    outputs = property(lambda self: self.data["outputs"])
    weights_sha256 = property(lambda self: self.data["weights_sha256"].lower())

    def get(self, key, default=None):
        """Card value for ``key`` (any key, required or not), else ``default``."""
        return self.data.get(key, default)

    def __getitem__(self, key):
        return self.data[key]

    def __contains__(self, key):
        return key in self.data

    def __repr__(self):
        return f"ModelCard(name={self.name!r}, version={self.version!r}, path={str(self.path) if self.path else None!r})"


def weights_dirs():
    """Directories searched for models: the shipped one, then those in ``$ASTRODL_WEIGHTS_PATH``.

    Examples
    --------
    >>> weights_dirs()[0].name  # the shipped models; then $ASTRODL_WEIGHTS_PATH
    'weights'
    """
    dirs = [Path(__file__).resolve().parent.parent / "weights"]
    for entry in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if entry.strip():
            dirs.append(Path(entry.strip()).expanduser())
    seen, unique = set(), []
    for d in dirs:
        key = os.path.normcase(os.path.abspath(d))
        if key not in seen:
            seen.add(key)
            unique.append(d)
    return unique


def list_models():
    """``ModelCard`` for every ``*.json`` card in ``weights_dirs()`` (shipped first).

    Unreadable or invalid cards are skipped with a warning.

    Examples
    --------
    >>> "contaminants" in [card.name for card in list_models()]
    True
    """
    cards = []
    for d in weights_dirs():
        if not d.is_dir():
            continue
        for path in sorted(d.glob(f"*{CARD_SUFFIX}")):
            try:
                cards.append(ModelCard.from_file(path))
            except BadInputError as err:
                warnings.warn(f"skipping model card: {err}", stacklevel=2)
    return cards


def find_model(name):
    """Card of the model called ``name`` (file stem or card ``name``; first match wins).

    Examples
    --------
    >>> card = find_model("contaminants")
    >>> card.architecture, card.outputs[:3], card.weights_path.name
    ('contaminant-unet', ['CR', 'HCL', 'DCL'], 'contaminants.safetensors')
    """
    if not isinstance(name, str):
        raise _bad(f"model name must be a string, got {name!r}")
    for d in weights_dirs():
        path = d / f"{name}{CARD_SUFFIX}"
        if path.is_file():
            return ModelCard.from_file(path)
    cards = list_models()
    for card in cards:
        if card.name == name:
            return card
    available = ", ".join(sorted({c.name for c in cards})) or "none installed"
    raise _bad(f"unknown model {name!r} (available: {available}; set {ENV_VAR} to add directories)")


def file_sha256(path):
    """sha256 hex digest of a file, read in 1 MB chunks.

    Examples
    --------
    >>> card = find_model("contaminants")
    >>> file_sha256(card.weights_path) == card.weights_sha256
    True
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _looks_like_path(s):
    return isinstance(s, os.PathLike) or (
        isinstance(s, str)
        and (s.endswith((WEIGHTS_SUFFIX, CARD_SUFFIX)) or os.sep in s or (os.altsep or os.sep) in s)
    )


def _resolve(name_or_path, card):
    """Return ``(weights_path, ModelCard)`` for a model name or a weights/card path."""
    if card is None and not _looks_like_path(name_or_path):
        card = find_model(name_or_path)
        return card.weights_path, card

    path = Path(name_or_path)
    if path.suffix == CARD_SUFFIX and card is None:  # a card path: weights beside it
        card = ModelCard.from_file(path)
        return card.weights_path, card
    if not path.is_file():
        raise _bad(f"{path}: weights file not found")
    if card is None:
        card_path = path.with_suffix(CARD_SUFFIX)
        if not card_path.is_file():
            raise _bad(f"{path}: no model card {card_path.name} beside it (pass card=)")
        card = ModelCard.from_file(card_path, weights_path=path)
    elif isinstance(card, ModelCard):
        card = ModelCard(card.data, card.path, path)
    elif isinstance(card, dict):
        card = ModelCard(dict(card), None, path)
    else:
        card = ModelCard.from_file(card, weights_path=path)
    return path, card


def _state_dict_problems(expected, found):
    """One-line summary of key/shape differences between two ``{key: shape}`` dicts."""

    def names(keys):
        keys = sorted(keys)
        return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")

    parts = []
    missing = expected.keys() - found.keys()
    unexpected = found.keys() - expected.keys()
    if missing:
        parts.append(f"missing keys: {names(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {names(unexpected)}")
    shapes = sorted(k for k in expected.keys() & found.keys() if tuple(expected[k]) != tuple(found[k]))
    if shapes:
        detail = ", ".join(f"{k} {tuple(found[k])} vs model {tuple(expected[k])}" for k in shapes[:3])
        parts.append(f"shape mismatch: {detail}" + (f" (+{len(shapes) - 3} more)" if len(shapes) > 3 else ""))
    return "; ".join(parts)


def _build(card, where, architectures):
    """Instantiate the card's architecture with its ``arch_kwargs``.

    ``architectures`` maps an architecture name to its ``nn.Module`` class (e.g.
    `glue_astrodl.models.registry.ARCHITECTURES`): the registry is handed in, so this
    module imports no model code.
    """
    if architectures is None:
        raise _bad(f"{where}: no architecture registry given (pass architectures=)")
    cls = architectures.get(card.architecture)
    if cls is None:
        known = ", ".join(sorted(architectures)) or "none registered"
        raise _bad(f"{where}: unknown architecture {card.architecture!r} (known: {known})")
    try:
        return cls(**card.arch_kwargs)
    except (TypeError, ValueError) as err:
        raise _bad(f"{where}: cannot build architecture {card.architecture!r} from arch_kwargs "
                   f"{card.arch_kwargs!r} ({err})") from None


def load_model(name_or_path, card=None, device="cpu", dtype=None, architectures=None):
    """Load a model and return ``(model, card)``; the model is in eval mode on ``device``.

    ``name_or_path`` is a model name (searched in ``weights_dirs()``), a ``.safetensors``
    file (its card is ``card`` -- a path, dict or ``ModelCard`` -- or else the ``.json``
    beside it) or a ``.json`` card (weights beside it). The file's sha256 is checked
    against the card before anything is deserialised; weights are read with
    safetensors only and loaded with ``strict=True``.

    Examples
    --------
    >>> from glue_astrodl.models.registry import ARCHITECTURES
    >>> model, card = load_model("contaminants", architectures=ARCHITECTURES)
    >>> type(model).__name__, model.training, card.name
    ('ContaminantNet', False, 'contaminants')
    """
    import safetensors.torch
    import torch

    path, card = _resolve(name_or_path, card)
    if not Path(path).is_file():
        raise _bad(f"{path}: weights file not found (model card {card.path})")
    got = file_sha256(path)
    expected = card.weights_sha256
    if got != expected:
        raise _bad(f"{path}: weights checksum mismatch (expected {expected[:12]}..., got {got[:12]}...); "
                   "the file is corrupt or not the one its model card describes")

    model = _build(card, path, architectures)
    try:
        state = safetensors.torch.load_file(str(path), device="cpu")
    except Exception as err:  # safetensors raises its own SafetensorError / OSError
        raise _bad(f"{path}: not a readable safetensors file ({err})") from None
    problems = _state_dict_problems(
        {k: v.shape for k, v in model.state_dict().items()}, {k: v.shape for k, v in state.items()}
    )
    if problems:
        raise _bad(f"{path}: weights do not fit architecture {card.architecture!r} "
                   f"with arch_kwargs {card.arch_kwargs!r} ({problems})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise _bad(f"{path}: cannot load weights into {card.architecture!r} ({err})") from None
    model.eval()
    if dtype is not None:
        model.to(device=torch.device(device), dtype=dtype)
    else:
        model.to(torch.device(device))
    return model, card


def _base_path(path):
    path = Path(path)
    return path.with_suffix("") if path.suffix in (WEIGHTS_SUFFIX, CARD_SUFFIX) else path


def _unwrap(model):
    """The plain module inside ``torch.compile`` / ``DataParallel`` / DDP wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None and type(model).__name__ in ("DataParallel", "DistributedDataParallel"):
            inner = getattr(model, "module", None)
        if inner is None:
            return model
        model = inner


def save_model(model, path, card, architectures=None):
    """Write ``<path>.safetensors`` and ``<path>.json`` atomically; return the ``ModelCard``.

    ``card`` is a dict (or ``ModelCard``) with every required key except
    ``weights_sha256``, which is computed here; ``architecture`` defaults to the
    registered name of ``type(model)``. The card is checked by rebuilding the
    architecture from ``arch_kwargs`` and comparing state-dict shapes, so a saved model
    always loads. ``created`` is filled (UTC, ISO 8601) when absent.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from glue_astrodl.models.contaminant_net import ContaminantNet
    >>> from glue_astrodl.models.registry import ARCHITECTURES
    >>> net = ContaminantNet(n_classes=2, widths=(4, 4, 4, 4, 4))
    >>> base = Path(tempfile.mkdtemp()) / "tiny"
    >>> card = save_model(net, base, {"name": "tiny", "version": "0.1", "outputs": ["CR", "BG"],
    ...                               "arch_kwargs": {"n_classes": 2, "widths": [4, 4, 4, 4, 4]}},
    ...                   architectures=ARCHITECTURES)
    >>> card.architecture, sorted(p.name for p in base.parent.iterdir())
    ('contaminant-unet', ['tiny.json', 'tiny.safetensors'])
    >>> model, card = load_model(base.with_suffix(".safetensors"), architectures=ARCHITECTURES)
    >>> card.outputs
    ['CR', 'BG']
    """
    import safetensors.torch

    model = _unwrap(model)
    base = _base_path(path)
    weights_path = base.parent / f"{base.name}{WEIGHTS_SUFFIX}"
    card_path = base.parent / f"{base.name}{CARD_SUFFIX}"

    data = dict(card.data if isinstance(card, ModelCard) else card)
    if "architecture" not in data:
        data["architecture"] = next((n for n, c in (architectures or {}).items() if c is type(model)), None)
    data.setdefault("created", datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    data["weights_sha256"] = "0" * 64  # placeholder for validation; replaced below
    _validate(data, card_path)
    try:
        json.dumps(data)
    except (TypeError, ValueError) as err:
        raise _bad(f"{card_path}: model card is not JSON-serialisable ({err})") from None

    fresh = _build(ModelCard(data, card_path), card_path, architectures)
    if type(fresh) is not type(model):
        raise _bad(f"{card_path}: architecture {data['architecture']!r} is {type(fresh).__name__}, "
                   f"but the model is {type(model).__name__}")
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    problems = _state_dict_problems({k: v.shape for k, v in fresh.state_dict().items()},
                                    {k: v.shape for k, v in state.items()})
    if problems:
        raise _bad(f"{card_path}: arch_kwargs {data['arch_kwargs']!r} do not rebuild this model ({problems})")

    metadata = {"format": "pt", "name": str(data["name"]), "version": str(data["version"]),
                "architecture": data["architecture"]}
    with atomic_path(weights_path) as tmp:
        safetensors.torch.save_file(state, str(tmp), metadata=metadata)
        data["weights_sha256"] = file_sha256(tmp)
    with atomic_path(card_path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True, indent=2)
        fh.write("\n")
    return ModelCard(data, card_path, weights_path)
