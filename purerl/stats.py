"""Statistics of results over seeds: bootstrap CIs, IQM, learning-curve AUC, samples to solve, verdicts, and
the aggregate metrics over runs and tasks of Agarwal et al. (2021, "Deep reinforcement learning at the edge
of the statistical precipice"): mean, median, IQM, optimality gap, probability of improvement, each with a
stratified-bootstrap CI.

Every confidence interval here is a percentile bootstrap with a fixed generator seed, so the same numbers
give the same interval on every machine. Seeds are the unit of resampling; two algorithms' runs are not
paired, so a comparison resamples the seeds of each independently.
"""

from __future__ import annotations

import warnings

import numpy as np

BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no difference"


def bootstrap_ci(values, confidence: float = 0.95, num_resamples: int = 2000, seed: int = 0, statistic=None):
    """A statistic over the leading (seed) axis and its percentile-bootstrap CI: `(value, low, high)`.

    `values` is (num_seeds, ...). The statistic defaults to the mean, with NaNs ignored per position (an
    iteration where a seed finished no episode); `statistic(array, axis)` replaces it (e.g. `iqm`)."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    idx = rng.integers(0, n, size=(num_resamples, n))
    with warnings.catch_warnings():  # all-NaN positions (no finished episode yet) give NaN, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        if statistic is None:
            resampled, value = np.nanmean(values[idx], axis=1), np.nanmean(values, axis=0)
        else:
            resampled, value = statistic(values[idx], axis=1), statistic(values, axis=0)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.nanquantile(resampled, [alpha, 1.0 - alpha], axis=0)
    return value, low, high


def iqm(values, axis: int = 0):
    """Interquartile mean: the mean of the middle half of the values along `axis` (a quarter of them, rounded
    down, is cut from each end: `scipy.stats.trim_mean(values, 0.25, axis)`), robust to a few outlier seeds
    yet less noisy than the median."""
    values = np.sort(np.asarray(values, dtype=np.float64), axis=axis)
    n = values.shape[axis]
    cut = n // 4
    return np.take(values, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


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


def auc(steps, curve) -> float:
    """Normalised area under one learning curve at possibly uneven `steps`: the trapezoidal integral over
    the span of the finite points divided by that span, i.e. the curve's mean level over training."""
    steps, curve = np.asarray(steps, np.float64), np.asarray(curve, np.float64)
    keep = np.isfinite(curve)
    steps, curve = steps[keep], curve[keep]
    if len(curve) == 0:
        return float("nan")
    if len(curve) == 1:
        return float(curve[0])
    area = np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(steps))
    return float(area / (steps[-1] - steps[0]))


def samples_to_solve(curves, steps, threshold: float, window: int = 1) -> list[int | None]:
    """Per seed, the budget (from `steps`, one per point) at the first point where the mean of the last
    `window` points of its curve exceeds `threshold`; None for a seed that never gets there.

    `curves` is (num_seeds, num_points) or one curve; the first `window - 1` points cannot solve (their
    trailing window is not full)."""
    curves = np.atleast_2d(np.asarray(curves, np.float64))
    kernel = np.ones(window) / window
    out = []
    for curve in curves:
        if len(curve) < window:
            out.append(None)
            continue
        trailing = np.convolve(curve, kernel, mode="valid")  # trailing[i] ends at point i + window - 1
        hit = np.nonzero(trailing > threshold)[0]
        out.append(int(steps[hit[0] + window - 1]) if len(hit) else None)
    return out


def compare(a, b, confidence: float = 0.95, num_resamples: int = 10_000, seed: int = 0) -> dict:
    """Compare two algorithms' per-seed values (final returns, AUCs): `difference` = mean(a) - mean(b) and
    `ratio_minus_1` = mean(a) / mean(b) - 1, each with a percentile-bootstrap CI that resamples the seeds of
    a and of b independently (the runs are not paired); the ratio only when every value is positive (else
    None). `verdict`: 'better' (a above b) or 'worse' when the CI of the difference excludes 0, else
    'no difference'."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    rng = np.random.default_rng(seed)
    mean_a = a[rng.integers(0, len(a), (num_resamples, len(a)))].mean(1)
    mean_b = b[rng.integers(0, len(b), (num_resamples, len(b)))].mean(1)
    q = [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2]
    difference_ci = [float(v) for v in np.percentile(mean_a - mean_b, q)]
    out = {
        "difference": float(a.mean() - b.mean()),
        "difference_ci": difference_ci,
        "ratio_minus_1": None,
        "ratio_minus_1_ci": None,
        "confidence": confidence,
        "verdict": verdict(difference_ci),
    }
    if min(a.min(), b.min()) > 0:
        out["ratio_minus_1"] = float(a.mean() / b.mean() - 1)
        out["ratio_minus_1_ci"] = [float(v) for v in np.percentile(mean_a / mean_b - 1, q)]
    return out


def verdict(difference_ci) -> str:
    """'better' when a CI of (A - B) lies above 0, 'worse' below 0, else 'no difference'."""
    low, high = difference_ci
    return BETTER if low > 0 else WORSE if high < 0 else NO_DIFFERENCE


def interval_relation(ci, other_ci) -> str:
    """How one result's CI sits against another's: 'beats' (entirely above), 'worse than' (entirely below),
    else 'overlaps'. Coarser than `compare` (which bootstraps the difference); used where only the two CIs
    were recorded."""
    (low, high), (other_low, other_high) = ci, other_ci
    return "beats" if low > other_high else "worse than" if high < other_low else "overlaps"


def summarize(per_seed, confidence: float = 0.95, seed: int = 0) -> dict:
    """Scores of one result over its seeds: mean with its bootstrap CI, IQM, min, max and the values."""
    per_seed = np.asarray(per_seed, np.float64)
    mean, low, high = bootstrap_ci(per_seed, confidence, seed=seed)
    return {"mean": float(mean), "ci": [float(low), float(high)], "confidence": confidence,
            "iqm": float(iqm(per_seed)), "min": float(per_seed.min()), "max": float(per_seed.max()),
            "per_seed": [float(x) for x in per_seed]}


# Aggregate metrics over runs and tasks. A score matrix is (..., num_runs, num_tasks): runs (seeds) on the
# second-to-last axis, tasks (environments) on the last; leading axes, if any, are bootstrap resamples, so
# that one call scores every resample at once.


def aggregate_mean(scores):
    """The mean over tasks of each task's mean score over runs."""
    return np.asarray(scores, np.float64).mean(axis=-2).mean(axis=-1)


def aggregate_median(scores):
    """The median over tasks of each task's mean score over runs (with one task: that task's mean)."""
    return np.median(np.asarray(scores, np.float64).mean(axis=-2), axis=-1)


def aggregate_iqm(scores):
    """The interquartile mean (`iqm`) of all run x task scores pooled: runs of every task count alike."""
    scores = np.asarray(scores, np.float64)
    return iqm(scores.reshape(*scores.shape[:-2], -1), axis=-1)


def optimality_gap(scores, gamma: float = 1.0):
    """How far the scores fall short of the target `gamma`, on average over runs and tasks:
    mean(max(gamma - score, 0)). Scores above `gamma` count as `gamma` (exceeding the target earns nothing),
    so lower is better and 0 means every run reached it."""
    scores = np.asarray(scores, np.float64)
    return np.maximum(gamma - scores, 0.0).mean(axis=(-2, -1))


def probability_of_improvement(scores_x, scores_y):
    """P(X > Y): the probability that a run of X scores above a run of Y on the same task, averaged over
    tasks; ties count one half (the Mann-Whitney U statistic of X over Y divided by the number of pairs).
    X and Y may have different numbers of runs; their runs are not paired."""
    x = np.asarray(scores_x, np.float64)[..., :, None, :]  # (..., runs_x, 1, tasks)
    y = np.asarray(scores_y, np.float64)[..., None, :, :]  # (..., 1, runs_y, tasks)
    per_pair = (x > y) + 0.5 * (x == y)  # (..., runs_x, runs_y, tasks)
    return per_pair.mean(axis=(-3, -2)).mean(axis=-1)


def stratified_bootstrap_ci(statistic, *score_matrices, confidence: float = 0.95, num_resamples: int = 10_000,
                            seed: int = 0):
    """`statistic(*score_matrices)` and its percentile-bootstrap CI over runs, stratified by task:
    `(value, low, high)`.

    Each (num_runs, num_tasks) matrix is resampled on its own, and within each task separately: a task's
    resampled runs are drawn with replacement from that task's runs only, so every resample keeps every task
    (the uncertainty is that of re-running the seeds on the same tasks). `statistic` takes matrices with a
    leading resample axis (every aggregate above does) and returns a number or a vector per resample."""
    rng = np.random.default_rng(seed)
    resampled = []
    for scores in score_matrices:
        scores = np.asarray(scores, np.float64)
        num_runs, num_tasks = scores.shape
        runs = rng.integers(0, num_runs, size=(num_resamples, num_runs, num_tasks))
        resampled.append(scores[runs, np.arange(num_tasks)])  # (num_resamples, num_runs, num_tasks)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(statistic(*resampled), [alpha, 1.0 - alpha], axis=0)
    return statistic(*score_matrices), low, high
