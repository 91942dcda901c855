"""Real frames as backgrounds: exact labels of injected contaminants, the frame's own
contaminants ignored (not negatives), a reproducible tile pool, and a split by frame."""

import numpy as np
import pytest
from scipy.ndimage import median_filter

from glue_astrodl.sim import real_backgrounds as rb
from glue_astrodl.sim.real_frames import FRAMES
from glue_astrodl.tasks.contaminant_classes import CLASSES


def _m51_tile(size=96):
    image = rb.load_frame("m51_kpno")  # committed: always here
    sky, noise = rb.frame_statistics(image)
    return image[200:200 + size, 150:150 + size].copy(), sky, noise


def test_manifest_records_provenance_and_a_disjoint_split():
    keys = {"id", "split", "kind", "package", "version", "path", "hdu", "licence", "telescope", "instrument", "shape",
            "own_crs", "zero"}
    assert all(keys <= set(f) for f in FRAMES)
    ids = [f["id"] for f in FRAMES]
    assert len(ids) == len(set(ids))
    units = {}
    for f in FRAMES:  # a detector readout (file, HDU, plane) belongs to one split only
        units.setdefault((f["path"], f["hdu"], f.get("plane")), set()).add(f["split"])
    assert all(len(s) == 1 for s in units.values())
    test = {f["id"] for f in rb.frames("test")}
    assert {"m51_kpno", "saao_raw", "gmos_spectrum"} <= test  # the real-frame gates stay on held-out frames
    assert len(rb.frames("train")) >= 5 and len(test) >= 4
    assert all(f["split"] in ("train", "test") for f in FRAMES)


@pytest.mark.parametrize("name", ["CR", "HP", "HCL", "TRL", "NEB", "BBG", "P"])
def test_injected_labels_are_exact_on_a_real_tile(name):
    """Only injected pixels are labelled, and an injected pixel is labelled exactly where its
    contribution reaches the simulator's threshold (k_mask sigma; k_defect S/N for defects)."""
    background, sky, noise = _m51_tile()
    tile = rb.inject_contaminants(background, 1, sky, noise, classes=[name])
    assert tile.meta["classes"] == [name] and tile.image.dtype == np.float32
    mask = tile.mask(name)
    assert mask.any()
    changed = tile.image != background
    assert not mask[~changed].any()  # nothing labelled that was not injected
    others = np.delete(tile.masks, [CLASSES.index(name), CLASSES.index("BG")], axis=0)
    assert not others.any()
    np.testing.assert_array_equal(tile.mask("BG"), ~mask)
    if name == "CR":  # charge without shot noise: the label is the deposit above 1 sigma, exactly
        deposit = tile.image.astype(np.float64) - background
        k = tile.meta["k_mask"] * noise  # float32 rounding aside
        assert (deposit[mask] > 0.999 * k).all() and mask[deposit > 1.001 * k].all()
    if name == "HP":  # each labelled hot pixel is at least k_defect sigma above its own value
        assert ((tile.image - background)[mask] > 3.0 * noise).all()


def test_all_classes_at_once_and_a_clean_injection():
    background, sky, noise = _m51_tile()
    tile = rb.inject_contaminants(background, 5, sky, noise, classes=list(rb.INJECTED))
    labelled = ~tile.mask("BG")
    assert not labelled[tile.image == background].any()
    for name in ("CR", "HP", "HCL", "DCL", "DP", "TRL", "NEB", "BBG", "P"):
        assert tile.mask(name).any(), name
    for name in ("SAT", "SP", "OV"):  # not injected into real frames
        assert not tile.mask(name).any()
    dead = tile.mask("DP") | tile.mask("DCL")
    assert (tile.image[dead] < background[dead]).mean() > 0.9  # dead pixels lose signal
    clean = rb.inject_contaminants(background, 5, sky, noise, classes=[])
    np.testing.assert_array_equal(clean.image, background)
    assert clean.mask("BG").all()
    with pytest.raises(ValueError, match="cannot inject"):
        rb.inject_contaminants(background, 5, sky, noise, classes=["SAT"])


def test_a_real_frames_own_cosmic_rays_are_ignored_not_negatives():
    """The raw SAAO frame holds its own CRs: they get loss weight 0 (ignore), not BG weight."""
    pytest.importorskip("astroscrappy", reason="astroscrappy (test extra) finds the frame's own CRs")
    if rb.frame_path("saao_raw") is None:
        pytest.skip("ccdproc (test extra) holds the SAAO frame: pip install ccdproc")
    from glue_astrodl.train.contaminants import loss_weights, unpack_masks

    entry = next(f for f in FRAMES if f["id"] == "saao_raw")
    image = rb.load_frame(entry)
    sky, noise = rb.frame_statistics(image)
    ignore = rb.own_contaminants(image, sky, noise, entry["zero"])
    sharp = image - median_filter(image, 5) > 30 * noise  # unmistakable CR hits of this raw frame
    assert sharp.sum() >= 20
    assert ignore[sharp].mean() > 0.95
    assert ignore.mean() < 0.05  # the rest of the frame still trains
    # an injection into that part of the frame keeps the ignore mask, and the loss weight there is 0
    ys, xs = np.argwhere(sharp)[0]
    y0, x0 = min(max(ys - 32, 0), image.shape[0] - 64), min(max(xs - 32, 0), image.shape[1] - 64)
    cut = (slice(y0, y0 + 64), slice(x0, x0 + 64))
    tile = rb.inject_contaminants(image[cut], 0, sky, noise, entry["zero"], classes=["HP"], ignore=ignore[cut])
    assert tile.mask("BG")[sharp[cut]].all()  # not labelled as CR (we did not inject it) ...
    bits = (tile.masks * (1 << np.arange(len(CLASSES)))[:, None, None]).sum(0).astype(np.uint16)[None]
    w = loss_weights(unpack_masks(bits), np.full(len(CLASSES), 0.1), 1.0, tile.ignore[None]).numpy()[0]
    assert (w[sharp[cut]] == 0).all() and (w[~tile.ignore] > 0).all()  # ... but out of the loss


def test_tile_pool_is_reproducible_from_its_seed():
    kwargs = dict(frame_ids=["ngc1316_photographic", "m13_photographic"])
    a = rb.real_tile_pool(6, 64, seed=3, **kwargs)
    b = rb.real_tile_pool(6, 64, seed=3, **kwargs)
    c = rb.real_tile_pool(6, 64, seed=4, **kwargs)
    for x, y in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(x, y)
    assert a[3] == b[3] and set(a[3]) <= set(kwargs["frame_ids"])
    assert not np.array_equal(a[0], c[0])
    images, masks, ignore, used, stats = a
    assert images.dtype == np.float32 and masks.shape == (6, len(CLASSES), 64, 64) and ignore.dtype == bool
    np.testing.assert_array_equal(masks[:, -1], ~masks[:, :-1].any(axis=1))


def test_real_tiles_carry_their_whole_frames_sky_and_noise():
    """A tile on the bright body of NGC 1316 is normalised with the frame's sky, as inference
    normalises the frame: the galaxy's light stays well above zero (the tile's own mode would
    take much of it for sky and teach the network that a galaxy filling a tile is sky)."""
    from glue_astrodl.train.contaminants import normalise_image

    images, masks, ignore, used, stats = rb.real_tile_pool(12, 64, seed=0, frame_ids=["ngc1316_photographic"])
    sky, noise = rb.frame_statistics(rb.load_frame("ngc1316_photographic"))
    np.testing.assert_allclose(stats, np.tile([sky, noise], (12, 1)))
    bright = int(np.argmax(np.median(images[:, 0], axis=(1, 2))))
    assert np.median(images[bright, 0]) > sky + 10 * noise  # a tile on the galaxy
    framed, own = (float(np.median(normalise_image(images[bright, 0], s))) for s in (stats[bright], None))
    assert framed > 2.5 and framed > own + 1.0  # asinh(10) = 3.0; fitted to the tile, its sky is the galaxy's


def test_a_training_pool_never_reads_a_test_frame(monkeypatch):
    """Every tile of the 'train' pool comes from a train unit: no test frame is even opened,
    and asking for a test frame in the training split is refused."""
    opened = []
    load = rb.load_frame
    monkeypatch.setattr(rb, "load_frame", lambda entry, active=True: opened.append(entry["id"]) or load(entry, active))
    monkeypatch.setattr(rb, "own_contaminants", lambda image, *a, **k: np.zeros(image.shape, bool))  # fast
    images, masks, ignore, used, _ = rb.real_tile_pool(8, 64, seed=0, split="train")
    train, test = {f["id"] for f in rb.frames("train")}, {f["id"] for f in rb.frames("test")}
    assert opened and set(opened) <= train and set(used) <= train
    assert not set(opened) & test
    with pytest.raises(ValueError, match="not in the 'train' split"):
        rb.real_tile_pool(2, 64, seed=0, split="train", frame_ids=["m51_kpno"])


def test_a_frame_that_is_not_installed_is_none_and_its_load_names_the_package():
    fake = dict(next(f for f in FRAMES if f["kind"] == "pip"), id="nope", package="no_such_package_xyz")
    assert rb.frame_path(fake) is None
    with pytest.raises(FileNotFoundError, match="pip install no_such_package_xyz"):
        rb.load_frame(fake)
    with pytest.raises(ValueError, match="no real frame"):
        rb.frame_path("not-a-frame")


def test_sky_gradients_are_smooth_bounded_and_leave_kept_pixels():
    rng = np.random.default_rng(0)
    image = np.full((128, 128), 500.0)
    keep = np.zeros_like(image, bool)
    keep[:, -8:] = True  # an overscan strip
    amplitudes = []
    for _ in range(20):
        out, p = rb.add_sky_gradient(image, 400.0, rng, max_fraction=0.1, keep=keep)
        delta = out - image
        assert np.abs(delta).max() <= 0.1 * 400.0 + 1e-9
        assert (delta[keep] == 0).all()
        assert np.abs(np.diff(delta[:, :-8], 2, axis=1)).max() < 0.01 * 400.0 / 128  # smooth: no structure
        amplitudes.append(np.abs(delta).max() / 400.0)
    assert max(amplitudes) > 0.07  # reaches +-10% sometimes


def test_a_gradient_tile_is_a_window_of_a_larger_frame():
    """With ``frame``, the tile is a window of a frame the gradient spans: its offset from the
    frame's sky reaches several times its own peak-to-peak, as far from a frame's centre."""
    rng = np.random.default_rng(1)
    image = np.full((64, 64), 500.0)
    offsets, spans = [], []
    for _ in range(40):
        out, _ = rb.add_sky_gradient(image, 400.0, rng, max_fraction=0.1, frame=1024)
        delta = out - image
        assert np.abs(delta).max() <= 0.1 * 400.0 + 1e-9
        offsets.append(abs(delta.mean()))
        spans.append(np.ptp(delta))
    assert np.median(offsets) > 3 * np.median(spans)
