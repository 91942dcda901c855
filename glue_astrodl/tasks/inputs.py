"""Turn what users pass (path, HDU, array, NDData) into one 2-D image with header and WCS."""

import dataclasses
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..core.errors import BadInputError
from ..io.fits import ImageData, celestial_wcs, read_image

__all__ = ["as_image"]


def as_image(image, header=None, wcs=None, hdu=None, plane=None):
    """Return an `ImageData` holding a single 2-D plane.

    ``image`` may be a path, an `ImageData`, a FITS HDU, an ``NDData``/``CCDData`` or an
    array. Cubes need ``plane`` (the index along the first axis).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from glue_astrodl.sim import simulate_point_sources
    >>> img = as_image(np.zeros((16, 16), np.float32))  # an array: no header, no WCS
    >>> img.data.shape, img.wcs_problem
    ((16, 16), 'no celestial WCS: working in pixel coordinates')
    >>> frame = simulate_point_sources((64, 64), snr=(20,), n_per_snr=2, fwhm=2.5, seed=1)
    >>> path = frame.write(Path(tempfile.mkdtemp()) / "frame.fits")
    >>> img = as_image(path)  # a FITS file: header and WCS come with it
    >>> img.name.endswith("frame.fits[0]"), img.wcs.wcs.ctype[0], img.header["FWHM"]
    (True, 'RA---TAN', 2.5)
    >>> as_image(np.zeros((3, 16, 16)), plane=1).data.shape  # one plane of a cube
    (16, 16)
    """
    if header is not None and not isinstance(header, fits.Header):
        raise BadInputError(f"header must be an astropy.io.fits.Header, got {type(header).__name__}")
    if wcs is not None and not hasattr(wcs, "celestial"):
        raise BadInputError(f"wcs must be an astropy.wcs.WCS, got {type(wcs).__name__}")
    if isinstance(image, (str, Path)):
        img = read_image(image, hdu=hdu)
    elif isinstance(image, ImageData):
        img = dataclasses.replace(image)  # the caller's object keeps its data (e.g. a whole cube)
    elif isinstance(image, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
        img = ImageData(image.data, image.header.copy())
    elif hasattr(image, "data") and hasattr(image, "wcs") and not isinstance(image, np.ndarray):
        hdr = fits.Header(getattr(image, "meta", {}) or {}) if header is None else header
        unit = getattr(image, "unit", None)
        if unit is not None and str(unit) and "BUNIT" not in hdr:  # an NDData's unit is its pixels' unit
            hdr["BUNIT"] = str(unit)
        img = ImageData(np.asarray(image.data), hdr, wcs=getattr(image.wcs, "celestial", None))
    else:
        img = ImageData(np.asarray(image), fits.Header() if header is None else header)
    if header is not None and img.header is not header:
        img.header = header
    if wcs is not None:
        img.wcs, img.wcs_problem = wcs.celestial, None
    elif img.wcs is None and img.wcs_problem is None:
        img.wcs, img.wcs_problem = celestial_wcs(img.header)
    data = img.data
    if data is None or not np.issubdtype(data.dtype, np.number):
        raise BadInputError(f"{img.name}: not numeric image data")
    if data.ndim < 2:
        raise BadInputError(f"{img.name}: {data.ndim}-D data (shape {data.shape}); need a 2-D image")
    if data.ndim > 2:
        squeezed = [n for n in data.shape[:-2] if n != 1]
        if plane is not None:
            data = data.reshape(-1, *data.shape[-2:])[plane]
        elif not squeezed:
            data = data.reshape(data.shape[-2:])
        else:
            raise BadInputError(f"{img.name}: data cube of shape {data.shape}; choose a plane (--plane N)")
    if min(data.shape) < 8:
        raise BadInputError(f"{img.name}: image too small ({data.shape[0]}x{data.shape[1]}); need at least 8x8 pixels")
    img.data = data
    return img
