"""Weights registry: save/load round trip, checksum verification, card validation."""

import json
import struct

import pytest
import torch
from torch import nn

from glue_astrodl.core.errors import BadInputError
from glue_astrodl.core.weights import (
    REQUIRED_KEYS,
    ModelCard,
    file_sha256,
    list_models,
    load_model,
    save_model,
    weights_dirs,
)
from glue_astrodl.models.registry import (
    ARCHITECTURES,
    architectures,
    get_architecture,
    register_architecture,
)

ARCH = "test-tinyconv"


@register_architecture(ARCH)
class TinyConv(nn.Module):
    def __init__(self, in_channels=1, width=4, n_out=2):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.head = nn.Conv2d(width, n_out, 1)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))))


def _card(**overrides):
    card = {
        "name": "tiny",
        "version": "1.0.0",
        "architecture": ARCH,
        "arch_kwargs": {"in_channels": 1, "width": 4, "n_out": 2},
        "outputs": ["background", "source"],
        "description": "test model",
        "seed": 123,
    }
    card.update(overrides)
    return card


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = TinyConv(width=4)
    with torch.no_grad():  # non-trivial buffers too
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.5, 2)
    model.eval()
    card = save_model(model, tmp_path / "tiny", _card(), architectures=ARCHITECTURES)
    return model, card, tmp_path


def _one_line(err):
    msg = str(err.value)
    assert "\n" not in msg and msg.strip() == msg
    return msg


def _rewrite_card(tmp_path, **changes):
    path = tmp_path / "tiny.json"
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    path.write_text(json.dumps(data))
    return path


def test_architecture_registry():
    assert get_architecture(ARCH) is TinyConv
    assert ARCH in architectures() and architectures() == sorted(architectures())
    with pytest.raises(KeyError, match=ARCH):
        get_architecture("no-such-arch")
    with pytest.raises(ValueError):
        register_architecture(ARCH)(type("Other", (nn.Module,), {}))
    with pytest.raises(TypeError):
        register_architecture("not-a-module")(object)


def test_save_writes_safetensors_and_card(saved):
    model, card, tmp_path = saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json", "tiny.safetensors"]
    raw = (tmp_path / "tiny.safetensors").read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    assert "conv.weight" in header and header["conv.weight"]["shape"] == [4, 1, 3, 3]
    assert header["__metadata__"]["format"] == "pt"
    assert not raw.startswith(b"PK") and not raw.startswith(b"\x80")  # not a zip / pickle

    on_disk = json.loads((tmp_path / "tiny.json").read_text())
    assert list(on_disk) == sorted(on_disk)
    assert on_disk["weights_sha256"] == file_sha256(tmp_path / "tiny.safetensors") == card.weights_sha256
    assert card.path == tmp_path / "tiny.json" and card.weights_path == tmp_path / "tiny.safetensors"
    assert card.data == on_disk and "created" in card


def _same_outputs(a, b, dtype=torch.float32):
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(1), dtype=dtype)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_load_by_path(saved):
    model, card, tmp_path = saved
    loaded, lcard = load_model(tmp_path / "tiny.safetensors", architectures=ARCHITECTURES)
    assert isinstance(loaded, TinyConv) and not loaded.training
    assert lcard.name == "tiny" and lcard.outputs == ["background", "source"]
    _same_outputs(model, loaded)
    # explicit card as a dict, and the .json card path itself
    loaded2, _ = load_model(str(tmp_path / "tiny.safetensors"), card=card.data, architectures=ARCHITECTURES)
    _same_outputs(model, loaded2)
    loaded3, _ = load_model(tmp_path / "tiny.json", architectures=ARCHITECTURES)
    _same_outputs(model, loaded3)


def test_load_by_name_and_list(saved, monkeypatch):
    model, card, tmp_path = saved
    monkeypatch.setenv("ASTRODL_WEIGHTS_PATH", str(tmp_path))
    assert weights_dirs()[-1] == tmp_path and weights_dirs()[0].name == "weights"
    loaded, lcard = load_model("tiny", dtype=torch.float64, architectures=ARCHITECTURES)
    assert next(loaded.parameters()).dtype == torch.float64
    _same_outputs(model.double(), loaded, torch.float64)

    cards = [c for c in list_models() if c.name == "tiny"]
    assert len(cards) == 1
    c = cards[0]
    assert isinstance(c, ModelCard)
    assert (c.version, c.architecture, c.arch_kwargs) == ("1.0.0", ARCH, {"in_channels": 1, "width": 4, "n_out": 2})
    assert c.get("description") == "test model" and c.get("seed") == 123 and c.get("metrics", "x") == "x"
    assert c.weights_sha256 == card.weights_sha256


def test_list_models_skips_bad_cards(saved, monkeypatch):
    _, _, tmp_path = saved
    (tmp_path / "broken.json").write_text("{not json")
    monkeypatch.setenv("ASTRODL_WEIGHTS_PATH", str(tmp_path))
    with pytest.warns(UserWarning, match="broken.json"):
        names = [c.name for c in list_models()]
    assert "tiny" in names


def test_checksum_mismatch(saved):
    _, _, tmp_path = saved
    path = tmp_path / "tiny.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(BadInputError, match="checksum") as err:
        load_model(path, architectures=ARCHITECTURES)
    msg = _one_line(err)
    assert str(path) in msg and "expected" in msg


def test_unknown_name(monkeypatch, saved):
    _, _, tmp_path = saved
    monkeypatch.setenv("ASTRODL_WEIGHTS_PATH", str(tmp_path))
    with pytest.raises(BadInputError, match="no-such-model") as err:
        load_model("no-such-model", architectures=ARCHITECTURES)
    assert "tiny" in _one_line(err)  # lists available models


def test_missing_weights_file(tmp_path):
    with pytest.raises(BadInputError, match="not found") as err:
        load_model(tmp_path / "nothing.safetensors", architectures=ARCHITECTURES)
    _one_line(err)


def test_unknown_architecture(saved):
    _, _, tmp_path = saved
    _rewrite_card(tmp_path, architecture="no-such-arch")
    with pytest.raises(BadInputError, match="no-such-arch") as err:
        load_model(tmp_path / "tiny.safetensors", architectures=ARCHITECTURES)
    assert ARCH in _one_line(err)  # lists known architectures


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_missing_required_key(saved, key):
    _, _, tmp_path = saved
    _rewrite_card(tmp_path, **{key: None})
    with pytest.raises(BadInputError, match=key) as err:
        load_model(tmp_path / "tiny.safetensors", architectures=ARCHITECTURES)
    assert "tiny.json" in _one_line(err)


def test_invalid_card_json(saved):
    _, _, tmp_path = saved
    (tmp_path / "tiny.json").write_text("{oops")
    with pytest.raises(BadInputError, match="JSON") as err:
        load_model(tmp_path / "tiny.safetensors", architectures=ARCHITECTURES)
    _one_line(err)


def test_state_dict_mismatch(saved):
    _, _, tmp_path = saved
    _rewrite_card(tmp_path, arch_kwargs={"in_channels": 1, "width": 8, "n_out": 2})
    with pytest.raises(BadInputError, match="shape mismatch") as err:
        load_model(tmp_path / "tiny.safetensors", architectures=ARCHITECTURES)
    assert "tiny.safetensors" in _one_line(err)


def test_bad_arch_kwargs(saved):
    _, _, tmp_path = saved
    _rewrite_card(tmp_path, arch_kwargs={"depth": 3})
    with pytest.raises(BadInputError, match="arch_kwargs") as err:
        load_model(tmp_path / "tiny.safetensors", architectures=ARCHITECTURES)
    _one_line(err)


def test_save_rejects_bad_cards(tmp_path):
    model = TinyConv()
    with pytest.raises(BadInputError, match="unknown architecture"):
        save_model(model, tmp_path / "a", _card(architecture="no-such-arch"), architectures=ARCHITECTURES)
    with pytest.raises(BadInputError, match="outputs"):
        save_model(model, tmp_path / "a", {k: v for k, v in _card().items() if k != "outputs"}, architectures=ARCHITECTURES)
    with pytest.raises(BadInputError, match="do not rebuild"):
        save_model(model, tmp_path / "a", _card(arch_kwargs={"width": 8}), architectures=ARCHITECTURES)
    assert list(tmp_path.iterdir()) == []
    # architecture defaults to the model's registered name; a suffix on path is accepted
    card = save_model(model, tmp_path / "b.safetensors", {k: v for k, v in _card().items() if k != "architecture"}, architectures=ARCHITECTURES)
    assert card.architecture == ARCH and (tmp_path / "b.json").is_file()


BAD_REQUIRED = [
    ("name", ""), ("name", 3), ("version", True), ("version", 1.5), ("architecture", ""),
    ("arch_kwargs", [1, 4, 2]), ("outputs", "background,source"), ("outputs", []), ("outputs", ["source", "source"]),
    ("outputs", ["background", 1]), ("weights_sha256", "abc123"),
    ("description", 5), ("metrics", [0.9]), ("thresholds", 0.5), ("training_priors", [0.1, 0.9]),
]


@pytest.mark.parametrize("key, value", BAD_REQUIRED, ids=[f"{k}={v!r}" for k, v in BAD_REQUIRED])
def test_card_key_of_the_wrong_type_is_one_line_bad_input(saved, key, value):
    """A card whose keys have the wrong types is refused before any weights are read, in one
    line naming the card and the key: it would otherwise fail later as a TypeError or
    KeyError (exit 1), or worse, run with nonsense (duplicate outputs, an empty model name)."""
    _, _, tmp_path = saved
    _rewrite_card(tmp_path, **{key: value})
    with pytest.raises(BadInputError, match=f"model card key '{key}' must be") as err:
        load_model(tmp_path / "tiny.safetensors", architectures=ARCHITECTURES)
    assert str(tmp_path / "tiny.json") in _one_line(err)


def _shipped_card(**changes):
    """The shipped contaminant card, as a ModelCard at a made-up path, with ``changes``
    (``None`` deletes a key)."""
    from pathlib import Path

    from glue_astrodl.core.weights import find_model

    data = dict(find_model("contaminants").data)
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    return ModelCard(data, Path("/cards/edited.json"))


BAD_INFERENCE = [
    ({"normaliser": "sky-mode-asinh"}, "normaliser must be"),
    ({"normaliser": {"name": "no-such-normaliser"}}, "normaliser must be"),
    ({"calibration_kind": "isotonic"}, "calibration_kind must be one of platt, none"),
    ({"calibration": {"CR": [1.0]}}, "calibration of CR must be \\[a, b\\]"),
    ({"calibration": {"CR": ["1", 0.0]}}, "calibration of CR must be \\[a, b\\]"),
    ({"calibration": {"CR": [float("nan"), 0.0]}}, "calibration of CR must be \\[a, b\\]"),
    ({"calibration": [1.0, 0.0]}, "'platt' needs a 'calibration' object"),
    ({"training_priors": None}, "'platt' needs a 'training_priors' object"),
    ({"training_priors": {"CR": 0.0}}, "training_priors of CR must be a number in \\(0, 1\\)"),
    ({"training_priors": {"CR": True}}, "training_priors of CR must be a number in \\(0, 1\\)"),
    ({"receptive_field_overlap": 0}, "receptive_field_overlap must be a positive integer"),
    ({"receptive_field_overlap": True}, "receptive_field_overlap must be a positive integer"),
    ({"receptive_field_overlap": 64.0}, "receptive_field_overlap must be a positive integer"),
    ({"thresholds": {"CR": 1.5}}, "thresholds of CR must be a number in \\[0, 1\\]"),
    ({"thresholds": {"TRL": float("nan")}}, "thresholds of TRL must be a number in \\[0, 1\\]"),
    ({"thresholds": {"CR": "0.5"}}, "thresholds of CR must be a number"),
    ({"default_priors": {"SAT": 0.0}}, "default_priors of SAT must be a number in \\(0, 1\\)"),
    ({"default_priors": [0.1]}, "default_priors must be an object"),
    ({"task": None}, "lacks task \\(needed for inference\\)"),
    ({"receptive_field_overlap": None, "normaliser": None}, "lacks normaliser, receptive_field_overlap"),
    ({"thresholds": None}, "lacks thresholds \\(needed by task 'contaminants'\\)"),
    ({"task": "sources"}, "model card is for task 'sources', not 'contaminants'"),
]


@pytest.mark.parametrize("changes, message", BAD_INFERENCE, ids=[",".join(c) + f"-{i}" for i, (c, _) in enumerate(BAD_INFERENCE)])
def test_check_card_refuses_bad_inference_keys_in_one_line(changes, message):
    from glue_astrodl.core.predictor import check_card

    card = _shipped_card(**changes)
    with pytest.raises(BadInputError, match=message) as err:
        check_card(card, task="contaminants")
    assert _one_line(err).startswith("/cards/edited.json: ")


def test_check_card_accepts_the_shipped_card_and_a_training_card_without_thresholds():
    """The task's own keys are needed for its inference only: training evaluates a model on
    held-out data (check_card without a task) before its thresholds exist."""
    from glue_astrodl.core.predictor import check_card

    assert check_card(_shipped_card(), task="contaminants")["task"] == "contaminants"
    training = {k: v for k, v in _shipped_card().data.items() if k != "thresholds"}
    assert check_card(training)["receptive_field_overlap"] == 320
    with pytest.raises(BadInputError, match="lacks thresholds"):
        check_card(training, task="contaminants")


def test_the_card_records_its_normaliser_version_and_a_mismatch_warns(monkeypatch):
    """The shipped contaminant card records the normaliser version its network was trained
    on, the code's own (fitting it is silent); a card of another version (the first model's,
    1, before the sky mode left out clipped plateaus) warns."""
    import warnings

    import numpy as np

    import glue_astrodl.core.normalise as normalise
    from glue_astrodl.core.predictor import fit_normaliser
    from glue_astrodl.core.weights import find_model

    monkeypatch.setattr(normalise, "_warned", set())
    spec = find_model("contaminants").get("normaliser")
    assert spec["name"] in normalise.NORMALISER_VERSIONS
    assert spec["version"] == normalise.NORMALISER_VERSIONS[spec["name"]]
    image = np.random.default_rng(0).normal(100.0, 5.0, (64, 64)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_normaliser(spec, image)
    with pytest.warns(normalise.NormaliserVersionWarning, match="version 1, the code computes version 2"):
        fit_normaliser(dict(spec, version=1), image)


@pytest.mark.slow
def test_the_card_metrics_reproduce_with_the_current_code():
    """The card's held-out AUCs, re-measured on the card's own held-out sets (same seeds, same
    150 simulated tiles and the same injections into the held-out real units: no sampling
    noise between the two) with the current code, agree within 0.001."""
    from glue_astrodl.core.weights import find_model
    from glue_astrodl.train.contaminants import evaluate_saved

    card = find_model("contaminants").get("metrics")
    now = evaluate_saved("contaminants", real=True)
    for part in ("", "real_backgrounds"):
        a, b = (m[part]["auc"] if part else m["auc"] for m in (card, now))
        off = {c: (round(a[c], 4), b[c]) for c in b if abs(a[c] - b[c]) > 1e-3}
        assert not off, f"{part or 'simulated'} AUC card vs now: {off}"
