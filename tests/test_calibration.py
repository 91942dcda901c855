import numpy as np
import pytest
from scipy.stats import mannwhitneyu, norm

from glue_astrodl.core.calibration import (
    PITDiagnostics,
    auc_interval,
    brier_skill_score,
    calibration_gate,
    ReliabilityCurve,
    expected_calibration_error,
    fit_platt,
    matthews_corrcoef,
    mcc_optimal_threshold,
    pit,
    pit_categorical,
    pit_uniformity,
    plot_reliability,
    plot_roc,
    prior_shift_logit,
    prior_shift_sigmoid,
    prior_shift_softmax,
    reliability_curve,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ------------------------------------------------------------------------ prior shift


def test_sigmoid_equal_priors_is_identity():
    p = np.random.default_rng(0).random((3, 8, 9)).astype(np.float32)
    out = prior_shift_sigmoid(p, [0.2, 0.5, 0.7], [0.2, 0.5, 0.7])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, p, rtol=1e-6)


def test_sigmoid_hand_value_and_dtype():
    # r1 = 0.2/0.5 = 0.4, r0 = 0.8/0.5 = 1.6 -> 0.24 / (0.24 + 0.64)
    out = prior_shift_sigmoid(np.array([0.6, 0.0, 1.0]), 0.5, 0.2)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [0.24 / 0.88, 0.0, 1.0])
    assert prior_shift_sigmoid(np.array([0.6], np.float32), 0.5, 0.2).dtype == np.float32
    # integer input is promoted to float64
    assert prior_shift_sigmoid(np.array([0, 1]), 0.5, 0.2).dtype == np.float64


def test_sigmoid_per_class_broadcast_along_axis0():
    rng = np.random.default_rng(1)
    p = rng.random((3, 4, 5))
    tr, pi = np.array([0.5, 0.3, 0.6]), np.array([0.1, 0.3, 0.9])
    out = prior_shift_sigmoid(p, tr, pi)
    for k in range(3):
        np.testing.assert_allclose(out[k], prior_shift_sigmoid(p[k], tr[k], pi[k]))
    np.testing.assert_allclose(out[1], p[1])
    # scalar train prior broadcast against per-class priors
    np.testing.assert_allclose(
        prior_shift_sigmoid(p, 0.5, pi), prior_shift_sigmoid(p, np.full(3, 0.5), pi)
    )
    with pytest.raises(ValueError):
        prior_shift_sigmoid(rng.random((4, 5)), tr, pi)


def test_logit_shift_equals_posterior_shift():
    # hand value: log(0.2/0.8) - log(0.5/0.5) = log(1/4); sigmoid(logit(0.6) + d) = 0.24 / 0.88
    d = prior_shift_logit(0.5, 0.2)
    np.testing.assert_allclose(d, np.log(0.25))
    np.testing.assert_allclose(1 / (1 + np.exp(-(np.log(0.6 / 0.4) + d))), 0.24 / 0.88)
    z = np.random.default_rng(3).normal(0, 4, (3, 50))
    tr, pi = np.array([0.5, 0.01, 0.3]), np.array([1e-4, 0.2, 0.3])
    shifted = 1 / (1 + np.exp(-(z + prior_shift_logit(tr, pi)[:, None])))
    np.testing.assert_allclose(shifted, prior_shift_sigmoid(1 / (1 + np.exp(-z)), tr, pi), rtol=1e-9)


def test_sigmoid_shift_roundtrip():
    p = np.random.default_rng(2).random(1000)
    q = prior_shift_sigmoid(p, 0.5, 0.03)
    np.testing.assert_allclose(prior_shift_sigmoid(q, 0.03, 0.5), p, atol=1e-12)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, np.nan, [0.2, 1.0]])
def test_sigmoid_invalid_priors(bad):
    p = np.full((2, 3), 0.5)
    with pytest.raises(ValueError):
        prior_shift_sigmoid(p, 0.5, bad)
    with pytest.raises(ValueError):
        prior_shift_sigmoid(p, bad, 0.5)


def test_softmax_hand_examples():
    np.testing.assert_allclose(
        prior_shift_softmax([0.5, 0.5], [0.5, 0.5], [0.9, 0.1]), [0.9, 0.1]
    )
    # q ∝ [0.6 * 0.4, 0.4 * 1.6] = [0.24, 0.64]
    np.testing.assert_allclose(
        prior_shift_softmax([0.6, 0.4], [0.5, 0.5], [0.2, 0.8]), [0.24 / 0.88, 0.64 / 0.88]
    )
    # unnormalised priors are normalised
    np.testing.assert_allclose(
        prior_shift_softmax([0.6, 0.4], [1, 1], [2, 8]), [0.24 / 0.88, 0.64 / 0.88]
    )


def test_softmax_equal_priors_identity_axis_and_roundtrip():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 7, 4)).astype(np.float32)
    p = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    tr = np.array([0.1, 0.2, 0.3, 0.4])
    out = prior_shift_softmax(p, tr, tr, axis=-1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, p, rtol=1e-5)
    pi = np.array([0.7, 0.1, 0.15, 0.05])
    q = prior_shift_softmax(p, tr, pi, axis=-1)
    np.testing.assert_allclose(q.sum(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(prior_shift_softmax(q, pi, tr, axis=-1), p, rtol=1e-4)
    # same thing with the class axis first
    np.testing.assert_allclose(
        prior_shift_softmax(np.moveaxis(p, -1, 0), tr, pi, axis=0), np.moveaxis(q, -1, 0)
    )


def test_sigmoid_matches_softmax_for_two_classes():
    p1 = np.random.default_rng(4).random(500)
    pi_t, pi = 0.4, 0.07
    s = prior_shift_sigmoid(p1, pi_t, pi)
    m = prior_shift_softmax(np.stack([1 - p1, p1]), [1 - pi_t, pi_t], [1 - pi, pi])
    np.testing.assert_allclose(s, m[1], atol=1e-12)


@pytest.mark.parametrize("bad", [[0.0, 1.0], [-1.0, 2.0], [np.inf, 1.0], [0.5, 0.3, 0.2]])
def test_softmax_invalid_priors(bad):
    with pytest.raises(ValueError):
        prior_shift_softmax(np.full((2, 3), 0.5), [0.5, 0.5], bad)


def test_prior_shift_restores_calibration():
    # x | y=1 ~ N(+1, 1), x | y=0 ~ N(-1, 1); with training prior 0.5 the exact
    # posterior is sigmoid(2 x). Deploy where the positive prior is 0.05.
    rng = np.random.default_rng(5)
    n, pi = 200_000, 0.05
    y = rng.random(n) < pi
    x = rng.normal(np.where(y, 1.0, -1.0), 1.0)
    p_train = _sigmoid(2.0 * x)
    assert expected_calibration_error(y, p_train) > 0.1
    p_true = prior_shift_sigmoid(p_train, 0.5, pi)
    assert expected_calibration_error(y, p_true) < 0.02
    np.testing.assert_allclose(p_true, _sigmoid(2.0 * x + np.log(pi / (1 - pi))), atol=1e-12)


def test_platt_scaling_recovers_the_exact_posterior():
    # Same Gaussian classes with prior 0.05: the exact log-odds are 2 x + logit(0.05). A
    # model whose logits are 0.5 x - 3 (over-smoothed, offset) is recalibrated exactly.
    rng = np.random.default_rng(6)
    n, pi = 400_000, 0.05
    y = rng.random(n) < pi
    x = rng.normal(np.where(y, 1.0, -1.0), 1.0)
    a, b = fit_platt(y, 0.5 * x - 3.0)
    assert a == pytest.approx(4.0, rel=0.03)
    assert a * -3.0 + b == pytest.approx(np.log(pi / (1 - pi)), abs=0.05)
    assert expected_calibration_error(y, _sigmoid(a * (0.5 * x - 3.0) + b)) < 0.01
    with pytest.raises(ValueError):
        fit_platt(np.zeros(10), np.arange(10.0))


# ------------------------------------------------------------------------ ROC / MCC


def test_roc_hand_example():
    y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    fpr, tpr, thr = roc_curve(y, s)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thr, [np.inf, 0.8, 0.4, 0.35, 0.1])
    assert roc_auc(y, s) == pytest.approx(0.75)
    assert tpr_at_fpr(y, s, 0.0) == pytest.approx(0.5)
    assert tpr_at_fpr(y, s, 0.25) == pytest.approx(0.75)
    np.testing.assert_allclose(tpr_at_fpr(y, s, [0.5, 1.0]), [1.0, 1.0])
    assert isinstance(tpr_at_fpr(y, s, 0.1), float)


def test_roc_ties_and_nan():
    y, s = [0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]
    fpr, tpr, thr = roc_curve(y, s)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    assert roc_auc(y, s) == pytest.approx(0.875)  # tied pair counts 1/2
    # NaN scores are dropped
    assert roc_auc(y + [1, 0], s + [np.nan, np.nan]) == pytest.approx(0.875)


def test_roc_auc_matches_mann_whitney():
    rng = np.random.default_rng(6)
    n = 3000
    y = rng.random(n) < 0.3
    s = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounded -> many ties
    u = mannwhitneyu(s[y], s[~y]).statistic
    assert roc_auc(y, s) == pytest.approx(u / (y.sum() * (~y).sum()), rel=1e-12)


def test_roc_auc_one_class_raises():
    with pytest.raises(ValueError):
        roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        roc_auc([0, 2, 1], [0.1, 0.2, 0.3])


def test_matthews_corrcoef_hand():
    y = [1, 1, 1, 0, 0, 0, 0, 1]
    pred = [1, 0, 1, 0, 1, 0, 0, 1]
    # tp=3 fn=1 fp=1 tn=3 -> (9 - 1) / sqrt(4^4) = 0.5
    assert matthews_corrcoef(y, pred) == pytest.approx(0.5)
    assert matthews_corrcoef(y, y) == pytest.approx(1.0)
    assert matthews_corrcoef(y, np.logical_not(y)) == pytest.approx(-1.0)
    assert matthews_corrcoef(y, np.ones(8)) == 0.0  # undefined -> 0


def test_mcc_threshold_separable():
    y = [0, 0, 0, 1, 1]
    s = [0.1, 0.2, 0.3, 0.7, 0.9]
    thr, mcc = mcc_optimal_threshold(y, s)
    assert mcc == pytest.approx(1.0)
    assert 0.3 < thr <= 0.7


def test_mcc_threshold_matches_brute_force():
    rng = np.random.default_rng(7)
    y = rng.random(400) < 0.4
    s = np.round(rng.normal(y * 1.0, 1.0), 2)
    thr, mcc = mcc_optimal_threshold(y, s)
    brute = max(matthews_corrcoef(y, s >= t) for t in np.unique(s))
    assert mcc == pytest.approx(brute)
    assert matthews_corrcoef(y, s >= thr) == pytest.approx(mcc)


# ------------------------------------------------------------------------ reliability


def test_reliability_curve_hand():
    prob = [0.05, 0.15, 0.95, 0.9]
    y = [0, 0, 1, 0]
    c = reliability_curve(y, prob, n_bins=10)
    assert isinstance(c, ReliabilityCurve)
    np.testing.assert_allclose(c.bin_edges, np.linspace(0, 1, 11))
    np.testing.assert_array_equal(c.counts, [1, 1, 0, 0, 0, 0, 0, 0, 0, 2])
    assert c.mean_predicted[9] == pytest.approx(0.925)
    assert c.observed_frequency[9] == pytest.approx(0.5)
    assert np.isnan(c.mean_predicted[2]) and np.isnan(c.observed_frequency[2])
    # 0.25 * 0.05 + 0.25 * 0.15 + 0.5 * 0.425
    assert expected_calibration_error(y, prob, n_bins=10) == pytest.approx(0.2625)
    # probability exactly 1 falls in the last bin
    assert reliability_curve([1], [1.0], n_bins=4).counts[-1] == 1


def test_reliability_quantile_and_validation():
    rng = np.random.default_rng(8)
    p = rng.random(10_000) ** 2
    y = rng.random(10_000) < p
    c = reliability_curve(y, p, n_bins=5, strategy="quantile")
    assert c.counts.sum() == 10_000
    assert np.all(np.abs(c.counts - 2000) <= 1)
    with pytest.raises(ValueError):
        reliability_curve(y, p, strategy="log")
    with pytest.raises(ValueError):
        reliability_curve([0, 1], [0.5, 1.5])


def test_ece_calibrated_vs_miscalibrated():
    rng = np.random.default_rng(9)
    p = rng.random(200_000)
    y = rng.random(p.size) < p
    assert expected_calibration_error(y, p) < 0.02
    assert expected_calibration_error(y, p**3) > 0.15


# ------------------------------------------------------------------------ PIT


def test_pit_hand_uniform_pdf():
    grid = np.linspace(0, 1, 11)
    pdfs = np.full((4, 11), 5.0)  # unnormalised
    out = pit(pdfs, grid, np.array([0.25, -1.0, 2.0, 1.0]))
    np.testing.assert_allclose(out, [0.25, 0.0, 1.0, 1.0])


def test_pit_gaussian_calibrated_and_overconfident():
    rng = np.random.default_rng(10)
    n = 4000
    grid = np.linspace(-12, 12, 1201)
    mu = rng.uniform(-3, 3, n)
    sig = rng.uniform(0.5, 2.0, n)
    vals = rng.normal(mu, sig)
    pdfs = norm.pdf(grid, mu[:, None], sig[:, None])
    u = pit(pdfs, grid, vals)
    np.testing.assert_allclose(u, norm.cdf(vals, mu, sig), atol=2e-3)
    d = pit_uniformity(u)
    assert isinstance(d, PITDiagnostics)
    assert d.ks_pvalue > 0.01
    assert d.histogram.sum() == n and d.bin_edges.size == 11
    assert d.outlier_fraction < 0.01

    narrow = norm.pdf(grid, mu[:, None], 0.4 * sig[:, None])
    d2 = pit_uniformity(pit(narrow, grid, vals))
    assert d2.ks_pvalue < 1e-6
    assert d2.outlier_fraction > 0.05


def test_pit_categorical_uniform_when_calibrated():
    rng = np.random.default_rng(11)
    n, k = 20_000, 4
    probs = rng.dirichlet(np.ones(k), size=n)
    labels = (np.cumsum(probs, axis=1) < rng.random(n)[:, None]).sum(axis=1)
    labels = np.minimum(labels, k - 1)
    u = pit_categorical(probs, labels, rng=12)
    assert u.shape == (n,) and np.all((u >= 0) & (u <= 1))
    assert pit_uniformity(u).ks_pvalue > 0.01
    # over-confident probabilities (sharpened) are not uniform
    sharp = probs**4 / (probs**4).sum(axis=1, keepdims=True)
    assert pit_uniformity(pit_categorical(sharp, labels, rng=12)).ks_pvalue < 1e-6
    with pytest.raises(ValueError):
        pit_categorical(probs, np.full(n, k))


# ------------------------------------------------------------------------ plots


def test_plot_helpers_return_axes():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    c = reliability_curve([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.3], n_bins=5)
    assert plot_reliability(c, ax=ax) is ax
    fpr, tpr, _ = roc_curve([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.3])
    ax2 = fig.add_subplot(212)
    assert plot_roc(fpr, tpr, ax=ax2, label="model") is ax2
    assert len(ax2.lines) == 2


# ------------------------------------------------------------------ gates that can fail


def test_calibration_gate_fails_useless_models_that_ece_alone_passes():
    """A base-rate model (ECE 0) and an all-zeros model on a rare class (ECE = the base
    rate, under 0.05) pass an ECE gate but fail the paired gate; a calibrated, informative
    model passes it, and an informative but over-confident one fails."""
    rng = np.random.default_rng(3)
    y = rng.random(200_000) < 0.01
    score = rng.normal(size=y.size) + 3 * y
    p = _sigmoid(score * 3 - 3)
    curve = reliability_curve(y, p, n_bins=30)  # recalibrate on the bins: calibrated and informative
    idx = np.clip(np.digitize(p, np.linspace(0, 1, 31)) - 1, 0, 29)
    good = np.nan_to_num(curve.observed_frequency)[idx]
    passed, metrics = calibration_gate(y, good)
    assert passed, metrics
    base = np.full(y.size, y.mean())
    zeros = np.zeros(y.size)
    assert expected_calibration_error(y, base) < 1e-9 and expected_calibration_error(y, zeros) < 0.05
    assert calibration_gate(y, base)[1]["failed"] == ["auc", "skill"]
    assert calibration_gate(y, zeros)[1]["failed"] == ["auc", "skill"]
    assert not calibration_gate(y, np.where(good > 0.05, 0.999, 0.0))[0]  # over-confident


def test_brier_skill_score_against_the_base_rate():
    y = np.array([0] * 90 + [1] * 10)
    assert brier_skill_score(y, np.full(100, 0.1)) == pytest.approx(0.0, abs=1e-12)
    assert brier_skill_score(y, y.astype(float)) == 1.0
    assert brier_skill_score(y, np.zeros(100)) == pytest.approx(1 - 0.1 / 0.09)
    with pytest.raises(ValueError):
        brier_skill_score(np.zeros(5), np.zeros(5))


def test_auc_interval_covers_the_spread_between_independent_sets():
    """Tiles with a tile-level nuisance (correlated pixels): the 95% interval from one set
    covers the AUC of independent sets about 95% of the time, and is wider than a
    pixel-wise bootstrap that ignores the grouping would be."""
    def make(seed, n_tiles=60, n_pix=400):
        rng = np.random.default_rng(seed)
        y = rng.random((n_tiles, n_pix)) < 0.05
        strength = rng.uniform(0.5, 3.0, (n_tiles, 1))  # how visible each tile's objects are
        return y, y * strength + rng.normal(size=y.shape), np.repeat(np.arange(n_tiles), n_pix).reshape(n_tiles, n_pix)

    y, s, g = make(0)
    auc, low, high = auc_interval(y, s, g, n_boot=400)
    assert low < auc < high and abs(auc - roc_auc(y.ravel(), s.ravel())) < 1e-12
    others = np.array([roc_auc(*[a.ravel() for a in make(seed)[:2]]) for seed in range(1, 41)])
    assert 0.8 <= np.mean((others >= low) & (others <= high)) <= 1.0
    _, plow, phigh = auc_interval(y, s, n_boot=400)  # pixels as independent: too narrow
    assert phigh - plow < 0.8 * (high - low)


def test_platt_keeps_a_finite_slope_on_a_perfectly_separated_class():
    """Saturated cores are separated from every other pixel: plain maximum likelihood has no
    finite optimum (Newton overflowed to NaN probabilities); Platt's targets keep it finite."""
    from glue_astrodl.core.calibration import fit_platt

    rng = np.random.default_rng(0)
    z = np.r_[rng.normal(-5.0, 1.0, 200_000), rng.normal(30.0, 1.0, 500)]
    y = np.r_[np.zeros(200_000), np.ones(500)]
    a, b = fit_platt(y, z)
    assert np.isfinite([a, b]).all() and a > 0
    p = 1.0 / (1.0 + np.exp(-np.clip(a * z + b, -50, 50)))
    assert p[y == 1].min() > 0.99 and p[y == 0].max() < 0.01
