import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from glue_astrodl.core.device import resolve_device
from glue_astrodl.core.errors import BadInputError
from glue_astrodl.core.tiling import Cancelled, tile_windows, tiled_inference


@pytest.fixture(autouse=True)
def float32(monkeypatch):
    """Exactness is tested at float32 (a CPU with native bf16 runs bf16 by default)."""
    monkeypatch.setenv("ASTRODL_PRECISION", "fp32")


def conv_stack(seed=0):
    """3 layers of 5x5 convolutions: receptive-field radius 6."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 8, 5, padding=2), nn.ReLU(), nn.Conv2d(8, 8, 5, padding=2), nn.Tanh(),
                         nn.Conv2d(8, 3, 5, padding=2)).eval()


@pytest.mark.parametrize("shape", [(300, 417), (64, 64), (40, 1000), (129, 257)])
def test_stitched_equals_whole_image(shape):
    model = conv_stack()
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, *shape)).astype(np.float32)
    with torch.inference_mode():
        whole = model(torch.from_numpy(image)[None])[0].numpy()
    tiled = tiled_inference(model, image, tile=64, overlap=8, batch_size=3, device="cpu")
    assert tiled.shape == whole.shape
    assert np.abs(tiled - whole).max() < 1e-4


def test_overlap_too_small_shows_seams():
    """The exactness relies on the overlap covering the receptive field: check it can fail."""
    model = conv_stack()
    image = np.random.default_rng(1).normal(size=(2, 200, 200)).astype(np.float32)
    with torch.inference_mode():
        whole = model(torch.from_numpy(image)[None])[0].numpy()
    tiled = tiled_inference(model, image, tile=64, overlap=2, device="cpu")
    assert np.abs(tiled - whole).max() > 1e-3


def test_windows_cover_image_exactly_once():
    for shape in [(1000, 777), (512, 512), (100, 3000), (10, 10), (2048, 1100)]:
        read, keep = tile_windows(shape, tile=256, overlap=16)
        count = np.zeros(shape, int)
        sizes = {(y1 - y0, x1 - x0) for y0, y1, x0, x1 in read}
        assert len(sizes) == 1 and all(s <= min(256, n) for s, n in zip(sizes.pop(), shape))
        for (y0, y1, x0, x1), (ky0, ky1, kx0, kx1) in zip(read, keep):
            assert y0 <= ky0 < ky1 <= y1 and x0 <= kx0 < kx1 <= x1
            # trusted only >= overlap px away from any tile edge that is not an image edge
            assert (ky0 == 0 or ky0 - y0 >= 16) and (ky1 == shape[0] or y1 - ky1 >= 16)
            assert (kx0 == 0 or kx0 - x0 >= 16) and (kx1 == shape[1] or x1 - kx1 >= 16)
            count[ky0:ky1, kx0:kx1] += 1
        assert (count == 1).all()


class Strided(nn.Module):
    """Downsample by 4 and back: the output depends on where the 4 px grid falls."""

    stride = 4

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.down, self.up = nn.Conv2d(1, 4, 4, stride=4), nn.ConvTranspose2d(4, 1, 4, stride=4)

    def forward(self, x):
        h, w = x.shape[-2:]
        x = nn.functional.pad(x, (0, -w % 4, 0, -h % 4), mode="replicate")  # as ContaminantNet pads
        return self.up(torch.tanh(self.down(x)))[..., :h, :w]


def test_tiles_start_on_the_model_grid_so_a_downsampling_model_stitches_exactly():
    """A model declaring ``stride`` 4: tiles start at multiples of 4, and the stitched output
    equals the whole-image pass; forced to align=1 it does not."""
    model = Strided().eval()
    image = np.random.default_rng(2).normal(size=(1, 200, 252)).astype(np.float32)
    with torch.inference_mode():
        whole = model(torch.from_numpy(image)[None])[0].numpy()
    read, _ = tile_windows(image.shape[-2:], tile=70, overlap=8, align=4)
    assert all(y0 % 4 == 0 and x0 % 4 == 0 for y0, _, x0, _ in read)
    tiled = tiled_inference(model, image, tile=70, overlap=8, batch_size=3, device="cpu")
    assert np.abs(tiled - whole).max() < 1e-5
    off_grid = tiled_inference(model, image, tile=70, overlap=8, batch_size=3, device="cpu", align=1)
    assert np.abs(off_grid - whole).max() > 1e-2


def test_tiles_are_spread_to_compute_few_pixels_twice():
    """2048 px with tiles of <= 800 and overlap 64: 3 tiles of 768, not 4 of 800."""
    read, _ = tile_windows((2048, 2048), tile=800, overlap=64)
    assert len(read) == 9 and read[0][1] - read[0][0] == 768


def test_preallocated_memmap_output_and_preprocess(tmp_path):
    image = np.arange(150 * 130, dtype=">i2").reshape(150, 130)  # big-endian integers
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=(1, 150, 130))
    res = tiled_inference(nn.Identity(), image, tile=64, overlap=4, out=out,
                          preprocess=lambda t, w: t * 2.0, device="cpu")
    assert res is out
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy")[0], image.astype(np.float32) * 2)


def test_postprocess_sees_tiles_in_row_major_order_after_the_rows_above():
    """The contract streamed writers rely on: when postprocess sees a window starting at row
    y0, every output row above y0 is already stored."""
    image = np.random.default_rng(0).normal(size=(300, 260)).astype(np.float32)
    out = np.full((1, 300, 260), np.nan, np.float32)
    starts = []

    def check(values, window):
        assert not np.isnan(out[:, :window[0]]).any()
        starts.append(window[:3:2])
        return values

    tiled_inference(nn.Identity(), image, tile=64, overlap=4, batch_size=3, device="cpu", out=out, postprocess=check)
    assert starts == sorted(starts) and len({y for y, _ in starts}) > 1
    np.testing.assert_array_equal(out[0], image)


def test_callback_progress_and_cancel():
    seen = []
    image = np.zeros((300, 300), np.float32)
    tiled_inference(nn.Identity(), image, tile=64, overlap=4, batch_size=2, device="cpu",
                    callback=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1] and len(seen) > 1
    with pytest.raises(Cancelled):
        tiled_inference(nn.Identity(), image, tile=64, overlap=4, device="cpu", callback=lambda d, t: False)


def test_device_selection(monkeypatch):
    assert resolve_device("cpu").type == "cpu"
    monkeypatch.setenv("ASTRODL_DEVICE", "cpu")
    assert resolve_device().type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(BadInputError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(BadInputError):
        resolve_device("warp-drive")


MEMORY_SCRIPT = """
import resource, sys, numpy as np
from glue_astrodl.core.tiling import tiled_inference
from glue_astrodl.models.matched_filter import MatchedFilter
from glue_astrodl.core.psf import gaussian_psf
n = int(sys.argv[1]); d = sys.argv[2]
img = np.lib.format.open_memmap(d + '/in.npy', mode='w+', dtype=np.float32, shape=(2, n, n))
for i in range(0, n, 512):
    img[:, i:i + 512] = 1.0
img.flush(); del img
img = np.load(d + '/in.npy', mmap_mode='r')
out = np.lib.format.open_memmap(d + '/out.npy', mode='w+', dtype=np.float32, shape=(2, n, n))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
m = MatchedFilter(gaussian_psf(3.0))
tiled_inference(m, img, tile=512, overlap=m.radius, batch_size=2, device='cpu', out=out)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
"""


def test_memory_bounded_by_input_plus_output(tmp_path):
    """Streaming memmap -> memmap: growth stays below input + output + a few tiles."""
    n = 4096
    grow = int(subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(n), str(tmp_path)],
                              capture_output=True, text=True, check=True).stdout.split()[-1])
    in_out = 2 * (2 * n * n * 4)
    assert grow < in_out + 300e6, f"peak RSS grew by {grow / 1e6:.0f} MB"
