"""`purerl plot` and `purerl compare`: learning curves and aggregate statistics of finished runs.

Both read run directories as `purerl train --out DIR` writes them (`config.json`, `metrics.csv`,
`summary.json`) and compute nothing new on a device. Runs are told apart by the fields that differ between
them (algorithm, environment, agent flags); the fields they share go into the title.

`purerl compare` scores each run by its final evaluation returns (`final_return_per_seed` in summary.json,
one score per seed). Runs that differ only in their environment are one method on several tasks; runs of the
same method and task with different seeds are pooled. Per method it reports the aggregate metrics of
`purerl.stats` (mean, median, IQM, optimality gap) with stratified-bootstrap CIs, and between every two
methods the probability of improvement.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
import tyro
from matplotlib.backend_bases import FigureCanvasBase

from purerl import flags, plotting, stats
from purerl.logging import read_metrics_csv

RUN_FILES = ("config.json", "summary.json", "metrics.csv")


@dataclass(frozen=True)
class Run:
    """What a finished run directory says about itself."""

    directory: str
    algo: str
    config: dict
    summary: dict

    @property
    def env(self) -> str:
        return str(self.config.get("env", self.config.get("dataset", "")))

    def settings(self) -> dict[str, str]:
        """The fields that tell runs apart: algorithm, environment and every agent flag, as text."""
        flat = {"algo": self.algo, "env": self.env}
        flat.update({k: json.dumps(v, separators=(",", ":")) if isinstance(v, list | dict) else str(v)
                     for k, v in self.config.items() if k not in ("env", "dataset")})
        return flat


def load_run(directory: str) -> Run:
    """The run in `directory`; ValueError (one line for the user) when it is not a purerl run directory."""
    missing = [name for name in RUN_FILES if not os.path.isfile(os.path.join(directory, name))]
    if missing:
        raise ValueError(f"{directory!r} is not a purerl run directory (no {', '.join(missing)}; "
                         "`purerl train <algo> --out DIR` writes one)")
    with open(os.path.join(directory, "config.json")) as f:
        saved = json.load(f)
    with open(os.path.join(directory, "summary.json")) as f:
        summary = json.load(f)
    return Run(directory, saved["algo"], saved.get("config", {}), summary)


def labels(runs: list[Run], leave_out: tuple[str, ...] = ()) -> tuple[list[str], str]:
    """A label per run made of the settings that differ between the runs (`name=value`; algorithm and
    environment by their value alone), and a title made of the algorithm and environment they share.
    Settings in `leave_out` take no part in the labels."""
    settings = [run.settings() for run in runs]
    keys = list(dict.fromkeys(k for s in settings for k in s))
    differing = [k for k in keys if k not in leave_out and len({s.get(k) for s in settings}) > 1]
    shared = [settings[0][k] for k in ("algo", "env") if k not in differing and settings[0].get(k)]

    def label(s: dict[str, str]) -> str:
        parts = [s.get(k, "-") if k in ("algo", "env") else f"{k}={s.get(k, '-')}" for k in differing]
        return " ".join(parts)

    return [label(s) or runs[0].algo for s in settings], " on ".join(shared)


def read_curves(run: Run, metric: str) -> tuple[str, np.ndarray, np.ndarray]:
    """(budget unit as in the header of metrics.csv, budget at each point, values (num_seeds, num_points))."""
    path = os.path.join(run.directory, "metrics.csv")
    with open(path) as f:
        unit = f.readline().strip().split(",")[2]  # seed, iteration, env_steps | updates, metric, value
    per_metric = read_metrics_csv(path)
    if metric not in per_metric:
        raise ValueError(f"metric {metric!r} is not in {path}; it has: {', '.join(sorted(per_metric))}")
    per_seed = [per_metric[metric][seed] for seed in sorted(per_metric[metric])]
    budget = np.array([b for b, _ in per_seed[0]])
    values = np.array([[v for _, v in points] for points in per_seed], dtype=np.float64)
    return unit, budget, values


def plot(run_dirs, metric: str, out: str, confidence: float = 0.95) -> str:
    """Draw `metric` of every run over its budget into the image `out`; returns `out`."""
    runs = [load_run(d) for d in run_dirs]
    curves = [read_curves(run, metric) for run in runs]
    units = {unit for unit, _, _ in curves}
    if len(units) > 1:
        raise ValueError(f"the runs count their budget in different units ({', '.join(sorted(units))}) and "
                         "cannot share an x axis; plot them separately")
    run_labels, title = labels(runs)
    figure = plotting.learning_curves_figure(
        [(label, budget, values) for label, (_, budget, values) in zip(run_labels, curves, strict=True)],
        xlabel=units.pop().replace("_", " "), ylabel=metric, title=title, confidence=confidence)
    figure.savefig(out, dpi=120)
    return out


def check_image_path(out: str) -> None:
    extension = os.path.splitext(out)[1].lstrip(".").lower()
    supported = FigureCanvasBase.get_supported_filetypes()
    if extension not in supported:
        raise ValueError(f"--out {out!r}: the image format is taken from the extension, one of "
                         f"{', '.join('.' + e for e in sorted(supported))}")
    check_parent(out)


def check_parent(out: str) -> None:
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise ValueError(f"--out {out!r}: the directory {parent!r} does not exist")


# ---------------------------------------------------------------------------------------------- compare


@dataclass
class Method:
    """One method's scores: tasks (environments) -> the per-seed final returns of its runs on that task."""

    label: str
    directories: list[str] = field(default_factory=list)
    scores: dict[str, list[float]] = field(default_factory=dict)
    seeds: dict[str, list[int]] = field(default_factory=dict)

    def matrix(self, tasks: list[str]) -> np.ndarray:
        """(num_runs, num_tasks) score matrix; every task must have the same number of runs."""
        counts = {task: len(self.scores[task]) for task in tasks}
        if len(set(counts.values())) > 1:
            raise ValueError(f"{self.label}: every task needs the same number of seeds to form a score "
                             f"matrix; got {counts}")
        return np.array([self.scores[task] for task in tasks], dtype=np.float64).T


def group_methods(runs: list[Run]) -> tuple[list[Method], list[str]]:
    """The runs grouped by method (their settings other than the environment), with the tasks they cover."""
    method_labels, _ = labels(runs, leave_out=("env",))
    methods: dict[str, Method] = {}
    for run, label in zip(runs, method_labels, strict=True):
        if run.summary.get("status") != "completed":
            raise ValueError(f"{run.directory!r} did not complete (status {run.summary.get('status')!r}); "
                             "it has no final evaluation to compare")
        method = methods.setdefault(label, Method(label))
        seeds = run.summary["seeds"]
        if set(seeds) & set(method.seeds.get(run.env, [])):
            raise ValueError(f"{run.directory!r} repeats seeds of another run of {label} on {run.env}")
        method.directories.append(run.directory)
        method.scores.setdefault(run.env, []).extend(run.summary["final_return_per_seed"])
        method.seeds.setdefault(run.env, []).extend(seeds)
    tasks = sorted({task for m in methods.values() for task in m.scores})
    for method in methods.values():
        if sorted(method.scores) != tasks:
            raise ValueError(f"{method.label} has runs on {', '.join(sorted(method.scores))} but the runs "
                             f"cover {', '.join(tasks)}: every method needs runs on every task")
    return list(methods.values()), tasks


def parse_bound(text: str | None, tasks: list[str], flag: str) -> dict[str, float] | None:
    """`--min`/`--max`: one number for every task, or `TASK=NUMBER,TASK=NUMBER` naming each task."""
    if text is None:
        return None
    try:
        if "=" not in text:
            return dict.fromkeys(tasks, float(text))
        pairs = dict(item.split("=", 1) for item in text.split(","))
        bounds = {task.strip(): float(value) for task, value in pairs.items()}
    except ValueError:
        raise ValueError(f"{flag} {text!r}: give a number, or TASK=NUMBER pairs separated by commas") \
            from None
    missing = [task for task in tasks if task not in bounds]
    if missing:
        raise ValueError(f"{flag} {text!r} names no value for {', '.join(missing)}")
    return bounds


AGGREGATES = {"mean": stats.aggregate_mean, "median": stats.aggregate_median, "iqm": stats.aggregate_iqm}


def compare(run_dirs, score_min: str | None = None, score_max: str | None = None, gamma: float | None = None,
            confidence: float = 0.95, num_resamples: int = 10_000, seed: int = 0) -> dict:
    """The comparison table of the runs (see the module docstring) as a dict, ready for JSON."""
    methods, tasks = group_methods([load_run(d) for d in run_dirs])
    low, high = parse_bound(score_min, tasks, "--min"), parse_bound(score_max, tasks, "--max")
    if (low is None) != (high is None):
        raise ValueError("--min and --max normalise the scores together: give both or neither")
    if low is not None and any(high[t] <= low[t] for t in tasks):
        raise ValueError("--max must exceed --min on every task")
    if gamma is None and low is not None:
        gamma = 1.0  # normalised scores: the target is the --max score
    matrices = {}
    for method in methods:
        matrix = method.matrix(tasks)
        if low is not None:
            matrix = (matrix - [low[t] for t in tasks]) / ([high[t] - low[t] for t in tasks])
        matrices[method.label] = matrix
    bootstrap = dict(confidence=confidence, num_resamples=num_resamples, seed=seed)

    def estimate(statistic, *matrices_of_methods):
        value, ci_low, ci_high = stats.stratified_bootstrap_ci(statistic, *matrices_of_methods, **bootstrap)
        return {"value": float(value), "ci": [float(ci_low), float(ci_high)]}

    table = {
        "scores": "final evaluation return per seed (summary.json: final_return_per_seed)",
        "normalised": None if low is None else {"min": low, "max": high},
        "gamma": gamma, "tasks": tasks, "confidence": confidence, "num_resamples": num_resamples,
        "bootstrap_seed": seed, "methods": {}, "probability_of_improvement": [],
    }
    for method in methods:
        matrix = matrices[method.label]
        row = {"runs": method.directories, "seeds": [method.seeds[t] for t in tasks],
               "scores": matrix.T.tolist()}  # per task, per seed
        row.update({name: estimate(statistic, matrix) for name, statistic in AGGREGATES.items()})
        row["optimality_gap"] = None if gamma is None else estimate(
            lambda scores: stats.optimality_gap(scores, gamma), matrix)
        table["methods"][method.label] = row
    for x in methods:
        for y in methods:
            if x is not y:
                table["probability_of_improvement"].append(
                    {"x": x.label, "y": y.label,
                     **estimate(stats.probability_of_improvement, matrices[x.label], matrices[y.label])})
    return table


STATISTICS = (*AGGREGATES, "optimality_gap")


def table_rows(table: dict) -> list[dict]:
    """The table in long form, one row per estimate: statistic, method, versus (the other method of a
    probability of improvement), value, ci_low, ci_high."""
    rows = []
    for label, row in table["methods"].items():
        for name in STATISTICS:
            if row[name] is not None:
                rows.append({"statistic": name, "method": label, "versus": "", "value": row[name]["value"],
                             "ci_low": row[name]["ci"][0], "ci_high": row[name]["ci"][1]})
    for pair in table["probability_of_improvement"]:
        rows.append({"statistic": "probability_of_improvement", "method": pair["x"], "versus": pair["y"],
                     "value": pair["value"], "ci_low": pair["ci"][0], "ci_high": pair["ci"][1]})
    return rows


def write_table(table: dict, out: str) -> None:
    if out.endswith(".json"):
        with open(out, "w") as f:
            json.dump(table, f, indent=2)
        return
    rows = table_rows(table)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def format_table(table: dict) -> str:
    """The table as text: one line per method, then the probability of improvement of row over column."""
    def cell(estimate) -> str:
        return "n/a" if estimate is None else (f"{estimate['value']:.3g} "
                                               f"[{estimate['ci'][0]:.3g}, {estimate['ci'][1]:.3g}]")

    names = list(table["methods"])
    width = max(len("method"), *(len(n) for n in names)) + 2
    scale = "normalised by --min/--max" if table["normalised"] else "raw returns"
    gap = f"optimality gap at gamma={table['gamma']:g}" if table["gamma"] is not None else \
        "optimality gap n/a (give --gamma, or --min/--max)"
    headers = ("mean", "median", "IQM", "optimality gap")
    lines = [f"scores: {table['scores']}, {scale}; tasks: {', '.join(table['tasks'])}",
             f"{table['confidence']:.0%} stratified-bootstrap CIs over seeds ({table['num_resamples']} "
             f"resamples); {gap}",
             "method".ljust(width) + "".join(h.ljust(26) for h in headers)]
    for name, row in table["methods"].items():
        lines.append(name.ljust(width) + "".join(cell(row[s]).ljust(26) for s in STATISTICS))
    if len(names) > 1:
        lines += ["", "probability of improvement P(row > column):", " " * width + "".join(n.ljust(26)
                                                                                             for n in names)]
        pairs = {(p["x"], p["y"]): p for p in table["probability_of_improvement"]}
        for x in names:
            lines.append(x.ljust(width) + "".join(("-" if x == y else cell(pairs[x, y])).ljust(26)
                                                  for y in names))
    return "\n".join(line.rstrip() for line in lines)


# ---------------------------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class PlotArgs:
    run_dirs: Annotated[tuple[str, ...], tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR...")]
    """run directories written by `purerl train ... --out DIR`"""
    metric: str = "episode_return"
    """metric of metrics.csv to draw"""
    out: str = "curves.png"
    """image file; its extension picks the format (.png, .pdf, .svg, ...)"""
    confidence: float = 0.95
    """coverage of the bootstrap band over seeds"""


@dataclass(frozen=True)
class CompareArgs:
    run_dirs: Annotated[tuple[str, ...], tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR...")]
    """run directories written by `purerl train ... --out DIR`"""
    out: str | None = None
    """also write the table to this file: .csv (one row per estimate) or .json (all, with the scores)"""
    score_min: Annotated[str | None, tyro.conf.arg(name="min")] = None
    """normalise scores to (score - min) / (max - min): a number, or TASK=NUMBER,... per environment"""
    score_max: Annotated[str | None, tyro.conf.arg(name="max")] = None
    """the score that normalises to 1 (with --min): a number, or TASK=NUMBER,... per environment"""
    gamma: float | None = None
    """target score of the optimality gap, in the units of the (normalised) scores; default 1 with
    --min/--max, else no optimality gap"""
    confidence: float = 0.95
    """coverage of the confidence intervals"""
    num_resamples: int = 10_000
    """bootstrap resamples"""
    seed: int = 0
    """seed of the bootstrap's generator (the same inputs and seed give the same intervals)"""


def check_common(run_dirs, confidence: float) -> None:
    if not run_dirs:
        raise ValueError("give at least one run directory")
    if not 0 < confidence < 1:
        raise ValueError(f"--confidence must lie in (0, 1); got {confidence}")
    for directory in run_dirs:
        load_run(directory)


def plot_main(argv: list[str]) -> str:
    """`purerl plot RUN_DIR... [--metric M] [--out curves.png]`."""
    args = flags.parse(PlotArgs, argv, prog="purerl plot",
                       description="Learning curves of finished runs: seed mean with a bootstrap band.")
    try:
        check_common(args.run_dirs, args.confidence)
        check_image_path(args.out)
        out = plot(args.run_dirs, args.metric, args.out, args.confidence)
    except ValueError as err:
        flags.fail(str(err))
    print(f"wrote {out}")
    return out


def compare_main(argv: list[str]) -> dict:
    """`purerl compare RUN_DIR... [--out table.csv|table.json] [--min A --max B] [--gamma G]`."""
    args = flags.parse(CompareArgs, argv, prog="purerl compare",
                       description="Aggregate statistics of finished runs' final returns (mean, median, "
                                   "IQM, optimality gap, probability of improvement) with "
                                   "stratified-bootstrap CIs.")
    try:
        check_common(args.run_dirs, args.confidence)
        if args.num_resamples < 1:
            raise ValueError(f"--num-resamples must be positive; got {args.num_resamples}")
        if args.out is not None:
            if not args.out.endswith((".csv", ".json")):
                raise ValueError(f"--out {args.out!r}: the table is written as .csv or .json")
            check_parent(args.out)
        table = compare(args.run_dirs, args.score_min, args.score_max, args.gamma, args.confidence,
                        args.num_resamples, args.seed)
    except ValueError as err:
        flags.fail(str(err))
    print(format_table(table))
    if args.out is not None:
        write_table(table, args.out)
        print(f"wrote {args.out}")
    return table
