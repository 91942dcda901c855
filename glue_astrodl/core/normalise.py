"""Robust background and noise maps, and arcsinh compression of the dynamic range.

The background is estimated SExtractor-style on a mesh of ``box`` x ``box`` cells:
sigma-clipped statistics per cell (the clipped mean, or the median where objects crowd the
cell; not SExtractor's mode ``2.5 median - 1.5 mean``, which Poisson skewness biases low by
~0.02 sigma at typical sky levels, and the matched filter needs the expected value), a median filter over neighbouring cells to reject cells
dominated by bright objects, and bilinear interpolation back to full resolution. The image
is read in bands of ``box`` rows, so a memory-mapped FITS image is never loaded whole,
and any window of the full-resolution maps can be evaluated on its own (`BackgroundMesh.window`).

NaN and inf pixels are treated as missing: they are ignored by the statistics, counted
(`BackgroundMesh.n_missing`) and set to zero weight by the tasks.
"""

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from .errors import BadInputError

__all__ = ["BackgroundMesh", "MaskedRows", "estimate_background", "asinh_stretch", "robust_level_noise",
           "sky_mode_asinh", "NORMALISERS", "NORMALISER_VERSIONS", "NormaliserVersionWarning",
           "check_normaliser_version"]


@dataclass
class BackgroundMesh:
    """Background and noise (1-sigma) on a coarse mesh, with full-resolution evaluation.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(100.0, 5.0, (128, 128)).astype(np.float32)
    >>> mesh = estimate_background(image, box=32)
    >>> mesh.background.shape, round(mesh.global_rms)
    ((4, 4), 5)
    >>> bkg, rms = mesh.window(0, 10, 0, 20)  # full resolution, just this window
    >>> bkg.shape, bkg.dtype, round(float(bkg.mean()))
    ((10, 20), dtype('float32'), 100)
    >>> mesh.full()[0].shape
    (128, 128)
    """

    background: np.ndarray  # (ny, nx) mesh values, image units
    rms: np.ndarray  # (ny, nx) mesh values, image units
    box: int
    shape: tuple  # full image (H, W)
    n_missing: int  # NaN/inf pixels seen

    def _weights(self, start, stop, n_mesh):
        """Bilinear interpolation matrix from mesh cell centres to pixel centres."""
        u = np.clip((np.arange(start, stop) + 0.5) / self.box - 0.5, 0, n_mesh - 1)
        i0 = np.floor(u).astype(int)
        i1 = np.minimum(i0 + 1, n_mesh - 1)
        w = np.zeros((stop - start, n_mesh), dtype=np.float64)
        rows = np.arange(stop - start)
        np.add.at(w, (rows, i0), 1.0 - (u - i0))
        np.add.at(w, (rows, i1), u - i0)
        return w

    def window(self, y0, y1, x0, x1):
        """Full-resolution ``(background, rms)`` float32 maps over ``[y0:y1, x0:x1]``."""
        wy = self._weights(y0, y1, self.background.shape[0])
        wx = self._weights(x0, x1, self.background.shape[1])
        bkg = (wy @ self.background @ wx.T).astype(np.float32)
        rms = (wy @ self.rms @ wx.T).astype(np.float32)
        return bkg, rms

    def full(self):
        """Full-resolution maps for the whole image."""
        return self.window(0, self.shape[0], 0, self.shape[1])

    @property
    def global_rms(self):
        return float(np.median(self.rms))


def _clip_bias(nsigma):
    """Std of a Gaussian truncated at +-nsigma, in units of the untruncated std."""
    from scipy.special import ndtr  # the normal CDF (scipy.stats costs 0.6 s to import)

    inside = 2 * ndtr(nsigma) - 1
    density = np.exp(-0.5 * nsigma**2) / np.sqrt(2 * np.pi)
    return np.sqrt(1 - 2 * nsigma * density / inside)


def _clipped_stats(cells, nsigma, maxiters):
    """Sigma-clipped (level, std) of each row of ``cells`` (NaN = missing), vectorised.

    Each row is sorted once: clipping removes values from both ends, so the kept values
    are always a contiguous run ``[lo, hi)`` of the sorted row, and prefix sums give
    their mean and variance without copying.
    """
    s = np.sort(cells, axis=1)  # NaN sort last
    n_valid = np.isfinite(s).sum(axis=1)
    rows = np.arange(s.shape[0])
    offset = s[rows, np.maximum(n_valid // 2, 0)].astype(np.float64)  # rough level, for precision
    offset = np.where(n_valid > 0, offset, 0.0)
    d = np.where(np.isfinite(s), s - offset[:, None], 0.0)
    cs = np.concatenate([np.zeros((s.shape[0], 1)), np.cumsum(d, axis=1)], axis=1)
    cs2 = np.concatenate([np.zeros((s.shape[0], 1)), np.cumsum(d * d, axis=1)], axis=1)
    lo, hi = np.zeros_like(n_valid), n_valid.copy()

    def stats(lo, hi):
        n = np.maximum(hi - lo, 1)
        mean = (cs[rows, hi] - cs[rows, lo]) / n
        var = np.maximum((cs2[rows, hi] - cs2[rows, lo]) / n - mean**2, 0.0)
        mid = lo + (n - 1) // 2
        med = 0.5 * (d[rows, mid] + d[rows, np.minimum(lo + n // 2, s.shape[1] - 1)])
        return mean, np.sqrt(var), med

    for _ in range(maxiters):
        mean, std, med = stats(lo, hi)
        new_lo = (d < (med - nsigma * std)[:, None]).sum(axis=1)
        new_hi = np.minimum((d <= (med + nsigma * std)[:, None]).sum(axis=1), n_valid)
        new_hi = np.maximum(new_hi, new_lo)
        if np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi):
            break
        lo, hi = new_lo, new_hi
    _, std, med = stats(lo, hi)
    std = std / _clip_bias(nsigma)
    # The level is the mean within +-4 sigma: clipping a Poisson-skewed sky at 3 sigma
    # biases the mean low by 0.040 * skewness * sigma (the truncation term of the
    # Edgeworth series, 2 k^3 phi(k) / 6); at 4 sigma that bias is 14 times smaller.
    wide_lo = (d < (med - 4.0 * std)[:, None]).sum(axis=1)
    wide_hi = np.minimum((d <= (med + 4.0 * std)[:, None]).sum(axis=1), n_valid)
    mean, _, _ = stats(wide_lo, np.maximum(wide_hi, wide_lo))
    crowded = np.abs(mean - med) > 0.3 * std
    level = np.where(crowded, med, mean) + offset
    bad = n_valid < 0.5 * cells.shape[1]
    level[bad] = np.nan
    std[bad] = np.nan
    return level, std


def _fill_from_neighbours(mesh, valid):
    """Replace invalid cells by the mean of their valid neighbours, growing inwards."""
    from scipy.ndimage import convolve

    mesh, valid = np.where(valid, mesh, 0.0), valid.copy()
    ring = np.ones((3, 3))
    while not valid.all():
        total = convolve(mesh * valid, ring, mode="constant")
        count = convolve(valid.astype(float), ring, mode="constant")
        grow = ~valid & (count > 0)
        mesh[grow] = total[grow] / count[grow]
        valid |= grow
    return mesh


def estimate_background(image, box=64, filter_size=3, nsigma=3.0, maxiters=5):
    """Estimate background and noise meshes of a 2-D image (array or memmap).

    Raises `BadInputError` when the image has no finite pixels or no noise (constant).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(100.0, 5.0, (128, 128)).astype(np.float32)
    >>> image[60:64, 60:64] += 1000.0  # a bright object
    >>> image[0, 0] = np.nan  # a missing pixel
    >>> mesh = estimate_background(image, box=32)
    >>> round(float(mesh.background.max())), round(mesh.global_rms), mesh.n_missing
    (100, 5, 1)
    """
    height, width = image.shape[-2:]
    box = int(max(8, min(box, height, width)))
    ny, nx = -(-height // box), -(-width // box)
    bkg = np.empty((ny, nx))
    rms = np.empty((ny, nx))
    n_missing = 0
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells are expected
            for j in range(ny):
                band = np.asarray(image[j * box:(j + 1) * box], dtype=np.float32)
                finite = np.isfinite(band)
                n_missing += int(band.size - finite.sum())
                padded = np.full((band.shape[0], nx * box), np.nan, dtype=np.float32)
                padded[:, :width] = np.where(finite, band, np.nan)
                cells = padded.reshape(band.shape[0], nx, box).transpose(1, 0, 2).reshape(nx, -1)
                bkg[j], rms[j] = _clipped_stats(cells, nsigma, maxiters)
    good = np.isfinite(bkg) & np.isfinite(rms)
    if not good.any():
        raise BadInputError("no usable pixels (all NaN/inf, or no cell with half its pixels finite)")
    positive = good & (rms > 0)
    if not positive.any():
        raise BadInputError(f"constant image (every finite pixel is {np.nanmedian(bkg):g}): no noise to measure against")
    bkg = _fill_from_neighbours(bkg, good)
    rms = _fill_from_neighbours(rms, positive)
    if filter_size > 1 and min(ny, nx) >= filter_size:
        bkg = median_filter(bkg, size=filter_size, mode="nearest")
        rms = median_filter(rms, size=filter_size, mode="nearest")
    return BackgroundMesh(bkg, rms, box, (height, width), n_missing)


class MaskedRows:
    """``data`` with the pixels of ``mask`` set to NaN, made band by band as it is read
    (`estimate_background` reads row bands), so a memory-mapped image is never copied whole.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(100.0, 5.0, (128, 128)).astype(np.float32)
    >>> flagged = np.zeros(image.shape, bool)
    >>> flagged[60:64, 60:64] = True  # e.g. a contaminant mask
    >>> masked = MaskedRows(image, flagged)
    >>> int(np.isnan(masked[60:64]).sum())
    16
    >>> estimate_background(masked, box=32).n_missing  # flagged pixels are ignored
    16
    """

    def __init__(self, data, mask):
        self.data, self.mask, self.shape = data, mask, data.shape

    def __getitem__(self, rows):
        return np.where(self.mask[rows], np.float32(np.nan), np.asarray(self.data[rows], dtype=np.float32))


def asinh_stretch(x, background, rms, softening=1.0):
    """``asinh((x - background) / (softening * rms))`` with missing pixels set to 0.

    Examples
    --------
    >>> import numpy as np
    >>> asinh_stretch(np.array([100.0, 105.0, np.nan]), background=100.0, rms=5.0)
    array([0.       , 0.8813736, 0.       ], dtype=float32)
    """
    z = np.arcsinh((x - background) / (softening * rms))
    return np.where(np.isfinite(z), z, 0.0).astype(np.float32)


def robust_level_noise(image, max_rows=512):
    """Global sky level (mode) and pixel noise of an image (array or memmap).

    The noise is the MAD of differences between horizontal neighbours, divided by sqrt(2):
    insensitive to gradients, large-scale structure, sources and isolated defects. The
    level is the mode of the pixel values (the peak of a histogram with bins of two noise
    widths, refined to the centre of a window of +-2 noise widths that is also its
    median): unlike the median it stays on the sky when scattered light, nebulosity or a
    bright galaxy covers much of the frame. Pixels at the frame's maximum are left out of
    both when more than one has it: in a frame with a large saturated star, that clipped
    plateau would be the tallest histogram bin and its zero differences would shrink the
    noise. Up to ``max_rows`` evenly spaced rows are read, so a memory-mapped frame is not
    loaded.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(100.0, 5.0, (128, 128)).astype(np.float32)
    >>> image[:, :40] += 300.0  # a bright nebula over part of the frame
    >>> level, noise = robust_level_noise(image)
    >>> round(level), round(noise), round(float(np.median(image)))  # the mode stays on the sky
    (100, 5, 103)
    """
    rows = np.linspace(0, image.shape[-2] - 1, min(max_rows, image.shape[-2])).astype(int)
    sample = np.asarray(image[..., rows, :], dtype=np.float32)
    finite = np.isfinite(sample)
    if not finite.any():
        raise BadInputError("no usable pixels (all NaN/inf)")
    top = sample[finite].max()
    clipped = sample == top
    if clipped.sum() > 1 and not clipped[finite].all():  # a plateau: not sky, not noise
        finite &= ~clipped
    values = sample[finite]
    diff = np.diff(np.where(finite, sample, np.nan), axis=-1)
    diff = diff[np.isfinite(diff)]
    noise = float(1.4826 * np.median(np.abs(diff - np.median(diff))) / np.sqrt(2)) if diff.size else 0.0
    if noise <= 0:
        spread = float(np.std(values))
        if spread <= 0:
            raise BadInputError(f"constant image (every finite pixel is {values[0]:g}): no noise to measure against")
        noise = spread
    return _mode(values, noise), noise


def _mode(values, noise):
    """Peak of the distribution of ``values`` (see `robust_level_noise`)."""
    lo, hi = np.percentile(values, [0.5, 99.5])
    n_bins = int(min(max((hi - lo) / (2 * noise), 1), 100_000))
    counts, edges = np.histogram(values, bins=n_bins, range=(lo, hi))
    level = 0.5 * (edges[np.argmax(counts)] + edges[np.argmax(counts) + 1])
    for _ in range(20):  # move to where the window's median is its centre
        near = values[np.abs(values - level) <= 2 * noise]
        if near.size == 0 or abs(float(np.median(near)) - level) < 1e-3 * noise:
            break
        level = float(np.median(near))
    return float(level)


class NormaliserVersionWarning(UserWarning):
    """A model card declares an older (or newer) version of its input normaliser than the
    code computes: the network sees inputs unlike those it was trained on."""


#: The version of each normaliser's arithmetic; bumped whenever what a network sees changes.
#: ``sky-mode-asinh``: 1, sky mode and neighbour-difference noise (commit 3ce094a; the
#: shipped contaminant model was trained with it); 2, a clipped plateau at the frame's
#: maximum is left out of both (commit 7996351).
NORMALISER_VERSIONS = {"sky-mode-asinh": 2}
_warned = set()


def check_normaliser_version(name, version):
    """Warn (`NormaliserVersionWarning`, once per name and version) when a card's normaliser
    ``version`` differs from the code's (`NORMALISER_VERSIONS`); returns whether they match.
    A card without a version is taken as current. Called by each normaliser on the
    ``version`` of the card's ``normaliser`` spec (``core.predictor.fit_normaliser`` passes
    the spec's keys to it), so every prediction from a card is checked.

    Examples
    --------
    >>> import warnings
    >>> check_normaliser_version("sky-mode-asinh", NORMALISER_VERSIONS["sky-mode-asinh"])
    True
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_normaliser_version("sky-mode-asinh", 0)
    False
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    model card's normaliser sky-mode-asinh is version 0, the code computes version 2: the network sees ...
    """
    current = NORMALISER_VERSIONS[name]
    if version is None or version == current:
        return True
    if (name, version) not in _warned:
        import warnings

        _warned.add((name, version))
        warnings.warn(f"model card's normaliser {name} is version {version}, the code computes version {current}: "
                      "the network sees inputs unlike its training data, and its card's metrics may not hold",
                      NormaliserVersionWarning, stacklevel=3)
    return False


def sky_mode_asinh(image, softening=1.0, version=None):
    """Normaliser ``"sky-mode-asinh"``: ``asinh((x - level) / (softening * noise))`` with the
    frame's sky mode and pixel noise (`robust_level_noise`). A global (not local) background
    keeps bright background, nebulosity and fringes visible to a network that must flag them.

    Returns ``(preprocess, stats)``: ``preprocess(tile, window)`` for `tiled_inference`, and
    ``{"level": ..., "noise": ...}``. ``version``: the card's, checked by
    `check_normaliser_version`.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(100.0, 5.0, (128, 128)).astype(np.float32)
    >>> preprocess, stats = sky_mode_asinh(image)
    >>> round(stats["level"]), round(stats["noise"])
    (100, 5)
    >>> tile = preprocess(image[:64, :64], None)  # what the network sees
    >>> tile.dtype, round(float(np.median(tile)), 1)
    (dtype('float32'), 0.0)
    """
    check_normaliser_version("sky-mode-asinh", version)
    level, noise = robust_level_noise(image)
    return (lambda tile, window: asinh_stretch(tile, level, noise, softening)), {"level": level, "noise": noise}


#: Named input normalisers a model card can declare (``"normaliser": {"name": ..., **params}``):
#: ``name -> f(image, **params) -> (preprocess(tile, window), stats)``.
NORMALISERS = {"sky-mode-asinh": sky_mode_asinh}
