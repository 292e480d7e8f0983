"""Learning curves with the mean over seeds and a 95% bootstrap confidence interval."""

from __future__ import annotations

import warnings

import numpy as np


def bootstrap_ci(values, confidence: float = 0.95, num_resamples: int = 2000, seed: int = 0):
    """Mean over the leading (seed) axis and its percentile-bootstrap CI: `(mean, low, high)`.

    `values` is (num_seeds, ...); NaNs are ignored per position.
    """
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    idx = rng.integers(0, n, size=(num_resamples, n))
    with warnings.catch_warnings():  # all-NaN positions (no finished episode yet) give NaN, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(values[idx], axis=1)
        mean = np.nanmean(values, axis=0)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.nanquantile(means, [alpha, 1.0 - alpha], axis=0)
    return mean, low, high


def plot_curve(ax, x, values, label: str, confidence: float = 0.95, **kwargs):
    """Plot the seed mean of `values` (num_seeds, len(x)) with a shaded bootstrap CI."""
    mean, low, high = bootstrap_ci(values, confidence)
    (line,) = ax.plot(x, mean, label=label, **kwargs)
    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    return line
