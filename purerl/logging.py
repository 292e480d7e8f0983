"""Run outputs: a throttled progress display, metrics.csv (long format) and summary.json."""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import jax
import numpy as np

PACKAGES = ("purerl", "jax", "jaxlib", "flax", "optax", "gymnax", "brax", "distrax", "evosax", "orbax-checkpoint")


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
    """Long format: seed, iteration, <budget>, metric, value; arrays are (num_seeds, num_iterations). The third
    column counts the agent's budget unit: `env_steps`, or `updates` for offline agents."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seed", "iteration", budget_unit.replace(" ", "_"), "metric", "value"])
        for name in sorted(metrics):
            values = np.asarray(metrics[name])
            for row, seed in enumerate(seeds):
                for it, value in enumerate(values[row], start=1):
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
                TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} it"),
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
        info = " ".join(f"{k} {v:.4g}" for k, v in stats.items())
        self._bar.update(self._task, completed=iteration, info=info)
        # Without a terminal (CI, pipes) rich stays silent: print a plain line at most every 10 s.
        if not sys.stderr.isatty() and (elapsed - self._last_print > 10 or iteration == self.total):
            self._last_print = elapsed
            print(f"[{self.label}] {iteration}/{self.total} it {elapsed:.0f}s {info}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
