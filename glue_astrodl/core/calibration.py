"""Calibrated-probability tools: prior shift, ROC/MCC, reliability and PIT diagnostics.

Everything here is plain numpy (plus ``scipy.stats.kstest``), vectorised so it runs on
full images (1e7 pixels) without per-sample Python loops.

* Prior shift (label shift): a network trained on a balanced set outputs posteriors for
  the *training* class priors; :func:`prior_shift_sigmoid` (independent binary outputs)
  and :func:`prior_shift_softmax` (mutually exclusive classes, Saerens et al. 2002)
  re-weight them to the priors of the data actually being classified.
* Ranking metrics for binary problems: :func:`roc_curve`, :func:`roc_auc`,
  :func:`tpr_at_fpr`, :func:`mcc_optimal_threshold`, :func:`matthews_corrcoef`.
* Calibration of probabilities: :func:`fit_platt` (logistic recalibration of logits on
  held-out data), :func:`reliability_curve`, :func:`expected_calibration_error`.
* Gates: :func:`brier_skill_score` (against the base rate), :func:`auc_interval` (AUC
  with a bootstrap interval over groups such as tiles) and :func:`calibration_gate`, which
  pairs ECE with discrimination so that a base-rate or all-zeros model fails it.
* Calibration of predictive distributions: :func:`pit` (PDFs on a grid),
  :func:`pit_categorical` (randomised PIT for classes), :func:`pit_uniformity`.
"""

from dataclasses import dataclass

import numpy as np

__all__ = [
    "prior_shift_sigmoid",
    "prior_shift_logit",
    "prior_shift_softmax",
    "fit_platt",
    "roc_curve",
    "roc_auc",
    "tpr_at_fpr",
    "mcc_optimal_threshold",
    "matthews_corrcoef",
    "ReliabilityCurve",
    "reliability_curve",
    "expected_calibration_error",
    "brier_skill_score",
    "auc_interval",
    "calibration_gate",
    "pit",
    "pit_categorical",
    "PITDiagnostics",
    "pit_uniformity",
    "plot_reliability",
    "plot_roc",
]


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _float_array(x):
    """``x`` as a float array; float32 stays float32, everything else becomes float64."""
    x = np.asarray(x)
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    return x.astype(dtype, copy=False)


def _prior_vector(priors, name, open_unit=True):
    priors = np.asarray(priors, dtype=np.float64)
    if priors.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array, got shape {priors.shape}")
    if priors.size == 0:
        raise ValueError(f"{name} is empty")
    if open_unit:
        ok = np.all((priors > 0.0) & (priors < 1.0))
        if not ok:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {priors.tolist()}")
    else:
        ok = np.all(np.isfinite(priors) & (priors > 0.0))
        if not ok:
            raise ValueError(f"{name} must be positive and finite, got {priors.tolist()}")
    return priors


def _binary_labels(y_true, n=None):
    y = np.asarray(y_true).ravel()
    if y.dtype != bool:
        if not np.all((y == 0) | (y == 1)):
            raise ValueError("y_true must be binary (0/1 or bool)")
        y = y.astype(bool)
    if n is not None and y.size != n:
        raise ValueError(f"y_true has {y.size} elements but the scores have {n}")
    return y


def _trapezoid(y, x):
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1])) * 0.5)


def _binary_counts(y_true, score):
    """Cumulative (fps, tps, thresholds) at every distinct score, highest first.

    One sort plus cumulative sums; NaN scores are dropped. ``tps[i]``/``fps[i]``
    count positives/negatives with ``score >= thresholds[i]``.
    """
    s = np.asarray(score).ravel()
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    y = _binary_labels(y_true, s.size)
    keep = ~np.isnan(s)
    if not keep.all():
        s, y = s[keep], y[keep]
    n_pos = int(np.count_nonzero(y))
    if n_pos == 0 or n_pos == y.size:
        raise ValueError("need both positive and negative samples (only one class present)")
    order = np.argsort(s)[::-1]  # order within ties is irrelevant: runs are grouped
    s, y = s[order], y[order]
    # last index of each run of equal scores
    last = np.flatnonzero(np.diff(s) != 0)
    last = np.append(last, s.size - 1)
    tps = np.cumsum(y, dtype=np.int64)[last]
    fps = (last + 1) - tps
    return fps, tps, s[last].astype(np.float64)


# --------------------------------------------------------------------------------------
# prior shift
# --------------------------------------------------------------------------------------


def prior_shift_sigmoid(p, train_priors, priors):
    """Re-weight independent binary (sigmoid / multi-label) posteriors to new priors.

    ``p`` holds P_T(c|x) of a model trained with class priors ``train_priors``; returns
    ``p r1 / (p r1 + (1 - p) r0)`` with ``r1 = pi / pi_T`` and ``r0 = (1-pi) / (1-pi_T)``.
    Priors are scalars or length-K arrays; a length-K array is broadcast along axis 0 of
    ``p`` (shape ``(K, ...)``). All priors must lie in (0, 1). float32 input stays float32.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([0.5, 0.9])  # posteriors of a model trained at 50% positives
    >>> prior_shift_sigmoid(p, train_priors=0.5, priors=0.01).round(4)
    array([0.01  , 0.0833])
    """
    p = _float_array(p)
    pi_t = _prior_vector(train_priors, "train_priors")
    pi = _prior_vector(priors, "priors")
    try:
        pi_t, pi = np.broadcast_arrays(pi_t, pi)
    except ValueError:
        raise ValueError(
            f"train_priors ({pi_t.size}) and priors ({pi.size}) have different lengths"
        ) from None
    r1 = pi / pi_t
    r0 = (1.0 - pi) / (1.0 - pi_t)
    if r1.ndim == 1 and r1.size > 1:
        if p.ndim == 0 or p.shape[0] != r1.size:
            raise ValueError(
                f"{r1.size} priors given but p has shape {p.shape}; "
                "expected a leading class axis of that length"
            )
        shape = (r1.size,) + (1,) * (p.ndim - 1)
        r1, r0 = r1.reshape(shape), r0.reshape(shape)
    else:
        r1, r0 = r1.reshape(()), r0.reshape(())
    r1 = r1.astype(p.dtype)
    r0 = r0.astype(p.dtype)
    out = p * r1
    out /= p * (r1 - r0) + r0
    return out


def prior_shift_logit(train_priors, priors):
    """The log-odds offset that `prior_shift_sigmoid` applies: ``sigmoid(z + d)`` equals
    ``prior_shift_sigmoid(sigmoid(z), train_priors, priors)`` with
    ``d = log(pi / (1 - pi)) - log(pi_T / (1 - pi_T))``, so a model can emit shifted
    posteriors directly from its logits.

    Examples
    --------
    >>> import numpy as np
    >>> d = prior_shift_logit(0.5, 0.01)
    >>> round(float(d), 4)
    -4.5951
    >>> sigmoid = lambda t: 1 / (1 + np.exp(-t))
    >>> z = 2.0  # a logit
    >>> bool(np.isclose(sigmoid(z + d), prior_shift_sigmoid(sigmoid(z), 0.5, 0.01)))
    True
    """
    pi_t = _prior_vector(train_priors, "train_priors")
    pi = _prior_vector(priors, "priors")
    return np.log(pi / (1.0 - pi)) - np.log(pi_t / (1.0 - pi_t))


def prior_shift_softmax(p, train_priors, priors, axis=0):
    """Bayes prior correction of mutually exclusive class posteriors (Saerens et al. 2002).

    ``P(c|x) = P_T(c|x) w_c / sum_c' P_T(c'|x) w_c'`` with ``w_c = P(c) / P_T(c)``; the
    class axis of ``p`` is ``axis``. Priors must be positive and are normalised to sum 1.
    Rows whose probabilities are all zero come back as NaN. float32 input stays float32.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[0.5, 0.2], [0.5, 0.8]])  # 2 classes (axis 0) x 2 pixels, trained at equal priors
    >>> prior_shift_softmax(p, [0.5, 0.5], [0.9, 0.1]).round(3)
    array([[0.9  , 0.692],
           [0.1  , 0.308]])
    """
    p = _float_array(p)
    if p.ndim == 0:
        raise ValueError("p needs a class axis")
    pi_t = np.atleast_1d(_prior_vector(train_priors, "train_priors", open_unit=False))
    pi = np.atleast_1d(_prior_vector(priors, "priors", open_unit=False))
    if not -p.ndim <= axis < p.ndim:
        raise ValueError(f"axis {axis} out of range for p with {p.ndim} dimensions")
    axis = axis % p.ndim
    k = p.shape[axis]
    if pi_t.size != k or pi.size != k:
        raise ValueError(
            f"p has {k} classes along axis {axis} but train_priors has {pi_t.size} "
            f"and priors has {pi.size} entries"
        )
    w = (pi / pi.sum()) / (pi_t / pi_t.sum())
    shape = [1] * p.ndim
    shape[axis] = k
    out = p * w.reshape(shape).astype(p.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        out /= out.sum(axis=axis, keepdims=True)
    return out


# --------------------------------------------------------------------------------------
# ROC / MCC
# --------------------------------------------------------------------------------------


def fit_platt(y_true, logits, iters=50):
    """Platt scaling: ``(a, b)`` making ``sigmoid(a * logit + b)`` calibrated on held-out data.

    Maximum likelihood of a one-feature logistic regression by Newton's method with step
    halving, on Platt's (1999) targets ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)`` instead
    of 1 and 0, so that a perfectly separated class (saturated cores) keeps a finite slope.
    The result is calibrated at the class fraction of ``y_true``; `prior_shift_sigmoid`
    moves it to other priors.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(0.0, 2.0, 5000)  # held-out logits
    >>> y = rng.random(5000) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))  # truly sigmoid(0.5 z - 1)
    >>> a, b = fit_platt(y, z)
    >>> round(a, 1), round(b, 1)
    (0.5, -1.0)
    """
    z = np.asarray(logits, dtype=np.float64).ravel()
    y = _binary_labels(y_true, z.size).astype(np.float64)
    if y.min() == y.max():
        raise ValueError("need both positive and negative samples (only one class present)")
    n_pos = y.sum()
    t = np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (y.size - n_pos + 2))
    X = np.column_stack([z, np.ones_like(z)])

    def nll(theta):
        u = X @ theta
        return float(np.sum(np.logaddexp(0.0, u) - t * u))

    theta = np.array([1.0, 0.0])
    loss = nll(theta)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ theta, -50, 50)))
        w = np.maximum(p * (1 - p), 1e-12)
        step = np.linalg.solve((X * w[:, None]).T @ X + 1e-9 * np.eye(2), X.T @ (t - p))
        for _ in range(30):  # halve until the likelihood does not fall
            new = nll(theta + step)
            if new <= loss + 1e-12 * abs(loss):
                break
            step /= 2
        theta, loss = theta + step, new
        if np.abs(step).max() < 1e-8:
            break
    return float(theta[0]), float(theta[1])


def roc_curve(y_true, score):
    """ROC curve of the rule ``score >= threshold``: returns ``(fpr, tpr, thresholds)``.

    One point per distinct score (ties handled), preceded by (0, 0) whose threshold is
    ``inf``. NaN scores are dropped. Raises ValueError if only one class is present.

    Examples
    --------
    >>> fpr, tpr, thresholds = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> fpr, tpr
    (array([0. , 0. , 0.5, 0.5, 1. ]), array([0. , 0.5, 0.5, 1. , 1. ]))
    >>> thresholds
    array([ inf, 0.8 , 0.4 , 0.35, 0.1 ])
    """
    fps, tps, thr = _binary_counts(y_true, score)
    fpr = np.concatenate(([0.0], fps / fps[-1]))
    tpr = np.concatenate(([0.0], tps / tps[-1]))
    thresholds = np.concatenate(([np.inf], thr))
    return fpr, tpr, thresholds


def roc_auc(y_true, score):
    """Area under the ROC curve (trapezoid rule; ties count one half).

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    fpr, tpr, _ = roc_curve(y_true, score)
    return _trapezoid(tpr, fpr)


def tpr_at_fpr(y_true, score, fpr):
    """True-positive rate at false-positive rate(s) ``fpr`` (linear interpolation on ROC).

    At an FPR where the curve is vertical the highest TPR is returned. Scalar ``fpr``
    gives a float, array ``fpr`` an array.

    Examples
    --------
    >>> y, score = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    >>> tpr_at_fpr(y, score, 0.5)
    1.0
    >>> tpr_at_fpr(y, score, [0.0, 0.25])
    array([0.5 , 0.75])
    """
    f, t, _ = roc_curve(y_true, score)
    target = np.asarray(fpr, dtype=np.float64)
    if np.any(~((target >= 0.0) & (target <= 1.0))):
        raise ValueError("fpr must lie in [0, 1]")
    # collapse vertical segments, keeping the top (largest TPR) of each
    last = np.append(f[1:] != f[:-1], True)
    out = np.interp(target, f[last], t[last])
    return float(out) if out.ndim == 0 else out


def _mcc_from_counts(tp, fp, fn, tn):
    tp, fp, fn, tn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn, tn))
    num = tp * tn - fp * fn
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        mcc = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return mcc


def matthews_corrcoef(y_true, y_pred):
    """Matthews correlation coefficient of binary predictions (0 when undefined).

    Examples
    --------
    >>> round(matthews_corrcoef([0, 1, 1, 0], [0, 1, 0, 0]), 4)
    0.5774
    """
    yp = _binary_labels(y_pred)
    yt = _binary_labels(y_true, yp.size)
    tp = np.count_nonzero(yt & yp)
    fp = np.count_nonzero(~yt & yp)
    fn = np.count_nonzero(yt & ~yp)
    tn = yt.size - tp - fp - fn
    return float(_mcc_from_counts(tp, fp, fn, tn))


def mcc_optimal_threshold(y_true, score):
    """Threshold maximising the MCC of ``score >= threshold``: returns ``(threshold, mcc)``.

    Evaluated at every distinct score at once; the threshold is one of the scores (the
    highest one if several tie for the best MCC). NaN scores are dropped.

    Examples
    --------
    >>> threshold, mcc = mcc_optimal_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> threshold, round(mcc, 4)
    (0.8, 0.5774)
    """
    fps, tps, thr = _binary_counts(y_true, score)
    n_pos, n_neg = tps[-1], fps[-1]
    mcc = _mcc_from_counts(tps, fps, n_pos - tps, n_neg - fps)
    best = int(np.argmax(mcc))
    return float(thr[best]), float(mcc[best])


# --------------------------------------------------------------------------------------
# reliability / ECE
# --------------------------------------------------------------------------------------


@dataclass
class ReliabilityCurve:
    """Binned calibration: per-bin mean predicted probability vs observed frequency.

    Examples
    --------
    >>> curve = reliability_curve([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2)
    >>> curve.bin_edges, curve.counts
    (array([0. , 0.5, 1. ]), array([2, 2]))
    """

    bin_edges: np.ndarray
    mean_predicted: np.ndarray
    observed_frequency: np.ndarray
    counts: np.ndarray


def reliability_curve(y_true, prob, n_bins=10, strategy="uniform"):
    """Reliability diagram data for binary labels and predicted probabilities.

    ``strategy='uniform'`` uses equal-width bins on [0, 1], ``'quantile'`` equal-count
    bins. Empty bins have count 0 and NaN means. NaN probabilities are dropped.

    Examples
    --------
    >>> curve = reliability_curve([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2)
    >>> curve.mean_predicted, curve.observed_frequency
    (array([0.15, 0.8 ]), array([0., 1.]))
    """
    n_bins = int(n_bins)
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    prob = np.asarray(prob, dtype=np.float64).ravel()
    y = _binary_labels(y_true, prob.size)
    keep = ~np.isnan(prob)
    if not keep.all():
        prob, y = prob[keep], y[keep]
    if np.any((prob < 0.0) | (prob > 1.0)):
        raise ValueError("prob must lie in [0, 1]")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        if prob.size == 0:
            raise ValueError("no finite probabilities to bin")
        edges = np.quantile(prob, np.linspace(0.0, 1.0, n_bins + 1))
        edges[0], edges[-1] = min(edges[0], 0.0), max(edges[-1], 1.0)
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    idx = np.searchsorted(edges[1:-1], prob, side="right")
    counts = np.bincount(idx, minlength=n_bins)
    sum_p = np.bincount(idx, weights=prob, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.where(counts > 0, sum_p / counts, np.nan)
        observed = np.where(counts > 0, sum_y / counts, np.nan)
    return ReliabilityCurve(edges, mean_pred, observed, counts)


def expected_calibration_error(y_true, prob, n_bins=15):
    """ECE: ``sum_b (n_b / N) |observed_b - mean_predicted_b|`` over equal-width bins.

    Examples
    --------
    >>> round(expected_calibration_error([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2), 4)
    0.175
    """
    curve = reliability_curve(y_true, prob, n_bins=n_bins, strategy="uniform")
    n = curve.counts.sum()
    if n == 0:
        raise ValueError("no finite probabilities")
    gap = np.abs(curve.observed_frequency - curve.mean_predicted)
    return float(np.sum(np.where(curve.counts > 0, curve.counts * gap, 0.0)) / n)


def brier_skill_score(y_true, prob):
    """``1 - Brier / Brier(base rate)``: 0 for a model that predicts the set's base rate
    everywhere, negative for one that predicts 0 everywhere, 1 for a perfect one.

    Examples
    --------
    >>> y = [0, 0, 0, 1]
    >>> brier_skill_score(y, [0.25] * 4), round(brier_skill_score(y, [0.0] * 4), 4)
    (0.0, -0.3333)
    >>> round(brier_skill_score(y, [0.1, 0.1, 0.1, 0.9]), 4)
    0.9467
    """
    y = np.asarray(y_true, dtype=bool).ravel()
    p = _float_array(prob).ravel()
    ok = np.isfinite(p)
    y, p = y[ok], p[ok]
    base = y.mean()
    reference = base * (1 - base)
    if reference == 0:
        raise ValueError("Brier skill needs both classes")
    return float(1 - np.mean((p - y) ** 2) / reference)


def _edges(score, y, n_bins, max_samples=1_000_000):
    """Bin edges at quantiles of the positives' and of the negatives' scores (half each),
    each from at most about ``max_samples`` evenly spaced values."""
    qs = np.linspace(0, 1, n_bins // 2 + 1)[1:-1]
    pos, neg = score[y], score[~y]
    pos, neg = pos[::max(1, pos.size // max_samples)], neg[::max(1, neg.size // max_samples)]
    return np.unique(np.concatenate([np.quantile(pos, qs), np.quantile(neg, qs)]))


def auc_interval(y_true, score, groups=None, n_boot=200, level=0.95, n_bins=4096, seed=0):
    """ROC AUC and its bootstrap interval ``(auc, low, high)``, resampling whole ``groups``
    (e.g. the tile each pixel came from: neighbouring pixels are not independent).

    The point value is the exact `roc_auc`; the bootstrap runs on per-group histograms of
    the scores in ``n_bins`` quantile bins (ties within a bin count one half), so it costs
    a few matrix products whatever the number of pixels. The interval is the percentile
    interval of the resampled AUCs shifted by the binning error (exact minus binned).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.random((40, 500)) < 0.1  # 40 tiles of 500 pixels
    >>> score = y + rng.normal(size=y.shape)
    >>> groups = np.repeat(np.arange(40), 500).reshape(40, 500)
    >>> auc, low, high = auc_interval(y, score, groups)
    >>> bool(low < auc < high), round(auc, 2), bool(high - low < 0.03)
    (True, 0.75, True)
    """
    y = np.asarray(y_true, dtype=bool).ravel()
    s = _float_array(score).ravel()
    g = np.zeros(y.size, int) if groups is None else np.asarray(groups).ravel()
    ok = np.isfinite(s)
    y, s, g = y[ok], s[ok], g[ok]
    if y.all() or not y.any():
        raise ValueError("AUC needs both classes")
    exact = roc_auc(y, s)
    if groups is None:
        g = np.arange(y.size)  # pixels as independent samples
    _, g = np.unique(g, return_inverse=True)
    n_groups = int(g.max()) + 1
    b = np.searchsorted(_edges(s, y, n_bins), s, side="right")
    n_b = int(b.max()) + 1
    pos = np.bincount(g[y] * n_b + b[y], minlength=n_groups * n_b).reshape(n_groups, n_b).astype(float)
    neg = np.bincount(g[~y] * n_b + b[~y], minlength=n_groups * n_b).reshape(n_groups, n_b).astype(float)

    def binned(p, n):  # rows of histograms -> AUC: P(score_pos > score_neg) + ties / 2
        below = np.cumsum(n, axis=-1) - n
        with np.errstate(invalid="ignore", divide="ignore"):  # a resample without positives: NaN, dropped
            return ((p * (below + 0.5 * n)).sum(-1)) / (p.sum(-1) * n.sum(-1))

    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot).astype(float)
    boot = binned(weights @ pos, weights @ neg)
    boot = boot[np.isfinite(boot)] + (exact - float(binned(pos.sum(0), neg.sum(0))))
    alpha = (1 - level) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return exact, float(low), float(high)


def calibration_gate(y_true, prob, max_ece=0.05, min_auc=0.9, min_skill=0.01):
    """Calibration paired with discrimination: ``(passed, metrics)``.

    Passes when ECE <= ``max_ece`` *and* the AUC >= ``min_auc`` *and* the Brier skill
    score (against the set's base rate) >= ``min_skill``. ECE alone is 0 for a model that
    predicts the base rate everywhere and small for one that predicts 0 everywhere on a
    rare class; both fail here (AUC 0.5, skill 0 or below). ``metrics``: ``{"ece", "auc",
    "skill", "failed"}``, ``failed`` naming the criteria missed. Non-finite probabilities
    are left out.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.random(20000) < 0.05
    >>> good = np.where(y, 0.8, 0.01)
    >>> calibration_gate(y, good)[0]
    True
    >>> passed, metrics = calibration_gate(y, np.full(y.size, y.mean()))  # the base rate
    >>> passed, metrics["ece"] < 1e-9, sorted(metrics["failed"])
    (False, True, ['auc', 'skill'])
    >>> calibration_gate(y, np.zeros(y.size))[1]["failed"]  # all zeros: ECE 0.05, still fails
    ['auc', 'skill']
    """
    y = np.asarray(y_true, dtype=bool).ravel()
    p = _float_array(prob).ravel()
    finite = np.isfinite(p)  # missing probabilities count in none of the three
    y, p = y[finite], p[finite]
    ece = expected_calibration_error(y, p)
    auc = roc_auc(y, p)
    skill = brier_skill_score(y, p)
    failed = [name for name, bad in (("ece", ece > max_ece), ("auc", auc < min_auc), ("skill", not skill >= min_skill))
              if bad]
    return not failed, {"ece": ece, "auc": auc, "skill": skill, "failed": failed}


# --------------------------------------------------------------------------------------
# PIT
# --------------------------------------------------------------------------------------


def pit(pdfs, grid, values):
    """Probability integral transform of PDFs sampled on a common increasing ``grid``.

    ``pdfs`` (N, G) need not be normalised (each is divided by its trapezoid integral);
    returns the CDF at ``values`` (N,) by linear interpolation of the cumulative
    trapezoid. Values below/above the grid give 0/1; NaN values or zero PDFs give NaN.

    Examples
    --------
    >>> import numpy as np
    >>> grid = np.linspace(-5.0, 5.0, 201)
    >>> pdfs = np.exp(-0.5 * grid**2)[None].repeat(2, axis=0)  # two N(0, 1) predictions
    >>> pit(pdfs, grid, [0.0, 1.0]).round(3)
    array([0.5  , 0.841])
    """
    grid = np.asarray(grid, dtype=np.float64)
    pdfs = np.asarray(pdfs, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 2:
        raise ValueError("grid must be 1-D with at least 2 points")
    if not np.all(np.diff(grid) > 0):
        raise ValueError("grid must be strictly increasing")
    if pdfs.ndim != 2 or pdfs.shape[1] != grid.size:
        raise ValueError(f"pdfs must have shape (N, {grid.size}), got {pdfs.shape}")
    if values.shape != (pdfs.shape[0],):
        raise ValueError(f"values must have shape ({pdfs.shape[0]},), got {values.shape}")
    dx = np.diff(grid)
    cdf = np.zeros_like(pdfs)
    np.cumsum(0.5 * (pdfs[:, 1:] + pdfs[:, :-1]) * dx, axis=1, out=cdf[:, 1:])
    with np.errstate(invalid="ignore", divide="ignore"):
        cdf /= cdf[:, -1:]
    j = np.clip(np.searchsorted(grid, values, side="right") - 1, 0, grid.size - 2)
    rows = np.arange(pdfs.shape[0])
    t = (values - grid[j]) / dx[j]
    lo, hi = cdf[rows, j], cdf[rows, j + 1]
    out = lo + np.clip(t, 0.0, 1.0) * (hi - lo)
    total_ok = np.isfinite(cdf[:, -1])
    out = np.where(values < grid[0], 0.0, out)
    out = np.where(values > grid[-1], 1.0, out)
    out = np.where(total_ok & ~np.isnan(values), out, np.nan)
    return out


def pit_categorical(probs, labels, rng=None):
    """Randomised PIT for class probabilities: ``u = F(y-1) + V p_y``, ``V ~ U(0, 1)``.

    ``probs`` (N, K) are normalised per row, ``labels`` (N,) are integers in [0, K).
    Exactly U(0, 1) when the probabilities are calibrated. ``rng``: seed or Generator.

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.2, 0.8], [0.5, 0.5]])
    >>> u = pit_categorical(probs, [1, 0], rng=0)  # u in [0.2, 1] for row 0, [0, 0.5] for row 1
    >>> bool(0.2 <= u[0] <= 1.0), bool(0.0 <= u[1] <= 0.5)
    (True, True)
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 2:
        raise ValueError(f"probs must have shape (N, K), got {probs.shape}")
    if labels.shape != (probs.shape[0],):
        raise ValueError(f"labels must have shape ({probs.shape[0]},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(labels == np.round(labels)):
            raise ValueError("labels must be integers")
        labels = labels.astype(np.int64)
    k = probs.shape[1]
    if np.any((labels < 0) | (labels >= k)):
        raise ValueError(f"labels must lie in [0, {k})")
    rng = np.random.default_rng(rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        probs = probs / probs.sum(axis=1, keepdims=True)
    cdf_before = np.cumsum(probs, axis=1) - probs
    idx = labels[:, None]
    f_prev = np.take_along_axis(cdf_before, idx, axis=1)[:, 0]
    p_y = np.take_along_axis(probs, idx, axis=1)[:, 0]
    return np.clip(f_prev + rng.random(labels.size) * p_y, 0.0, 1.0)


@dataclass
class PITDiagnostics:
    """Histogram (counts) of PIT values, KS test against U(0, 1) and tail outlier fraction.

    Examples
    --------
    >>> import numpy as np
    >>> d = pit_uniformity(np.random.default_rng(0).random(1000), n_bins=4)
    >>> d.histogram.tolist(), d.bin_edges.tolist()  # doctest: +ELLIPSIS
    ([..., ..., ..., ...], [0.0, 0.25, 0.5, 0.75, 1.0])
    """

    histogram: np.ndarray
    bin_edges: np.ndarray
    ks_statistic: float
    ks_pvalue: float
    outlier_fraction: float


def pit_uniformity(pit_values, n_bins=10):
    """Uniformity diagnostics of PIT values (NaNs dropped).

    ``outlier_fraction`` is the fraction of values < 0.001 or > 0.999 (0.002 expected
    when calibrated); the KS test uses ``scipy.stats.kstest`` against U(0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> good = pit_uniformity(rng.random(2000))  # calibrated: uniform PIT
    >>> bad = pit_uniformity(rng.beta(3, 3, 2000))  # over-dispersed predictions
    >>> good.ks_pvalue > 0.05, bad.ks_pvalue < 1e-6
    (True, True)
    >>> int(good.histogram.sum()), good.outlier_fraction < 0.01
    (2000, True)
    """
    from scipy.stats import kstest

    u = np.asarray(pit_values, dtype=np.float64).ravel()
    u = u[~np.isnan(u)]
    if u.size == 0:
        raise ValueError("no finite PIT values")
    hist, edges = np.histogram(u, bins=int(n_bins), range=(0.0, 1.0))
    ks = kstest(u, "uniform")
    outliers = np.count_nonzero((u < 0.001) | (u > 0.999)) / u.size
    return PITDiagnostics(hist, edges, float(ks.statistic), float(ks.pvalue), float(outliers))


# --------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------


def plot_reliability(curve, ax=None):
    """Plot a :class:`ReliabilityCurve` (observed vs predicted, with the diagonal).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().subplots()
    >>> ax = plot_reliability(reliability_curve([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2), ax=ax)
    >>> ax.get_xlabel(), len(ax.lines)
    ('mean predicted probability', 2)
    """
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.gca()
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="perfectly calibrated")
    ok = curve.counts > 0
    ax.plot(curve.mean_predicted[ok], curve.observed_frequency[ok], "o-", label="model")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency")
    ax.legend(loc="upper left")
    return ax


def plot_roc(fpr, tpr, ax=None, label=None):
    """Plot a ROC curve (with the chance diagonal).

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fpr, tpr, _ = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> ax = plot_roc(fpr, tpr, ax=Figure().subplots(), label="model")
    >>> ax.get_legend().get_texts()[0].get_text()
    'model'
    """
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.gca()
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1)
    ax.plot(fpr, tpr, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    if label is not None:
        ax.legend(loc="lower right")
    return ax
