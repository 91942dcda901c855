"""Optical contaminants: light that reached the detector through the telescope.

Everything here is blurred by the PSF (never sharper than it) and is computed in
electrons on the active detector area, without noise. Each artefact function returns
``(contribution, mask, params)`` where ``mask`` marks the pixels at which the
contribution exceeds ``k`` times the background noise ``sigma`` (electrons), except
bright background (see :func:`bright_background`) and fringes (whose mask follows
the fringe *envelope*, since the pattern itself oscillates through zero).

Rendering helpers:

* :class:`PSFBank` - pixel-integrated PSF stamps at sub-pixel phases quantised to
  ``1/oversample`` pixel, cut out of one finely sampled profile (fast star rendering);
* :func:`cross_profile` / :func:`add_line` - straight line sources (trails, spikes)
  rendered analytically as ``along(s) * cross(d)``, the cross-section being the line
  spread function of the PSF convolved with the intrinsic width and the pixel;
* :func:`smooth_field` - zero-mean, unit-variance Gaussian random field with a given
  correlation scale, from random amplitudes on a coarse grid of Gaussian bumps (no
  FFT wrap-around, cheap even for full frames).
"""

import numpy as np

from .render import add_stamp

__all__ = ["PSFBank", "cross_profile", "add_line", "smooth_field", "satellite_trail",
           "diffraction_spikes", "persistence", "nebulosity", "fringes",
           "bright_background", "log_uniform"]

LINE_STEP = 0.05  # px, sampling of the 1-D line profiles


def log_uniform(rng, lo, hi, size=None):
    """Draws log-uniform on ``[lo, hi]``.

    Examples
    --------
    >>> import numpy as np
    >>> log_uniform(np.random.default_rng(0), 1.0, 100.0, 3).round(2)
    array([18.79,  3.46,  1.21])
    """
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def _moffat_alpha(psf):
    return psf.fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / psf.beta) - 1.0))


def _profile(psf, r2):
    """Un-normalised circular PSF profile at squared radius ``r2`` (pixels^2)."""
    if psf.profile == "gaussian":
        s = psf.fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        return np.exp(-0.5 * r2 / (s * s))
    a = _moffat_alpha(psf)
    return (1.0 + r2 / (a * a)) ** (-psf.beta)


class PSFBank:
    """Pixel-integrated PSF stamps (half-size ``psf.radius``) at quantised sub-pixel phases.

    The profile is point-sampled once on a lattice ``oversample`` times finer than the
    pixels; the stamp for a shift of ``(qy, qx) / oversample`` pixels is the sum of
    ``oversample x oversample`` lattice blocks taken at that offset (midpoint-rule pixel
    integration). Phases are quantised to ``1/oversample`` px, with ``oversample``
    between 2 and 5 (finer for sharper PSFs). The stamps reach the radius where the
    profile falls to ``contrast`` times its peak (at most 64 px, at least ``psf.radius``),
    so that the wings of saturated stars do not end in a visible edge.

    Examples
    --------
    >>> from glue_astrodl.sim.render import PSFModel
    >>> bank = PSFBank(PSFModel(3.0, "gaussian"))
    >>> bank.radius, bank.kernel.shape, round(bank.sharpness(), 4)
    (7, (15, 15), 0.2172)
    """

    def __init__(self, psf, contrast=1e-6):
        self.psf = psf
        if psf.profile == "gaussian":
            r_c = psf.fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0))) * np.sqrt(-2.0 * np.log(contrast))
        else:
            r_c = _moffat_alpha(psf) * np.sqrt(contrast ** (-1.0 / psf.beta) - 1.0)
        self.radius = r = int(min(max(psf.radius, np.ceil(r_c)), 64))
        self.os = os_ = int(np.clip(np.ceil(6.0 / psf.fwhm), 2, 5))
        v = (np.arange((2 * r + 3) * os_) + 0.5) / os_ - 0.5 - (r + 1)
        self._fine = _profile(psf, v[:, None] ** 2 + v[None, :] ** 2)
        self._cache = {}
        self._fine /= self._block(0, 0).sum()
        self._cache.clear()
        self.kernel = self._block(0, 0)  # centred, unit sum
        self.peak = float(self.kernel.max())
        self.radial = self.kernel[r, r:].copy()  # centred profile along a row
        yy = np.arange(-r, r + 1, dtype=float)
        pk = _profile(psf, yy[:, None] ** 2 + yy[None, :] ** 2)
        self.point_kernel = pk / pk.sum()  # sampled at pixel centres, for extended sources

    def _block(self, qy, qx):
        key = (qy, qx)
        k = self._cache.get(key)
        if k is None:
            os_, n = self.os, 2 * self.radius + 1
            sub = self._fine[os_ - qy:os_ - qy + n * os_, os_ - qx:os_ - qx + n * os_]
            k = sub.reshape(n, os_, n, os_).sum(axis=(1, 3))
            self._cache[key] = k
        return k

    def stamp(self, flux, x, y, threshold=0.0):
        """``(stamp, x0, y0)`` of a point source of ``flux`` at ``(x, y)``.

        The stamp is cut down to the radius beyond which ``flux * psf`` stays below
        ``threshold`` (same units as ``flux``).

        Examples
        --------
        >>> from glue_astrodl.sim.render import PSFModel
        >>> bank = PSFBank(PSFModel(3.0, "gaussian"))
        >>> stamp, x0, y0 = bank.stamp(1000.0, 10.2, 5.0)
        >>> stamp.shape, (x0, y0), round(float(stamp.sum()), 6)
        ((15, 15), (3, -2), 1000.0)
        >>> bank.stamp(1000.0, 10.2, 5.0, threshold=1.0)[0].shape  # cut where it falls below 1
        (11, 11)
        """
        ix, iy = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
        qx, qy = int(round((x - ix) * self.os)), int(round((y - iy) * self.os))
        r = self.radius
        if threshold > 0:
            r = int(min(r, 1 + np.count_nonzero(flux * self.radial > threshold)))
        k = self._block(qy, qx)
        c = self.radius
        return flux * k[c - r:c + r + 1, c - r:c + r + 1], ix - r, iy - r

    def sharpness(self):
        """``sqrt(sum(psf^2))``: a source of flux F has optimal-filter S/N ``F * this / sigma``.

        Examples
        --------
        >>> from glue_astrodl.sim.render import PSFModel
        >>> bank = PSFBank(PSFModel(3.0, "gaussian"))
        >>> round(1000.0 * bank.sharpness() / 10.0, 2)  # S/N of a 1000 e- star over 10 e- noise
        21.72
        """
        return float(np.sqrt(np.sum(self.kernel**2)))


def cross_profile(psf, width=0.0, step=LINE_STEP):
    """``(d, p)``: cross-section of a line (unit flux per unit length) against offset ``d``.

    The line spread function of the PSF (Gaussian: Gaussian; Moffat: ``(1 + d^2/a^2)^(1/2 -
    beta)``) convolved with a top-hat of the intrinsic ``width`` and with the 1-px pixel
    response; ``p`` integrates to 1 over ``d``.

    Examples
    --------
    >>> from glue_astrodl.sim.render import PSFModel
    >>> d, p = cross_profile(PSFModel(3.0, "gaussian"), width=2.0)
    >>> d[0], round(float(p.sum() * (d[1] - d[0])), 6)  # unit integral
    (np.float64(-8.0), 1.0)
    """
    half = psf.radius + 0.5 * width + 2.0
    d = np.arange(-half, half + 0.5 * step, step)
    if psf.profile == "gaussian":
        s = psf.fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        p = np.exp(-0.5 * (d / s) ** 2)
    else:
        p = (1.0 + (d / _moffat_alpha(psf)) ** 2) ** (0.5 - psf.beta)
    for w in (width, 1.0):
        n = int(round(w / step))
        if n > 1:
            p = np.convolve(p, np.ones(n) / n, mode="same")
    return d, p / (p.sum() * step)


def add_line(out, x0, y0, theta, s_grid, along, d, cross, dmax=None):
    """Add ``along(s) * cross(d)`` of a straight line to ``out`` (in place); return ``out``.

    The line passes through ``(x0, y0)`` at angle ``theta`` (radians, from +x towards +y);
    ``s`` is the signed distance along it and ``d`` across it; ``along`` is tabulated on
    ``s_grid`` (zero outside) and ``cross`` on ``d``. Only pixels within ``dmax`` of the
    segment's bounding box are evaluated.

    Examples
    --------
    >>> import numpy as np
    >>> from glue_astrodl.sim.render import PSFModel
    >>> d, cross = cross_profile(PSFModel(3.0, "gaussian"))
    >>> s = np.arange(-30.0, 30.25, 0.25)
    >>> out = add_line(np.zeros((20, 20)), 10.0, 10.0, 0.0, s, np.ones_like(s), d, cross)  # along row 10
    >>> round(float(out[:, 10].sum()), 3), round(float(out.sum()), 3)  # unit flux per unit length
    (1.0, 20.0)
    """
    dmax = d[-1] if dmax is None else dmax
    c, s = np.cos(theta), np.sin(theta)
    xs = x0 + c * s_grid[[0, -1]]
    ys = y0 + s * s_grid[[0, -1]]
    ny, nx = out.shape
    xa, xb = max(int(np.floor(xs.min() - dmax)), 0), min(int(np.ceil(xs.max() + dmax)) + 1, nx)
    ya, yb = max(int(np.floor(ys.min() - dmax)), 0), min(int(np.ceil(ys.max() + dmax)) + 1, ny)
    if xa >= xb or ya >= yb:
        return out
    yy, xx = np.mgrid[ya:yb, xa:xb].astype(np.float64)
    xx -= x0
    yy -= y0
    dd = yy * c - xx * s
    near = np.abs(dd) < dmax
    ss = xx[near] * c + yy[near] * s
    val = np.interp(ss, s_grid, along, left=0.0, right=0.0)
    val *= np.interp(dd[near], d, cross, left=0.0, right=0.0)
    out[ya:yb, xa:xb][near] += val
    return out


def smooth_field(shape, scale, rng):
    """Zero-mean, unit-variance random field with structures of ``scale`` pixels.

    A separable sum of Gaussian bumps of width ``scale / 2`` on a grid of spacing
    ``scale / 2`` with standard-normal amplitudes: ``Wy @ Z @ Wx.T``.

    Examples
    --------
    >>> import numpy as np
    >>> field = smooth_field((64, 64), scale=10.0, rng=np.random.default_rng(0))
    >>> field.shape, round(float(field.mean()), 6), round(float(field.std()), 6)
    ((64, 64), 0.0, 1.0)
    """
    step = max(0.5 * float(scale), 1.0)

    def basis(n):
        m = int(np.ceil(n / step)) + 6
        centres = (np.arange(m) - 3 + rng.uniform()) * step
        u = np.arange(n, dtype=np.float64)[:, None]
        return np.exp(-0.5 * ((u - centres[None, :]) / step) ** 2)

    wy, wx = basis(shape[0]), basis(shape[1])
    f = wy @ rng.standard_normal((wy.shape[1], wx.shape[1])) @ wx.T
    f -= f.mean()
    sd = f.std()
    return f / sd if sd > 0 else f


def _along_smooth(along, psf, step):
    """Blur a profile tabulated along a line (spacing ``step``) by the line spread function."""
    d, p = cross_profile(psf, 0.0, step)
    return np.convolve(along, p * step, mode="same")


def satellite_trail(shape, rng, psf, sigma, k=1.0, peak_snr=(1.5, 300.0), width=(1.0, 3.0),
                    p_dashed=0.25, p_glint=0.2, max_peak=np.inf):
    """A satellite or aircraft trail crossing the area.

    A straight line at a uniform random angle through a random point of the central 80%
    of the area, intrinsic top-hat width uniform in ``width`` px, convolved with the PSF.
    Its peak per-pixel brightness is log-uniform in ``peak_snr`` times ``sigma`` (at most
    ``max_peak`` electrons, glints excepted); with probability ``p_dashed`` it is dashed
    (period 6-40 px, duty cycle 0.3-0.7: tumbling satellites, aircraft lights) and with
    ``p_glint`` it has a glint (a brighter stretch, 2-10 times, of 3-30 px).

    Examples
    --------
    >>> import numpy as np
    >>> from glue_astrodl.sim.render import PSFModel
    >>> light, mask, params = satellite_trail((64, 64), np.random.default_rng(0), PSFModel(3.0, "gaussian"), sigma=10.0)
    >>> int(mask.sum()), round(params["theta"], 1), params["dashed"]
    (489, 114.7, False)
    """
    ny, nx = shape
    theta = rng.uniform(0.0, np.pi)
    x0, y0 = rng.uniform(0.1, 0.9) * nx, rng.uniform(0.1, 0.9) * ny
    w = rng.uniform(*width)
    snr = min(float(log_uniform(rng, *peak_snr)), max_peak / sigma)
    half = np.hypot(nx, ny) + psf.radius + 2
    step = 0.25
    s_grid = np.arange(-half, half + step, step)
    along = np.ones_like(s_grid)
    params = dict(kind="trail", x0=x0, y0=y0, theta=float(np.degrees(theta)), width=w,
                  peak_snr=snr, dashed=False, glint=False)
    if rng.random() < p_dashed:
        period, duty = log_uniform(rng, 6.0, 40.0), rng.uniform(0.3, 0.7)
        along = _along_smooth(((s_grid / period + rng.uniform()) % 1.0) < duty, psf, step)
        along /= along.max()  # short dashes keep the drawn peak brightness
        params.update(dashed=True, period=float(period), duty=float(duty))
    if rng.random() < p_glint:
        sc, sw, amp = rng.uniform(-0.5, 0.5) * min(nx, ny), rng.uniform(3, 30), rng.uniform(1, 9)
        along *= 1.0 + amp * np.exp(-0.5 * ((s_grid - sc) / sw) ** 2)
        params.update(glint=True)
    d, cross = cross_profile(psf, w)
    lam = snr * sigma / cross.max()
    out = add_line(np.zeros(shape), x0, y0, theta, s_grid, lam * along, d, cross)
    return out, out > k * sigma, params


def diffraction_spikes(shape, rng, psf, sigma, hosts, n_rays=4, angle=0.0, k=1.0,
                       ratio=(0.003, 0.03), min_snr=5.0):
    """Diffraction spikes of the spider vanes around bright stars.

    ``hosts`` is a sequence of ``(x, y, peak)`` (peak in electrons). Each star gets
    ``n_rays`` thin rays (intrinsic width 0, convolved with the PSF) at ``angle +
    j * 360 / n_rays`` degrees; the ray brightness falls as ``(r0 / (s + r0))^p`` from the
    centre (``r0`` = FWHM, ``p`` uniform in [1.5, 2.5]) with a peak per-pixel value
    ``C = ratio * peak`` (``ratio`` log-uniform) but at least ``min_snr * sigma``; rays end
    where they fall below ``0.2 sigma``.

    Examples
    --------
    >>> import numpy as np
    >>> from glue_astrodl.sim.render import PSFModel
    >>> hosts = [(32.0, 32.0, 1e6)]  # (x, y, peak electrons) of a bright star
    >>> light, mask, params = diffraction_spikes((64, 64), np.random.default_rng(0), PSFModel(3.0, "gaussian"),
    ...                                         sigma=10.0, hosts=hosts)
    >>> int(mask.sum()), params[0]["n_rays"]
    (695, 4)
    """
    out = np.zeros(shape)
    d, cross = cross_profile(psf, 0.0)
    cpk = cross.max()
    r0 = psf.fwhm
    p = rng.uniform(1.5, 2.5)
    step = 0.5
    params = []
    for x, y, peak in hosts:
        c = max(float(log_uniform(rng, *ratio)) * peak, min_snr * sigma * rng.uniform(1, 3))
        length = min(r0 * ((c / (0.2 * sigma)) ** (1.0 / p) - 1.0), 1.5 * max(shape))
        s_grid = np.arange(0.0, length + step, step)
        along = (c / cpk) * (r0 / (s_grid + r0)) ** p
        for j in range(n_rays):
            th = np.radians(angle + 360.0 * j / n_rays)
            add_line(out, x, y, th, s_grid, along, d, cross)
        params.append(dict(kind="spikes", x=float(x), y=float(y), peak_snr=c / sigma,
                           length=float(length), n_rays=n_rays, angle=float(angle)))
    return out, out > k * sigma, params


def persistence(shape, rng, bank, sigma, n, k=1.0, level=(1.5, 10.0), p_chain=0.3,
                p_bleed=0.3):
    """``n`` persistence ghosts: residual images of bright sources of earlier exposures.

    A ghost is a flat-topped PSF image (the saturated core of the earlier star):
    ``A * min(s * psf / psf.max(), 1)`` with plateau ``A`` log-uniform in ``level`` times
    ``sigma`` and ``s`` log-uniform in [2, 100]. With probability ``p_bleed`` it keeps the
    remnant of the earlier bleed trail (a 1-2 px wide column segment, 0.3-1 A); with
    ``p_chain`` it is a chain of 3-8 fading ghosts along a line (a trailed or dithered
    bright source).

    Examples
    --------
    >>> import numpy as np
    >>> from glue_astrodl.sim.render import PSFModel
    >>> bank = PSFBank(PSFModel(3.0, "gaussian"))
    >>> ghosts, mask, params = persistence((64, 64), np.random.default_rng(0), bank, sigma=10.0, n=2)
    >>> int(mask.sum()), [p["kind"] for p in params]
    (132, ['persistence', 'persistence'])
    """
    ny, nx = shape
    out = np.zeros(shape)
    params = []
    for _ in range(n):
        a = float(log_uniform(rng, *level)) * sigma
        s = float(log_uniform(rng, 2.0, 100.0))
        ghost = a * np.minimum(bank.kernel * (s / bank.peak), 1.0)
        m = int(rng.integers(3, 9)) if rng.random() < p_chain else 1
        x, y = rng.uniform(0, nx), rng.uniform(0, ny)
        th, sep, decay = rng.uniform(0, 2 * np.pi), rng.uniform(3.0, 15.0), rng.uniform(0.6, 1.0)
        bleed = rng.random() < p_bleed
        blen, bw, bamp = int(log_uniform(rng, 5, 60)), int(rng.integers(1, 3)), rng.uniform(0.3, 1)
        for j in range(m):
            xj, yj = x + j * sep * np.cos(th), y + j * sep * np.sin(th)
            f = decay**j
            r = bank.radius
            add_stamp(out, f * ghost, int(round(xj)) - r, int(round(yj)) - r)
            if bleed:
                ix, iy = int(round(xj)), int(round(yj))
                out[max(iy - blen // 2, 0):max(iy + blen // 2 + 1, 0),
                    max(ix, 0):max(ix + bw, 0)] += f * bamp * a
        params.append(dict(kind="persistence", x=x, y=y, level_snr=a / sigma, n_ghosts=m,
                           bleed=bool(bleed)))
    return out, out > k * sigma, params


def nebulosity(shape, rng, sigma, k=1.0, scale=(20.0, 200.0), peak_snr=(3.0, 50.0)):
    """Diffuse emission: a soft-thresholded two-scale random field.

    ``G = (f(L) + 0.5 f(L/3)) / std`` with ``L`` log-uniform in ``scale``; the emission is
    ``softplus(3 (G + u)) / 3`` (``u`` uniform in [-0.5, 1] sets the covered fraction),
    scaled to a peak log-uniform in ``peak_snr`` times ``sigma``.

    Examples
    --------
    >>> import numpy as np
    >>> light, mask, params = nebulosity((64, 64), np.random.default_rng(0), sigma=10.0)
    >>> int(mask.sum()), round(params["peak_snr"], 1), round(float(light.max()) / 10.0, 1)
    (2661, 47.5, 47.5)
    """
    length = float(log_uniform(rng, *scale))
    g = smooth_field(shape, length, rng) + 0.5 * smooth_field(shape, max(length / 3, 4), rng)
    g /= g.std()
    u = rng.uniform(-0.5, 1.0)
    neb = np.logaddexp(0.0, 3.0 * (g + u)) / 3.0
    snr = float(log_uniform(rng, *peak_snr))
    neb *= snr * sigma / neb.max()
    return neb, neb > k * sigma, dict(kind="nebulosity", scale=length, peak_snr=snr)


def fringes(shape, rng, sky, sigma, k=1.0, amp_snr=(1.5, 8.0), max_rel=0.25,
            wavelength=(10.0, 60.0)):
    """Fringe pattern (thin-film interference of sky lines): a multiplicative sky factor.

    Returns ``(factor, mask, params)``: the sky becomes ``sky * (1 + factor)``. The
    pattern is the normalised sum of 1-3 waves ``cos(2 pi x.n / lambda + 2 pi m G)`` with
    ``lambda`` log-uniform in ``wavelength``, random orientations and phases warped by
    smooth fields ``G`` (``m`` in [0.3, 1.5]); its envelope ``E`` (max 1) varies smoothly.
    The relative amplitude is ``amp_snr * sigma / mean(sky)`` (at most ``max_rel``).
    ``mask``: the envelope amplitude ``r * E * sky`` exceeds ``k * sigma``.

    Examples
    --------
    >>> import numpy as np
    >>> factor, mask, params = fringes((64, 64), np.random.default_rng(0), sky=1000.0, sigma=10.0)
    >>> sky = 1000.0 * (1.0 + factor)  # fringes multiply the sky
    >>> params["n_waves"], int(mask.sum()), round(float(np.abs(factor).max()), 4)
    (3, 2390, 0.0233)
    """
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    n = int(rng.integers(1, 4))
    pattern = np.zeros(shape)
    lams = log_uniform(rng, *wavelength, n)
    for lam in lams:
        phi = rng.uniform(0, np.pi)
        warp = rng.uniform(0.3, 1.5) * smooth_field(shape, log_uniform(rng, 40, 150), rng)
        pattern += np.cos(2 * np.pi * ((xx * np.cos(phi) + yy * np.sin(phi)) / lam + warp))
    pattern /= np.abs(pattern).max()
    env = np.clip(0.7 + 0.4 * smooth_field(shape, log_uniform(rng, 100, 300), rng), 0.1, None)
    env /= env.max()
    snr = float(log_uniform(rng, *amp_snr))
    rel = min(snr * sigma / float(np.mean(sky)), max_rel)
    params = dict(kind="fringes", n_waves=n, wavelengths=[float(v) for v in lams],
                  amp_snr=rel * float(np.mean(sky)) / sigma)
    return rel * env * pattern, rel * env * sky > k * sigma, params


def bright_background(shape, rng, sky, sigma, k_sigma=3.0, frac_sky=0.1, max_level=None):
    """Scattered light or moonlight: a large smooth additive bump.

    Either a halo ``A / (1 + r^2/rc^2)^g`` centred inside the area (``rc`` 0.1-1 of the
    area size, ``g`` 0.7-1.5) or a ramp ``A exp(-t/h)`` rising towards a random edge
    direction. ``A = max(f * sky, s * sigma)`` with ``f`` log-uniform in [0.2, 3] and
    ``s`` in [5, 50], capped at ``max_level``. ``mask``: the bump exceeds
    ``max(k_sigma * sigma, frac_sky * sky)``.

    Examples
    --------
    >>> import numpy as np
    >>> bump, mask, params = bright_background((64, 64), np.random.default_rng(0), sky=1000.0, sigma=10.0)
    >>> params["kind"], params["threshold"], int(mask.sum())  # above max(3 sigma, 0.1 sky)
    ('halo', 100.0, 4096)
    """
    ny, nx = shape
    size = float(max(nx, ny))
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    amp = max(float(log_uniform(rng, 0.2, 3.0)) * sky, float(log_uniform(rng, 5, 50)) * sigma)
    if max_level is not None:
        amp = min(amp, max_level)
    if rng.random() < 0.5:
        x0, y0 = rng.uniform(0, nx), rng.uniform(0, ny)
        rc, g = log_uniform(rng, 0.1, 1.0) * size, rng.uniform(0.7, 1.5)
        bump = amp / (1.0 + ((xx - x0) ** 2 + (yy - y0) ** 2) / rc**2) ** g
        params = dict(kind="halo", x=float(x0), y=float(y0), rc=float(rc))
    else:
        phi = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(phi) + yy * np.sin(phi)
        h = log_uniform(rng, 0.1, 0.6) * size
        bump = amp * np.exp(-(t.max() - t) / h)
        params = dict(kind="ramp", angle=float(np.degrees(phi)), scale=float(h))
    params.update(level_snr=amp / sigma, threshold=max(k_sigma * sigma, frac_sky * sky))
    return bump, bump > params["threshold"], params
