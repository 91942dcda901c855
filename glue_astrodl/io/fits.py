"""FITS input and output.

Input: `read_image` picks an image HDU (first one with data by default), keeps its header
and WCS, and memory-maps the data so large frames are streamed, not loaded. Every problem
a user can fix becomes a one-line `BadInputError` naming the file.

Output: probability cubes (float32, one plane per class), uint8 masks and int16 bit-masks,
each with the input header (WCS included) and provenance keywords; all writes are atomic.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from .. import __version__
from ..core.errors import BadInputError
from ..core.atomic import atomic_path

__all__ = ["ImageData", "read_image", "image_hdu_indices", "product_header", "probability_hdu",
           "mask_hdu", "bitmask_hdu", "write_probability_cube", "write_mask", "write_bitmask", "write_hdus"]

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


def _cube(data, dtype):
    data = np.asarray(data, dtype=dtype)
    return data[None] if data.ndim == 2 else data


def probability_hdu(cube, classes, header=None, wcs=None, priors=None, thresholds=None, model=None, taxonomy=None):
    """ImageHDU of a float32 ``(K, H, W)`` probability cube with class names and provenance."""
    cube = _cube(cube, np.float32)
    hdr = product_header(header, wcs, n_planes=cube.shape[0], BUNIT="")
    _class_cards(hdr, classes, priors, thresholds, model, taxonomy=taxonomy)
    return fits.ImageHDU(cube, hdr)


def mask_hdu(masks, classes, header=None, wcs=None, thresholds=None, model=None, taxonomy=None):
    """ImageHDU of uint8 ``(K, H, W)`` per-class masks (1 = flagged)."""
    masks = _cube(masks, np.uint8)
    hdr = product_header(header, wcs, n_planes=masks.shape[0])
    _class_cards(hdr, classes, thresholds=thresholds, model=model, taxonomy=taxonomy)
    return fits.ImageHDU(masks, hdr)


def bitmask_hdu(bitmask, bits, header=None, wcs=None, model=None, taxonomy=None):
    """ImageHDU of an int16 bit-mask; ``bits`` maps class name to its code (1, 2, 4, ...)."""
    hdr = product_header(header, wcs)
    for name, code in bits.items():
        hdr[f"BIT{int(np.log2(code)):02d}"] = (name, f"bit code {code}")
    _class_cards(hdr, [], model=model, bits=bits, taxonomy=taxonomy)
    del hdr["NCLASS"]
    return fits.ImageHDU(np.asarray(bitmask, dtype=np.int16), hdr)


def write_probability_cube(path, cube, classes, header=None, wcs=None, priors=None,
                           thresholds=None, model=None, extra_hdus=(), overwrite=True):
    """Write a float32 ``(K, H, W)`` probability cube with class names and provenance."""
    hdu = probability_hdu(cube, classes, header, wcs, priors, thresholds, model)
    return write_hdus(path, [hdu, *extra_hdus], overwrite)


def write_mask(path, masks, classes, header=None, wcs=None, thresholds=None, model=None, overwrite=True):
    """Write uint8 ``(K, H, W)`` per-class masks (1 = flagged)."""
    return write_hdus(path, [mask_hdu(masks, classes, header, wcs, thresholds, model)], overwrite)


def write_bitmask(path, bitmask, bits, header=None, wcs=None, model=None, overwrite=True):
    """Write an int16 bit-mask; ``bits`` maps class name to its bit code (1, 2, 4, ...)."""
    return write_hdus(path, [bitmask_hdu(bitmask, bits, header, wcs, model)], overwrite)
