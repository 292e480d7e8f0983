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


def fill_forward(curves):
    """Carry each seed's last finite value forward over NaN positions (iterations where no episode ended);
    NaNs before a seed's first finite value stay NaN. `curves` is (num_seeds, num_points)."""
    curves = np.array(curves, dtype=np.float64)
    for row in curves:
        last = np.nan
        for i, v in enumerate(row):
            row[i] = last = v if np.isfinite(v) else last
    return curves


def auc_per_seed(curves):
    """Area under each seed's learning curve, normalised by its length: the mean over evaluation points
    (equally spaced in env steps) of the forward-filled curve, ignoring points before the first value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(fill_forward(curves), axis=1)


def auc_ratio_ci(auc_a, auc_b, confidence: float = 0.95, num_resamples: int = 10_000, seed: int = 0) -> dict:
    """Compare two algorithms' per-seed AUCs: `ratio_minus_1` = mean(a) / mean(b) - 1 and `difference`
    = mean(a) - mean(b), each with a percentile-bootstrap CI that resamples the seeds of a and of b
    independently (the runs of the two algorithms are not paired). The ratio is only given (else None)
    when every AUC is positive."""
    a, b = np.asarray(auc_a, np.float64), np.asarray(auc_b, np.float64)
    rng = np.random.default_rng(seed)
    mean_a = a[rng.integers(0, len(a), (num_resamples, len(a)))].mean(1)
    mean_b = b[rng.integers(0, len(b), (num_resamples, len(b)))].mean(1)
    q = [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2]
    out = {
        "difference": float(a.mean() - b.mean()),
        "difference_ci": [float(v) for v in np.percentile(mean_a - mean_b, q)],
        "ratio_minus_1": None,
        "ratio_minus_1_ci": None,
        "confidence": confidence,
    }
    if min(a.min(), b.min()) > 0:
        out["ratio_minus_1"] = float(a.mean() / b.mean() - 1)
        out["ratio_minus_1_ci"] = [float(v) for v in np.percentile(mean_a / mean_b - 1, q)]
    return out
