"""Catalogues as task input: a table of sources and their pixel positions on an image.

`read_catalogue` takes a FITS, ECSV, CSV or VOTable file or an astropy ``Table`` (the glue
and jdaviz front ends turn their catalogue ``Data`` into one with
`glue_astrodl.products.data_table`) and finds the positions:

* RA/Dec in degrees (``ra``/``dec``, ``ALPHA_J2000``/``DELTA_J2000``, ``RAJ2000``/``DEJ2000``,
  ``RA_ICRS``/``DE_ICRS``, any case; Quantity columns are converted, a ``SkyCoord`` column is
  used as it is), taken to pixels through the image's celestial WCS (ICRS assumed);
* or pixel columns: ``x``/``y`` and ``xcentroid``/``ycentroid`` are 0-based as in photutils,
  SExtractor's ``X_IMAGE``/``Y_IMAGE`` (and ``XWIN_IMAGE``/``YWIN_IMAGE``) are 1-based and
  get 1 subtracted.

With both kinds present, RA/Dec wins when the image has a celestial WCS (a catalogue made
on another image has the wrong pixel positions, never the wrong sky positions). The
result's ``note`` says which columns were used. Problems are one-line `BadInputError`
messages naming the catalogue.
"""

import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Column, Table

from ..core.errors import BadInputError

__all__ = ["CataloguePositions", "read_catalogue", "SKY_COLUMNS", "PIXEL_COLUMNS", "POSITIONS"]

#: Recognised RA/Dec column pairs (matched case-insensitively), in order of preference.
SKY_COLUMNS = (("ra", "dec"), ("alpha_j2000", "delta_j2000"), ("raj2000", "dej2000"), ("ra_icrs", "de_icrs"))
#: Recognised pixel column pairs and the index of their first pixel (0 photutils, 1 SExtractor).
PIXEL_COLUMNS = (("x", "y", 0), ("xcentroid", "ycentroid", 0), ("x_image", "y_image", 1),
                 ("xwin_image", "ywin_image", 1))
#: Values of ``positions=``: which columns to use.
POSITIONS = ("auto", "sky", "pixel")


class CataloguePositions(NamedTuple):
    """A catalogue and the pixel positions of its rows on the image.

    ``table`` is the input table (not modified), ``x``, ``y`` float64 0-based pixel
    positions (NaN where a row has none), ``note`` one line saying which columns gave
    them, ``name`` what the catalogue is called in messages.
    """

    table: Table
    x: np.ndarray
    y: np.ndarray
    note: str
    name: str


def _read_file(path):
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path}: no such file")
    if path.is_dir():
        raise BadInputError(f"{path}: is a directory, not a catalogue")
    with open(path, "rb") as f:
        head = f.read(80)
    suffixes = "".join(path.suffixes).lower()
    if head.startswith(b"SIMPLE  =") or ".fit" in suffixes or ".fts" in suffixes:
        fmt = "fits"
    elif head.startswith(b"# %ECSV"):
        fmt = "ascii.ecsv"
    elif path.suffix.lower() in (".vot", ".xml"):
        fmt = "votable"
    else:
        fmt = "ascii.csv" if path.suffix.lower() == ".csv" else "ascii"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unit and multi-HDU chatter; a real problem raises
            return Table.read(path, format=fmt)
    except Exception as err:  # astropy's readers raise many types
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BadInputError(f"{path}: not a readable {fmt} table ({reason})") from None


def _as_table(catalog, name):
    """``(table, name)`` of a path, a Table, a pandas DataFrame, a structured array or a dict."""
    if isinstance(catalog, (str, Path)):
        return _read_file(catalog), name or str(catalog)
    if isinstance(catalog, Table):
        return catalog, name or catalog.meta.get("label") or "catalogue"
    try:
        if type(catalog).__module__.startswith("pandas"):
            return Table.from_pandas(catalog), name or "catalogue"
        if isinstance(catalog, (dict, np.ndarray)) and (isinstance(catalog, dict) or catalog.dtype.names):
            return Table(catalog), name or "catalogue"
    except (ValueError, TypeError) as err:
        raise BadInputError(f"{name or 'catalogue'}: not a table ({err})") from None
    raise BadInputError(f"{name or 'catalogue'}: not a table (a {type(catalog).__name__}); "
                        "give a FITS/ECSV/CSV file or an astropy Table")


def _pair(table, pairs):
    """The first pair of ``pairs`` whose columns ``table`` has (any case), as actual names."""
    lower = {c.lower(): c for c in table.colnames}
    for pair in pairs:
        if pair[0] in lower and pair[1] in lower:
            return (lower[pair[0]], lower[pair[1]], *pair[2:])
    return None


def _skycoord_column(table):
    return next((c for c in table.colnames if isinstance(table[c], SkyCoord)), None)


def _numbers(table, col, name, unit=None):
    """Column ``col`` as float64 (in ``unit`` when it has a unit), NaN where masked."""
    data = table[col]
    mask = np.asarray(getattr(data, "mask", False), dtype=bool)
    try:
        if isinstance(data, Column) and data.unit is not None:
            data = data.quantity
        data = getattr(data, "unmasked", data)
        if unit is not None and isinstance(data, u.Quantity):
            values = data.to_value(unit)
        else:
            values = np.asarray(getattr(data, "value", data), dtype=np.float64)
    except (u.UnitsError, ValueError, TypeError) as err:
        raise BadInputError(f"{name}: column {col!r} is not numeric{' ' + str(unit) if unit else ''} ({err})") from None
    return np.where(mask, np.nan, np.asarray(values, dtype=np.float64))


def _sky(table, name, columns):
    """SkyCoord of every row (ICRS from RA/Dec in degrees, or the table's SkyCoord column)."""
    if len(columns) == 1:
        return table[columns[0]]
    ra, dec = (_numbers(table, c, name, u.deg) for c in columns)
    if np.any(np.abs(dec[np.isfinite(dec)]) > 90):
        raise BadInputError(f"{name}: {columns[1]!r} has values outside [-90, 90] deg; is it in degrees?")
    return SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")


def _image_wcs(image):
    """``(wcs, why none)`` of an `ImageData`, a WCS or None."""
    if image is None:
        return None, "no image WCS given"
    wcs = image if hasattr(image, "world_to_pixel") else getattr(image, "wcs", None)
    if wcs is None or not wcs.has_celestial:
        return None, getattr(image, "wcs_problem", None) or "no celestial WCS"
    return wcs.celestial, None


def _choose(positions, sky, pixel, wcs, why, name):
    """``"sky"`` or ``"pixel"``: the columns to use, or a one-line error."""
    if positions not in POSITIONS:
        raise BadInputError(f"positions must be one of {', '.join(POSITIONS)}, got {positions!r}")
    if positions != "pixel" and sky is not None and wcs is not None:
        return "sky"
    if positions != "sky" and pixel is not None:
        return "pixel"
    if sky is not None and positions != "pixel":
        raise BadInputError(f"{name}: positions are RA/Dec ({'/'.join(sky)}) but the image has no celestial WCS "
                            f"({why}); give x/y pixel columns")
    wanted, pairs = {"sky": ("RA/Dec", SKY_COLUMNS), "pixel": ("x/y pixel", PIXEL_COLUMNS),
                     "auto": ("position", SKY_COLUMNS + PIXEL_COLUMNS)}[positions]
    known = ", ".join("/".join(p[:2]) for p in pairs)
    raise BadInputError(f"{name}: no {wanted} columns (looked for {known}, any case)")


def read_catalogue(catalog, image=None, *, positions="auto", name=None):
    """Read a catalogue and the pixel positions of its rows on ``image``.

    Parameters
    ----------
    catalog : str, Path, astropy.table.Table, pandas.DataFrame or structured array
        A FITS, ECSV, CSV or VOTable file (format from its content and suffix) or a table.
    image : ImageData or astropy.wcs.WCS, optional
        The image the positions are for (its celestial WCS takes RA/Dec to pixels); see
        `glue_astrodl.tasks.inputs.as_image`.
    positions : {'auto', 'sky', 'pixel'}
        Which columns to use: RA/Dec through the WCS, pixel columns, or ``'auto'`` (RA/Dec
        when both they and a celestial WCS exist, else pixel columns).
    name : str, optional
        How messages call the catalogue (default: the path, or the table's ``label`` meta).

    Returns
    -------
    CataloguePositions
        ``(table, x, y, note, name)`` with 0-based pixel ``x``, ``y``.

    Raises
    ------
    BadInputError
        No such file, not a table, no rows, no position columns, RA/Dec without a WCS.

    Examples
    --------
    >>> from astropy.table import Table
    >>> cat = read_catalogue(Table({"X_IMAGE": [1.0, 10.5], "Y_IMAGE": [1.0, 20.0]}))
    >>> cat.x, cat.note
    (array([0. , 9.5]), 'positions from X_IMAGE/Y_IMAGE pixel columns (1-based, SExtractor: 1 subtracted)')
    >>> from glue_astrodl.sim import make_wcs
    >>> cat = read_catalogue(Table({"RA": [150.1], "Dec": [2.2]}), make_wcs((100, 100)))
    >>> cat.x, cat.y, cat.note
    (array([49.5]), array([49.5]), 'positions from RA/Dec through the image WCS')
    """
    table, name = _as_table(catalog, name)
    if len(table) == 0:
        raise BadInputError(f"{name}: empty catalogue (no rows)")
    sky_col = _skycoord_column(table)
    sky = (sky_col,) if sky_col else _pair(table, SKY_COLUMNS)
    pixel = _pair(table, PIXEL_COLUMNS)
    wcs, why = _image_wcs(image)
    if _choose(positions, sky, pixel, wcs, why, name) == "sky":
        x, y = wcs.world_to_pixel(_sky(table, name, sky))
        note = f"positions from {'/'.join(sky)} through the image WCS"
    else:
        xcol, ycol, first = pixel
        x, y = _numbers(table, xcol, name) - first, _numbers(table, ycol, name) - first
        note = f"positions from {xcol}/{ycol} pixel columns " + (
            "(0-based)" if first == 0 else "(1-based, SExtractor: 1 subtracted)")
        if sky is not None and positions == "auto":
            note += f"; {'/'.join(sky)} unused: {why}"
    return CataloguePositions(table, np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), note, name)
