"""Tiled inference: run a fully-convolutional model over an image of any size.

The image is cut into overlapping tiles of equal size, tiles are batched through the
model, and only the central part of each tile (``overlap`` pixels trimmed on each inner
edge) is written to the output. When the model's receptive-field radius is at most
``overlap`` the stitched result equals a single whole-image pass (no seams). Tiles at the
image border are shifted inwards rather than padded, so every tile sees only real pixels.
Tiles start on the model's downsampling grid (`model_stride`: 16 for the contaminant
U-Net), so each tile is sampled as the whole-image pass samples it; then only the last
row and column of tiles may be a few pixels longer, and batches hold tiles of one shape.

Memory stays bounded: tiles are read one at a time from the (possibly memory-mapped)
input and written into a preallocated (possibly memory-mapped) output, so apart from
those two arrays only ``batch_size`` tiles and their activations are alive at once.
"""

import concurrent.futures

import numpy as np
import torch
from tqdm.auto import tqdm

from .device import autocast, resolve_device
from .errors import Cancelled

__all__ = ["Cancelled", "model_stride", "tile_windows", "tiled_inference"]


def _axis(n, tile, overlap, align=1):
    """Tiles along one axis: ``(starts, sizes, kept)`` with ``kept`` the ``(a, b)`` ranges.

    The fewest tiles of at most ``tile`` px (the last up to ``align - 1`` px more), spread
    evenly (so no more pixels are computed twice than needed); neighbours split their
    overlap in the middle, which lies at least ``overlap`` px inside both. With ``align``
    > 1 every tile starts at a multiple of ``align`` and all but the last have a size that
    is one, so a network that downsamples by ``align`` sees the same sampling grid in each
    tile as in one whole-image pass; the last tile ends at the image edge, where the
    whole-image pass pads as the tile's pass does.
    """
    if n <= tile:
        return [0], [n], [(0, n)]
    k = -(-(n - 2 * overlap) // (tile - 2 * overlap))
    while True:
        size = min(tile, -(-(n + 2 * overlap * (k - 1)) // k))
        size = -(-size // align) * align
        while size <= tile + align - 1:
            starts = [int(s) // align * align for s in np.linspace(0, n - size, k).round()]
            ends = [s + size for s in starts[:-1]] + [n]
            cuts = [(b + e) // 2 for e, b in zip(ends[:-1], starts[1:])]
            if all(c - b >= overlap and e - c >= overlap for e, b, c in zip(ends[:-1], starts[1:], cuts)) \
                    and ends[-1] - starts[-1] <= tile + align - 1:
                sizes = [e - s for s, e in zip(starts, ends)]
                cuts = [0] + cuts + [n]
                return starts, sizes, list(zip(cuts[:-1], cuts[1:]))
            size += align  # rounding left a cut too close to a tile edge
        k += 1


def tile_windows(shape, tile=512, overlap=32, align=1):
    """Tile windows for an image of ``shape`` (H, W).

    Returns ``(read, keep)`` lists of ``(y0, y1, x0, x1)``: the window read as model
    input and the sub-window of the image its output is trusted for. Every pixel is in
    exactly one ``keep`` window. With ``align`` 1 all ``read`` windows have the same shape;
    with ``align`` > 1 they start at multiples of ``align`` and those of the last row and
    column may be up to ``align - 1`` px longer (see `_axis`).
    """
    if tile <= 2 * overlap:
        raise ValueError(f"tile ({tile}) must exceed twice the overlap ({overlap})")
    ys, ths, ykeep = _axis(shape[0], tile, overlap, align)
    xs, tws, xkeep = _axis(shape[1], tile, overlap, align)
    read, keep = [], []
    for y, th, (ky0, ky1) in zip(ys, ths, ykeep):
        for x, tw, (kx0, kx1) in zip(xs, tws, xkeep):
            read.append((y, y + th, x, x + tw))
            keep.append((ky0, ky1, kx0, kx1))
    return read, keep


def _load_tile(image, window, preprocess):
    y0, y1, x0, x1 = window
    tile = np.asarray(image[..., y0:y1, x0:x1], dtype=np.float32)  # native byte order
    if tile.ndim == 2:
        tile = tile[None]
    if preprocess is not None:
        tile = preprocess(tile, window)
    return tile


def model_stride(model):
    """The downsampling factor a model declares (``stride``), looked up through wrappers
    that hold the network as ``net`` or ``model`` (calibration, test-time augmentation); 1
    when none does.

    Examples
    --------
    >>> from glue_astrodl.models.contaminant_net import ContaminantNet
    >>> model_stride(ContaminantNet()), model_stride(torch.nn.Identity())
    (16, 1)
    """
    for _ in range(8):
        stride = getattr(model, "stride", None)
        if isinstance(stride, int) and stride > 0:
            return stride
        model = getattr(model, "net", None) or getattr(model, "model", None)
        if model is None:
            break
    return 1


def tiled_inference(model, image, *, tile=512, overlap=32, batch_size=4, device=None,
                    preprocess=None, out=None, postprocess=None, progress=False, desc="inference", callback=None,
                    align=None):
    """Apply ``model`` to ``image`` tile by tile and return the stitched output.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps a float tensor ``(B, C, h, w)`` to ``(B, K, h, w)``.
    image : array-like, shape (H, W) or (C, H, W)
        Any array supporting slicing (numpy array, ``np.memmap``, FITS section).
    tile, overlap : int
        Tile side and the margin trimmed from inner tile edges (>= receptive-field radius).
    preprocess : callable, optional
        ``preprocess(tile, window) -> array (C', h, w)``, e.g. background subtraction.
    out : array, shape (K', H, W), optional
        Preallocated output (e.g. ``np.memmap`` of a FITS file being written); allocated
        (float32, or ``postprocess``'s dtype) when omitted.
    postprocess : callable, optional
        ``postprocess(values, window) -> array (K', h, w)`` applied to the kept part of each
        tile's output before it is stored (``window`` = ``(y0, y1, x0, x1)`` in the image),
        e.g. thresholding into masks, so that a product is made tile by tile without the
        whole ``(K, H, W)`` float output ever existing. Tiles are postprocessed and stored
        one at a time in row-major order (`tile_windows`), so when ``postprocess`` sees a
        window starting at row ``y0``, every output row above ``y0`` is final.
    callback : callable, optional
        ``callback(done, total)`` after each batch; returning ``False`` cancels
        (raises `Cancelled`).
    align : int, optional
        Tile starts are multiples of this (default: the model's `model_stride`), so that a
        downsampling network samples every tile on the grid of a whole-image pass: tiles
        that start off that grid give answers that depend on the tile size.

    Examples
    --------
    A 3x3 box filter over a 1000 x 700 image, in 256 px tiles, and the same thresholded
    tile by tile into a uint8 mask (no float output is ever allocated):

    >>> import numpy as np, torch
    >>> box = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    >>> _ = torch.nn.init.constant_(box.weight, 1 / 9)
    >>> image = np.random.default_rng(0).normal(size=(1000, 700)).astype(np.float32)
    >>> smooth = tiled_inference(box, image, tile=256, overlap=8, device="cpu")
    >>> smooth.shape, smooth.dtype
    ((1, 1000, 700), dtype('float32'))
    >>> mask = tiled_inference(box, image, tile=256, overlap=8, device="cpu",
    ...                        postprocess=lambda values, window: (values > 0.5).view(np.uint8))
    >>> mask.dtype, bool((mask[0] == (smooth[0] > 0.5)).all())
    (dtype('uint8'), True)
    """
    dev = resolve_device(device)
    height, width = image.shape[-2:]
    align = model_stride(model) if align is None else int(align)
    read, keep = tile_windows((height, width), tile, overlap, align)
    if isinstance(model, torch.nn.Module):
        model = model.to(dev, memory_format=torch.channels_last).eval()  # faster convs on CPU and GPU
    bar = tqdm(total=len(read), desc=desc, unit="tile", disable=not progress, leave=False)
    batches = []  # consecutive tiles of one shape, at most batch_size
    for i, (y0, y1, x0, x1) in enumerate(read):
        shape = (y1 - y0, x1 - x0)
        if batches and len(batches[-1][1]) < batch_size and batches[-1][0] == shape:
            batches[-1][1].append(i)
        else:
            batches.append((shape, [i]))
    batches = [batch for _, batch in batches]

    def load(batch):
        return np.stack([_load_tile(image, read[i], preprocess) for i in batch])

    # Read + preprocess the next batch in a thread while the model runs on this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool, torch.inference_mode():
        pending = pool.submit(load, batches[0])
        for b, batch in enumerate(batches):
            x = torch.from_numpy(pending.result()).to(dev, non_blocking=True)
            if b + 1 < len(batches):
                pending = pool.submit(load, batches[b + 1])
            x = x.contiguous(memory_format=torch.channels_last)
            with autocast(dev):
                y = model(x)
            y = y.float().cpu().numpy()
            for j, i in enumerate(batch):
                ry0, _, rx0, _ = read[i]
                ky0, ky1, kx0, kx1 = keep[i]
                values = y[j, :, ky0 - ry0:ky1 - ry0, kx0 - rx0:kx1 - rx0]
                if postprocess is not None:
                    values = postprocess(values, keep[i])
                if out is None:
                    out = np.empty((values.shape[0], height, width), dtype=values.dtype)
                out[:, ky0:ky1, kx0:kx1] = values
            bar.update(len(batch))
            if callback is not None and callback(batch[-1] + 1, len(read)) is False:
                bar.close()
                raise Cancelled("inference cancelled")
    bar.close()
    return out
