"""Cutouts at catalogue positions: the primitive every catalogue task measures on.

`cutouts` yields batches of square stamps of odd ``size`` centred on the pixel nearest to
each position, with the sub-pixel offset of the position from that pixel's centre. Memory
stays bounded: a batch holds at most ``batch`` stamps, and each stamp is a slice of the
image, so a memory-mapped image is read only where stamps lie. A stamp that crosses the
image edge is padded with NaN and flagged `EDGE`; a position off the image (or not
finite) gets an all-NaN stamp and the flag `OFF_IMAGE`, it is not an error.

Several bands linked by their WCS are cut from one catalogue with `band_cutouts`: the
positions, given on the first band's pixel grid, are carried to every other band through
the two celestial WCSs (`positions_in`).

Pixel coordinates are 0-based with pixel centres at integers (``x`` = column, ``y`` =
row), as in photutils and astropy's ``pixel_to_world``.
"""

from dataclasses import dataclass

import numpy as np

from .errors import BadInputError

__all__ = ["EDGE", "OFF_IMAGE", "MASKED", "NO_DATA", "FLAG_NAMES", "CutoutBatch", "cutouts", "band_cutouts",
           "positions_in", "footprint_mask", "describe_flags"]

#: The stamp crosses the image edge (its outer pixels are NaN).
EDGE = 1
#: The position is off the image or not finite (the stamp is all NaN).
OFF_IMAGE = 2
#: Masked or missing (NaN) pixels of the image inside the footprint (`CutoutBatch.footprint_flags`).
MASKED = 4
#: No valid pixel inside the footprint: nothing could be measured.
NO_DATA = 8
FLAG_NAMES = {EDGE: "edge", OFF_IMAGE: "off image", MASKED: "masked pixels", NO_DATA: "no data"}


def describe_flags():
    """``"1 edge, 2 off image, 4 masked pixels, 8 no data"``: the bits, for column descriptions.

    Examples
    --------
    >>> describe_flags()
    '1 edge, 2 off image, 4 masked pixels, 8 no data'
    """
    return ", ".join(f"{bit} {name}" for bit, name in FLAG_NAMES.items())


@dataclass
class CutoutBatch:
    """Stamps of the positions ``rows`` (a slice of the input positions).

    Arrays have one entry per position first, then a band axis for `band_cutouts`:
    ``stamps`` (n[, B], size, size) float32, NaN outside the image and at masked pixels;
    ``inside`` (same shape) True where the stamp pixel lies on the image; ``ix``, ``iy``
    (n[, B]) the centre pixel; ``dx``, ``dy`` the position minus that pixel, in [-0.5,
    0.5) (NaN off the image); ``flags`` (n,) `EDGE` | `OFF_IMAGE`, OR-ed over bands.
    """

    rows: slice
    stamps: np.ndarray
    inside: np.ndarray
    ix: np.ndarray
    iy: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    flags: np.ndarray

    def __len__(self):
        return len(self.flags)

    @property
    def on_image(self):
        """Boolean (n,): the position lies on the image (in every band)."""
        return self.flags & OFF_IMAGE == 0

    def footprint_flags(self, footprint):
        """``flags`` plus, for positions on the image, `MASKED` where a masked or NaN image
        pixel lies inside ``footprint`` and `NO_DATA` where no valid pixel does.

        ``footprint`` is a boolean array broadcasting against ``stamps`` (e.g. the pixels
        where a PSF exceeds 1e-3 of its peak).
        """
        footprint = np.broadcast_to(footprint, self.stamps.shape)
        valid = np.isfinite(self.stamps) & footprint
        bad = self.inside & footprint & ~valid
        axes = tuple(range(1, self.stamps.ndim))
        flags, on = self.flags.copy(), self.on_image
        flags[on & bad.any(axis=axes)] |= MASKED
        flags[on & ~valid.any(axis=axes)] |= NO_DATA
        return flags


def _check_size(size):
    if int(size) != size or size < 1 or size % 2 == 0:
        raise BadInputError(f"cutout size must be a positive odd number of pixels, got {size}")
    return int(size)


def _positions(x, y):
    x, y = np.atleast_1d(np.asarray(x, dtype=np.float64)), np.atleast_1d(np.asarray(y, dtype=np.float64))
    if x.shape != y.shape or x.ndim != 1:
        raise BadInputError(f"positions: x and y must be 1-D of one length, got shapes {x.shape} and {y.shape}")
    return x, y


def _nearest(x, y, shape):
    """``(ix, iy, on)``: the pixel nearest each position, and whether it is on the image."""
    finite = np.isfinite(x) & np.isfinite(y)
    ix = np.floor(np.where(finite, x, 0) + 0.5).astype(np.int64)
    iy = np.floor(np.where(finite, y, 0) + 0.5).astype(np.int64)
    on = finite & (ix >= 0) & (ix < shape[1]) & (iy >= 0) & (iy < shape[0])
    return ix, iy, on


def _window(ix, iy, size, shape):
    """``(image, stamp)`` slices of the part of the stamp of ``size`` at ``(ix, iy)`` on the image."""
    r = size // 2
    y0, x0 = iy - r, ix - r
    ya, yb, xa, xb = max(y0, 0), min(y0 + size, shape[0]), max(x0, 0), min(x0 + size, shape[1])
    return (slice(ya, yb), slice(xa, xb)), (slice(ya - y0, yb - y0), slice(xa - x0, xb - x0))


def _cut(image, mask, x, y, size, rows):
    """One `CutoutBatch` of the positions ``x``, ``y`` (already sliced to ``rows``)."""
    ix, iy, on = _nearest(x, y, image.shape)
    stamps = np.full((len(x), size, size), np.nan, dtype=np.float32)
    inside = np.zeros((len(x), size, size), dtype=bool)
    for k in np.flatnonzero(on):
        window, part = _window(ix[k], iy[k], size, image.shape)
        stamps[k][part] = image[window]
        inside[k][part] = True
        if mask is not None:
            stamps[k][part][np.asarray(mask[window], dtype=bool)] = np.nan
    flags = np.where(on, 0, OFF_IMAGE).astype(np.int16)
    flags[on & ~inside.all(axis=(1, 2))] |= EDGE
    dx, dy = np.where(on, x - ix, np.nan), np.where(on, y - iy, np.nan)
    return CutoutBatch(rows, stamps, inside, ix, iy, dx, dy, flags)


def cutouts(image, x, y, size, *, mask=None, batch=256):
    """Stamps of ``image`` at pixel positions ``(x, y)``, in batches of at most ``batch``.

    Parameters
    ----------
    image : array-like, shape (H, W)
        Any array that slices like numpy (``np.memmap``, FITS data); read stamp by stamp.
    x, y : array-like (n,)
        0-based pixel positions (column, row); NaN positions are flagged `OFF_IMAGE`.
    size : int
        Odd side of the stamps in pixels; the position's nearest pixel is the centre.
    mask : bool array (H, W), optional
        Pixels to ignore: they are NaN in the stamps.
    batch : int
        Most stamps per batch (memory: about ``5 * batch * size**2`` bytes).

    Yields
    ------
    CutoutBatch
        In input order; every position is in exactly one batch (``batch.rows``).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.arange(100.0).reshape(10, 10)
    >>> [b] = cutouts(image, [4.2, 0.0, 20.0], [5.0, 0.0, 1.0], 3)
    >>> b.stamps[0]
    array([[43., 44., 45.],
           [53., 54., 55.],
           [63., 64., 65.]], dtype=float32)
    >>> b.dx.round(2), b.flags  # the second stamp crosses the edge, the third is off the image
    (array([0.2, 0. , nan]), array([0, 1, 2], dtype=int16))
    """
    size = _check_size(size)
    x, y = _positions(x, y)
    if len(image.shape) != 2:
        raise BadInputError(f"cutouts need a 2-D image, got shape {tuple(image.shape)}")
    if mask is not None and np.shape(mask) != tuple(image.shape):
        raise BadInputError(f"mask of shape {np.shape(mask)} does not match the image's {tuple(image.shape)}")
    batch = max(1, int(batch))
    for start in range(0, len(x), batch):
        rows = slice(start, min(start + batch, len(x)))
        yield _cut(image, mask, x[rows], y[rows], size, rows)


def footprint_mask(shape, x, y, radius):
    """Boolean image of ``shape``: True within ``radius`` pixels of the nearest pixel of any
    position (positions off the image are skipped), e.g. to keep a catalogue's own sources
    out of a background estimate.

    Examples
    --------
    >>> footprint_mask((5, 7), [1.2, 30.0], [2.4, 0.0], 1).astype(int)
    array([[0, 0, 0, 0, 0, 0, 0],
           [0, 1, 0, 0, 0, 0, 0],
           [1, 1, 1, 0, 0, 0, 0],
           [0, 1, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0]])
    """
    x, y = _positions(x, y)
    r = int(radius)
    offsets = np.arange(-r, r + 1)
    disk = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2
    out = np.zeros(shape, dtype=bool)
    ix, iy, on = _nearest(x, y, shape)
    for k in np.flatnonzero(on):
        window, part = _window(ix[k], iy[k], 2 * r + 1, shape)
        out[window] |= disk[part]
    return out


def positions_in(wcs_from, wcs_to, x, y):
    """Pixel positions on the grid of ``wcs_to`` of the positions ``(x, y)`` on ``wcs_from``'s.

    Both are celestial WCSs (any frames: the sky positions are transformed between them);
    0-based pixels in and out.

    Examples
    --------
    >>> from glue_astrodl.sim import make_wcs
    >>> a = make_wcs((100, 100), 0.2)
    >>> b = make_wcs((100, 100), 0.4)  # same centre, pixels twice as large
    >>> [float(v) for v in np.round(positions_in(a, b, [69.5], [49.5]), 3).ravel()]
    [59.5, 49.5]
    """
    if wcs_from is None or wcs_to is None:
        raise BadInputError("positions in another band need a celestial WCS on both images")
    x, y = _positions(x, y)
    sky = wcs_from.celestial.pixel_to_world(x, y)
    px, py = wcs_to.celestial.world_to_pixel(sky)
    return np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64)


def _stack(batches):
    """One `CutoutBatch` with a band axis from one batch per band (same rows)."""
    def stack(name):
        return np.stack([getattr(b, name) for b in batches], axis=1)

    flags = np.bitwise_or.reduce([b.flags for b in batches], axis=0)
    return CutoutBatch(batches[0].rows, stack("stamps"), stack("inside"), stack("ix"), stack("iy"),
                       stack("dx"), stack("dy"), flags)


def band_cutouts(images, wcss, x, y, size, *, masks=None, batch=256):
    """Stamps of several band images linked by WCS, at positions on the first band's grid.

    Parameters
    ----------
    images : sequence of array-like (H_b, W_b)
        The band images; each may have its own shape and pixel grid.
    wcss : sequence of astropy.wcs.WCS
        Their celestial WCSs (the first may be None when there is one band).
    x, y : array-like (n,)
        0-based pixel positions on the first band.
    size : int
        Odd stamp side, in each band's own pixels.
    masks : sequence of bool arrays or None, optional
        Per-band pixels to ignore.
    batch : int
        Most positions per batch.

    Yields
    ------
    CutoutBatch
        With a band axis: ``stamps`` (n, B, size, size), ``dx`` (n, B), ...; ``flags``
        OR-ed over the bands (`OFF_IMAGE` if the position is off any band).

    Examples
    --------
    >>> import numpy as np
    >>> from glue_astrodl.sim import make_wcs
    >>> images = [np.zeros((50, 50)), np.zeros((50, 50))]
    >>> wcss = [make_wcs((50, 50)), make_wcs((50, 50), ra=150.1 + 2 / 3600)]  # shifted 10 px
    >>> [b] = band_cutouts(images, wcss, [20.0], [25.0], 5)
    >>> b.stamps.shape, b.ix.tolist()
    ((1, 2, 5, 5), [[20, 30]])
    """
    if len(images) != len(wcss) or not len(images):
        raise BadInputError(f"need one WCS per band image, got {len(images)} images and {len(wcss)} WCSs")
    masks = [None] * len(images) if masks is None else list(masks)
    x, y = _positions(x, y)
    grids = [(x, y)] + [positions_in(wcss[0], w, x, y) for w in wcss[1:]]
    streams = [cutouts(im, bx, by, size, mask=m, batch=batch) for im, (bx, by), m in zip(images, grids, masks)]
    for batches in zip(*streams):
        yield _stack(batches)
