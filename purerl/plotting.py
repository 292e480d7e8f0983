"""Learning curves with the mean over seeds and a 95% bootstrap confidence interval."""

from __future__ import annotations

# The statistics live in purerl.stats; these names stay importable from here.
from purerl.stats import auc_per_seed, bootstrap_ci, fill_forward  # noqa: F401
from purerl.stats import compare as auc_ratio_ci  # noqa: F401


def plot_curve(ax, x, values, label: str, confidence: float = 0.95, **kwargs):
    """Plot the seed mean of `values` (num_seeds, len(x)) with a shaded bootstrap CI."""
    mean, low, high = bootstrap_ci(values, confidence)
    (line,) = ax.plot(x, mean, label=label, **kwargs)
    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    return line
