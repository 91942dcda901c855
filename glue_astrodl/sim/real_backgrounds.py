"""Real frames as backgrounds: the simulator's contaminants injected with exact labels.

MaxiMask's recipe (Paillassa et al. 2020): the network learns what real skies, galaxies,
crowded fields and noise look like when its training tiles are *real* images into which
known contaminants have been injected. This module does that with the frames listed in
`glue_astrodl.sim.real_frames` (read from installed packages, never downloaded):

1. `load_frame` reads one unit (an HDU or a chip of a cube) as float32.
2. `frame_statistics` estimates its sky level and pixel noise (`robust_level_noise`).
3. `own_contaminants` marks what the frame already holds and we cannot label: its own
   cosmic rays and hot pixels (astroscrappy's L.A.Cosmic mask, grown by one pixel),
   non-finite pixels and a saturated plateau. Those pixels are *ignored* (a loss weight
   of 0), so a real CR never becomes a negative.
4. `inject_contaminants` adds the simulator's contaminants (`detector_defects`,
   `optical_artefacts`) to a tile in the frame's own units and noise: additive light
   (trails, nebulosity, bright background, fringes, persistence) with its shot noise at
   the gain implied by the sky (``sky / noise**2``), dead columns and pixels as a response
   on the pixels above the frame's pedestal, hot columns and pixels as dark signal, cosmic
   rays as charge. Labels follow the simulator's rules (``k_mask * sigma`` for additive
   classes, matched-filter S/N ``k_defect`` for structural defects), so they are exact:
   only injected pixels are labelled. SAT, SP and OV are not injected (their real
   counterparts in a frame would need their own labels); BG is the complement.
5. `real_tile_pool` cuts random tiles from the units of one split and injects into them:
   the same ``(images, masks)`` structure as `tile_batch`, plus the ignore masks.

`add_sky_gradient` gives simulated tiles smooth sky gradients (linear plus a vignetting
term) of up to +-10% of the sky, which stay background: flat-field residuals, vignetting
and moonlight must not become a class.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> background = rng.normal(100.0, 5.0, (64, 64)).astype(np.float32)  # a stand-in for a real tile
>>> tile = inject_contaminants(background, rng, sky=100.0, noise=5.0, classes=["CR"])
>>> changed = tile.image != background
>>> bool(tile.mask("CR")[~changed].any()), bool(changed[tile.mask("CR")].all())  # only injected pixels labelled
(False, True)
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import binary_dilation

from ..core.normalise import robust_level_noise
from ..tasks.contaminant_classes import CLASSES
from .contaminants import DEFAULT_PRESENCE, REF_TILE, TILE_COUNTS, ContaminantConfig, ContaminantTile
from .detector_defects import cosmic_rays, dead_columns, dead_pixels, hot_columns, hot_pixels, significant
from .optical_artefacts import PSFBank, bright_background, fringes, nebulosity, persistence, satellite_trail
from .real_frames import FRAMES
from .real_frames import VERSION as FRAMES_VERSION
from .render import PSFModel

__all__ = ["REAL_BACKGROUND_VERSION", "INJECTED", "RealTile", "frames", "frame_path", "load_frame",
           "frame_statistics", "own_contaminants", "inject_contaminants", "add_sky_gradient", "real_tile_pool"]

REAL_BACKGROUND_VERSION = f"glue_astrodl.sim.real_backgrounds/2+{FRAMES_VERSION}"
#: classes injected into real tiles (SAT, SP and OV are not: see the module docstring)
INJECTED = ("CR", "HCL", "DCL", "HP", "DP", "P", "TRL", "FR", "NEB", "BBG")
_REPO = Path(__file__).resolve().parents[2]


@dataclass
class RealTile(ContaminantTile):
    """A `ContaminantTile` cut from a real frame, with ``ignore``: pixels whose truth is
    unknown (the frame's own CRs and hot pixels...), to get a loss weight of 0.

    Examples
    --------
    >>> import numpy as np
    >>> tile = inject_contaminants(np.full((32, 32), 10.0), 0, sky=10.0, noise=1.0, classes=[])
    >>> tile.image.shape, tile.masks.shape, tile.ignore.shape, bool(tile.mask("BG").all())
    ((32, 32), (14, 32, 32), (32, 32), True)
    """

    ignore: np.ndarray = None


def frames(split=None):
    """Entries of the manifest (`glue_astrodl.sim.real_frames.FRAMES`), of one ``split``
    ('train' or 'test') or all.

    Examples
    --------
    >>> train, test = {f["id"] for f in frames("train")}, {f["id"] for f in frames("test")}
    >>> "m51_kpno" in test, train.isdisjoint(test)
    (True, True)
    """
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
    return [dict(f) for f in FRAMES if split is None or f["split"] == split]


def _entry(frame):
    if isinstance(frame, str):
        found = [f for f in FRAMES if f["id"] == frame]
        if not found:
            raise ValueError(f"no real frame {frame!r}; choose from {[f['id'] for f in FRAMES]}")
        return dict(found[0])
    return frame


def frame_path(frame):
    """Path of a frame's file (an id or a manifest entry) if its package is installed, else None
    ('repo' frames: in the source tree of this module or under the working directory).

    Examples
    --------
    >>> frame_path("m51_kpno").name  # in the repository
    'm51_iraf_dev_pix.fits.gz'
    """
    entry = _entry(frame)
    if entry["kind"] == "repo":  # a source checkout (the package may be installed elsewhere): here or the cwd
        found = [root / entry["path"] for root in (_REPO, Path.cwd()) if (root / entry["path"]).is_file()]
        return found[0] if found else None
    else:
        try:
            spec = importlib.util.find_spec(entry["package"])
        except (ImportError, ValueError):
            spec = None
        if spec is None or spec.origin is None:
            return None
        root = Path(spec.origin).parents[len(entry["package"].split("."))]
        path = root / entry["path"]
    return path if path.is_file() else None


def load_frame(frame, active=True):
    """One unit of a frame as float32 ``(ny, nx)``: its HDU, its plane of a cube and (with
    ``active``) the section that holds sky. Raises ``FileNotFoundError`` naming the package
    to install when the frame is not here.

    Examples
    --------
    >>> load_frame("m51_kpno").shape
    (512, 512)
    """
    from astropy.io import fits

    entry = _entry(frame)
    path = frame_path(entry)
    if path is None:
        where = ("run from a source checkout of glue-astrodl" if entry["kind"] == "repo"
                 else f"pip install {entry['package']}=={entry['version']}")
        raise FileNotFoundError(f"real frame {entry['id']!r} ({entry['path']}) is not installed: {where}")
    with fits.open(path, memmap=False) as hdul:
        data = np.asarray(hdul[entry["hdu"]].data, dtype=np.float32)
    if entry.get("plane") is not None:
        data = data[entry["plane"]]
    if active and entry.get("active"):
        y0, y1, x0, x1 = entry["active"]
        data = data[y0:y1, x0:x1]
    return np.ascontiguousarray(data)


def frame_statistics(image):
    """``(sky, noise)`` of a frame: the mode and the pixel-difference MAD noise.

    Examples
    --------
    >>> import numpy as np
    >>> sky, noise = frame_statistics(np.random.default_rng(0).normal(50.0, 2.0, (64, 64)))
    >>> round(sky), round(noise)
    (50, 2)
    """
    level, noise = robust_level_noise(np.asarray(image, np.float32))
    return float(level), float(noise)


def _gain(sky, noise, zero):
    """Data units -> 'electrons' implied by a sky-limited noise (``(sky - zero) / noise^2``),
    or None when the sky above the pedestal is too faint to tell (background-subtracted)."""
    above = sky - zero
    return above / noise**2 if above > 4.0 * noise else None


def own_contaminants(image, sky, noise, zero=0.0, grow=1, sigclip=5.0, objlim=5.0, detect=True):
    """Pixels of a real frame whose label is unknown: its own cosmic rays and hot pixels
    (astroscrappy's L.A.Cosmic in the units implied by ``sky``/``noise``, grown by ``grow``
    pixels), non-finite pixels and a saturated plateau (more than one pixel at the maximum).
    ``detect=False`` skips L.A.Cosmic, for frames known to hold no CRs (stacks, plate scans:
    their noise is not Poisson and L.A.Cosmic would flag their grain).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(100.0, 3.0, (64, 64)).astype(np.float32)
    >>> image[20, 30] += 400.0  # the frame's own cosmic ray
    >>> ignore = own_contaminants(image, 100.0, 3.0)
    >>> bool(ignore[20, 30]), bool(ignore[19:22, 29:32].all()), int(ignore.sum()) < 20  # grown by a pixel
    (True, True, True)
    >>> int(own_contaminants(image, 100.0, 3.0, detect=False).sum())  # a frame known to be free of CRs
    0
    """
    image = np.asarray(image, np.float32)
    finite = np.isfinite(image)
    data = np.where(finite, image, sky).astype(np.float32)
    gain = _gain(sky, noise, zero)
    if gain is None:  # no Poisson sky: units where the noise is 1 'electron' of read noise
        gain, readnoise = 1.0 / noise, 1.0
    else:
        readnoise = 0.0
    crs = np.zeros(data.shape, bool)
    if detect:
        import astroscrappy

        crs, _ = astroscrappy.detect_cosmics(data - zero, gain=gain, readnoise=readnoise, sigclip=sigclip,
                                             objlim=objlim, satlevel=np.inf, niter=4)
    top = data.max()
    plateau = data >= top
    ignore = crs | (plateau if plateau.sum() > 1 else False)
    if grow:
        ignore = binary_dilation(ignore, np.ones((3, 3), bool), iterations=grow)
    return ignore | ~finite


def _draw(classes, rng, cfg):
    if classes is None:
        return [c for c in INJECTED if rng.random() < cfg.presence.get(c, DEFAULT_PRESENCE.get(c, 0.0))]
    bad = set(classes) - set(INJECTED)
    if bad:
        raise ValueError(f"cannot inject {sorted(bad)} into real backgrounds; choose from {INJECTED}")
    return [c for c in INJECTED if c in classes]


def inject_contaminants(background, rng, sky, noise, zero=0.0, classes=None, config=None, ignore=None, fwhm=2.5):
    """Inject the simulator's contaminants into a real tile, in its own units and noise.

    ``background``: the real pixels; ``sky``, ``noise``: the frame's level and noise
    (`frame_statistics`) in those units; ``zero``: its pedestal (bias of a raw frame);
    ``classes``: exactly these of `INJECTED`, or each with ``config.presence``; ``ignore``:
    the frame's own contaminants there (`own_contaminants`); ``fwhm``: PSF FWHM (px) of
    trails and ghosts. Returns a `RealTile` whose masks label exactly the injected pixels
    (same rules as `simulate_contaminant_tile`) and ``meta`` with the drawn ``classes``,
    ``artefacts`` and the units' ``sky``, ``sigma``, ``gain``.

    Examples
    --------
    >>> import numpy as np
    >>> background = np.random.default_rng(1).normal(200.0, 10.0, (64, 64))
    >>> tile = inject_contaminants(background, 0, sky=200.0, noise=10.0, classes=["HP", "TRL"])
    >>> tile.meta["classes"], bool(tile.mask("HP").any()), bool(tile.mask("TRL").any())
    (['HP', 'TRL'], True, True)
    """
    rng = np.random.default_rng(rng)
    cfg = ContaminantConfig(**config) if isinstance(config, dict) else config or ContaminantConfig()
    bg = np.asarray(background, np.float64)
    shape = bg.shape
    active = _draw(classes, rng, cfg)
    sigma, k, above = float(noise), cfg.k_mask, float(sky) - zero
    gain = _gain(sky, noise, zero)
    n_of = lambda name: max(1, int(rng.poisson(cfg.tile_counts.get(name, TILE_COUNTS.get(name, 1.0))  # noqa: E731
                                                 * shape[0] * shape[1] / REF_TILE)))
    shot = lambda signal: (np.sqrt(np.maximum(signal, 0.0) / gain) * rng.standard_normal(shape)  # noqa: E731
                           * (signal > 0) if gain else 0.0)
    psf = PSFModel(float(fwhm), "moffat", 3.0)
    masks, arts = {}, []
    light = np.zeros(shape)
    if "FR" in active and above > 5.0 * sigma:
        factor, masks["FR"], p = fringes(shape, rng, np.full(shape, above), sigma, k)
        light += factor * above
        arts.append(p)
    additive = (("TRL", lambda: satellite_trail(shape, rng, psf, sigma, k)),
                ("NEB", lambda: nebulosity(shape, rng, sigma, k)),
                ("BBG", lambda: bright_background(shape, rng, max(above, sigma), sigma, cfg.bbg_k, cfg.bbg_frac)),
                ("P", lambda: persistence(shape, rng, PSFBank(psf), sigma, n_of("P"), k)))
    for name, make in additive:
        if name in active:
            c, masks[name], p = make()
            light += c
            arts += p if isinstance(p, list) else [p]
    image = bg + light + shot(np.abs(light)) if light.any() else bg.copy()
    noise_map = np.sqrt(sigma**2 + (np.maximum(bg - sky, 0.0) / gain if gain else 0.0))
    clusters = cfg.tile_counts.get("DCL_clusters", TILE_COUNTS["DCL_clusters"]) * shape[0] * shape[1] / REF_TILE
    dead = (("DCL", lambda: dead_columns(shape, rng, n_of("DCL"), int(rng.poisson(clusters)))),
            ("DP", lambda: dead_pixels(shape, rng, n_of("DP"))))
    if any(name in active for name, _ in dead):  # a response on the signal above the pedestal
        response, signal = np.ones(shape), np.abs(image - zero)
        for name, make in dead:
            if name in active:
                r, m, p = make()
                masks[name] = significant(m, (1.0 - r) * signal, noise_map, cfg.k_defect)
                response *= r
                arts += p
        image = zero + (image - zero) * response
    for name, make in (("HCL", hot_columns), ("HP", hot_pixels)):
        if name in active:
            c, m, p = make(shape, rng, n_of(name), sigma)
            masks[name] = significant(m, c, noise_map, cfg.k_defect)
            image += c + shot(c)
            arts += p
    if "CR" in active:
        c, masks["CR"], p = cosmic_rays(shape, rng, n_of("CR"), sigma, 1e4 * sigma, k)
        image += c
        arts += p
    cube = np.zeros((len(CLASSES),) + shape, bool)
    for name, m in masks.items():
        cube[CLASSES.index(name)] = m
    cube[-1] = ~cube[:-1].any(axis=0)
    meta = dict(classes=[c for c in active if c in masks], artefacts=arts, sky=float(sky), sigma=sigma, zero=zero,
                gain=gain, k_mask=k, version=REAL_BACKGROUND_VERSION)
    ignore = np.zeros(shape, bool) if ignore is None else np.asarray(ignore, bool)
    return RealTile(image.astype(np.float32), cube, meta, ignore=ignore.copy())


def add_sky_gradient(image, sky, rng, max_fraction=0.1, keep=None, frame=None):
    """A smooth sky gradient of up to ``+-max_fraction * sky`` added to a tile: a linear
    ramp at a random angle plus a radial (vignetting) term, peak-to-mean amplitude uniform
    in ``[0, max_fraction]``. ``keep``: pixels left as they are (saturated, overscan).
    ``frame``: the side of a larger frame the gradient spans, of which the tile is a random
    window (default: the tile itself), so a tile also meets the offset from the frame's sky
    that a gradient gives far from a frame's centre. Returns ``(image, params)``; the tile's
    labels do not change (a gradient is background).

    Examples
    --------
    >>> import numpy as np
    >>> image, p = add_sky_gradient(np.full((64, 64), 100.0), 100.0, np.random.default_rng(0))
    >>> bool(np.abs(image - 100.0).max() <= 10.0 + 1e-9), p["kind"]
    (True, 'sky_gradient')
    """
    rng = np.random.default_rng(rng)
    ny, nx = np.shape(image)
    side = max(ny, nx) if frame is None else max(int(frame), ny, nx)
    y0, x0 = (0, 0) if frame is None else (int(rng.integers(0, side - ny + 1)), int(rng.integers(0, side - nx + 1)))
    phi = rng.uniform(0, 2 * np.pi)
    cx, cy = rng.uniform(-0.5, 0.5, 2)
    curve = rng.uniform(-1, 1)

    def field_at(yy, xx):  # coordinates in the frame, -0.5 to 0.5
        return np.cos(phi) * xx + np.sin(phi) * yy + curve * ((xx - cx) ** 2 + (yy - cy) ** 2)

    scale = max(side - 1, 1)
    field = field_at(*np.mgrid[y0:y0 + ny, x0:x0 + nx].astype(np.float64) / scale - 0.5)
    if frame is None:
        whole = field
    else:  # the frame's mean and extreme from a grid over it
        step = max(side // 64, 1)
        whole = field_at(*np.mgrid[0:side:step, 0:side:step].astype(np.float64) / scale - 0.5)
    mean = whole.mean()
    amp = rng.uniform(0.0, max_fraction) * float(sky)
    field = (field - mean) * amp / max(np.abs(whole - mean).max(), 1e-12)
    out = np.asarray(image, np.float64) + (field if keep is None else np.where(keep, 0.0, field))
    return out.astype(np.asarray(image).dtype), dict(kind="sky_gradient", amplitude=amp, angle=float(np.degrees(phi)))


class _Unit:
    """A frame loaded once for cutting: pixels, statistics and own-contaminant mask."""

    def __init__(self, entry):
        self.entry = entry
        self.image = load_frame(entry)
        self.sky, self.noise = frame_statistics(self.image)
        self.ignore = own_contaminants(self.image, self.sky, self.noise, entry.get("zero", 0.0),
                                       detect=entry.get("own_crs", True), **entry.get("lacosmic", {}))


def real_tile_pool(n, size, seed, split="train", config=None, frame_ids=None, units=None):
    """``n`` real-background tiles of ``size``: ``(images, masks, ignore, used, stats)`` with
    images ``(n, 1, size, size)`` float32 in the frames' units, masks ``(n, 14, size, size)``
    bool, ignore ``(n, size, size)`` bool, ``used`` the ids of the frames cut and ``stats``
    ``(n, 2)`` the sky level and noise of each tile's whole frame (`frame_statistics`): a
    tile is normalised with them as inference normalises the frame, so the light of a galaxy
    filling the frame stays light above the sky, not a sky of its own.

    Tiles come only from the installed units of ``split`` (or of ``frame_ids``, which must
    all belong to it) large enough for the tile, drawn in proportion to their area, at a
    random position and in one of the 8 orientations of the square; each gets
    `inject_contaminants`. Reproducible from ``seed``. Raises ``FileNotFoundError`` when no
    unit is installed.

    Examples
    --------
    >>> images, masks, ignore, used, stats = real_tile_pool(2, 64, seed=0, frame_ids=["ngc1316_photographic"])
    >>> images.shape, masks.shape, ignore.shape, used, stats.shape
    ((2, 1, 64, 64), (2, 14, 64, 64), (2, 64, 64), ['ngc1316_photographic', 'ngc1316_photographic'], (2, 2))
    """
    entries = frames(split)
    if frame_ids is not None:
        ids = {e["id"] for e in entries}
        wrong = set(frame_ids) - ids
        if wrong:
            raise ValueError(f"frames {sorted(wrong)} are not in the {split!r} split")
        entries = [e for e in entries if e["id"] in set(frame_ids)]
    if units is None:
        units = [_Unit(e) for e in entries if frame_path(e) is not None]
    units = [u for u in units if min(u.image.shape) >= size and u.entry in entries]
    if not units:
        raise FileNotFoundError(f"no installed real frame of the {split!r} split holds a {size} px tile; "
                                "install the packages of glue_astrodl.sim.real_frames")
    rng = np.random.default_rng(seed)
    area = np.array([u.image.size for u in units], float)
    images = np.empty((n, 1, size, size), np.float32)
    masks = np.empty((n, len(CLASSES), size, size), bool)
    ignore = np.empty((n, size, size), bool)
    stats = np.empty((n, 2), np.float64)
    used = []
    for i in range(n):
        u = units[int(rng.choice(len(units), p=area / area.sum()))]
        y = int(rng.integers(0, u.image.shape[0] - size + 1))
        x = int(rng.integers(0, u.image.shape[1] - size + 1))
        kr, flip = int(rng.integers(4)), bool(rng.integers(2))
        cut = lambda a: np.rot90(a[y:y + size, x:x + size], kr)[:, ::-1 if flip else 1]  # noqa: E731
        tile = inject_contaminants(cut(u.image), rng, u.sky, u.noise, u.entry.get("zero", 0.0), config=config,
                                   ignore=cut(u.ignore), fwhm=u.entry.get("fwhm", 2.5))
        images[i, 0], masks[i], ignore[i], stats[i] = tile.image, tile.masks, tile.ignore, (u.sky, u.noise)
        used.append(u.entry["id"])
    return images, masks, ignore, used, stats
