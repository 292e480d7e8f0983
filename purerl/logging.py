"""Run outputs: a throttled progress display, metrics.csv (long format), summary.json, and the optional
TensorBoard and W&B loggers (`--logger`), all written on the host between the jitted chunks."""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal, get_args

import jax
import numpy as np

LoggerName = Literal["csv", "tensorboard", "wandb"]
LOGGERS: tuple[str, ...] = get_args(LoggerName)
EVAL_RETURN = "eval/return"
"""The periodic evaluation's metric (`--eval-every`): each seed's mean return over its evaluation episodes,
NaN at the iterations without an evaluation."""

PACKAGES = ("purerl", "jax", "jaxlib", "flax", "optax", "gymnax", "brax", "distrax", "evosax",
            "orbax-checkpoint")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def machine() -> dict[str, Any]:
    devices = jax.devices()
    return {
        "platform": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind,
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def write_json(path: str, obj: Any) -> None:
    """Write JSON atomically (temporary file + rename)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=_jsonable)
        f.write("\n")
    os.replace(tmp, path)


def _jsonable(x):
    if isinstance(x, np.generic | np.ndarray):
        return x.tolist()
    if isinstance(x, tuple | set):
        return list(x)
    return str(x)


def write_metrics_csv(path: str, metrics: dict[str, np.ndarray], seeds, steps_per_iteration: int,
                      budget_unit: str = "env steps") -> None:
    """Long format: seed, iteration, <budget>, metric, value; arrays are (num_seeds, num_iterations). The
    third column counts the agent's budget unit: `env_steps`, or `updates` for offline agents."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seed", "iteration", budget_unit.replace(" ", "_"), "metric", "value"])
        for name in sorted(metrics):
            values = np.asarray(metrics[name])
            # evaluations happen at some iterations only: write those (NaN pads the others in the array)
            written = ~np.isnan(values).all(axis=0) if name == EVAL_RETURN else np.ones(values.shape[1], bool)
            for row, seed in enumerate(seeds):
                for it, value in enumerate(values[row], start=1):
                    if written[it - 1]:
                        writer.writerow([seed, it, it * steps_per_iteration, name, f"{float(value):.6g}"])
    os.replace(tmp, path)


def read_metrics_csv(path: str) -> dict[str, dict[int, list[tuple[int, float]]]]:
    """metric -> seed -> [(budget, value)], the inverse of `write_metrics_csv` (for plots); the budget is the
    file's third column (env steps or updates)."""
    out: dict[str, dict[int, list[tuple[int, float]]]] = {}
    with open(path) as f:
        rows = csv.reader(f)
        next(rows)  # header: seed, iteration, env_steps | updates, metric, value
        for seed, _, budget, metric, value in rows:
            out.setdefault(metric, {}).setdefault(int(seed), []).append((int(budget), float(value)))
    return out


class Progress:
    """A live progress line, updated between jitted chunks (never from inside the compiled program)."""

    def __init__(self, total: int, enabled: bool = True, label: str = ""):
        self.total = total
        self.enabled = enabled
        self.label = label
        self.start = time.perf_counter()
        self._bar = None
        if enabled:
            from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(),
                TextColumn("{task.completed}/{task.total} it"),
                TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                transient=False, disable=not sys.stderr.isatty(),
            )
            self._task = self._bar.add_task(label, total=total, info="")
            self._bar.start()
            self._last_print = 0.0

    def update(self, iteration: int, stats: dict[str, float]) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        info = " ".join(f"{k} {v}" if isinstance(v, str) else f"{k} {v:.4g}" for k, v in stats.items())
        self._bar.update(self._task, completed=iteration, info=info)
        # Without a terminal (CI, pipes) rich stays silent: print a plain line at most every 10 s.
        if not sys.stderr.isatty() and (elapsed - self._last_print > 10 or iteration == self.total):
            self._last_print = elapsed
            print(f"[{self.label}] {iteration}/{self.total} it {elapsed:.0f}s {info}", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def check_loggers(names, out: str | None) -> None:
    """Raise a ValueError for a logger that cannot run (unknown, no --out for TensorBoard, package missing),
    before anything is compiled or written."""
    for name in names:
        if name not in LOGGERS:
            raise ValueError(f"unknown logger {name!r}; choose from {', '.join(LOGGERS)}")
    if "tensorboard" in names:
        if not out:
            raise ValueError("--logger tensorboard writes into the run directory: pass --out DIR")
        _require("tensorboardX", "tensorboardX", "tensorboard")
    if "wandb" in names:
        _require("wandb", "purerl[wandb]", "wandb")


def _require(module: str, package: str, logger: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ValueError(f"--logger {logger} needs the {module} package: pip install '{package}'")


class Loggers:
    """The run's TensorBoard and W&B loggers (metrics.csv is written by the runner itself).

    `log_chunk` is called on the host after each jitted chunk, with the chunk's metrics; every value lands at
    its iteration's budget (env steps, or updates for offline agents), the step axis of metrics.csv. Each
    metric is logged per seed as `<metric>/seed_<s>` (the series of metrics.csv; NaN, "no value this
    iteration", is left out), and an evaluation adds `eval/return/mean`, `eval/return/ci_low` and
    `eval/return/ci_high` (95% bootstrap CI over seeds) at its iteration. `names` is empty in every process
    but process 0 of a multi-process run."""

    def __init__(self, names, out: str | None, run_name: str, config: dict[str, Any],
                 resumed_at: int | None = None):
        """`resumed_at`: the budget of the checkpoint a resumed run starts from (None for a new run)."""
        self._backends: list[Any] = []
        if "tensorboard" in names:
            from tensorboardX import SummaryWriter

            # An interrupted run may have logged past its last checkpoint: purge_step makes TensorBoard drop
            # every earlier point at or after the first resumed step, so each step is shown once.
            purge_step = None if resumed_at is None else resumed_at + 1
            self._backends.append(_TensorBoard(SummaryWriter(logdir=os.path.join(out, "tensorboard"),
                                                             purge_step=purge_step)))
        if "wandb" in names:
            self._backends.append(_WandB(out, run_name, config))

    def log_chunk(self, metrics: dict[str, np.ndarray], seeds, first_iteration: int, steps_per_iteration: int,
                  evaluation: tuple[float, float, float] | None = None) -> None:
        """`metrics` maps names to (num_seeds, chunk_length) values of iterations `first_iteration, ...`;
        `evaluation` is (mean, ci_low, ci_high) of an evaluation at the chunk's last iteration."""
        length = next(iter(metrics.values())).shape[1] if metrics else 0
        evaluations = {} if evaluation is None else {first_iteration + length - 1: evaluation}
        self._log(self._backends, metrics, seeds, first_iteration, steps_per_iteration, evaluations)

    def log_history(self, metrics: dict[str, np.ndarray], seeds, steps_per_iteration: int,
                    evaluations: dict[int, tuple[float, float, float]]) -> None:
        """On resume, give the loggers that start empty (a new W&B run) the series up to the checkpoint:
        `metrics` as saved with it, from iteration 1; `evaluations` maps iterations to (mean, ci_low,
        ci_high)."""
        starting_empty = [backend for backend in self._backends if backend.starts_empty]
        self._log(starting_empty, metrics, seeds, 1, steps_per_iteration, evaluations)

    @staticmethod
    def _log(backends, metrics, seeds, first_iteration, steps_per_iteration, evaluations) -> None:
        if not backends or not metrics:
            return
        arrays = {name: np.asarray(values, dtype=np.float64) for name, values in metrics.items()}
        length = next(iter(arrays.values())).shape[1]
        for column in range(length):
            scalars = {f"{name}/seed_{seed}": float(values[row, column])
                       for name, values in sorted(arrays.items()) for row, seed in enumerate(seeds)
                       if not np.isnan(values[row, column])}
            iteration = first_iteration + column
            if iteration in evaluations:
                scalars.update(zip((f"{EVAL_RETURN}/{s}" for s in ("mean", "ci_low", "ci_high")),
                                   evaluations[iteration], strict=True))
            for backend in backends:
                backend.log(iteration * steps_per_iteration, scalars)

    def close(self) -> None:
        for backend in self._backends:
            backend.close()


class _TensorBoard:
    starts_empty = False  # a resumed run appends to the run's event files

    def __init__(self, writer):
        self._writer = writer

    def log(self, step: int, scalars: dict[str, float]) -> None:
        for tag, value in scalars.items():
            self._writer.add_scalar(tag, value, global_step=step)

    def close(self) -> None:
        self._writer.close()


class _WandB:
    """One W&B run per training session (project: $WANDB_PROJECT or "purerl"); `WANDB_MODE=offline` keeps it
    on disk. A resumed run starts a new W&B run and logs the series up to its checkpoint again: W&B cannot
    take back the points that the interrupted run logged after its last checkpoint (it ignores a step below
    the run's latest), so continuing that W&B run would keep them, stale when flags changed on resume."""

    starts_empty = True

    def __init__(self, out: str | None, run_name: str, config: dict[str, Any]):
        import wandb

        self._run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "purerl"), name=run_name, config=config, dir=out,
            settings=wandb.Settings(console="off"),  # purerl's own progress and error lines stay untouched
        )

    def log(self, step: int, scalars: dict[str, float]) -> None:
        self._run.log(scalars, step=step)

    def close(self) -> None:
        self._run.finish()
