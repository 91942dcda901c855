"""From a significance map to calibrated per-pixel source probabilities.

The probability model is the two-group model of Efron's local false discovery rate.
Every pixel's matched-filter significance ``nu`` is drawn either from the *null* (no
source signal: ``nu ~ N(0, s0^2)``) or from an unknown *alternative* density ``f1``
(the pixel holds source signal). With ``pi1`` the fraction of source pixels (the prior),
Bayes' theorem gives

    P(source | nu) = pi1 f1(nu) / (pi1 f1(nu) + (1 - pi1) f0(nu)).

Everything is estimated from the image itself: sources only push ``nu`` upwards, so the
negative half of the histogram is pure noise. It gives the null width ``s0`` (1 for a
correct noise map; > 1 for correlated noise, e.g. resampled images) and the null fraction
``pi0 = P(nu < 0) / 0.5``. The excess of the (smoothed) histogram density over the scaled
null at positive ``nu`` is the source term ``pi1 f1``: its integral is the measured source
fraction ``pi1`` and its shape, normalised, is ``f1``. A user-supplied prior replaces the
measured ``pi1`` in Bayes' rule (prior shift) while ``f1`` stays the one measured. The
posterior is forced to be non-decreasing in ``nu``.
"""

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import ndtr, ndtri  # the normal CDF and its inverse (scipy.stats costs 0.6 s to import)

__all__ = ["sample_finite", "null_scale", "SourcePosterior", "fit_source_posterior"]

_MAD_HALF_NORMAL = float(ndtri(0.75))  # median of |N(0, 1)|


def sample_finite(values, max_samples=4_000_000):
    """Finite values of ``values`` as a 1-D array, regularly subsampled to ``max_samples``.

    Examples
    --------
    >>> import numpy as np
    >>> sample_finite(np.array([[1.0, np.nan], [3.0, np.inf]]))
    array([1., 3.])
    >>> sample_finite(np.arange(10.0), max_samples=5)  # every other value
    array([0., 2., 4., 6., 8.])
    """
    flat = np.asarray(values).ravel()
    step = max(1, flat.size // max_samples)
    sample = flat[::step]
    return sample[np.isfinite(sample)]


def null_scale(sample):
    """Width of the noise-only distribution, from the negative half of ``sample``.

    Examples
    --------
    >>> import numpy as np
    >>> nu = np.random.default_rng(0).normal(0.0, 1.5, 100_000)  # correlated noise: too wide
    >>> round(null_scale(nu), 1)
    1.5
    """
    neg = sample[sample < 0]
    if neg.size < 100:
        return 1.0
    return float(np.median(-neg) / _MAD_HALF_NORMAL)


@dataclass
class SourcePosterior:
    """Tabulated ``P(source | nu)`` on a grid of (null-rescaled) significance.

    Examples
    --------
    >>> import numpy as np
    >>> nu = np.random.default_rng(0).normal(0.0, 1.0, 200_000)
    >>> nu[:2000] += 8.0  # 1% of the pixels hold source signal
    >>> post = fit_source_posterior(nu)
    >>> post(np.array([[0.0, 3.0], [8.0, np.nan]])).round(3)
    array([[0.   , 0.014],
           [1.   ,   nan]], dtype=float32)
    """

    grid: np.ndarray
    posterior: np.ndarray
    prior: float  # fraction of source pixels used in Bayes' rule
    pi0: float  # null fraction measured on the image
    scale: float  # null width the significance was divided by

    def __call__(self, nu, rows=256):
        """Posterior for significance values (already divided by ``scale``); NaN stays NaN.

        Linear interpolation on the regular grid, in float32 and ``rows`` rows at a time
        so the temporaries stay small next to a full frame.
        """
        nu = np.asarray(nu, dtype=np.float32)
        flat_in = nu.reshape(nu.shape[0] if nu.ndim else 1, -1)
        flat_out = np.empty_like(flat_in)
        step = np.float32(self.grid[1] - self.grid[0])
        table = self.posterior.astype(np.float32)
        for r in range(0, flat_in.shape[0], rows):
            chunk = flat_in[r:r + rows]
            missing = np.isnan(chunk)
            t = np.clip((chunk - np.float32(self.grid[0])) / step, 0, len(self.grid) - 1.001)
            t[missing] = 0
            i = t.astype(np.int32)
            t -= i
            p = table[i]
            p += t * (table[i + 1] - p)
            p[missing] = np.nan
            flat_out[r:r + rows] = p
        return flat_out.reshape(nu.shape)


def fit_source_posterior(sample, prior=None, bin_width=0.1, smooth_bins=2.0):
    """Fit the two-group model to a sample of null-rescaled significance values.

    Examples
    --------
    >>> import numpy as np
    >>> nu = np.random.default_rng(0).normal(0.0, 1.0, 200_000)
    >>> nu[:2000] += 8.0  # 1% of the pixels hold source signal
    >>> post = fit_source_posterior(nu)
    >>> round(post.prior, 3), post([0.0, 5.0, 8.0]).round(3)  # the measured source fraction
    (0.011, array([0.   , 0.983, 1.   ], dtype=float32))
    >>> fit_source_posterior(nu, prior=1e-3)([5.0]).round(3)  # a smaller prior: less sure
    array([0.836], dtype=float32)
    """
    sample = np.asarray(sample, dtype=np.float64)
    if sample.size == 0:
        raise ValueError("no finite significance values")
    pi0 = float(np.clip(2.0 * np.mean(sample < 0), 1e-6, 1.0 - 1e-6))
    top = max(10.0, float(np.quantile(sample, 0.9999)) + 1.0)
    edges = np.arange(-10.0, top + bin_width, bin_width)
    counts, _ = np.histogram(sample, edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    smooth = lambda c: gaussian_filter1d(c / bin_width, smooth_bins, mode="constant")  # noqa: E731
    density = smooth(counts / sample.size)
    null = smooth(np.diff(ndtr(edges)))  # binned and smoothed exactly like the data
    f0 = np.exp(-0.5 * centres**2) / np.sqrt(2 * np.pi)  # the unit normal's density
    excess = np.clip(density - pi0 * null, 0.0, None)
    excess[centres <= 0] = 0.0  # sources only raise the significance
    measured = float(np.clip(excess.sum() * bin_width, 1e-9, 1.0 - 1e-9))
    f1 = excess / measured if excess.any() else np.where(centres > 0, f0, 0.0)
    pi1 = measured if prior is None else float(prior)
    if not 0.0 < pi1 < 1.0:
        raise ValueError(f"source prior must be in (0, 1), got {pi1}")
    with np.errstate(invalid="ignore", divide="ignore"):
        post = pi1 * f1 / (pi1 * f1 + (1.0 - pi1) * f0)
    post = np.where(np.isfinite(post), post, 1.0)
    post[centres <= 0] = np.minimum(post[centres <= 0], post[centres > 0][0])
    post = np.maximum.accumulate(post)
    return SourcePosterior(centres, post, pi1, 1.0 - measured, 1.0)
