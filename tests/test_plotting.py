import numpy as np

from purerl.plotting import bootstrap_ci


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
