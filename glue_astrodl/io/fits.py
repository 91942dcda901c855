"""FITS input and output.

Input: `read_image` picks an image HDU (first one with data by default), keeps its header
and WCS, and memory-maps the data so large frames are streamed, not loaded. Every problem
a user can fix becomes a one-line `BadInputError` naming the file.

Output: probability cubes (float32, one plane per class), uint8 masks and int16 bit-masks,
each with the input header (WCS included) and provenance keywords; all writes are atomic.
Products larger than memory are written in place: `memmap_fits` lays out the whole file
(headers known up front) and hands out each HDU's data as a writable memory map, filled
tile by tile.
"""

import contextlib
import mmap
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from .. import __version__
from ..core.errors import BadInputError
from ..core.atomic import atomic_path

__all__ = ["ImageData", "read_image", "image_hdu_indices", "product_header", "probability_header", "mask_header",
           "bitmask_header", "probability_hdu", "mask_hdu", "bitmask_hdu", "write_probability_cube", "write_mask",
           "write_hdus", "memmap_fits", "MemmapFits"]

_STRUCTURAL = ("SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "BZERO",
               "BSCALE", "BLANK", "CHECKSUM", "DATASUM", "EXTNAME", "EXTVER", "BUNIT",
               "ZIMAGE", "ZBITPIX", "ZNAXIS", "ZTILE", "ZCMPTYPE", "ZQUANTIZ", "ZDITHER0")


@dataclass
class ImageData:
    """An image array (possibly memory-mapped) with its header and celestial WCS."""

    data: np.ndarray
    header: fits.Header
    wcs: WCS | None = None
    path: str | None = None
    hdu: int | str = 0
    wcs_problem: str | None = None  # why ``wcs`` is None, for the user

    @property
    def name(self):
        return f"{self.path}[{self.hdu}]" if self.path else "image"


def celestial_wcs(header):
    """Return ``(wcs, problem)``: a 2-D celestial WCS, or None and a one-line reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header, naxis=2)
    except Exception as err:  # astropy raises many types for broken WCS keywords
        return None, f"broken WCS ({str(err).splitlines()[0]}): working in pixel coordinates"
    if not wcs.has_celestial:
        return None, "no celestial WCS: working in pixel coordinates"
    try:
        ra, dec = wcs.celestial.all_pix2world([[0.0, 0.0]], 0)[0]
        if not (np.isfinite(ra) and np.isfinite(dec)):
            raise ValueError("non-finite sky position")
    except Exception as err:
        return None, f"broken WCS ({str(err).splitlines()[0]}): working in pixel coordinates"
    return wcs.celestial, None


def _is_image(hdu):
    return isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)) and hdu.header.get("NAXIS", 0) > 0


def _open(path):
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path}: no such file")
    if path.is_dir():
        raise BadInputError(f"{path}: is a directory, not a FITS file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(path, memmap=True, lazy_load_hdus=False)
        except (OSError, ValueError, TypeError) as err:
            reason = "empty or truncated" if path.stat().st_size < 2880 else "not a FITS file"
            raise BadInputError(f"{path}: {reason} ({str(err).splitlines()[0][:80]})") from None
    if any("truncated" in str(w.message) for w in caught):
        hdul.close()
        raise BadInputError(f"{path}: truncated FITS file (shorter than its headers declare)")
    return hdul


def image_hdu_indices(path):
    """Indices of all HDUs of ``path`` that hold image data."""
    with _open(path) as hdul:
        return [i for i, h in enumerate(hdul) if _is_image(h)]


def read_image(path, hdu=None):
    """Read one image HDU of ``path`` (index or EXTNAME; first image HDU by default).

    The data keep their stored dtype and byte order and stay memory-mapped where the
    file allows (uncompressed, unscaled); tasks convert tile by tile to float32.
    """
    hdul = _open(path)
    try:
        if hdu is None:
            found = [i for i, h in enumerate(hdul) if _is_image(h)]
            if not found:
                kinds = ", ".join(type(h).__name__ for h in hdul)
                raise BadInputError(f"{path}: no image HDU (contains {kinds})")
            hdu = found[0]
        try:
            h = hdul[hdu]
        except (KeyError, IndexError):
            raise BadInputError(f"{path}: no HDU {hdu!r} (file has {len(hdul)} HDUs)") from None
        if not _is_image(h):
            raise BadInputError(f"{path}[{hdu}]: not an image HDU ({type(h).__name__})")
        try:
            try:
                data = h.data
            except ValueError as err:
                if "BZERO" not in str(err):
                    raise
                hdul.close()  # scaled integers cannot be memory-mapped: load them
                hdul = fits.open(path, memmap=False)
                h = hdul[hdu]
                data = h.data
        except (TypeError, ValueError, OSError) as err:
            raise BadInputError(f"{path}[{hdu}]: unreadable data ({str(err).splitlines()[0][:80]})") from None
        if data is None or data.size == 0:
            raise BadInputError(f"{path}[{hdu}]: HDU has no data")
        if data.ndim == 1:
            raise BadInputError(f"{path}[{hdu}]: 1-D data (shape {data.shape}); need a 2-D image")
        if not np.issubdtype(data.dtype, np.number):
            raise BadInputError(f"{path}[{hdu}]: non-numeric data ({data.dtype})")
        header = h.header.copy()
    except BadInputError:
        hdul.close()
        raise
    wcs, problem = celestial_wcs(header)
    # hdul stays open: the memory map lives as long as ``data``.
    return ImageData(data=data, header=header, wcs=wcs, path=str(path), hdu=hdu, wcs_problem=problem)


def product_header(header=None, wcs=None, n_planes=None, **keywords):
    """Header for an output product: the input's cards (WCS included) minus structure.

    With ``n_planes`` a third WCS axis ``CLASS`` (1-based plane index) is added so the
    celestial WCS stays valid on a ``(K, H, W)`` cube.
    """
    out = fits.Header()
    if header is not None:
        for card in header.cards:
            if card.keyword.startswith(_STRUCTURAL) or card.keyword in ("", "WCSAXES"):
                continue
            out.append(card, end=True)
    if wcs is not None:
        out.update(wcs.to_header(relax=True))
    if n_planes is not None and (wcs is not None or "CTYPE1" in out):
        out["WCSAXES"] = 3
        out.update({"CTYPE3": "CLASS", "CRPIX3": 1.0, "CRVAL3": 1.0, "CDELT3": 1.0, "CUNIT3": ""})
    out["ASTRODL"] = (__version__, "glue-astrodl version")
    for key, value in keywords.items():
        out[key.upper()[:8]] = value
    return out


def _class_cards(header, classes, priors=None, thresholds=None, model=None, bits=None, taxonomy=None):
    """Our ``CLASSn``/``PRIORn``/``THRESHn`` cards, plus MaxiMask's own per-class keywords
    (``CR = 'CR: cosmic rays'``, ``CR_DIM``, ``CR_PR``, ``CR_TH``, ``CR_SM``) for the
    classes of ``taxonomy`` (a `glue_astrodl.core.taxonomy.Taxonomy`), so files read like
    MaxiMask's outputs."""
    for i, name in enumerate(classes, start=1):
        header[f"CLASS{i}"] = (name, f"plane {i} class")
        if priors is not None and name in priors:
            header[f"PRIOR{i}"] = (float(priors[name]), f"prior of {name}")
        if thresholds is not None and name in thresholds:
            header[f"THRESH{i}"] = (float(thresholds[name]), f"threshold of {name}")
    header["NCLASS"] = len(classes)
    descriptions = taxonomy.descriptions if taxonomy is not None else {}
    known = [c for c in (bits or classes) if c in descriptions]
    if known:
        header["PRIORS"] = ("Yes" if priors else "No", "Whether prior modification was applied or not")
        header["THRESH"] = ("Yes" if bits or thresholds else "No", "Whether thresholding was applied or not")
        header["SMASK"] = ("Yes" if bits else "No", "Whether binary power mask was applied or not")
    for k, name in enumerate(known):
        header[name] = taxonomy.label(name)
        header[f"{name}_DIM"] = (k, "plane index (MaxiMask convention)")
        if priors is not None and name in priors:
            header[f"{name}_PR"] = (float(priors[name]), f"{name} prior")
        if thresholds is not None and name in thresholds:
            header[f"{name}_TH"] = (float(thresholds[name]), f"{name} threshold")
        if bits:
            header[f"{name}_SM"] = (int(bits[name]), f"{name} binary power value")
    if model is not None:
        header["MODEL"] = (model.get("name", "?"), "model name")
        header["MODELVER"] = (str(model.get("version", "?")), "model version")
        header["MODELSHA"] = model.get("weights_sha256", "?")  # sha256 of the weights; no room for a comment


def write_hdus(path, hdus, overwrite=True):
    """Write a list of HDUs (first becomes primary) atomically."""
    hdus = list(hdus)
    if not isinstance(hdus[0], fits.PrimaryHDU):
        hdus[0] = fits.PrimaryHDU(hdus[0].data, hdus[0].header)
    with atomic_path(path, overwrite=overwrite) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return Path(path)


_BLOCK = 2880  # FITS record size: headers and data are padded to a multiple of it

#: Data types FITS stores as they are (BITPIX 8, 16, 32, 64, -32, -64; no BZERO scaling).
_RAW_DTYPES = tuple(np.dtype(t) for t in (np.uint8, np.int16, np.int32, np.int64, np.float32, np.float64))


def _padded(nbytes):
    return -(-nbytes // _BLOCK) * _BLOCK


def _placeholder_hdu(header, shape, dtype, primary):
    """An HDU whose header is ``header`` with the structural cards of ``shape`` ``dtype`` data,
    as astropy writes them (laid out on a one-pixel placeholder, then given the real axis lengths)."""
    cls = fits.PrimaryHDU if primary else fits.ImageHDU
    if not shape:
        return cls(header=header)
    if np.dtype(dtype) not in _RAW_DTYPES:
        supported = ", ".join(map(str, _RAW_DTYPES))
        raise ValueError(f"cannot memory-map {np.dtype(dtype)} FITS data (supported: {supported})")
    hdu = cls(np.zeros((1,) * len(shape), dtype), header)
    for axis, n in enumerate(reversed(shape), start=1):
        hdu.header[f"NAXIS{axis}"] = int(n)
    return hdu


class MemmapFits:
    """A FITS file laid out in full on disk, whose data are written in place through a memory map.

    ``layout`` lists one ``(header, shape, dtype)`` per HDU; the first becomes the primary HDU
    and ``shape`` ``()`` (or None) means a header-only HDU. Headers get the structural cards
    astropy would write for that data. ``data[i]`` is HDU ``i``'s data: a writable big-endian
    ``numpy`` array on the map (None for a header-only HDU); assigning native-endian values
    converts them. The file's space is reserved up front, so a full disk fails here with
    ``OSError`` rather than later inside the map. Use `memmap_fits` (see its example) to get
    one that appears under its final name only when complete.
    """

    def __init__(self, path, layout):
        layout = [(header, tuple(shape or ()), np.dtype(dtype).newbyteorder(">")) for header, shape, dtype in layout]
        hdul = fits.HDUList([_placeholder_hdu(h, s, d.newbyteorder("="), i == 0) for i, (h, s, d) in enumerate(layout)])
        hdul.update_extend()
        texts = [hdu.header.tostring().encode("ascii") for hdu in hdul]
        self._offsets, size = [], 0
        for text, (_, shape, dtype) in zip(texts, layout):
            self._offsets.append(size + len(text))
            size += len(text) + _padded(int(np.prod(shape)) * dtype.itemsize if shape else 0)
        with open(path, "w+b") as f:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(f.fileno(), 0, size)  # real blocks (zeros), not a sparse file
            else:
                f.truncate(size)
            for text, start in zip(texts, self._offsets):
                f.seek(start - len(text))
                f.write(text)
            f.flush()
            self._map = mmap.mmap(f.fileno(), size)
        self.data = [np.ndarray(shape, dtype, buffer=self._map, offset=start) if shape else None
                     for (_, shape, dtype), start in zip(layout, self._offsets)]

    def release(self, index, rows=None):
        """Drop rows ``rows = (y0, y1)`` (default: all) of every plane of HDU ``index`` from this
        process's memory; they stay in the file (the map is shared), so the resident size of
        a large product stays at the rows being written. A no-op where ``madvise`` is missing."""
        data = self.data[index]
        if data is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        height, row = data.shape[-2], data.shape[-1] * data.itemsize
        y0, y1 = rows or (0, height)
        for plane in range(int(np.prod(data.shape[:-2]))):
            start = self._offsets[index] + (plane * height + y0) * row
            aligned = start - start % mmap.PAGESIZE
            self._map.madvise(mmap.MADV_DONTNEED, aligned, start + (y1 - y0) * row - aligned)

    def flush(self):
        """Write the mapped data to disk."""
        self._map.flush()


@contextlib.contextmanager
def memmap_fits(path, layout, overwrite=True):
    """Lay out the FITS file ``path`` (see `MemmapFits`) at a temporary name beside it and
    yield the `MemmapFits`; the file is flushed and renamed to ``path`` when the block ends
    without an error. An error, a Ctrl-C or a cancel leaves nothing under ``path`` (and
    removes the temporary).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from astropy.io import fits
    >>> path = tempfile.mkdtemp() + "/big.fits"
    >>> header = fits.Header({"EXTNAME": "MASKS1"})
    >>> with memmap_fits(path, [(header, (2, 300, 400), np.uint8)]) as out:
    ...     for y in range(0, 300, 100):  # e.g. one band of tiles at a time
    ...         out.data[0][:, y:y + 100] = 1
    ...         out.release(0, (y, y + 100))
    >>> with fits.open(path) as hdul:
    ...     hdul[0].name, hdul[0].data.shape, int(hdul[0].data.sum())
    ('MASKS1', (2, 300, 400), 240000)
    """
    with atomic_path(path, overwrite=overwrite) as tmp:
        try:
            out = MemmapFits(tmp, layout)
        except OSError as err:
            raise OSError(err.errno, f"{path}: {err.strerror}") from None
        yield out
        out.flush()


def _cube(data, dtype):
    data = np.asarray(data, dtype=dtype)
    return data[None] if data.ndim == 2 else data


def probability_header(classes, header=None, wcs=None, priors=None, thresholds=None, model=None, taxonomy=None):
    """Header of a float32 ``(K, H, W)`` probability cube of ``classes``: the input's cards,
    a ``CLASS`` WCS axis, class names, priors, thresholds and provenance."""
    hdr = product_header(header, wcs, n_planes=len(classes), BUNIT="")
    _class_cards(hdr, classes, priors, thresholds, model, taxonomy=taxonomy)
    return hdr


def mask_header(classes, header=None, wcs=None, thresholds=None, model=None, taxonomy=None):
    """Header of uint8 ``(K, H, W)`` per-class masks of ``classes``."""
    hdr = product_header(header, wcs, n_planes=len(classes))
    _class_cards(hdr, classes, thresholds=thresholds, model=model, taxonomy=taxonomy)
    return hdr


def bitmask_header(bits, header=None, wcs=None, model=None, taxonomy=None):
    """Header of an int16 bit-mask; ``bits`` maps class name to its code (1, 2, 4, ...)."""
    hdr = product_header(header, wcs)
    for name, code in bits.items():
        hdr[f"BIT{int(np.log2(code)):02d}"] = (name, f"bit code {code}")
    _class_cards(hdr, [], model=model, bits=bits, taxonomy=taxonomy)
    del hdr["NCLASS"]
    return hdr


def probability_hdu(cube, classes, header=None, wcs=None, priors=None, thresholds=None, model=None, taxonomy=None):
    """ImageHDU of a float32 ``(K, H, W)`` probability cube with class names and provenance."""
    return fits.ImageHDU(_cube(cube, np.float32),
                         probability_header(classes, header, wcs, priors, thresholds, model, taxonomy))


def mask_hdu(masks, classes, header=None, wcs=None, thresholds=None, model=None, taxonomy=None):
    """ImageHDU of uint8 ``(K, H, W)`` per-class masks (1 = flagged)."""
    return fits.ImageHDU(_cube(masks, np.uint8), mask_header(classes, header, wcs, thresholds, model, taxonomy))


def bitmask_hdu(bitmask, bits, header=None, wcs=None, model=None, taxonomy=None):
    """ImageHDU of an int16 bit-mask; ``bits`` maps class name to its code (1, 2, 4, ...)."""
    return fits.ImageHDU(np.asarray(bitmask, dtype=np.int16), bitmask_header(bits, header, wcs, model, taxonomy))


def write_probability_cube(path, cube, classes, header=None, wcs=None, priors=None,
                           thresholds=None, model=None, extra_hdus=(), overwrite=True):
    """Write a float32 ``(K, H, W)`` probability cube with class names and provenance."""
    hdu = probability_hdu(cube, classes, header, wcs, priors, thresholds, model)
    return write_hdus(path, [hdu, *extra_hdus], overwrite)


def write_mask(path, masks, classes, header=None, wcs=None, thresholds=None, model=None, overwrite=True):
    """Write uint8 ``(K, H, W)`` per-class masks (1 = flagged)."""
    return write_hdus(path, [mask_hdu(masks, classes, header, wcs, thresholds, model)], overwrite)

