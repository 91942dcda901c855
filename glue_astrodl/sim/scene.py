"""Forward model of reduced CCD frames: random scenes of stars and Sérsic galaxies.

Flux units are ADU; ``gain`` is in e-/ADU and ``read_noise`` in electrons. A frame is
``image = Poisson(gain * (sky + sources)) / gain + Normal(0, read_noise) / gain``.
Truth positions are 0-based pixel coordinates (``x`` = column, ``y`` = row, pixel
centres at integers) and ``flux`` is the object's total flux, i.e. the sum of its
rendered pixels before clipping at the frame border.
"""

import numpy as np
from astropy.table import Table

from .frame import SimulatedFrame, sky_sigma
from .render import PSFModel, add_stamp, make_renderer
from .wcs import make_wcs, wcs_header

__all__ = ["simulate_frame", "simulate_point_sources", "GENERATOR_VERSION"]

GENERATOR_VERSION = "glue_astrodl.sim/1.0"
PEAK_MAX = 45000.0  # ADU: brightest objects keep sky + peak below this (no saturation)
STAR_SNR_MIN = 3.0  # faintest star: optimal point-source S/N
GALAXY_SNR_MIN = 5.0  # faintest galaxy, same point-source S/N measure
COUNT_SLOPE = 0.3  # dN/dm ∝ 10^(COUNT_SLOPE m)
SERSIC_N = (0.5, 4.0)
R_EFF = (1.0, 8.0)  # pixels, log-uniform
AXIS_RATIO = (0.3, 1.0)


def _check_noise(sky, read_noise, gain):
    if sky < 0 or read_noise < 0 or gain <= 0 or sky + read_noise <= 0:
        raise ValueError("need sky >= 0, read_noise >= 0 (not both 0) and gain > 0")


def _check_shape(shape):
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 8:
        raise ValueError(f"shape must be 2-D with sides >= 8, got {shape}")
    return shape


def _power_law_mags(rng, size, m_bright, m_faint, slope=COUNT_SLOPE):
    """Magnitudes with ``dN/dm ∝ 10^(slope m)`` on ``[m_bright, m_faint]`` (inverse CDF)."""
    a, b = 10.0 ** (slope * m_bright), 10.0 ** (slope * m_faint)
    return np.log10(a + rng.random(size) * (b - a)) / slope


def _uniform_xy(rng, size, shape):
    ny, nx = shape
    return rng.uniform(-0.5, nx - 0.5, size), rng.uniform(-0.5, ny - 0.5, size)


def _truth(wcs, x, y, flux, kind, zeropoint, snr_per_flux, n=None, r_eff=None, q=None,
           theta=None):
    m = len(x)
    ra, dec = wcs.all_pix2world(x, y, 0) if m else (np.zeros(0), np.zeros(0))
    star = kind == "star"
    t = Table()
    t["id"] = np.arange(1, m + 1, dtype=np.int64)
    t["x"] = np.asarray(x, float)
    t["y"] = np.asarray(y, float)
    t["ra"] = np.asarray(ra, float)
    t["dec"] = np.asarray(dec, float)
    t["flux"] = np.asarray(flux, float)
    t["mag"] = zeropoint - 2.5 * np.log10(t["flux"])
    t["kind"] = np.asarray(kind, dtype="U6")
    t["sersic_n"] = np.where(star, np.nan, n if n is not None else np.nan)
    t["r_eff"] = np.where(star, 0.0, r_eff if r_eff is not None else 0.0)
    t["q"] = np.where(star, 1.0, q if q is not None else 1.0)
    t["theta"] = np.where(star, 0.0, theta if theta is not None else 0.0)
    t["snr"] = t["flux"] * snr_per_flux
    for col, unit in (("x", "pix"), ("y", "pix"), ("ra", "deg"), ("dec", "deg"),
                      ("flux", "adu"), ("mag", "mag"), ("r_eff", "pix"), ("theta", "deg")):
        t[col].unit = unit
    return t


def _from_catalog(catalog, wcs, zeropoint, snr_per_flux):
    """Truth table for a user catalogue (see ``simulate_frame(catalog=...)``)."""
    catalog = Table(catalog)
    kind = np.asarray(catalog["kind"]).astype("U6")
    if not np.all(np.isin(kind, ("star", "galaxy"))):
        raise ValueError("catalog 'kind' must be 'star' or 'galaxy'")
    flux = np.asarray(catalog["flux"], dtype=float)
    if np.any(~np.isfinite(flux) | (flux <= 0)):
        raise ValueError("catalog fluxes must be finite and positive")
    m = len(kind)
    gal = kind == "galaxy"

    def col(name, default):
        if name in catalog.colnames:
            return np.asarray(catalog[name], dtype=float)
        if np.any(gal):
            raise ValueError(f"catalog galaxies need a {name!r} column")
        return np.full(m, default)

    return _truth(wcs, np.asarray(catalog["x"], float), np.asarray(catalog["y"], float), flux,
                  kind, zeropoint, snr_per_flux, n=col("sersic_n", np.nan),
                  r_eff=col("r_eff", 0.0), q=col("q", 1.0), theta=col("theta", 0.0))


def _render(shape, truth, renderer):
    frame = np.zeros(shape, dtype=np.float64)
    x, y, f = (np.asarray(truth[c]) for c in ("x", "y", "flux"))
    n, re, q, th = (np.asarray(truth[c]) for c in ("sersic_n", "r_eff", "q", "theta"))
    is_star = np.asarray(truth["kind"]) == "star"
    for i in range(len(truth)):
        if is_star[i]:
            stamp, x0, y0 = renderer.star(f[i], x[i], y[i])
        else:
            stamp, x0, y0 = renderer.galaxy(f[i], x[i], y[i], n[i], re[i], q[i], th[i])
        add_stamp(frame, stamp, x0, y0)
    return frame


def _finish(sources, truth, psf, kernel, wcs, renderer, *, sky, read_noise, gain,
            pixel_scale, zeropoint, seed, noise_rng):
    noiseless = sources + sky
    electrons = noise_rng.poisson(np.maximum(noiseless, 0.0) * gain)
    image = (electrons / gain).astype(np.float32)
    del electrons
    image += noise_rng.standard_normal(sources.shape, dtype=np.float32) * np.float32(read_noise / gain)

    hdr = wcs_header(wcs)
    hdr["BUNIT"] = ("adu", "Pixel unit")
    hdr["FWHM"] = (psf.fwhm, "PSF FWHM [pixel]")
    hdr["SEEING"] = (psf.fwhm * pixel_scale, "PSF FWHM [arcsec]")
    hdr["PSFMODEL"] = (psf.profile, "PSF profile")
    if psf.profile == "moffat":
        hdr["PSFBETA"] = (psf.beta, "Moffat beta")
    hdr["GAIN"] = (float(gain), "Gain [e-/ADU]")
    hdr["RDNOISE"] = (float(read_noise), "Read noise [e-]")
    hdr["SKYLEVEL"] = (float(sky), "Sky level [ADU]")
    hdr["SKYSIGMA"] = (sky_sigma(sky, gain, read_noise), "Background noise [ADU]")
    hdr["MAGZERO"] = (float(zeropoint), "Magnitude of 1 ADU total flux")
    hdr["HIERARCH ASTRODLSIM"] = (GENERATOR_VERSION, "glue_astrodl simulator version")
    hdr["SIMRENDR"] = (renderer.name, "Object renderer")
    if seed is not None:
        hdr["SIMSEED"] = (int(seed), "Simulation seed")
    hdr["NSTARS"] = (int(np.sum(truth["kind"] == "star")), "Simulated stars")
    hdr["NGALAXY"] = (int(np.sum(truth["kind"] == "galaxy")), "Simulated galaxies")
    truth.meta.update(SIMVERS=GENERATOR_VERSION, SIMRENDR=renderer.name)
    if seed is not None:
        truth.meta["SIMSEED"] = int(seed)
    return SimulatedFrame(image=image, noiseless=noiseless.astype(np.float32),
                          sources=sources.astype(np.float32), header=hdr, truth=truth,
                          psf=kernel)


def _streams(seed, k):
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(k)]


def simulate_frame(shape=(1024, 1024), n_stars=300, n_galaxies=150, fwhm=3.0,
                   psf_profile="moffat", beta=3.0, sky=300.0, read_noise=5.0, gain=2.0,
                   pixel_scale=0.2, zeropoint=28.0, seed=0, renderer="auto", catalog=None):
    """Simulate a reduced frame of random stars and PSF-convolved Sérsic galaxies.

    Star and galaxy magnitudes follow ``dN/dm ∝ 10^(0.3 m)`` from the faint limit (point
    source S/N 3 for stars, 5 for galaxies) to the brightest flux whose point-source peak
    plus sky stays below 45000 ADU. Galaxies: Sérsic ``n`` uniform in [0.5, 4], ``r_eff``
    log-uniform in [1, 8] px (major axis), ``q`` uniform in [0.3, 1], ``theta`` uniform in
    [0, 180) degrees. Positions are uniform over the frame. ``renderer`` is 'native',
    'galsim' or 'auto' (GalSim if importable); the truth does not depend on it, and the
    same ``seed`` gives the same frame.

    Truth columns: id (1-based), x, y (0-based pixels), ra, dec (deg), flux (ADU), mag
    (``MAGZERO - 2.5 log10 flux``), kind ('star'/'galaxy'), sersic_n (NaN for stars),
    r_eff (px, 0 for stars), q, theta (deg), snr = ``flux * sqrt(sum(psf^2)) / sky_sigma``.

    ``catalog``, a table with columns x, y, flux, kind and, for galaxies, sersic_n, r_eff,
    q, theta, replaces the random scene (``n_stars``/``n_galaxies`` are then ignored).

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> frame = simulate_frame((64, 64), n_stars=5, n_galaxies=2, seed=0)
    >>> frame.image.dtype, list(frame.truth["kind"]).count("galaxy"), frame.header["NSTARS"]
    (dtype('float32'), 2, 5)
    >>> frame.truth.colnames[:8]
    ['id', 'x', 'y', 'ra', 'dec', 'flux', 'mag', 'kind']
    >>> catalog = Table({"x": [20.0, 40.0], "y": [30.0, 30.0], "flux": [5000.0, 8000.0],
    ...                  "kind": ["star", "galaxy"], "sersic_n": [np.nan, 1.0], "r_eff": [0.0, 3.0],
    ...                  "q": [1.0, 0.5], "theta": [0.0, 30.0]})
    >>> frame = simulate_frame((64, 64), catalog=catalog, seed=0)  # a chosen scene
    >>> frame.truth["mag"].round(2).tolist(), round(float(frame.sources.sum()) / 13000.0, 3)
    ([18.75, 18.24], 1.0)
    """
    shape = _check_shape(shape)
    _check_noise(sky, read_noise, gain)
    if n_stars < 0 or n_galaxies < 0:
        raise ValueError("object counts must be >= 0")
    psf = PSFModel(fwhm, psf_profile, beta)
    rend = make_renderer(renderer, psf)
    kernel = psf.kernel()
    sigma = sky_sigma(sky, gain, read_noise)
    snr_per_flux = np.sqrt(np.sum(kernel**2)) / sigma
    wcs = make_wcs(shape, pixel_scale)
    rs, rg, rn = _streams(seed, 3)
    if catalog is not None:
        truth = _from_catalog(catalog, wcs, zeropoint, snr_per_flux)
    else:
        f_bright = (PEAK_MAX - sky) / kernel.max()
        if f_bright <= GALAXY_SNR_MIN / snr_per_flux:
            raise ValueError("sky noise too high for the saturation limit: no usable flux range")
        m_bright = zeropoint - 2.5 * np.log10(f_bright)
        truth = _random_scene(rs, rg, shape, n_stars, n_galaxies, wcs, zeropoint,
                              snr_per_flux, m_bright)
    sources = _render(shape, truth, rend)
    return _finish(sources, truth, psf, kernel, wcs, rend, sky=sky, read_noise=read_noise,
                   gain=gain, pixel_scale=pixel_scale, zeropoint=zeropoint, seed=seed,
                   noise_rng=rn)


def _random_scene(rs, rg, shape, n_stars, n_galaxies, wcs, zeropoint, snr_per_flux, m_bright):
    """Truth table of a random scene (stars from stream ``rs``, galaxies from ``rg``)."""
    def fluxes(rng, size, snr_min):
        m_faint = zeropoint - 2.5 * np.log10(snr_min / snr_per_flux)
        return 10 ** (-0.4 * (_power_law_mags(rng, size, m_bright, m_faint) - zeropoint))

    xs, ys = _uniform_xy(rs, n_stars, shape)
    fs = fluxes(rs, n_stars, STAR_SNR_MIN)
    xg, yg = _uniform_xy(rg, n_galaxies, shape)
    fg = fluxes(rg, n_galaxies, GALAXY_SNR_MIN)
    ng = rg.uniform(*SERSIC_N, n_galaxies)
    reg = np.exp(rg.uniform(np.log(R_EFF[0]), np.log(R_EFF[1]), n_galaxies))
    qg = rg.uniform(*AXIS_RATIO, n_galaxies)
    thg = rg.uniform(0.0, 180.0, n_galaxies)
    kind = np.array(["star"] * n_stars + ["galaxy"] * n_galaxies, dtype="U6")
    z = np.zeros(n_stars)
    return _truth(wcs, np.r_[xs, xg], np.r_[ys, yg], np.r_[fs, fg], kind, zeropoint,
                  snr_per_flux, n=np.r_[z, ng], r_eff=np.r_[z, reg], q=np.r_[z + 1, qg],
                  theta=np.r_[z, thg])


def _grid(n, shape, margin, min_sep):
    """Best ``(ncol, nrow, cell_x, cell_y)`` grid of >= n cells inside the margins."""
    wy, wx = shape[0] - 1 - 2 * margin, shape[1] - 1 - 2 * margin
    best = None
    for ncol in range(1, n + 1):
        nrow = -(-n // ncol)
        cx, cy = wx / ncol, wy / nrow
        if best is None or min(cx, cy) > min(best[2], best[3]):
            best = (ncol, nrow, cx, cy)
    if best is None or wx <= 0 or wy <= 0 or min(best[2], best[3]) <= min_sep:
        raise ValueError(f"{n} sources separated by > {min_sep:.1f} px do not fit in a "
                         f"{shape[1]}x{shape[0]} frame; use fewer sources or a larger shape")
    return best


def simulate_point_sources(shape=(1024, 1024), snr=(3, 4, 5, 6, 8, 10), n_per_snr=100,
                           fwhm=3.0, psf_profile="gaussian", sky=300.0, read_noise=5.0,
                           gain=2.0, min_separation=None, seed=0, beta=3.0, pixel_scale=0.2,
                           zeropoint=28.0, renderer="auto"):
    """Isolated point sources at given optimal S/N, for detection-completeness tests.

    ``n_per_snr`` stars per value of ``snr`` sit on a jittered grid (random cells, random
    sub-pixel offsets) with every pair more than ``min_separation`` (default 6 FWHM)
    pixels apart and whole PSF stamps inside the frame; ``ValueError`` if they do not fit.
    Fluxes are ``snr * sky_sigma / sqrt(sum(psf^2))``: the background-limited S/N of the
    optimal (PSF-matched) filter equals ``snr``. Truth columns as in :func:`simulate_frame`.

    Examples
    --------
    >>> frame = simulate_point_sources((64, 64), snr=(10, 20), n_per_snr=2, fwhm=2.5, seed=0)
    >>> len(frame.truth), sorted(set(frame.truth["snr"].round(6).tolist()))
    (4, [10.0, 20.0])
    >>> simulate_point_sources((32, 32), snr=(5,), n_per_snr=50)
    Traceback (most recent call last):
    ...
    ValueError: 50 sources separated by > 18.0 px do not fit in a 32x32 frame; use fewer sources or a larger shape
    """
    shape = _check_shape(shape)
    snr = np.atleast_1d(np.asarray(snr, dtype=float))
    if np.any(snr <= 0) or n_per_snr < 0:
        raise ValueError("snr values must be > 0 and n_per_snr >= 0")
    _check_noise(sky, read_noise, gain)
    psf = PSFModel(fwhm, psf_profile, beta)
    rend = make_renderer(renderer, psf)
    kernel = psf.kernel()
    sigma = sky_sigma(sky, gain, read_noise)
    snr_per_flux = np.sqrt(np.sum(kernel**2)) / sigma
    min_sep = 6.0 * fwhm if min_separation is None else float(min_separation)
    n = snr.size * int(n_per_snr)
    wcs = make_wcs(shape, pixel_scale)
    rp, rn = _streams(seed, 2)
    if n:
        margin = psf.radius + 1
        ncol, nrow, cx, cy = _grid(n, shape, margin, min_sep)
        jitter = 0.5 * (min(cx, cy) - min_sep) * (1 - 1e-9)
        cells = rp.choice(ncol * nrow, size=n, replace=False)
        x = margin + (cells % ncol + 0.5) * cx + rp.uniform(-jitter, jitter, n)
        y = margin + (cells // ncol + 0.5) * cy + rp.uniform(-jitter, jitter, n)
        s = rp.permutation(np.repeat(snr, int(n_per_snr)))
    else:
        x = y = s = np.zeros(0)
    flux = s / snr_per_flux
    truth = _truth(wcs, x, y, flux, np.full(n, "star", dtype="U6"), zeropoint, snr_per_flux)
    sources = _render(shape, truth, rend)
    return _finish(sources, truth, psf, kernel, wcs, rend, sky=sky, read_noise=read_noise,
                   gain=gain, pixel_scale=pixel_scale, zeropoint=zeropoint, seed=seed,
                   noise_rng=rn)
