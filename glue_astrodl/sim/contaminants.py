"""Raw CCD tiles and frames with contaminants and exact per-class masks (MaxiMask classes).

:func:`simulate_contaminant_tile` draws a random observing setup and scene, adds each
contaminant class with a configurable probability and returns the raw image (ADU, with
sky and optional bias) and a boolean mask per class of :data:`~glue_astrodl.core.taxonomy.CLASSES`;
:func:`tile_batch` stacks tiles for training; :func:`simulate_contaminant_frame` makes a
full frame with realistic numbers of each artefact and a WCS header.

Physical order of the forward model (electrons, on the active area)::

    sky (with a mild gradient) x (1 + fringes) + stars + galaxies + trails + spikes
        + nebulosity + bright background       -> x response (dead columns/pixels)
        + persistence                          -> Poisson
    -> full-well clipping and bleeding along columns
    -> + hot columns/pixels (Poisson dark signal) + cosmic rays
    -> / gain + bias + read noise, rounded, clipped at the saturation ADU
    -> overscan strip appended (bias + read noise only)

Masks. ``sigma`` is the background noise of a pixel at the mean base sky,
``sqrt(sky_e + read_noise^2)`` electrons. For the additive classes (CR, P, TRL, SP, NEB)
the mask is where the noise-free contribution exceeds ``k_mask * sigma`` (default
``k_mask = 1``). FR: where the fringe envelope amplitude exceeds ``k_mask * sigma``. BBG:
where the bump exceeds ``max(3 sigma, 0.1 sky)``. HCL, DCL, HP, DP: the footprints of the
defects that show in the frame, i.e. whose matched-filter S/N (electrons gained or lost,
summed over the defect, over the pixel noise in quadrature) is at least ``k_defect = 5``:
a hot pixel of 5 sigma, a dead pixel under a sky of >= 25 e- without read noise, a dead
column under a much fainter sky. Fainter defects stay in the image, unlabelled: a single
frame cannot tell them from noise.
SAT: pixels at the saturation level (saturated cores and bleed trails). OV: the overscan
strip (all other masks are empty there). BG: pixels with no other class.

Tiles are drawn in a canonical orientation (CCD columns along axis 0) and then rotated
and flipped at random (one of the 8 symmetries of the square), so bleed trails, hot and
dead columns and the overscan take either orientation. The artefact parameters in
``meta['artefacts']`` are in canonical coordinates of the active area.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import fftconvolve

from ..tasks.contaminant_classes import CLASSES, MAXIMASK
from .detector_defects import (cosmic_rays, dead_columns, dead_pixels, hot_columns, hot_pixels,
                               saturate, significant)
from .galaxies import bin_oversampled, sersic_oversampled
from .optical_artefacts import (PSFBank, bright_background, diffraction_spikes, fringes,
                                log_uniform, nebulosity, persistence, satellite_trail)
from .render import PSFModel, add_stamp
from .scene import _power_law_mags
from .wcs import make_wcs, wcs_header

__all__ = ["ContaminantTile", "ContaminantConfig", "simulate_contaminant_tile",
           "simulate_contaminant_frame", "tile_batch", "class_fractions",
           "PRESENCE_RANGE", "CONTAMINANT_VERSION"]

CONTAMINANT_VERSION = "glue_astrodl.sim.contaminants/1.1"
CONTAMINANTS = MAXIMASK.foreground
PRESENCE_RANGE = (0.2, 0.5)  # documented fraction of default tiles holding each class
REF_TILE = 128 * 128
REF_FRAME = 2048 * 2048

# probability that a class is drawn in a training tile (tuned so that each class is
# present in 20-50% of 128x128 tiles)
DEFAULT_PRESENCE = {"CR": 0.33, "HCL": 0.3, "DCL": 0.3, "HP": 0.3, "DP": 0.3, "P": 0.3,
                    "TRL": 0.3, "FR": 0.3, "NEB": 0.3, "SAT": 0.3, "SP": 0.3, "OV": 0.3,
                    "BBG": 0.3}
# mean number of instances per 128x128 px of a tile in which the class is drawn (>= 1)
TILE_COUNTS = {"CR": 6.0, "HCL": 1.0, "DCL": 1.0, "DCL_clusters": 1.0, "HP": 4.0,
               "DP": 4.0, "P": 1.5, "TRL": 1.0, "SAT": 1.0}
# mean number per 2048x2048 frame
FRAME_COUNTS = {"CR": 300.0, "HCL": 4.0, "DCL": 3.0, "DCL_clusters": 10.0, "HP": 200.0,
                "DP": 100.0, "P": 4.0, "TRL": 1.5, "SAT": 4.0}


@dataclass
class ContaminantConfig:
    """Ranges of the random observing conditions and contaminant rates.

    Ranges are ``(lo, hi)``; ``(v, v)`` fixes a value. Electrons (e-) unless stated.

    Examples
    --------
    >>> config = ContaminantConfig(sky=(100.0, 100.0), bias_probability=0.0)  # fixed sky, no bias
    >>> tile = simulate_contaminant_tile(32, rng=1, classes=[], config=config)
    >>> round(tile.meta["sky_e"], 6), tile.meta["bias"]
    (100.0, 0.0)
    >>> simulate_contaminant_tile(32, rng=1, classes=[], config={"sky": (100.0, 100.0)}).meta["classes"]  # a dict works too
    []
    """

    presence: dict = field(default_factory=lambda: dict(DEFAULT_PRESENCE))
    sky: tuple = (10.0, 1e4)  # e- per pixel, log-uniform
    max_sky_fraction: float = 0.15  # the sky stays below this fraction of the full well
    gain: tuple = (0.5, 5.0)  # e-/ADU, log-uniform
    read_noise: tuple = (2.0, 15.0)  # e-, uniform
    fwhm: tuple = (1.0, 8.0)  # px, log-uniform
    moffat_fraction: float = 0.7  # else Gaussian
    beta: tuple = (2.5, 5.0)  # Moffat beta, uniform
    bias_probability: float = 0.7
    bias: tuple = (100.0, 1000.0)  # ADU, uniform
    full_well: tuple = (3e4, 2e5)  # e-, log-uniform (and at most the 16-bit ADC range)
    star_density: tuple = (3e-4, 4e-3)  # stars per px^2, log-uniform
    galaxy_density: tuple = (5e-5, 5e-4)
    gradient: float = 0.02  # max background gradient across the area (fraction of sky)
    k_mask: float = 1.0
    k_defect: float = 5.0  # structural defects are labelled from this matched-filter S/N
    cr_diffusion: float = 0.6  # max charge-diffusion sigma (px) of cosmic rays; 0 in half the frames
    bbg_k: float = 3.0
    bbg_frac: float = 0.1
    fringe_min_sky: float = 500.0  # fringes appear in bright (red) skies
    tile_counts: dict = field(default_factory=lambda: dict(TILE_COUNTS))
    frame_counts: dict = field(default_factory=lambda: dict(FRAME_COUNTS))
    frame_optional: float = 0.3  # probability of FR, NEB, BBG, P in a frame
    frame_overscan: int = 32
    random_orientation: bool = True
    quantise: bool = True


@dataclass
class ContaminantTile:
    """A raw image (float32 ADU), its per-class masks (bool, ``(14, ny, nx)`` in
    ``CLASSES`` order), the simulation metadata and, for frames, a FITS header.

    Examples
    --------
    >>> tile = simulate_contaminant_tile(64, rng=0, classes=["CR", "HP"])
    >>> tile.image.shape, tile.masks.shape, tile.meta["classes"]
    ((64, 64), (14, 64, 64), ['CR', 'HP'])
    >>> int(tile.mask("CR").sum()), int(tile.mask("HP").sum()), int(tile.mask("BG").sum())
    (3, 1, 4092)
    """

    image: np.ndarray
    masks: np.ndarray
    meta: dict
    header: object = None

    def mask(self, name):
        """Mask of class ``name``.

        Examples
        --------
        >>> tile = simulate_contaminant_tile(32, rng=0, classes=[])
        >>> bool(tile.mask("BG").all())  # a clean tile: background everywhere
        True
        """
        return self.masks[CLASSES.index(name)]


def _config(config):
    if config is None:
        return ContaminantConfig()
    if isinstance(config, dict):
        return ContaminantConfig(**config)
    return config


def _active(classes, rng, cfg):
    if classes is None:
        return {c for c in CONTAMINANTS if rng.random() < cfg.presence.get(c, 0.0)}
    unknown = set(classes) - set(CLASSES)
    if unknown:
        raise ValueError(f"unknown classes {sorted(unknown)}; choose from {CLASSES}")
    return set(classes) - {MAXIMASK.background}


def _conditions(rng, cfg, active):
    """Observing conditions: gain, noise, full well, saturation, sky, PSF, bias."""
    gain = float(log_uniform(rng, *cfg.gain))
    rn = float(rng.uniform(*cfg.read_noise))
    bias = float(np.round(rng.uniform(*cfg.bias))) if rng.random() < cfg.bias_probability else 0.0
    fw = float(log_uniform(rng, *cfg.full_well))
    sat_adu = float(np.floor(min(fw / gain + bias, 65535.0)))
    fw = (sat_adu - bias) * gain  # the ADC may saturate before the well
    lo, hi = cfg.sky[0], min(cfg.sky[1], cfg.max_sky_fraction * fw)
    if "FR" in active:
        lo = min(max(lo, cfg.fringe_min_sky), hi)
    sky = float(log_uniform(rng, lo, max(lo, hi)))
    fwhm = float(log_uniform(rng, *cfg.fwhm))
    profile = "moffat" if rng.random() < cfg.moffat_fraction else "gaussian"
    beta = float(rng.uniform(*cfg.beta))
    return dict(gain=gain, read_noise=rn, bias=bias, full_well=fw, saturation=sat_adu,
                sky_e=sky, sigma_e=float(np.sqrt(sky + rn * rn)), fwhm=fwhm, psf_profile=profile,
                beta=beta if profile == "moffat" else None)


def _count(name, rng, cfg, area, frame):
    """Number of instances of a drawn class: Poisson, scaled with the area, at least 1."""
    counts, ref = (cfg.frame_counts, REF_FRAME) if frame else (cfg.tile_counts, REF_TILE)
    return max(1, int(rng.poisson(counts[name] * area / ref)))


def _stars(img, bank, fluxes, x, y, threshold=0.0, peak=False):
    """Add point sources; with ``peak=True`` the ``fluxes`` are the wanted peak pixel values."""
    for f, xi, yi in zip(fluxes, x, y):
        stamp, x0, y0 = bank.stamp(1.0, xi, yi, threshold / f)
        add_stamp(img, stamp * (f / stamp.max() if peak else f), x0, y0)


def _galaxies(shape, rng, bank, n, f_lo, f_hi, margin):
    """Layer of ``n`` PSF-convolved Sérsic galaxies (fluxes ``dN/dm ∝ 10^0.3m``)."""
    ny, nx = shape
    if n == 0 or f_hi <= f_lo:
        return np.zeros(shape), 0
    layer = np.zeros((ny + 2 * margin, nx + 2 * margin))
    flux = 10 ** (-0.4 * _power_law_mags(rng, n, -2.5 * np.log10(f_hi), -2.5 * np.log10(f_lo)))
    xs = rng.uniform(-0.5, nx + 2 * margin - 0.5, n)
    ys = rng.uniform(-0.5, ny + 2 * margin - 0.5, n)
    for f, x, y in zip(flux, xs, ys):
        ix, iy = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
        img, size = sersic_oversampled(f, rng.uniform(0.5, 4.0), log_uniform(rng, 1.0, 8.0),
                                       rng.uniform(0.3, 1.0), rng.uniform(0, 180), None,
                                       x - ix, y - iy, 2, 4.0)
        add_stamp(layer, bin_oversampled(img, 2), ix - size // 2, iy - size // 2)
    layer = fftconvolve(layer, bank.point_kernel, mode="same")
    return np.maximum(layer[margin:margin + ny, margin:margin + nx], 0.0), n


def _sources(shape, rng, bank, cond, cfg, active, frame, arts):
    """Stars (power-law counts), galaxies, saturated stars; returns the image and SP hosts."""
    ny, nx = shape
    sigma, fw = cond["sigma_e"], cond["full_well"]
    unsat = 0.35 * fw - 1.2 * cond["sky_e"]  # brightest unsaturated peak
    f_lo = 3.0 * sigma / bank.sharpness()
    f_hi = unsat / bank.peak
    if frame and "SAT" in active:
        f_hi = 100.0 * fw / bank.peak  # the bright end of the counts saturates
    margin = min(bank.radius, 32)
    img = np.zeros(shape)
    ext_area = (ny + 2 * margin) * (nx + 2 * margin)  # stars just outside shine in
    n = int(rng.poisson(log_uniform(rng, *cfg.star_density) * ext_area))
    flux = x = y = np.zeros(0)
    if f_hi > f_lo and n:
        flux = 10 ** (-0.4 * _power_law_mags(rng, n, -2.5 * np.log10(f_hi), -2.5 * np.log10(f_lo)))
        x = rng.uniform(-margin - 0.5, nx + margin - 0.5, n)
        y = rng.uniform(-margin - 0.5, ny + margin - 0.5, n)
        _stars(img, bank, flux, x, y, 0.02 * sigma)
    hosts = []
    if frame:
        bright = flux * bank.peak > max(0.3 * fw, 300 * sigma)
        hosts = [(xi, yi, f * bank.peak) for xi, yi, f in zip(x[bright], y[bright], flux[bright])]
    if "SAT" in active:
        m = _count("SAT", rng, cfg, ny * nx, frame)
        peaks = fw * log_uniform(rng, 1.5, 100.0, m)
        sx, sy = rng.uniform(0, nx - 1, m), rng.uniform(0, ny - 1, m)
        _stars(img, bank, peaks, sx, sy, peak=True)
        hosts += list(zip(sx, sy, peaks))
        arts.append(dict(kind="saturated_stars", n=m, peaks_fw=[float(p / fw) for p in peaks]))
    if "SP" in active and not hosts:
        peak = float(log_uniform(rng, min(100 * sigma, 0.5 * unsat), max(unsat, 1.0)))
        hx, hy = rng.uniform(0, nx - 1), rng.uniform(0, ny - 1)
        _stars(img, bank, [peak], [hx], [hy], peak=True)
        hosts = [(hx, hy, peak)]
    n_gal = int(rng.poisson(log_uniform(rng, *cfg.galaxy_density) * ny * nx))
    gal, ng = _galaxies(shape, rng, bank, n_gal, 5.0 * sigma / bank.sharpness(),
                        0.5 * unsat / bank.peak, margin)
    return img + gal, hosts, n, ng


def _background(shape, rng, cond, cfg):
    ny, nx = shape
    sky = cond["sky_e"]
    amp = min(rng.uniform(0, cfg.gradient) * sky, 2.0 * cond["sigma_e"])
    phi = rng.uniform(0, 2 * np.pi)
    yy, xx = np.ogrid[0:ny, 0:nx]
    t = (xx * np.cos(phi) + yy * np.sin(phi)) / max(nx, ny)
    return sky + amp * (t - t.mean())


def _optical(area, rng, active, cfg, frame, cond, psf, bank, masks, arts):
    """Expected electrons per pixel before Poisson noise: light, response, persistence."""
    sigma, fw, k, sky_e = cond["sigma_e"], cond["full_well"], cfg.k_mask, cond["sky_e"]
    n_of = lambda name: _count(name, rng, cfg, area[0] * area[1], frame)  # noqa: E731
    sky = _background(area, rng, cond, cfg)
    scene = dict(kind="scene")
    arts.append(scene)
    if "FR" in active:
        factor, masks["FR"], p = fringes(area, rng, sky, sigma, k)
        sky = sky * (1.0 + factor)
        arts.append(p)
    light, hosts, scene["n_stars"], scene["n_galaxies"] = _sources(area, rng, bank, cond, cfg,
                                                                   active, frame, arts)
    if "TRL" in active:
        masks["TRL"] = np.zeros(area, bool)
        for _ in range(n_of("TRL") if frame else 1):
            c, m, p = satellite_trail(area, rng, psf, sigma, k, max_peak=0.15 * fw)
            light += c
            masks["TRL"] |= m
            arts.append(p)
    if "SP" in active and hosts:
        n_rays = 6 if rng.random() < 0.2 else 4
        c, masks["SP"], p = diffraction_spikes(area, rng, psf, sigma, hosts, n_rays,
                                               rng.uniform(0, 360.0 / n_rays), k)
        light += c
        arts += p
    if "NEB" in active:
        c, masks["NEB"], p = nebulosity(area, rng, sigma, k)
        light += c
        arts.append(p)
    if "BBG" in active:
        c, masks["BBG"], p = bright_background(area, rng, sky_e, sigma, cfg.bbg_k, cfg.bbg_frac,
                                               0.45 * fw - sky_e)
        light += c
        arts.append(p)
    incident = sky + light
    noise = np.sqrt(incident + cond["read_noise"] ** 2)
    response = np.ones(area)
    if "DCL" in active:
        counts, ref = (cfg.frame_counts, REF_FRAME) if frame else (cfg.tile_counts, REF_TILE)
        n_clusters = int(rng.poisson(counts["DCL_clusters"] * area[0] * area[1] / ref))
        response, m, p = dead_columns(area, rng, n_of("DCL"), n_clusters)
        masks["DCL"] = significant(m, (1.0 - response) * incident, noise, cfg.k_defect)
        arts += p
    if "DP" in active:
        r, m, p = dead_pixels(area, rng, n_of("DP"))
        masks["DP"] = significant(m, (1.0 - r) * incident, noise, cfg.k_defect)
        response *= r
        arts += p
    expected = incident * response
    if "P" in active:
        c, masks["P"], p = persistence(area, rng, bank, sigma, n_of("P"), k)
        expected += c
        arts += p
    return expected


def _detector(expected, rng, active, cfg, frame, cond, masks, arts):
    """Electrons read out: Poisson, full well and bleeding, dark defects, cosmic rays."""
    area = expected.shape
    sigma, fw, k = cond["sigma_e"], cond["full_well"], cfg.k_mask
    n_of = lambda name: _count(name, rng, cfg, area[0] * area[1], frame)  # noqa: E731
    electrons = rng.poisson(np.maximum(expected, 0.0)).astype(np.float64)
    electrons, sat = saturate(electrons, fw, rng.uniform(0.3, 0.7))
    noise = np.sqrt(np.maximum(expected, 0.0) + cond["read_noise"] ** 2)
    dark = np.zeros(area)
    if "HCL" in active:
        c, m, p = hot_columns(area, rng, n_of("HCL"), sigma, cap=0.3 * fw)
        masks["HCL"] = significant(m, c, noise, cfg.k_defect)
        dark += c
        arts += p
    if "HP" in active:
        c, m, p = hot_pixels(area, rng, n_of("HP"), sigma, cap=0.5 * fw)
        masks["HP"] = significant(m, c, noise, cfg.k_defect)
        dark += c
        arts += p
    if dark.any():
        electrons += rng.poisson(dark)
    if "CR" in active:
        diffusion = rng.uniform(0.0, cfg.cr_diffusion) if rng.random() < 0.5 else 0.0
        c, masks["CR"], p = cosmic_rays(area, rng, n_of("CR"), sigma, 0.5 * fw, k, diffusion=diffusion)
        electrons += c
        arts += p
    return electrons, sat


def _simulate(shape, rng, active, cfg, frame):
    """Image (ADU), mask cube and metadata of one tile or frame in canonical orientation."""
    ny, nx = shape
    arts, masks = [], {}
    ov = None  # overscan strip (canonical: columns on the right or rows at the top)
    if "OV" in active:
        width = cfg.frame_overscan if frame else int(rng.integers(4, max(5, min(ny, nx) // 4 + 1)))
        ov = (frame or rng.random() < 0.6, width)
    area = (ny, nx - ov[1]) if ov and ov[0] else (ny - ov[1], nx) if ov else (ny, nx)
    ay, ax = area
    cond = _conditions(rng, cfg, active)
    psf = PSFModel(cond["fwhm"], cond["psf_profile"], cond["beta"] or 3.0)
    bank = PSFBank(psf)
    expected = _optical(area, rng, active, cfg, frame, cond, psf, bank, masks, arts)
    electrons, sat = _detector(expected, rng, active, cfg, frame, cond, masks, arts)

    gain, bias, sat_adu = cond["gain"], cond["bias"], cond["saturation"]
    rn_adu = cond["read_noise"] / gain
    adu = electrons / gain + bias + rn_adu * rng.standard_normal(area)
    if cfg.quantise:
        np.round(adu, out=adu)
    adu[sat] = sat_adu  # digital saturation
    np.minimum(adu, sat_adu, out=adu)
    masks["SAT"] = adu >= sat_adu

    image = np.empty(shape, np.float32)
    cube = np.zeros((len(CLASSES),) + shape, bool)
    image[:ay, :ax] = adu
    for name, m in masks.items():
        cube[CLASSES.index(name), :ay, :ax] = m
    if ov:
        strip = (slice(None), slice(ax, None)) if ov[0] else (slice(ay, None), slice(None))
        noise = bias + rn_adu * rng.standard_normal(image[strip].shape)
        image[strip] = np.round(noise) if cfg.quantise else noise
        cube[(CLASSES.index("OV"),) + strip] = True
        arts.append(dict(kind="overscan", orientation="columns" if ov[0] else "rows", width=ov[1]))
    cube[-1] = ~cube[:-1].any(axis=0)
    meta = dict(cond, sky=cond["sky_e"] / gain, sigma=cond["sigma_e"] / gain, k_mask=cfg.k_mask,
                classes=sorted(active, key=CLASSES.index), artefacts=arts, active_shape=area,
                n_stars=arts[0]["n_stars"], n_galaxies=arts[0]["n_galaxies"],
                orientation=dict(rot90=0, flip=False), version=CONTAMINANT_VERSION)
    return image, cube, meta


def simulate_contaminant_tile(size=128, rng=None, classes=None, config=None):
    """A random raw tile of ``size x size`` pixels with per-class masks.

    ``rng`` is a :class:`numpy.random.Generator` (or a seed). Each contaminant class is
    drawn with probability ``config.presence[name]`` unless ``classes`` lists exactly the
    classes to draw (``[]`` gives a clean tile). ``config`` is a :class:`ContaminantConfig`
    or a dict of its fields. Returns a :class:`ContaminantTile`; ``meta`` holds the
    conditions (fwhm px, sky ADU, sky_e, gain e-/ADU, read_noise e-, bias ADU,
    saturation ADU, full_well e-, sigma ADU), the drawn ``classes`` and ``artefacts``.

    Examples
    --------
    >>> tile = simulate_contaminant_tile(64, rng=0, classes=["CR", "HP"])  # exactly these classes
    >>> tile.image.dtype, tile.meta["classes"], [a["kind"] for a in tile.meta["artefacts"]][:2]
    (dtype('float32'), ['CR', 'HP'], ['scene', 'hot_pixels'])
    >>> sorted(simulate_contaminant_tile(64, rng=3).meta["classes"])  # classes drawn at random
    ['CR', 'DP', 'FR', 'HCL', 'SAT']
    """
    rng = np.random.default_rng(rng)
    cfg = _config(config)
    size = int(size)
    if size < 16:
        raise ValueError(f"tile size must be >= 16, got {size}")
    active = _active(classes, rng, cfg)
    image, cube, meta = _simulate((size, size), rng, active, cfg, frame=False)
    if cfg.random_orientation:
        kr, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
        image, cube = np.rot90(image, kr), np.rot90(cube, kr, axes=(1, 2))
        if flip:
            image, cube = image[:, ::-1], cube[:, :, ::-1]
        image, cube = np.ascontiguousarray(image), np.ascontiguousarray(cube)
        meta["orientation"] = dict(rot90=kr, flip=flip)
    return ContaminantTile(image, cube, meta)


def simulate_contaminant_frame(shape=(2048, 2048), seed=0, classes=None, config=None,
                               pixel_scale=0.2):
    """A full raw frame with realistic numbers of contaminants and a WCS header.

    By default a frame has cosmic rays, hot/dead columns and pixels, one or two trails,
    saturated stars (the bright end of the star counts) with bleed trails and spikes, and
    an overscan strip of ``config.frame_overscan`` columns on the right; fringes,
    nebulosity, bright background and persistence each appear with probability
    ``config.frame_optional``. ``classes`` fixes the drawn classes instead.

    Examples
    --------
    >>> frame = simulate_contaminant_frame((128, 128), seed=0)
    >>> frame.meta["classes"][:6], frame.header["SATURATE"]
    (['CR', 'HCL', 'DCL', 'HP', 'DP', 'P'], 26625.0)
    >>> bool(frame.mask("OV")[:, -32:].all())  # the overscan strip on the right
    True
    """
    rng = np.random.default_rng(seed)
    cfg = _config(config)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 64:
        raise ValueError(f"frame shape must be 2-D with sides >= 64, got {shape}")
    if classes is None:
        optional = {"FR", "NEB", "BBG", "P"}
        active = set(CONTAMINANTS) - optional
        active |= {c for c in sorted(optional) if rng.random() < cfg.frame_optional}
    else:
        active = _active(classes, rng, cfg)
    image, cube, meta = _simulate(shape, rng, active, cfg, frame=True)
    hdr = wcs_header(make_wcs(shape, pixel_scale))
    hdr["BUNIT"] = ("adu", "Pixel unit (raw)")
    hdr["FWHM"] = (meta["fwhm"], "PSF FWHM [pixel]")
    hdr["SEEING"] = (meta["fwhm"] * pixel_scale, "PSF FWHM [arcsec]")
    hdr["PSFMODEL"] = (meta["psf_profile"], "PSF profile")
    hdr["GAIN"] = (meta["gain"], "Gain [e-/ADU]")
    hdr["RDNOISE"] = (meta["read_noise"], "Read noise [e-]")
    hdr["SKYLEVEL"] = (meta["sky"], "Sky level above bias [ADU]")
    hdr["SKYSIGMA"] = (meta["sigma"], "Background noise [ADU]")
    hdr["BIASLEV"] = (meta["bias"], "Bias level [ADU]")
    hdr["SATURATE"] = (meta["saturation"], "Saturation level [ADU]")
    if seed is not None:
        hdr["SIMSEED"] = (int(seed), "Simulation seed")
    hdr["HIERARCH ASTRODLSIM"] = (CONTAMINANT_VERSION, "simulator")
    return ContaminantTile(image, cube, meta, hdr)


def tile_batch(n, size=128, rng=None, config=None):
    """``(images, masks)``: ``(n, 1, size, size)`` float32 ADU and ``(n, 14, size, size)`` bool.

    Examples
    --------
    >>> images, masks = tile_batch(2, size=32, rng=0)
    >>> images.shape, images.dtype, masks.shape, masks.dtype
    ((2, 1, 32, 32), dtype('float32'), (2, 14, 32, 32), dtype('bool'))
    """
    rng = np.random.default_rng(rng)
    images = np.empty((n, 1, size, size), np.float32)
    masks = np.empty((n, len(CLASSES), size, size), bool)
    for i in range(n):
        t = simulate_contaminant_tile(size, rng, config=config)
        images[i, 0], masks[i] = t.image, t.masks
    return images, masks


def class_fractions(n_tiles=500, size=128, seed=0, config=None):
    """Per-class pixel fractions and tile-presence fractions of the tile generator.

    Returns ``(pixel_fraction, presence)``, two dicts over ``CLASSES``; the pixel
    fractions are the training priors of networks trained on these tiles.

    Examples
    --------
    >>> pixels, presence = class_fractions(n_tiles=4, size=32, seed=0)  # use hundreds of tiles in practice
    >>> sorted(pixels) == sorted(presence), presence["BG"]
    (True, 1.0)
    """
    rng = np.random.default_rng(seed)
    pix = np.zeros(len(CLASSES))
    pres = np.zeros(len(CLASSES))
    for _ in range(n_tiles):
        t = simulate_contaminant_tile(size, rng, config=config)
        counts = t.masks.reshape(len(CLASSES), -1).sum(axis=1)
        pix += counts / (size * size)
        pres += counts > 0
    return ({c: float(v / n_tiles) for c, v in zip(CLASSES, pix)},
            {c: float(v / n_tiles) for c, v in zip(CLASSES, pres)})
