"""Learning curves with the mean over seeds and a 95% bootstrap confidence interval."""

from __future__ import annotations

from purerl.stats import bootstrap_ci


def plot_curve(ax, x, values, label: str, confidence: float = 0.95, **kwargs):
    """Plot the seed mean of `values` (num_seeds, len(x)) with a shaded bootstrap CI."""
    mean, low, high = bootstrap_ci(values, confidence)
    (line,) = ax.plot(x, mean, label=label, **kwargs)
    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    return line
