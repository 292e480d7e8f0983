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


# Aggregate metrics over runs x tasks. RLIABLE_X / RLIABLE_Y and their expected values are the score matrices
# and numbers of rliable's own tests (google-research/rliable, tests/rliable/metrics_test.py).
RLIABLE_X = np.array([[1, 2], [2, 2], [1, 1], [2, 1]])
RLIABLE_Y = np.array([[1, 1], [2, 2], [3, 3]])


def test_aggregates_reproduce_rliables_expected_values():
    assert stats.aggregate_median(RLIABLE_X) == 1.5 and stats.aggregate_median(RLIABLE_Y) == 2.0
    assert stats.aggregate_mean(RLIABLE_X) == 1.5 and stats.aggregate_mean(RLIABLE_Y) == 2.0
    assert stats.aggregate_iqm(RLIABLE_X) == 1.5 and stats.aggregate_iqm(RLIABLE_Y) == 2.0
    assert stats.probability_of_improvement(RLIABLE_X, RLIABLE_Y) == pytest.approx(1 / 3)


def test_aggregates_against_brute_force():
    rng = np.random.default_rng(4)
    for num_runs, num_tasks in [(1, 1), (3, 1), (5, 4), (10, 3), (7, 8)]:
        scores = rng.normal(size=(num_runs, num_tasks)).round(1)  # rounded: ties happen
        task_means = [sum(scores[:, t]) / num_runs for t in range(num_tasks)]
        assert stats.aggregate_mean(scores) == pytest.approx(sum(task_means) / num_tasks)
        ordered = sorted(task_means)
        middle = num_tasks // 2
        median = ordered[middle] if num_tasks % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        assert stats.aggregate_median(scores) == pytest.approx(median)
        assert stats.aggregate_iqm(scores) == pytest.approx(trim_mean(scores, 0.25, axis=None))
        pooled = sorted(scores.ravel())
        cut = len(pooled) // 4
        assert stats.aggregate_iqm(scores) == pytest.approx(np.mean(pooled[cut:len(pooled) - cut]))
        for gamma in (-0.5, 0.0, 1.0):
            shortfalls = [max(gamma - s, 0.0) for s in scores.ravel()]
            assert stats.optimality_gap(scores, gamma) == pytest.approx(sum(shortfalls) / len(shortfalls))
            # rliable's form: the target minus the mean of the scores clipped at the target
            clipped = np.minimum(scores, gamma)
            assert stats.optimality_gap(scores, gamma) == pytest.approx(gamma - clipped.mean())


def test_probability_of_improvement_against_pair_counts_and_mann_whitney():
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(5)
    for runs_x, runs_y, num_tasks in [(1, 1, 1), (4, 3, 2), (6, 9, 3)]:
        x = rng.integers(0, 4, size=(runs_x, num_tasks)).astype(float)  # small integers: many ties
        y = rng.integers(0, 4, size=(runs_y, num_tasks)).astype(float)
        per_task = []
        for t in range(num_tasks):
            wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in x[:, t] for b in y[:, t])
            per_task.append(wins / (runs_x * runs_y))
            u = mannwhitneyu(x[:, t], y[:, t], alternative="greater").statistic  # U of x: ties count 1/2
            assert wins == pytest.approx(u)
        assert stats.probability_of_improvement(x, y) == pytest.approx(np.mean(per_task))
        poi = stats.probability_of_improvement
        assert poi(x, y) + poi(y, x) == pytest.approx(1)
    assert stats.probability_of_improvement(RLIABLE_X, RLIABLE_X) == 0.5  # equal scores: a coin flip


def test_aggregates_score_a_batch_of_resamples_like_each_resample_alone():
    batch = np.random.default_rng(6).normal(size=(5, 4, 3))  # (resamples, runs, tasks)
    other = np.random.default_rng(7).normal(size=(5, 6, 3))
    aggregates = (stats.aggregate_mean, stats.aggregate_median, stats.aggregate_iqm, stats.optimality_gap)
    for statistic in aggregates:
        np.testing.assert_allclose(statistic(batch), [statistic(m) for m in batch])
    poi = stats.probability_of_improvement
    np.testing.assert_allclose(poi(batch, other), [poi(a, b) for a, b in zip(batch, other, strict=True)])


def test_stratified_bootstrap_resamples_runs_within_each_task():
    scores = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0]])
    seen = []

    def record(resampled):
        seen.append(resampled)
        return resampled.mean(axis=(-2, -1))

    stats.stratified_bootstrap_ci(record, scores, num_resamples=500)
    resampled = seen[0]
    assert resampled.shape == (500, 3, 2)
    assert set(np.unique(resampled[..., 0])) <= {0.0, 1.0, 2.0}  # task 0 draws only task 0's runs
    assert set(np.unique(resampled[..., 1])) <= {10.0, 20.0, 30.0}
    # the tasks draw their runs independently: run indices agree across tasks only by chance (1/3)
    agree = (resampled[..., 0] == resampled[..., 1] / 10 - 1).mean()
    assert agree == pytest.approx(1 / 3, abs=0.03)


def test_stratified_bootstrap_ci_matches_the_enumerated_distribution():
    scores = np.array([[0.0, 0.0], [4.0, 8.0]])  # 2 runs x 2 tasks
    value, low, high = stats.stratified_bootstrap_ci(stats.aggregate_mean, scores, num_resamples=40_000)
    assert value == 3.0
    # Every stratified resample: per task, 2 draws from its 2 runs (4 equally likely outcomes), 16 in all.
    means = []
    for task0 in itertools.product(scores[:, 0], repeat=2):
        for task1 in itertools.product(scores[:, 1], repeat=2):
            means.append((np.mean(task0) + np.mean(task1)) / 2)
    exact_low, exact_high = np.quantile(means, [0.025, 0.975], method="inverted_cdf")
    # by hand: the extreme means 0 and 6 each need all four draws at one end, probability 1/16 > 2.5%
    assert (exact_low, exact_high) == (0.0, 6.0)
    assert (low, high) == (exact_low, exact_high)


def test_stratified_bootstrap_cis_bracket_the_estimates_of_rliables_library_test():
    # rliable's tests/rliable/library_test.py: 5 runs x 16 tasks, percentile CIs from 100 resamples lie
    # strictly around the point estimates of IQM, mean, median, optimality gap and probability of improvement.
    x = np.arange(5 * 16).reshape(5, 16)
    y = np.flip(x, axis=0)

    def four(scores):
        return np.stack([stats.aggregate_iqm(scores), stats.aggregate_mean(scores),
                         stats.aggregate_median(scores), stats.optimality_gap(scores)], axis=-1)

    for scores in (x, y):
        value, low, high = stats.stratified_bootstrap_ci(four, scores, num_resamples=100)
        np.testing.assert_array_equal(value, four(scores))
        assert np.all(low < value) and np.all(value < high)
    poi = stats.probability_of_improvement
    value, low, high = stats.stratified_bootstrap_ci(poi, x, y, num_resamples=100)
    assert value == 0.5 and low < value < high


def test_stratified_bootstrap_is_fixed_by_its_seed_and_resamples_two_methods_independently():
    x, y = np.random.default_rng(8).normal(size=(2, 6, 2))
    poi = stats.probability_of_improvement
    ci = stats.stratified_bootstrap_ci
    assert ci(poi, x, y, seed=3) == ci(poi, x, y, seed=3) and ci(poi, x, y, seed=3) != ci(poi, x, y, seed=4)
    # the same matrix twice, resampled independently, is not compared to itself: P varies around 1/2
    value, low, high = stats.stratified_bootstrap_ci(poi, x, x)
    assert value == 0.5 and low < 0.4 and high > 0.6
