"""Learning curves with the mean over seeds and a 95% bootstrap confidence interval."""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from purerl.stats import bootstrap_ci


def plot_curve(ax, x, values, label: str, confidence: float = 0.95, **kwargs):
    """Plot the seed mean of `values` (num_seeds, len(x)) with a shaded bootstrap CI."""
    mean, low, high = bootstrap_ci(values, confidence)
    (line,) = ax.plot(x, mean, label=label, **kwargs)
    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def learning_curves_figure(curves, xlabel: str, ylabel: str, title: str = "", confidence: float = 0.95):
    """A matplotlib Figure (drawn with the Agg canvas, no display needed) of learning curves, one line per
    `(label, x, values)` in `curves`, each the seed mean of `values` (num_seeds, len(x)) with its bootstrap
    CI; save it with `figure.savefig(path)`."""
    figure = Figure(figsize=(7.0, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for label, x, values in curves:
        plot_curve(ax, x, values, label, confidence)
    ax.set(xlabel=xlabel, ylabel=f"{ylabel} (mean over seeds, {confidence:.0%} bootstrap CI)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return figure
