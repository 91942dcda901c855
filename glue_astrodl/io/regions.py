"""Turn probability maps and masks into polygon regions, and write region files.

Pixel convention (astropy / regions): 0-based pixel coordinates with pixel centres at
integer positions; ``x`` is the column and ``y`` the row of the 2-D array.

Polygons are the sub-pixel contour of the map at the threshold level (marching squares,
via ``contourpy``), so a lone pixel of value 1 thresholded at 0.5 becomes a diamond whose
vertices sit half-way to its neighbours. Each connected region gives one polygon: its
outer boundary. Holes (e.g. the inside of a ring) are dropped, so a polygon covers its
holes; islands inside a hole get their own polygon.
"""

from pathlib import Path

import numpy as np

from glue_astrodl.core.errors import BadInputError
from glue_astrodl.core.atomic import atomic_path

__all__ = ["probability_regions", "mask_regions", "write_regions", "REGION_FORMATS", "MIN_REGION_AREA"]

#: File suffix -> ``regions`` format name, as used by :func:`write_regions`.
REGION_FORMATS = {".reg": "ds9", ".crtf": "crtf", ".fits": "fits", ".fit": "fits"}

#: Default smallest polygon kept, in pixels². A lone pixel just above the threshold
#: contours to a sliver (P = 0.6 at 0.5: 0.06 px²); a lone pixel of a mask is 0.5 px².
MIN_REGION_AREA = 0.1


def probability_regions(prob, threshold=0.5, wcs=None, label=None, color=None, min_pixels=1,
                        min_area=MIN_REGION_AREA):
    """Polygons around the connected regions of ``prob`` above ``threshold``.

    ``prob`` is any 2-D score map (NaN counts as 0). A region is a 4-connected set of
    pixels with value > ``threshold`` (two diagonal pixels are merged when the contour
    joins them, i.e. when the mean of their 2x2 quad is above the threshold); regions
    with fewer than ``min_pixels`` such pixels, or whose polygon covers less than
    ``min_area`` pixels², are dropped. With a ``wcs`` that has
    celestial axes the result holds ``PolygonSkyRegion``s, else ``PolygonPixelRegion``s.
    ``label`` becomes the region tag (``meta['tag'] = [label]``), ``color`` the visual
    colour. Returns a ``regions.Regions`` (possibly empty).

    Examples
    --------
    >>> import numpy as np
    >>> prob = np.zeros((10, 10))
    >>> prob[2:4, 2:5] = 0.9  # a 3x2 pixel region
    >>> prob[7, 7] = 0.9  # a lone pixel
    >>> regs = probability_regions(prob, threshold=0.5, label="CR", color="red")
    >>> len(regs), type(regs[0]).__name__, regs[0].meta["tag"], regs[0].visual["color"]
    (2, 'PolygonPixelRegion', ['CR'], 'red')
    >>> regs[1].vertices.x.round(3)  # sub-pixel contour of the lone pixel at 0.5
    array([6.556, 7.   , 7.444, 7.   ])
    >>> len(probability_regions(prob, 0.5, min_pixels=2))
    1
    >>> prob[7, 7] = 0.52  # barely above the threshold: a 0.002 px² sliver, dropped by default
    >>> len(probability_regions(prob, 0.5)), len(probability_regions(prob, 0.5, min_area=0))
    (1, 2)
    """
    import contourpy
    from contourpy import FillType
    from scipy import ndimage

    z = np.asarray(prob)
    if z.ndim != 2:
        raise BadInputError(f"probability map must be 2-D, got shape {z.shape}")
    if z.dtype.kind not in "biuf":
        raise BadInputError(f"probability map must be numeric, got dtype {z.dtype}")
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise BadInputError(f"threshold must be finite, got {threshold}")
    z = np.nan_to_num(z.astype(np.float64, copy=False), nan=0.0, posinf=1e300, neginf=-1e300)

    # Pad with a value below the threshold so regions touching the edge close.
    pad = 0.0 if threshold >= 0 else threshold - 1.0
    zp = np.pad(z, 1, constant_values=pad)
    maskp = zp > threshold  # contourpy's filled(lower, upper) excludes z == lower
    labels, nlab = ndimage.label(maskp)
    if nlab == 0:
        return _to_regions([], [], wcs, label, color)
    npix = np.bincount(labels.ravel(), minlength=nlab + 1)
    npix[0] = 0

    gen = contourpy.contour_generator(z=zp, fill_type=FillType.ChunkCombinedOffsetOffset,
                                      chunk_size=0)
    points, offsets, outer = gen.filled(threshold, np.inf)
    if points[0] is None:
        return _to_regions([], [], wcs, label, color)
    points, offsets, outer = points[0], offsets[0], outer[0]

    # One chunk, all polygons combined (vectorised OuterOffset). Outer ring of polygon k:
    # points[offsets[outer[k]]:offsets[outer[k] + 1]], closed (last point == first);
    # the closing point is dropped.
    starts = offsets[outer[:-1]].astype(np.int64)
    lens = offsets[outer[:-1] + 1].astype(np.int64) - 1 - starts
    keep = lens >= 3
    starts, lens = starts[keep], lens[keep]
    npoly = len(starts)
    if npoly == 0:
        return _to_regions([], [], wcs, label, color)
    # Gather the outer-ring vertices of all polygons into one array.
    poly_id = np.repeat(np.arange(npoly), lens)
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    xy = points[np.arange(lens.sum()) + shift]

    # Each vertex lies on a grid edge between an inside and an outside pixel: the max
    # label over the (up to 4) surrounding pixel centres is the region it bounds.
    x, y = xy[:, 0], xy[:, 1]
    x0 = np.floor(x).astype(np.intp)
    y0 = np.floor(y).astype(np.intp)
    x1 = np.minimum(np.ceil(x).astype(np.intp), labels.shape[1] - 1)
    y1 = np.minimum(np.ceil(y).astype(np.intp), labels.shape[0] - 1)
    vlab = np.maximum.reduce([labels[y0, x0], labels[y0, x1], labels[y1, x0], labels[y1, x1]])
    # Pixels per polygon: sum over the distinct labels its boundary touches (more than
    # one only where the contour joins diagonal pixels).
    key = np.unique(poly_id[vlab > 0].astype(np.int64) * (nlab + 1) + vlab[vlab > 0])
    count = np.bincount(key // (nlab + 1), weights=npix[key % (nlab + 1)], minlength=npoly)
    bounds = np.concatenate([[0], np.cumsum(lens)])
    good = (count >= max(int(min_pixels), 1)) & (_polygon_areas(xy, bounds) >= float(min_area))

    xy = xy - 1.0  # undo the padding
    sel = np.flatnonzero(good)
    return _to_regions(xy, [(bounds[k], bounds[k + 1]) for k in sel], wcs, label, color)


def _polygon_areas(xy, bounds):
    """Area (shoelace) of each polygon ``xy[bounds[k]:bounds[k + 1]]`` of stacked vertices."""
    following = np.arange(1, len(xy) + 1)
    following[bounds[1:] - 1] = bounds[:-1]  # each ring's last vertex closes on its first
    cross = xy[:, 0] * xy[following, 1] - xy[following, 0] * xy[:, 1]
    return 0.5 * np.abs(np.add.reduceat(cross, bounds[:-1]))


def mask_regions(mask, wcs=None, label=None, color=None, min_pixels=1, min_area=MIN_REGION_AREA):
    """Polygons around the connected regions of a boolean / integer ``mask`` (non-zero).

    Same as :func:`probability_regions` on ``mask != 0`` as a float map at 0.5.

    Examples
    --------
    >>> import numpy as np
    >>> from glue_astrodl.sim import make_wcs
    >>> mask = np.zeros((10, 10), bool)
    >>> mask[2:4, 2:5] = True
    >>> regs = mask_regions(mask, wcs=make_wcs(mask.shape), label="SAT")  # with a WCS: sky polygons
    >>> type(regs[0]).__name__, regs[0].meta["tag"]
    ('PolygonSkyRegion', ['SAT'])
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise BadInputError(f"mask must be 2-D, got shape {m.shape}")
    return probability_regions((m != 0).astype(np.float32), 0.5, wcs=wcs, label=label,
                               color=color, min_pixels=min_pixels, min_area=min_area)


def _to_regions(xy, spans, wcs, label, color):
    """Build the ``Regions`` from stacked pixel vertices and ``(start, stop)`` spans."""
    from regions import (PixCoord, PolygonPixelRegion, PolygonSkyRegion, RegionMeta,
                         Regions, RegionVisual)

    meta = {"tag": [str(label)]} if label is not None else {}
    visual = {"color": color} if color is not None else {}
    if not spans:
        return Regions([])
    if wcs is not None and wcs.has_celestial:
        from astropy.coordinates import SkyCoord
        from astropy.wcs.utils import wcs_to_celestial_frame

        cel = wcs.celestial
        world = cel.pixel_to_world_values(xy[:, 0], xy[:, 1])
        lon, lat = world[cel.wcs.lng], world[cel.wcs.lat]
        coords = SkyCoord(lon, lat, unit="deg", frame=wcs_to_celestial_frame(cel))
        return Regions([PolygonSkyRegion(coords[a:b], meta=RegionMeta(meta),
                                         visual=RegionVisual(visual)) for a, b in spans])
    return Regions([PolygonPixelRegion(PixCoord(xy[a:b, 0], xy[a:b, 1]), meta=RegionMeta(meta),
                                       visual=RegionVisual(visual)) for a, b in spans])


def write_regions(regs, path, format=None, overwrite=True, wcs=None):
    """Write ``regs`` (a ``regions.Regions`` or list of regions) to ``path`` atomically.

    ``format`` is ``'ds9'``, ``'crtf'`` or ``'fits'``; by default it follows the suffix
    (``.reg``, ``.crtf``, ``.fits``/``.fit``). The FITS region format holds pixel
    regions only: sky regions are converted to pixels with ``wcs`` (a
    ``BadInputError`` without one). FITS polygons are stored in fixed-width vertex
    columns, so shorter polygons are padded by repeating their first vertex (which
    closes the ring and leaves the shape unchanged). ds9 and CRTF keep sky regions
    in sky coordinates; CRTF drops tags (it has no such key). An empty ``regs`` writes
    a valid empty file. Returns ``path``.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from glue_astrodl.sim import make_wcs
    >>> mask = np.zeros((10, 10), bool)
    >>> mask[2:4, 2:5] = True
    >>> wcs = make_wcs(mask.shape)
    >>> regs = mask_regions(mask, wcs=wcs, label="CR", color="red")
    >>> folder = Path(tempfile.mkdtemp())
    >>> path = write_regions(regs, folder / "flags.reg")  # ds9, from the suffix
    >>> path.read_text().splitlines()[:3]
    ['# Region file format: DS9 astropy/regions', 'global color=red', 'icrs']
    >>> write_regions(regs, folder / "flags.fits", wcs=wcs).name  # FITS holds pixel regions
    'flags.fits'
    """
    from regions import PolygonSkyRegion, Regions, SkyRegion

    path = Path(path)
    if format is None:
        format = REGION_FORMATS.get(path.suffix.lower())
        if format is None:
            raise BadInputError(f"{path}: unknown region file suffix {path.suffix!r} "
                                f"(use one of {', '.join(REGION_FORMATS)})")
    format = str(format).lower()
    if format not in set(REGION_FORMATS.values()):
        raise BadInputError(f"{path}: unknown region format {format!r} (use ds9, crtf or fits)")
    regs = list(regs)

    if format == "fits":
        if any(isinstance(r, SkyRegion) for r in regs):
            if wcs is None or not wcs.has_celestial:
                raise BadInputError(f"{path}: FITS region files hold pixel regions only; "
                                    "pass wcs= to convert sky regions, or use .reg/.crtf")
            regs = _sky_to_pixel(regs, wcs.celestial, PolygonSkyRegion)
        regs = _pad_polygons(regs)
        with atomic_path(path, overwrite=overwrite) as tmp:
            _write_fits(regs, tmp, path)
        return path

    if format == "crtf":
        text = _crtf_text(regs)
    elif regs:
        text = Regions(regs).serialize(format="ds9")
    else:
        text = "# Region file format: DS9 astropy/regions\n"
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)
    return path


# astropy frame name -> CRTF reference frame; other frames are written as ICRS.
_CRTF_FRAMES = {"icrs": "ICRS", "fk5": "J2000", "galactic": "GALACTIC",
                "supergalactic": "SUPERGAL"}


def _crtf_text(regs):
    """CRTF text; polygons are formatted here (``regions`` is slow for sky polygons
    and cannot write pixel polygons), other shapes go through ``regions``."""
    from astropy.time import Time
    from regions import PolygonPixelRegion, PolygonSkyRegion, Regions, SkyRegion

    lines = ["#CRTFv0"]
    for r in regs:
        extra = [f"color={r.visual['color']}"] if "color" in r.visual else []
        sign = "-" if r.meta.get("include", True) in (False, 0) else ""
        if isinstance(r, PolygonPixelRegion):
            xy = ", ".join(f"[{x:.6f}pix, {y:.6f}pix]"
                           for x, y in zip(np.atleast_1d(r.vertices.x), np.atleast_1d(r.vertices.y)))
            lines.append(", ".join([f"{sign}poly[{xy}]", "coord=image"] + extra))
        elif isinstance(r, PolygonSkyRegion):
            v = r.vertices
            name = v.frame.name
            if name not in _CRTF_FRAMES or (name == "fk5" and v.frame.equinox != Time("J2000")):
                v, name = v.transform_to("icrs"), "icrs"
            sph = v.represent_as("unitspherical")
            xy = ", ".join(f"[{x:.10f}deg, {y:.10f}deg]"
                           for x, y in zip(np.atleast_1d(sph.lon.deg), np.atleast_1d(sph.lat.deg)))
            lines.append(", ".join([f"{sign}poly[{xy}]", f"coord={_CRTF_FRAMES[name]}"] + extra))
        else:
            coordsys = "icrs" if isinstance(r, SkyRegion) else "image"
            coord = "ICRS" if coordsys == "icrs" else "image"
            body = [ln for ln in Regions([r]).serialize(format="crtf", coordsys=coordsys, fmt=".10f").splitlines()
                    if ln.strip() and not ln.startswith(("#", "global"))]
            lines.extend(f"{ln}, coord={coord}" for ln in body)
    return "\n".join(lines) + "\n"


def _sky_to_pixel(regs, wcs, polygon_sky_cls):
    """Sky regions -> pixel regions; sky polygons in one vectorised WCS call."""
    from astropy.wcs.utils import wcs_to_celestial_frame
    from regions import PixCoord, PolygonPixelRegion, SkyRegion

    frame = wcs_to_celestial_frame(wcs)
    out = list(regs)
    lon, lat, spans = [], [], []
    n = 0
    for i, r in enumerate(regs):
        if isinstance(r, polygon_sky_cls):
            v = r.vertices
            if not v.frame.is_equivalent_frame(frame):
                v = v.transform_to(frame)
            sph = v.represent_as("unitspherical")
            lon.append(np.atleast_1d(sph.lon.deg))
            lat.append(np.atleast_1d(sph.lat.deg))
            spans.append((i, n, n + len(lon[-1])))
            n += len(lon[-1])
        elif isinstance(r, SkyRegion):
            out[i] = r.to_pixel(wcs)
    if spans:
        world = [None, None]
        world[wcs.wcs.lng], world[wcs.wcs.lat] = np.concatenate(lon), np.concatenate(lat)
        px, py = wcs.world_to_pixel_values(*world)
        for i, a, b in spans:
            r = regs[i]
            out[i] = PolygonPixelRegion(PixCoord(px[a:b], py[a:b]), meta=r.meta.copy(),
                                        visual=r.visual.copy())
    return out


def _pad_polygons(regs):
    """Pad pixel polygons to a common vertex count by repeating their first vertex.

    ``regions`` would otherwise pad the fixed-width FITS columns with (0, 0) vertices.
    """
    from regions import PixCoord, PolygonPixelRegion

    polys = [i for i, r in enumerate(regs) if isinstance(r, PolygonPixelRegion)]
    if not polys:
        return regs
    nmax = max(len(regs[i].vertices.x) for i in polys)
    out = list(regs)
    for i in polys:
        r = regs[i]
        x, y = np.atleast_1d(r.vertices.x), np.atleast_1d(r.vertices.y)
        if len(x) < nmax:
            x = np.concatenate([x, np.full(nmax - len(x), x[0])])
            y = np.concatenate([y, np.full(nmax - len(y), y[0])])
            out[i] = PolygonPixelRegion(PixCoord(x, y), meta=r.meta.copy(), visual=r.visual.copy())
    return out


def _write_fits(regs, filename, name):
    """Write pixel regions as a FITS region table (a valid empty table when none)."""
    import warnings

    from astropy.utils.exceptions import AstropyUserWarning
    from regions import Regions

    if regs:
        with warnings.catch_warnings():
            warnings.simplefilter("error", AstropyUserWarning)  # never drop a region silently
            try:
                Regions(regs).write(str(filename), format="fits", overwrite=True)
            except AstropyUserWarning as err:
                raise BadInputError(f"{name}: {err}") from None
        return
    from astropy.io import fits

    cols = [fits.Column(name=n, format=f, unit=u) for n, f, u in
            [("SHAPE", "16A", None), ("X", "D", "pix"), ("Y", "D", "pix"),
             ("R", "D", "pix"), ("ROTANG", "D", "deg")]]
    hdu = fits.BinTableHDU.from_columns(cols, nrows=0, name="REGION")
    hdu.header["HDUCLASS"] = "ASC"
    hdu.header["HDUCLAS1"] = "REGION"
    hdu.header["HDUCLAS2"] = "STANDARD"
    hdu.header["HDUVERS"] = "1.2.0"
    hdu.writeto(filename, overwrite=True)
