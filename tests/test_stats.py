"""purerl.stats against hand-computed values and brute-force enumeration."""

import itertools

import numpy as np
import pytest
from scipy.stats import trim_mean

from purerl import stats


def enumerated_quantiles(values, confidence=0.95):
    """Exact percentile-bootstrap interval of the mean: every one of the n^n resamples, equally likely."""
    means = np.sort([np.mean(r) for r in itertools.product(values, repeat=len(values))])
    cdf = np.arange(1, len(means) + 1) / len(means)
    alpha = (1 - confidence) / 2
    return means[np.searchsorted(cdf, alpha)], means[np.searchsorted(cdf, 1 - alpha)]


def test_bootstrap_ci_matches_the_enumerated_bootstrap_distribution():
    values = np.array([0.0, 1.0, 5.0, 9.0])
    mean, low, high = stats.bootstrap_ci(values, num_resamples=50_000)
    assert mean == pytest.approx(3.75)
    exact_low, exact_high = enumerated_quantiles(values)
    # By hand: 256 resamples; sums of the 4 draws from the bottom are 0 (once), 1 (4 ways), 2 (6 ways), so the
    # 7th smallest (2.5%) mean is 2/4; from the top 36 (once), 32 (4 ways), 28 (6 ways): 28/4.
    assert (exact_low, exact_high) == (0.5, 7.0)
    assert low == pytest.approx(exact_low, abs=0.25) and high == pytest.approx(exact_high, abs=0.25)


def test_bootstrap_ci_is_fixed_by_its_seed():
    values = np.random.default_rng(3).normal(size=7)
    assert stats.bootstrap_ci(values, seed=1) == stats.bootstrap_ci(values, seed=1)
    assert stats.bootstrap_ci(values, seed=1)[1] != stats.bootstrap_ci(values, seed=2)[1]


def test_bootstrap_ci_of_another_statistic():
    values = np.array([1.0, 2.0, 3.0, 4.0, 1000.0])
    value, low, high = stats.bootstrap_ci(values, statistic=stats.iqm)
    assert value == pytest.approx(3.0)  # 5 values: one cut from each end -> mean of 2, 3, 4
    assert low >= 1.0 and high <= 1000.0 and low <= value <= high
    constant = np.full(6, 2.5)
    assert stats.bootstrap_ci(constant, statistic=stats.iqm) == (2.5, 2.5, 2.5)


def test_iqm_by_hand_and_against_a_trimmed_mean():
    assert stats.iqm([0, 1, 2, 3, 4, 5, 6, 100]) == pytest.approx(3.5)  # middle four: 2, 3, 4, 5
    assert stats.iqm([7.0]) == 7.0
    rng = np.random.default_rng(0)
    for n in range(1, 30):
        x = rng.normal(size=(n, 3))
        np.testing.assert_allclose(stats.iqm(x, axis=0), trim_mean(x, 0.25, axis=0))


def test_auc_is_the_trapezoidal_mean_level():
    assert stats.auc([0, 1, 3], [0.0, 2.0, 2.0]) == pytest.approx(5 / 3)  # (1 + 4) / 3
    assert stats.auc([0, 1, 2, 3], [np.nan, 1.0, 3.0, 3.0]) == pytest.approx(2.5)  # (2 + 3) / 2
    assert stats.auc([0, 10], [4.0, 4.0]) == 4.0
    assert stats.auc([5], [2.0]) == 2.0 and np.isnan(stats.auc([1, 2], [np.nan, np.nan]))


def test_auc_per_seed_fills_forward():
    curves = np.array([[np.nan, 1.0, np.nan, 3.0], [2.0, np.nan, np.nan, np.nan]])
    np.testing.assert_allclose(stats.auc_per_seed(curves), [5.0 / 3.0, 2.0])


def test_samples_to_solve_by_hand():
    steps = [100, 200, 300, 400, 500]
    # window 2: trailing means end at points 1..4: 0.3, 0.4, 0.5, 0.85; 0.5 does not exceed 0.5
    assert stats.samples_to_solve([0.0, 0.6, 0.2, 0.8, 0.9], steps, 0.5, window=2) == [500]
    assert stats.samples_to_solve([[0.0, 0.6, 0.2, 0.8, 0.9], [0, 0, 0, 0, 0]], steps, 0.5) == [200, None]
    assert stats.samples_to_solve([1.0, 1.0], [1, 2], 0.5, window=3) == [None]


def test_samples_to_solve_against_brute_force():
    rng = np.random.default_rng(1)
    curves = (rng.random((20, 40)) < 0.55).astype(float)
    steps = np.arange(1, 41) * 64
    for window in (1, 3, 10):
        expected = []
        for curve in curves:
            hits = [i for i in range(window - 1, 40) if curve[i - window + 1:i + 1].mean() > 0.5]
            expected.append(int(steps[hits[0]]) if hits else None)
        assert stats.samples_to_solve(curves, steps, 0.5, window) == expected


def test_compare_difference_ci_by_enumeration_and_verdicts():
    a, b = np.array([2.0, 4.0]), np.array([1.0, 3.0])
    out = stats.compare(a, b, num_resamples=20_000)
    assert out["difference"] == 1.0 and out["ratio_minus_1"] == 0.5
    # means of 2 resampled seeds: x1, (x1+x2)/2, x2 with p 1/4, 1/2, 1/4; the difference's 2.5% and 97.5%
    # points over the 9 pairs are -1 and 3 (P(diff = -1) = 1/16, P(diff = 3) = 1/16)
    assert out["difference_ci"] == [-1.0, 3.0] and out["verdict"] == stats.NO_DIFFERENCE
    assert stats.compare([10.0, 11.0, 12.0], [0.0, 1.0, 2.0])["verdict"] == stats.BETTER
    assert stats.compare([0.0, 1.0, 2.0], [10.0, 11.0, 12.0])["verdict"] == stats.WORSE
    assert stats.compare([-1.0, 2.0], b)["ratio_minus_1"] is None
    assert stats.verdict([0.0, 1.0]) == stats.NO_DIFFERENCE and stats.verdict([1e-9, 1.0]) == stats.BETTER


def test_summarize():
    out = stats.summarize([1.0, 2.0, 3.0, 10.0])
    assert out["mean"] == 4.0 and out["iqm"] == 2.5 and (out["min"], out["max"]) == (1.0, 10.0)
    assert out["per_seed"] == [1.0, 2.0, 3.0, 10.0] and out["ci"][0] <= 4.0 <= out["ci"][1]


def test_interval_relation_by_hand():
    assert stats.interval_relation((2.0, 3.0), (0.0, 1.9)) == "beats"
    assert stats.interval_relation((0.0, 1.0), (1.5, 2.0)) == "worse than"
    assert stats.interval_relation((0.0, 1.0), (1.0, 2.0)) == "overlaps"  # touching ends overlap
    assert stats.interval_relation((0.0, 5.0), (1.0, 2.0)) == "overlaps"
