"""Tasks compose: a bad-pixel mask from a file, an array or another task's result.

Tasks that declare ``takes_mask`` accept ``mask=``: a boolean (or integer, non-zero =
flagged) 2-D array on the image grid, a FITS file holding one (a bit-mask or mask cube
written by ``astrodl contaminants``, MaxiMask's output, any DQ image), a result with a
``defect_mask()`` (a `ContaminantDetection`), or the string ``"contaminants"`` to run the
contaminant task on the same image first. Flagged pixels are ignored like NaN pixels and
recorded in the task's flag column.
"""

import numpy as np
from scipy.ndimage import binary_dilation

from ..core.errors import BadInputError

__all__ = ["RUN_CONTAMINANTS", "resolve_mask"]

RUN_CONTAMINANTS = "contaminants"


def _from_file(path, shape):
    from ..io.fits import read_image

    img = read_image(path)
    data = np.asarray(img.data)
    if data.ndim == 3:  # a mask cube: any plane flagged
        data = (data != 0).any(axis=0)
    if data.shape != shape:
        raise BadInputError(f"{path}: mask of shape {data.shape} does not match the image's {shape}")
    if np.issubdtype(data.dtype, np.floating):  # a DQ layer saved with NaN for unflagged
        data = np.nan_to_num(data, nan=0.0)
    return data != 0


def resolve_mask(image, mask, *, grow=1, **contaminant_params):
    """The boolean bad-pixel mask of ``image`` (an `ImageData`) described by ``mask``, or None.

    ``grow`` dilates the flags by that many pixels (the faint edges of a cosmic-ray hit
    are not flagged but still bias a measurement); ``contaminant_params`` go to
    `detect_contaminants` when ``mask == "contaminants"``.

    Examples
    --------
    >>> import numpy as np
    >>> from glue_astrodl.tasks.inputs import as_image
    >>> img = as_image(np.zeros((16, 16)))
    >>> bad = np.zeros((16, 16), np.int16); bad[8, 8] = 1  # e.g. a bit-mask
    >>> int(resolve_mask(img, bad).sum())  # grown by one pixel: a plus of 5
    5
    >>> resolve_mask(img, None) is None
    True
    """
    if mask is None or mask is False:
        return None
    shape = image.data.shape
    if isinstance(mask, str) and mask == RUN_CONTAMINANTS:
        from .contaminants import detect_contaminants

        mask = detect_contaminants(image, **contaminant_params)
    if hasattr(mask, "defect_mask"):
        flags = mask.defect_mask()
    elif isinstance(mask, (str, bytes)) or hasattr(mask, "__fspath__"):
        flags = _from_file(mask, shape)
    else:
        flags = np.asarray(mask)
        if flags.shape != shape:
            raise BadInputError(f"mask of shape {flags.shape} does not match the image's {shape}")
        flags = np.nan_to_num(flags, nan=0) != 0
    if grow:
        flags = binary_dilation(flags, iterations=int(grow))
    return flags
