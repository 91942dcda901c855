"""Detector contaminants: charge that never went through the optics (sharp, not PSF-blurred).

Arrays are in electrons on the active area with columns along axis 0 (the direction
charge is clocked, so bleed trails run along axis 0). Additive defects return
``(electrons, mask, params)``, response defects ``(response, mask, params)`` with
``response`` multiplying the collected photo-electrons. Masks of structural defects
(hot/dead columns and pixels) are their whole footprint; the cosmic-ray mask keeps the
pixels whose deposit exceeds ``k * sigma``.
"""

import numpy as np
from scipy.ndimage import gaussian_filter, label

from .optical_artefacts import log_uniform

__all__ = ["splat", "cosmic_rays", "hot_columns", "dead_columns", "hot_pixels",
           "dead_pixels", "saturate", "significant"]


def splat(shape, x, y, w):
    """Image of point charges ``w`` at ``(x, y)``, shared bilinearly between 4 pixels.

    Examples
    --------
    >>> import numpy as np
    >>> splat((3, 3), x=np.array([1.5]), y=np.array([1.0]), w=np.array([10.0]))  # half-way between two pixels
    array([[0., 0., 0.],
           [0., 5., 5.],
           [0., 0., 0.]])
    """
    ny, nx = shape
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    out = np.zeros(ny * nx)
    for dy, dx, wt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                       (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < nx) & (yi >= 0) & (yi < ny)
        out += np.bincount(yi[ok] * nx + xi[ok], weights=(w * wt)[ok], minlength=ny * nx)
    return out.reshape(shape)


def cosmic_rays(shape, rng, n, sigma, cap, k=1.0, level=(3.0, 500.0),
                kinds=(("spot", 0.25), ("track", 0.5), ("worm", 0.25)), diffusion=0.0):
    """``n`` cosmic-ray hits: spots, straight tracks and curly worms.

    Each hit deposits charge along a path sampled every 0.25 px, shared bilinearly
    between neighbouring pixels (charge spread of one or two pixels): a *spot* is a
    single point (1-4 pixels), a *track* a straight segment of log-uniform length 1-60 px
    at a uniform angle (long ones cross thick CCDs at grazing incidence), a *worm* a
    random walk of 3-30 px whose direction diffuses. The per-pixel level along the path
    is log-uniform in ``level`` times ``sigma`` with Landau-like 30% fluctuations per
    sample. ``diffusion`` (px) is the Gaussian charge diffusion of the detector (thick
    CCDs blur tracks; still sharper than any PSF); pixels are capped at ``cap`` electrons.

    Examples
    --------
    >>> import numpy as np
    >>> electrons, mask, params = cosmic_rays((32, 32), np.random.default_rng(0), 3, sigma=10.0, cap=1e5)
    >>> electrons.shape, int(mask.sum()), [p["kind"] for p in params]
    ((32, 32), 10, ['cr_track', 'cr_spot', 'cr_track'])
    """
    ny, nx = shape
    names = [kd for kd, _ in kinds]
    probs = np.array([p for _, p in kinds], float)
    xs, ys, ws, params = [], [], [], []
    step = 0.25
    for _ in range(n):
        kind = names[rng.choice(len(names), p=probs / probs.sum())]
        x0, y0 = rng.uniform(-0.5, nx - 0.5), rng.uniform(-0.5, ny - 0.5)
        peak = float(log_uniform(rng, *level)) * sigma
        if kind == "spot":
            x, y, w = np.array([x0]), np.array([y0]), np.array([peak * rng.uniform(1.0, 2.5)])
            length = 0.0
        else:
            length = float(log_uniform(rng, 1.0, 60.0) if kind == "track" else log_uniform(rng, 3.0, 30.0))
            m = max(int(length / step), 2)
            th = rng.uniform(0, 2 * np.pi)
            if kind == "track":
                t = np.arange(m) * step
                x, y = x0 + t * np.cos(th), y0 + t * np.sin(th)
            else:
                ang = th + np.cumsum(rng.normal(0.0, 0.25, m))
                x = x0 + np.cumsum(step * np.cos(ang))
                y = y0 + np.cumsum(step * np.sin(ang))
            w = peak * step * rng.lognormal(0.0, 0.3, m)
        xs.append(x)
        ys.append(y)
        ws.append(w)
        params.append(dict(kind="cr_" + kind, x=float(x0), y=float(y0), length=length,
                           level_snr=peak / sigma))
    if not n:
        return np.zeros(shape), np.zeros(shape, bool), params
    dep = splat(shape, np.concatenate(xs), np.concatenate(ys), np.concatenate(ws))
    if diffusion > 0:
        dep = gaussian_filter(dep, diffusion, mode="constant")
    dep = np.minimum(dep, cap)
    return dep, dep > k * sigma, params


def _line_footprint(shape, rng, partial_prob=0.5, p_row=0.15, width=(1, 2)):
    """Footprint of a column (or, with ``p_row``, a row) defect, maybe starting mid-way.

    Partial defects run from a random position to the edge (towards the readout).
    """
    ny, nx = shape
    mask = np.zeros(shape, bool)
    row = rng.random() < p_row
    n_along, n_across = (nx, ny) if row else (ny, nx)
    w = int(rng.integers(width[0], width[1] + 1))
    i = int(rng.integers(0, n_across - w + 1))
    a, b = 0, n_along
    partial = rng.random() < partial_prob
    if partial:
        cut = int(rng.integers(n_along // 8, n_along - n_along // 8 + 1))
        a, b = (0, cut) if rng.random() < 0.5 else (cut, n_along)
    if row:
        mask[i:i + w, a:b] = True
    else:
        mask[a:b, i:i + w] = True
    return mask, dict(orientation="row" if row else "column", index=i, width=w,
                      start=a, stop=b)


def hot_columns(shape, rng, n, sigma, level=(0.7, 50.0), cap=None):
    """``n`` hot columns/lines: elevated dark signal (electrons, to be Poisson-sampled).

    Level log-uniform in ``level`` times ``sigma`` (faint ones are only visible by
    averaging along the column), with a 10% smooth variation along it.

    Examples
    --------
    >>> import numpy as np
    >>> dark, mask, params = hot_columns((32, 32), np.random.default_rng(0), 1, sigma=10.0)
    >>> int(mask.sum()), params[0]["orientation"], params[0]["width"], (params[0]["start"], params[0]["stop"])
    (54, 'column', 2, (5, 32))
    """
    out = np.zeros(shape)
    mask = np.zeros(shape, bool)
    params = []
    for _ in range(n):
        m, p = _line_footprint(shape, rng)
        lev = float(log_uniform(rng, *level)) * sigma
        if cap is not None:
            lev = min(lev, cap)
        ramp = 1.0 + 0.1 * np.sin(np.linspace(0, rng.uniform(1, 6), m.sum()) + rng.uniform(0, 6))
        out[m] += lev * ramp
        mask |= m
        params.append(dict(kind="hot_line", level_snr=lev / sigma, **p))
    return out, mask, params


def dead_columns(shape, rng, n_lines, n_clusters, response=(0.0, 0.3)):
    """Dead columns/lines (``n_lines``) and small dead clusters (``n_clusters``, 2-12 px).

    Response uniform in ``response`` (multiplies the collected photo-electrons).

    Examples
    --------
    >>> import numpy as np
    >>> response, mask, params = dead_columns((32, 32), np.random.default_rng(0), n_lines=1, n_clusters=2)
    >>> [p["kind"] for p in params], bool(response[mask].max() <= 0.3), bool((response[~mask] == 1).all())
    (['dead_line', 'dead_cluster', 'dead_cluster'], True, True)
    """
    ny, nx = shape
    resp = np.ones(shape)
    mask = np.zeros(shape, bool)
    params = []
    for _ in range(n_lines):
        m, p = _line_footprint(shape, rng)
        r = rng.uniform(*response)
        resp[m] *= r
        mask |= m
        params.append(dict(kind="dead_line", response=float(r), **p))
    for _ in range(n_clusters):
        size = int(rng.integers(2, 13))
        steps = rng.integers(-1, 2, (size, 2))
        pos = np.cumsum(steps, axis=0) + [rng.integers(0, ny), rng.integers(0, nx)]
        ok = (pos[:, 0] >= 0) & (pos[:, 0] < ny) & (pos[:, 1] >= 0) & (pos[:, 1] < nx)
        r = rng.uniform(*response)
        m = np.zeros(shape, bool)
        m[pos[ok, 0], pos[ok, 1]] = True
        resp[m] *= r
        mask |= m
        params.append(dict(kind="dead_cluster", y=int(pos[0, 0]), x=int(pos[0, 1]),
                           n_pixels=int(m.sum()), response=float(r)))
    return resp, mask, params


def _random_pixels(shape, rng, n):
    idx = rng.choice(shape[0] * shape[1], size=min(n, shape[0] * shape[1]), replace=False)
    return np.unravel_index(idx, shape)


def hot_pixels(shape, rng, n, sigma, level=(5.0, 300.0), cap=None):
    """``n`` single hot pixels, dark signal log-uniform in ``level`` times ``sigma``.

    Examples
    --------
    >>> import numpy as np
    >>> dark, mask, params = hot_pixels((32, 32), np.random.default_rng(0), 5, sigma=10.0)
    >>> int(mask.sum()), bool(dark[mask].min() >= 5 * 10.0)  # at least 5 sigma
    (5, True)
    """
    out = np.zeros(shape)
    yi, xi = _random_pixels(shape, rng, n)
    lev = log_uniform(rng, *level, len(yi)) * sigma
    if cap is not None:
        lev = np.minimum(lev, cap)
    out[yi, xi] = lev
    return out, out > 0, [dict(kind="hot_pixels", n=int(len(yi)))]


def dead_pixels(shape, rng, n, response=(0.0, 0.05)):
    """``n`` single dead pixels of response uniform in ``response``.

    Examples
    --------
    >>> import numpy as np
    >>> response, mask, params = dead_pixels((32, 32), np.random.default_rng(0), 5)
    >>> int(mask.sum()), bool(response[mask].max() <= 0.05), params
    (5, True, [{'kind': 'dead_pixels', 'n': 5}])
    """
    resp = np.ones(shape)
    yi, xi = _random_pixels(shape, rng, n)
    resp[yi, xi] = rng.uniform(*response, len(yi))
    mask = np.zeros(shape, bool)
    mask[yi, xi] = True
    return resp, mask, [dict(kind="dead_pixels", n=int(len(yi)))]


def _fill(view, charge, full_well):
    """Pour ``charge`` into ``view`` (in place) from its first pixel on, up to the full well."""
    if charge <= 0 or view.size == 0:
        return
    room = np.cumsum(np.maximum(full_well - view, 0.0))
    nfull = int(np.searchsorted(room, charge, side="right"))
    view[:nfull] = np.maximum(view[:nfull], full_well)
    if nfull < view.size:
        view[nfull] += charge - (room[nfull - 1] if nfull else 0.0)


def saturate(electrons, full_well, up_fraction=0.5):
    """Clip pixels at ``full_well`` and bleed the excess charge along columns (axis 0).

    Each run of over-full pixels in a column is set to the full well and its excess
    charge fills the neighbouring pixels of the column up to the full well, a fraction
    ``up_fraction`` towards higher rows and the rest towards lower rows (passing through
    full pixels; charge reaching the edge is lost). Returns ``(electrons, mask)`` with
    ``mask`` the pixels left at the full well (saturated cores plus bleed trails).

    Examples
    --------
    >>> import numpy as np
    >>> column = np.zeros((8, 1))
    >>> column[4] = 250.0  # 150 e- over a full well of 100
    >>> electrons, mask = saturate(column, full_well=100.0)
    >>> electrons.ravel(), mask.ravel().astype(int)  # half the excess bleeds up, half down
    (array([  0.,   0.,   0.,  75., 100.,  75.,   0.,   0.]), array([0, 0, 0, 0, 1, 0, 0, 0]))
    """
    e = np.array(electrons, dtype=np.float64, copy=True)
    over = e > full_well
    if not over.any():
        return e, over
    for j in np.flatnonzero(over.any(axis=0)):
        col = e[:, j]  # a view: filled in place
        runs = np.flatnonzero(np.diff(np.r_[0, (col > full_well).astype(np.int8), 0]))
        for a, b in zip(runs[::2], runs[1::2]):
            excess = float(np.sum(col[a:b] - full_well))
            col[a:b] = full_well
            _fill(col[b:], up_fraction * excess, full_well)
            if a > 0:
                _fill(col[a - 1::-1], (1.0 - up_fraction) * excess, full_well)
    return e, e >= full_well


def significant(mask, effect, noise, k):
    """``mask`` restricted to the defects whose matched-filter S/N is at least ``k``.

    A defect is a connected group of ``mask`` pixels; its S/N is the summed absolute
    effect (electrons gained or lost) over the quadrature sum of the pixel noise. A single
    pixel needs ``|effect| >= k * noise``; a long column needs far less per pixel. Defects
    below it do not show in the frame (a dead pixel under a faint sky), so they are not
    labelled.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((5, 5), bool)
    >>> mask[1, 1] = True  # a hot pixel of 3 sigma
    >>> mask[3, 1:4] = True  # a short hot line of 3 sigma per pixel: 5.2 sigma in all
    >>> effect = 3.0 * mask
    >>> significant(mask, effect, noise=np.ones((5, 5)), k=5.0).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    lab, n = label(mask)
    if n == 0:
        return mask
    idx = np.arange(1, n + 1)
    signal = np.bincount(lab.ravel(), np.abs(effect).ravel(), n + 1)[idx]
    var = np.bincount(lab.ravel(), (noise ** 2 * np.ones_like(effect)).ravel(), n + 1)[idx]
    keep = np.r_[False, signal >= k * np.sqrt(var)]
    return keep[lab]
