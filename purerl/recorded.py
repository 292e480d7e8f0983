"""Recorded results: the JSON files under `benchmarks/results/` of a source checkout, read for the notebooks.

The notebooks draw their figures from these files instead of re-running experiments that take minutes to
hours, so every figure states where its numbers come from: the device, the budget and the command that
recorded them (`provenance`). Every file is in the benchmark harness schema (`purerl-benchmark/1`); a file
recorded before that schema keeps its own fields, unchanged, under `legacy` (`benchmarks/convert_legacy.py`).
Missing values (`null`, e.g. a curve point before the first finished episode) become NaN.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def load(name: str) -> dict:
    """The record `benchmarks/results/<name>.json`; `name` may start with a device folder
    (`NVIDIA_H200/sac_pendulum_30k`)."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no recorded result {path} (run from a source checkout of purerl)")
    return json.loads(path.read_text())


def values(nested) -> np.ndarray:
    """A (nested) list of numbers with `null` for missing values, as a float array with NaN there."""
    if isinstance(nested, list | tuple):
        return np.array([values(x) for x in nested], dtype=np.float64)
    return np.float64(np.nan if nested is None else nested)


def device(record: dict) -> str:
    """Where a record ran, in words: the accelerator's name, or the CPU with its core count."""
    machine = record.get("machine") or {}
    if not machine:
        return "device not recorded"
    if machine.get("platform") == "cpu":
        return f"CPU ({machine.get('cpu_count', '?')} cores)"
    return str(machine.get("device_kind", machine.get("platform")))


def provenance(record: dict) -> str:
    """One line: device, budget, seeds, command and date of a record, each where the record has it."""
    budget = record.get("budget")
    if isinstance(budget, int | float) and record.get("budget_unit"):
        budget = f"{budget:,} {record['budget_unit']} per seed"
    seeds = record.get("seeds")
    parts = [device(record)]
    parts += [budget] if isinstance(budget, str) else []  # a structured budget is printed by its reader
    if isinstance(seeds, int):  # some records keep the number of seeds, not their list
        parts.append(f"{seeds} seeds")
    elif seeds:
        parts.append(f"seeds {seeds}" if len(seeds) <= 8 else f"{len(seeds)} seeds")
    parts += [f"`{record['command']}`"] if record.get("command") else []
    parts += [f"recorded {record['recorded_at'][:10]}"] if record.get("recorded_at") else []
    return " | ".join(parts)
