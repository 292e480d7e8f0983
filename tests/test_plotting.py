import numpy as np

from purerl.stats import bootstrap_ci


def test_bootstrap_ci_brackets_the_mean_and_shrinks_with_more_seeds():
    rng = np.random.default_rng(0)
    few = rng.normal(10.0, 2.0, size=(5, 3))
    many = rng.normal(10.0, 2.0, size=(500, 3))
    mean, low, high = bootstrap_ci(few)
    np.testing.assert_allclose(mean, few.mean(0))
    assert np.all(low <= mean) and np.all(mean <= high)
    _, low_m, high_m = bootstrap_ci(many)
    assert np.all(high_m - low_m < high - low)
    # With 500 seeds the 95% CI of N(10, 2) has half-width ~ 1.96 * 2 / sqrt(500) = 0.175.
    np.testing.assert_allclose(high_m - low_m, 2 * 1.96 * 2 / np.sqrt(500), rtol=0.25)


def test_bootstrap_ci_ignores_nans():
    values = np.array([[1.0, np.nan], [3.0, 2.0], [5.0, 2.0]])
    mean, low, high = bootstrap_ci(values)
    np.testing.assert_allclose(mean, [3.0, 2.0])


def test_fill_forward_and_auc_per_seed():
    from purerl.stats import auc_per_seed, fill_forward

    curves = np.array([[np.nan, 1.0, np.nan, 3.0], [2.0, np.nan, np.nan, np.nan]])
    filled = fill_forward(curves)
    np.testing.assert_array_equal(filled[0, 1:], [1.0, 1.0, 3.0])
    assert np.isnan(filled[0, 0])
    np.testing.assert_array_equal(filled[1], [2.0, 2.0, 2.0, 2.0])
    np.testing.assert_allclose(auc_per_seed(curves), [5.0 / 3.0, 2.0])


def test_auc_ratio_ci_brute_force():
    from purerl.stats import compare as auc_ratio_ci

    a, b = np.array([2.0, 4.0]), np.array([1.0, 3.0])
    out = auc_ratio_ci(a, b, num_resamples=20_000)
    assert out["difference"] == 1.0 and out["ratio_minus_1"] == 0.5
    # A bootstrap mean of 2 seeds is x1, (x1+x2)/2 or x2 with prob 1/4, 1/2, 1/4: enumerate all 9 pairs.
    means_a, means_b, p = np.array([2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0]), np.array([0.25, 0.5, 0.25])
    diffs = (means_a[:, None] - means_b[None]).ravel()
    probs = (p[:, None] * p[None]).ravel()
    order = np.argsort(diffs)
    cdf = np.cumsum(probs[order])
    low, high = diffs[order][np.searchsorted(cdf, 0.025)], diffs[order][np.searchsorted(cdf, 0.975)]
    assert (low, high) == (-1.0, 3.0)
    np.testing.assert_allclose(out["difference_ci"], [low, high])
    assert out["ratio_minus_1_ci"][0] < 0.5 < out["ratio_minus_1_ci"][1]
    assert auc_ratio_ci(np.array([-1.0, 2.0]), b)["ratio_minus_1"] is None
