"""A tiny training run: the loss falls and the saved model + card load back."""

import matplotlib.image
import numpy as np
import pytest
import torch

from glue_astrodl.tasks.contaminant_classes import CLASSES
from glue_astrodl.core.weights import load_model
from glue_astrodl.models.registry import ARCHITECTURES
from glue_astrodl.train.contaminants import (evaluate_saved, make_set, pixel_weights, train_contaminants,
                                             unpack_masks)


def test_pixel_weights_upweight_rare_classes():
    masks = np.zeros((2, len(CLASSES), 16, 16), np.float32)
    masks[:, -1] = 1  # BG everywhere ...
    masks[0, 0, 8, 8], masks[0, -1, 8, 8] = 1, 0  # ... but one CR pixel
    fractions = masks.mean(axis=(0, 2, 3))
    w = pixel_weights(torch.from_numpy(masks), fractions).numpy()
    assert w.shape == (2, 16, 16)
    assert w[0, 8, 8] > 20 * w[1, 8, 8]
    assert w[0, 8, 9] > w[0, 0, 0]  # smoothed onto the neighbours
    assert w[0, 8, 8] == pytest.approx(w[0, 8, 8 - 1] * 2 - w[1, 0, 0], rel=1e-5)  # 3x3 kernel: centre 4/16, side 2/16


def test_masks_pack_into_bits_and_back():
    images, bits = make_set(4, 32, seed=2)
    assert images.shape == (4, 1, 32, 32) and bits.shape == (4, 32, 32) and bits.dtype == np.uint16
    masks = unpack_masks(bits).numpy().astype(bool)
    assert masks.shape == (4, len(CLASSES), 32, 32)
    np.testing.assert_array_equal(masks[:, -1], ~masks[:, :-1].any(axis=1))  # BG is the complement


def test_tiny_training_run_loss_falls_and_card_loads(tmp_path):
    card, model = train_contaminants(steps=60, batch=8, tile=64, n_train=96, n_val=6, val_tile=64, seed=3,
                                     lr=1e-2, widths=(8, 8, 8, 8, 8), out=tmp_path / "tiny", progress=False,
                                     log=lambda *a: None)
    first, last = card["metrics"]["train_loss_first_last"]
    assert last < 0.8 * first
    assert set(card["training_priors"]) == set(CLASSES) and all(0 < p < 1 for p in card["training_priors"].values())
    assert card["training_command"].startswith("python -m glue_astrodl.train contaminants")
    assert set(card["calibration"]) <= set(CLASSES) and np.isfinite(list(card["calibration"].values())).all()
    loaded, loaded_card = load_model(tmp_path / "tiny.safetensors", architectures=ARCHITECTURES)
    assert loaded_card.outputs == list(CLASSES)
    x = np.random.default_rng(0).normal(size=(1, 1, 64, 64)).astype(np.float32)
    with torch.inference_mode():
        np.testing.assert_allclose(loaded(torch.from_numpy(x)).numpy(), model(torch.from_numpy(x)).numpy(), atol=1e-5)
    # the saved model's held-out test re-runs to the card's metrics, and draws its figure
    again = evaluate_saved(tmp_path / "tiny.safetensors", n_val=6, val_tile=64, plot=tmp_path / "held_out.png")
    assert again.keys() == {"auc", "ece"} and again["auc"].keys() == card["metrics"]["auc"].keys()
    for kind in ("auc", "ece"):
        for name, value in card["metrics"][kind].items():
            assert again[kind][name] == pytest.approx(value, abs=2e-5), (kind, name)
    assert matplotlib.image.imread(tmp_path / "held_out.png").shape[:2] == (1040, 1040)


def test_training_set_is_reproducible():
    a, ma = make_set(3, 64, seed=5)
    b, mb = make_set(3, 64, seed=5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)


def test_fine_tuning_records_the_whole_recipe(tmp_path):
    """--init continues from saved weights; the card's command reproduces both runs."""
    from glue_astrodl.train.contaminants import boosted_config

    cfg = boosted_config({"HP": 3, "P": 2})
    assert cfg["presence"]["HP"] == pytest.approx(0.9) and cfg["tile_counts"]["HP"] == 12
    assert cfg["presence"]["P"] == pytest.approx(0.6) and cfg["presence"]["CR"] == 0.33
    kwargs = dict(batch=4, tile=64, n_train=24, n_val=4, val_tile=64, lr=1e-2, progress=False, log=lambda *a: None)
    first, _ = train_contaminants(steps=4, seed=3, widths=(4, 4, 4, 4, 4), out=tmp_path / "stage1", **kwargs)
    card, model = train_contaminants(steps=4, seed=4, init=tmp_path / "stage1.safetensors", boost={"HP": 3},
                                     out=tmp_path / "stage2", **kwargs)
    assert card["arch_kwargs"]["widths"] == [4, 4, 4, 4, 4]
    assert card["training_command"] == (f"{first['training_command']} --out {tmp_path / 'stage1'} && "
                                        "python -m glue_astrodl.train contaminants --steps 4 --batch 4 --tile 64 "
                                        "--n-train 24 --n-val 4 --lr 0.01 --seed 4 --boost HP=3 "
                                        f"--init {tmp_path / 'stage1'}.safetensors")
    loaded, _ = load_model(tmp_path / "stage2.safetensors", architectures=ARCHITECTURES)
    stage1, _ = load_model(tmp_path / "stage1.safetensors", architectures=ARCHITECTURES)
    changed = [not torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), stage1.state_dict().values())]
    assert any(changed)  # it trained on


# --- training infrastructure: resume, bf16, cached pools, real backgrounds -------------------------------------

SMALL_REAL = ("ngc1316_photographic", "m13_photographic")  # astropy's test images: always installed, no CRs


@pytest.fixture
def small_real_frames(monkeypatch):
    """Restrict the training split to two small frames, so a test run cuts tiles in a second."""
    from glue_astrodl.sim import real_backgrounds

    frames = [f for f in real_backgrounds.FRAMES if f["id"] in SMALL_REAL or f["split"] == "test"]
    monkeypatch.setattr(real_backgrounds, "FRAMES", frames)
    return frames


TINY = dict(batch=4, tile=64, n_train=16, n_val=2, val_tile=64, lr=1e-2, widths=(4, 4, 4, 4, 4), progress=False,
            log=lambda *a: None)


def test_resume_continues_the_same_schedule_to_the_same_weights(tmp_path, small_real_frames):
    """An interrupted run resumed from its checkpoint ends on the weights of an uninterrupted one."""
    kwargs = dict(TINY, steps=8, seed=1, real_fraction=0.25, cache_dir=tmp_path / "cache")
    _, whole = train_contaminants(**kwargs, stop_after=7, checkpoint=tmp_path / "whole.pt")
    none, _ = train_contaminants(**kwargs, stop_after=3, checkpoint=tmp_path / "split.pt", checkpoint_every=2)
    assert none is None
    assert torch.load(tmp_path / "split.pt", weights_only=True)["step"] == 3
    _, resumed = train_contaminants(**kwargs, stop_after=7, checkpoint=tmp_path / "split.pt", resume=True)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    a, b = (torch.load(tmp_path / p, weights_only=True) for p in ("whole.pt", "split.pt"))
    assert a["losses"] == b["losses"] and len(a["losses"]) == 7
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 7
    assert not (tmp_path / "split.pt.tmp").exists()  # written atomically
    with pytest.raises(ValueError, match="another run"):  # a checkpoint of another schedule is refused
        train_contaminants(**dict(kwargs, steps=9), checkpoint=tmp_path / "split.pt", resume=True)


def test_bf16_loss_curve_matches_float32(tmp_path):
    curves = {}
    for precision in ("float32", "bf16"):
        train_contaminants(**dict(TINY, n_train=24), steps=12, seed=2, precision=precision, stop_after=10,
                           checkpoint=tmp_path / f"{precision}.pt", cache_dir=tmp_path / "cache")
        curves[precision] = np.array(torch.load(tmp_path / f"{precision}.pt", weights_only=True)["losses"])
    assert len(curves["bf16"]) == 10
    np.testing.assert_allclose(curves["bf16"], curves["float32"], rtol=0.08)
    assert not np.array_equal(curves["bf16"], curves["float32"])  # it did run in bf16


def test_tile_pools_are_cached_as_shards_and_reused(tmp_path, monkeypatch, small_real_frames):
    from glue_astrodl.train import contaminants

    kwargs = dict(TINY, steps=3, seed=4, real_fraction=0.5, stop_after=2, checkpoint=tmp_path / "c.pt",
                  cache_dir=tmp_path / "cache")
    _, first = train_contaminants(**kwargs)
    shards = sorted(p.name for p in (tmp_path / "cache").glob("*.npz"))
    assert any(s.startswith("sim-s4-n16-64px") for s in shards) and any(s.startswith("real-s4-") for s in shards)

    def fail(*a, **k):
        raise AssertionError("simulated again")

    monkeypatch.setattr(contaminants, "make_set", fail)
    monkeypatch.setattr(contaminants, "make_real_set", fail)
    _, second = train_contaminants(**kwargs)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(AssertionError, match="simulated again"):  # another seed is another pool
        train_contaminants(**dict(kwargs, seed=5))


def test_a_run_with_real_backgrounds_learns_and_its_card_records_the_frames(tmp_path, small_real_frames):
    card, _ = train_contaminants(steps=40, batch=8, tile=64, n_train=32, n_real=16, n_val=4, val_tile=64, seed=3,
                                 lr=1e-2, widths=(8, 8, 8, 8, 8), real_fraction=0.25, gradient=0.5,
                                 progress=False, log=lambda *a: None)
    first, last = card["metrics"]["train_loss_first_last"]
    assert last < 0.8 * first
    data = card["training_data"]["real_backgrounds"]
    assert data["batch_fraction"] == 0.25 and data["tiles"] == 16
    assert set(data["train_frames"]) <= set(SMALL_REAL) and data["train_frames"]
    assert {"m51_kpno", "saao_raw", "gmos_spectrum"} <= set(data["held_out_frames"])
    assert not set(data["train_frames"]) & set(data["held_out_frames"])
    assert card["training_data"]["simulated"]["sky_gradient_fraction"] == 0.5
    assert "--real-fraction 0.25 --n-real 16 --gradient 0.5" in card["training_command"]


def test_sky_gradients_change_only_the_images_of_the_simulated_tiles():
    plain_images, plain_bits = make_set(6, 64, seed=7, raw=True)
    images, bits = make_set(6, 64, seed=7, raw=True, gradient=1.0)
    np.testing.assert_array_equal(bits, plain_bits)  # the same tiles, the same labels: a gradient is background
    delta = images.astype(np.float64) - plain_images
    assert (np.abs(delta).max(axis=(1, 2, 3)) > 0).sum() >= 4  # (a faint sky's gradient may round away)
    sat = unpack_masks(bits).numpy()[:, CLASSES.index("SAT")].astype(bool)
    assert (delta[:, 0][sat] == 0).all()


def test_cli_passes_the_new_training_options(monkeypatch):
    from glue_astrodl.train import __main__ as cli
    from glue_astrodl.train import contaminants

    seen = {}
    monkeypatch.setattr(contaminants, "train_contaminants", lambda **kw: seen.update(kw))
    cli.main(["contaminants", "--steps", "10", "--real-fraction", "0.5", "--n-real", "64", "--gradient", "0.3",
              "--precision", "bf16", "--cache", "pools", "--checkpoint", "run.pt", "--checkpoint-every", "5",
              "--stop-after", "4"])
    assert {k: seen[k] for k in ("steps", "real_fraction", "n_real", "gradient", "precision", "cache_dir",
                                 "checkpoint", "checkpoint_every", "resume", "stop_after")} == dict(
        steps=10, real_fraction=0.5, n_real=64, gradient=0.3, precision="bf16", cache_dir="pools",
        checkpoint="run.pt", checkpoint_every=5, resume=False, stop_after=4)
    with pytest.raises(SystemExit):  # --resume without a checkpoint is a usage error
        cli.main(["contaminants", "--resume"])
