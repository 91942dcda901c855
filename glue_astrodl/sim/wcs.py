"""Celestial WCS for simulated frames: a gnomonic (TAN) projection with a CD matrix."""

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

__all__ = ["make_wcs", "wcs_header"]


def make_wcs(shape, pixel_scale_arcsec=0.2, ra=150.1, dec=2.2, rotation_deg=0.0):
    """2-D RA---TAN/DEC--TAN WCS for an image of ``shape`` (ny, nx).

    The reference pixel is the image centre, north is up and east left at
    ``rotation_deg`` = 0; the rotation turns the sky counter-clockwise on the image.

    Examples
    --------
    >>> wcs = make_wcs((100, 200), pixel_scale_arcsec=0.2, ra=150.1, dec=2.2)
    >>> wcs.wcs.ctype, wcs.pixel_shape
    (['RA---TAN', 'DEC--TAN'], (200, 100))
    >>> sky = wcs.pixel_to_world(99.5, 49.5)  # the image centre
    >>> round(float(sky.ra.deg), 6), round(float(sky.dec.deg), 6)
    (150.1, 2.2)
    """
    ny, nx = (int(s) for s in shape)
    if nx < 1 or ny < 1 or pixel_scale_arcsec <= 0:
        raise ValueError(f"need a positive shape and pixel scale, got {shape}, {pixel_scale_arcsec}")
    s = pixel_scale_arcsec / 3600.0
    rho = np.deg2rad(rotation_deg)
    c, si = np.cos(rho), np.sin(rho)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]  # FITS pixels are 1-based
    w.wcs.crval = [float(ra), float(dec)]
    w.wcs.cd = np.array([[-s * c, -s * si], [-s * si, s * c]])
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    w.pixel_shape = (nx, ny)
    return w


def wcs_header(wcs):
    """FITS header cards of a celestial ``wcs``, written with CDi_j rather than PC/CDELT.

    Examples
    --------
    >>> header = wcs_header(make_wcs((100, 200)))
    >>> [key for key in header if key.startswith(("CD", "PC", "CDELT"))]
    ['CD1_1', 'CD1_2', 'CD2_1', 'CD2_2']
    """
    hdr = wcs.to_header()
    pc = wcs.wcs.get_pc()
    cdelt = wcs.wcs.get_cdelt()
    cd = cdelt[:, None] * pc
    out = fits.Header()
    for card in hdr.cards:
        key = card.keyword
        if key.startswith("PC") or key.startswith("CDELT") or key in ("MJDREF",):
            continue
        out.append(card)
    for i in range(2):
        for j in range(2):
            out[f"CD{i + 1}_{j + 1}"] = (float(cd[i, j]), "Linear projection matrix [deg/pix]")
    return out
