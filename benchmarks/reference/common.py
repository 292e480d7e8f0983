"""Shared pieces of the paired checks against the authors' code (`benchmarks/reference/<agent>.py`).

A check runs in two processes: the purerl side (purerl's venv, jax) and the authors' side (the reference venv
of `make reference-env`, PyTorch; `benchmarks/reference/README.md`). They exchange arrays through `.npz` files
of nested dicts (`save_tree` / `load_tree`). This module imports only numpy and the standard library at import
time, so both sides can use it; `result` and `write` import the benchmark harness (purerl side only).

The API:
- `save_tree(path, tree)`, `load_tree(path)`: a nested dict of arrays <-> one `.npz` file (keys "a/b/c").
- `linear_layers(module)`: a torch module's `nn.Linear` layers as (weight (out, in), bias) numpy pairs, in
  registration order; `dense_params(layers)`: those pairs as flax `Dense_<i>` params (kernel (in, out)).
- `difference(ours, theirs)`, `differences(pairs)`, `worst(quantities)`: max |a - b| and the max relative
  difference of each quantity, and the largest relative difference of all.
- `alternating_rates(timers, rounds)`: each timer in turn, round after round (CPU contention hits both).
- `authors_commit(directory, given)`: the commit of the user's checkout.
- `result(...)`, `write(res)`: the result file `benchmarks/results/reference/<agent>.json` (harness schema
  `purerl-benchmark/1`, kind "speed": the purerl throughput; the check itself in `extra`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RESULTS = REPO / "benchmarks" / "results" / "reference"
REFERENCE_PYTHON = HERE / ".venv" / "bin" / "python"  # made by `make reference-env`
SEPARATOR = "/"


# --- .npz exchange ---------------------------------------------------------------------------------------

def require_reference_python(parser, path: str) -> None:
    """Exit like a purerl command (one line, status 2) unless `path` is an executable Python of the authors'
    side (the venv that `make reference-env` creates)."""
    if not os.access(path, os.X_OK):
        parser.exit(2, f"purerl: error: no reference python at {path!r} (run make reference-env, or pass "
                       "--reference-python)\n")


def flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """{"a": {"b": x}} -> {"a/b": np.asarray(x)}; leaves are anything np.asarray accepts."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{SEPARATOR}{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(value, name))
        else:
            flat[name] = np.asarray(value)
    return flat


def unflatten(flat: dict[str, np.ndarray]) -> dict:
    """The inverse of `flatten`."""
    tree: dict = {}
    for name, value in flat.items():
        *parents, leaf = name.split(SEPARATOR)
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def save_tree(path: str | os.PathLike, tree: dict) -> None:
    """Write a nested dict of arrays to one uncompressed `.npz` file (exact float64 round trip)."""
    np.savez(path, **flatten(tree))


def load_tree(path: str | os.PathLike) -> dict:
    """Read a file written by `save_tree` back into the nested dict."""
    with np.load(path) as data:
        return unflatten({name: data[name] for name in data.files})


# --- weights: torch nn.Linear (out, in) <-> flax Dense (in, out) -------------------------------------------

def linear_layers(module) -> list[tuple[np.ndarray, np.ndarray]]:
    """The `nn.Linear` layers of a torch module, in registration order, as (weight (out, in), bias) numpy
    pairs (no torch import here: the module's own methods are used)."""
    layers = [m for m in module.modules() if type(m).__name__ == "Linear"]
    return [(m.weight.detach().cpu().numpy().copy(), m.bias.detach().cpu().numpy().copy()) for m in layers]


def dense_params(layers: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """(weight (out, in), bias) pairs -> flax params {"Dense_0": {"kernel": (in, out), "bias"}, ...} (the
    names `nn.Dense` layers get in an `nn.compact` module)."""
    return {f"Dense_{i}": {"kernel": np.asarray(w).T.copy(), "bias": np.asarray(b).copy()}
            for i, (w, b) in enumerate(layers)}


def linear_pairs(params: dict[str, dict[str, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The inverse of `dense_params`: flax `Dense_<i>` params -> (weight (out, in), bias) pairs, in order."""
    names = sorted(params, key=lambda name: int(name.rsplit("_", 1)[1]))
    return [(np.asarray(params[n]["kernel"]).T, np.asarray(params[n]["bias"])) for n in names]


# --- differences -----------------------------------------------------------------------------------------

def difference(ours, theirs) -> dict[str, float]:
    """{"max_abs_diff": max |ours - theirs|, "max_rel_diff": max |ours - theirs| / max |theirs|}.

    The relative difference is taken against the quantity's largest magnitude (a tensor's scale), so an entry
    that happens to be near zero does not blow it up; both are 0.0 for identical inputs. Shapes must match."""
    a, b = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: ours {a.shape}, theirs {b.shape}")
    abs_diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    rel = abs_diff / scale if scale > 0 else (0.0 if abs_diff == 0 else float("inf"))
    return {"max_abs_diff": abs_diff, "max_rel_diff": rel}


def differences(pairs: dict[str, tuple[Any, Any]]) -> dict[str, dict[str, float]]:
    """name -> (ours, theirs) to name -> `difference`."""
    return {name: difference(ours, theirs) for name, (ours, theirs) in pairs.items()}


def worst(quantities: dict[str, dict[str, float]]) -> tuple[str, float]:
    """The quantity with the largest relative difference, and that difference."""
    name = max(quantities, key=lambda n: quantities[n]["max_rel_diff"])
    return name, quantities[name]["max_rel_diff"]


def left_as_is(deviations: Sequence[dict]) -> str:
    """'name worst-rel (quantity); ...': how far each deviation moves the pair when it is not toggled."""
    return "; ".join(f"{d['name']} {d['untoggled_worst']['max_rel_diff']:.1e} "
                     f"({d['untoggled_worst']['quantity']})" for d in deviations)


def print_differences(quantities: dict[str, dict[str, float]], file=sys.stdout) -> None:
    """One line per quantity: name, max abs diff, max rel diff."""
    width = max(map(len, quantities))
    for name, d in quantities.items():
        print(f"  {name:<{width}}  abs {d['max_abs_diff']:.3e}  rel {d['max_rel_diff']:.3e}", file=file)


# --- speed -----------------------------------------------------------------------------------------------

def alternating_rates(timers: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Call each timer (returning a rate, e.g. updates/s) in turn, `rounds` times: label -> rates in round
    order. Alternating spreads the load of other jobs on a shared CPU over both sides; report the best."""
    rates: dict[str, list[float]] = {label: [] for label in timers}
    for r in range(rounds):
        for label, timer in timers.items():
            rates[label].append(float(timer()))
            print(f"  round {r + 1}/{rounds} {label}: {rates[label][-1]:,.1f}/s", flush=True)
    return rates


def speed_summary(ours: list[float], theirs: list[float], unit: str, settings: dict) -> dict:
    """The `speed` field: best and all rates of both sides, ratio of the bests (purerl / authors)."""
    best_ours, best_theirs = max(ours), max(theirs)
    return {"unit": unit, "purerl": round(best_ours, 1), "authors": round(best_theirs, 1),
            "ratio_purerl_over_authors": round(best_ours / best_theirs, 3),
            "purerl_all": [round(x, 1) for x in ours], "authors_all": [round(x, 1) for x in theirs],
            "rounds": len(ours), "settings": settings, "load_average": round(os.getloadavg()[0], 2)}


# --- provenance and the result file ----------------------------------------------------------------------

def authors_commit(directory: str | os.PathLike, given: str = "") -> str:
    """The commit of the authors' checkout: `given` if set, else `git rev-parse HEAD` in the directory, else
    "unknown" (an unpacked archive has no git metadata: pass --authors-commit)."""
    if given:
        return given
    try:
        return subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def result(agent: str, what: str, *, authors_repo: str, authors_commit: str,
           quantities: dict[str, dict[str, float]], deviations: list[dict], speed: dict, verdict: str,
           config: dict | None = None, tolerance: float = 1e-6, extra: dict | None = None,
           compile_s: float | None = None) -> dict:
    """A harness-schema result (kind "speed", throughput = purerl's rate) with the check in `extra`:
    authors_repo, authors_commit, quantities (name -> max_abs_diff, max_rel_diff), worst, tolerance,
    deviations (each {"name", "what", "toggle"}), speed (`speed_summary`, or {} when not timed), verdict."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from benchmarks import harness

    worst_name, worst_rel = worst(quantities)
    check = {"authors_repo": authors_repo, "authors_commit": authors_commit, "tolerance": tolerance,
             "worst": {"quantity": worst_name, "max_rel_diff": worst_rel}, "quantities": quantities,
             "deviations": deviations, "speed": speed, "verdict": verdict, **(extra or {})}
    unit = (f"{speed['unit']} (purerl; the authors' code {speed['authors']:,.0f}, "
            f"ratio {speed['ratio_purerl_over_authors']})") if speed else None
    return harness.result(harness.SPEED, agent, what, algo=agent, config=config, compile_s=compile_s,
                          throughput=speed.get("purerl"), throughput_unit=unit, extra=check)


def write(res: dict) -> Path:
    """Write a `result` to benchmarks/results/reference/<agent>.json (atomically, via the harness)."""
    from benchmarks import harness

    return harness.write(res, RESULTS)
