"""The benchmark harness: XLA CPU flags, one timer, one result schema, one atomic writer, suites as data.

Import it before anything imports jax (every benchmark script does so first): it sets the XLA CPU flags of
the `purerl` commands (`purerl.cpu`), so a benchmark computes and times what the CLI does.

Result files (`benchmarks/results/<name>.json`, schema `SCHEMA`) hold, for every kind of result:

- `name`, `kind` (TRAIN: a training run with its final scores; SPEED: throughput of a piece of code;
  COMPARISON: A against B with the CI of the difference; "other": a converted old record that no table fits,
  its numbers under `legacy`), `what` (one line);
- what ran: `algo`, `env`, `config`; the budget: `budget` per seed with its `budget_unit`; `seeds` (their
  list; a converted old record that kept only their number has the number);
- times: `compile_s` (ahead-of-time `.lower().compile()`) apart from `run_s` (the compiled program run
  to completion); `throughput` `{"value", "unit"}`;
- `scores` (TRAIN): `purerl.stats.summarize` of the per-seed final returns (mean, bootstrap CI, IQM, per
  seed), `auc` of the training curve, `curve`; `comparison` (COMPARISON): `purerl.stats.compare`;
- `extra`: anything else the benchmark measured (several timed pieces of code: `extra["measurements"]`,
  one report row each; several runs in one file: `extra["runs"]`); `legacy`: the fields of a file recorded
  before this schema, as they were (`benchmarks.convert_legacy`);
- provenance: `machine`, `versions`, `command`, `git_commit`, `recorded_at`.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import resource
import shlex
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from purerl.cpu import with_cpu_flags

if "jax" not in sys.modules:  # XLA reads its flags once, when jax starts
    os.environ["XLA_FLAGS"] = with_cpu_flags(os.environ.get("XLA_FLAGS", ""))

import numpy as np  # noqa: E402

from purerl import stats  # noqa: E402

SCHEMA = "purerl-benchmark/1"
TRAIN, SPEED, COMPARISON = "train", "speed", "comparison"
RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parent.parent
CURVE_POINTS = 50  # a training curve is stored at about this many points


@dataclass(frozen=True)
class Timing:
    out: Any
    compile_s: float
    run_s: float  # the fastest of the timed runs
    run_s_all: list[float]


def timed(fn: Callable, *args, repeats: int = 1, warmup: bool = False) -> Timing:
    """Compile `jax.jit(fn)` ahead of time for `args`, then run it `repeats` times to completion.

    Compile time never leaks into run time; `warmup` runs the compiled program once, untimed, first (for
    programs short enough that first-call costs such as allocation would show)."""
    import jax

    program, compile_s = compile_timed(fn, *args)
    if warmup:
        jax.block_until_ready(program(*args))
    times, out = [], None
    for _ in range(repeats):
        out, seconds = run_timed(program, *args)
        times.append(seconds)
    return Timing(out, round(compile_s, 3), round(min(times), 4), [round(x, 4) for x in times])


def compile_timed(fn: Callable, *args, donate_argnums: tuple[int, ...] = ()) -> tuple[Callable, float]:
    """`jax.jit(fn)` lowered and compiled ahead of time for `args` -> (compiled program, compile seconds).

    The pieces of `timed`, for a benchmark that steps a (donated) state through the program call after call
    instead of repeating one call: compile with this, then time each call with `run_timed`."""
    import jax

    t = time.perf_counter()
    program = jax.jit(fn, donate_argnums=donate_argnums).lower(*args).compile()
    return program, time.perf_counter() - t


def run_timed(program: Callable, *args) -> tuple[Any, float]:
    """Run a compiled program to completion (`block_until_ready`) -> (its output, seconds)."""
    import jax

    t = time.perf_counter()
    out = jax.block_until_ready(program(*args))
    return out, time.perf_counter() - t


def git_commit() -> str:
    """The checkout's commit, with '+dirty' when tracked files differ from it ('unknown' outside git). The
    results directory does not count: a benchmark that saves its partial result as it goes has changed it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        outside_results = ["."] + ([f":!{RESULTS.relative_to(REPO)}"] if RESULTS.is_relative_to(REPO) else [])
        diff = ["git", "diff", "--quiet", "HEAD", "--", *outside_results]
        dirty = subprocess.run(diff, cwd=REPO).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def result(kind: str, name: str, what: str, *, algo: str | None = None, env: str | None = None,
           config: dict | None = None, budget: int | None = None, budget_unit: str | None = None,
           seeds: list[int] | None = None, compile_s: float | None = None, run_s: float | None = None,
           throughput: float | None = None, throughput_unit: str | None = None, per_seed=None,
           comparison: dict | None = None, extra: dict | None = None) -> dict:
    """A result in the harness schema (see the module docstring); `per_seed` final returns become `scores`."""
    from purerl.logging import machine, versions

    out = {"schema": SCHEMA, "name": name, "kind": kind, "what": what, "algo": algo, "env": env,
           "config": config, "budget": budget, "budget_unit": budget_unit, "seeds": seeds,
           "compile_s": compile_s, "run_s": run_s,
           "throughput": None if throughput is None else {"value": round(float(throughput), 1),
                                                          "unit": throughput_unit}}
    if per_seed is not None:
        out["scores"] = {"final_return": stats.summarize(per_seed)}
    if comparison is not None:
        out["comparison"] = comparison
    out["extra"] = extra or {}
    out.update(machine=machine(), versions=versions(), command=command_line(), git_commit=git_commit(),
               recorded_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    return out


def command_line() -> str:
    """How this process was started, as one would type it from the repository root."""
    module = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = f"python -m {module.name}" if module else shlex.quote(sys.argv[0])
    return " ".join([program, *map(shlex.quote, sys.argv[1:])])


def write(res: dict, out_dir: str | os.PathLike = RESULTS) -> Path:
    """Write `res` to `out_dir/<name>.json` atomically (a temporary file, then a rename). Only records in the
    schema are written (`result(...)` builds one), so no script can add a file the report cannot read."""
    from purerl.logging import write_json

    if res.get("schema") != SCHEMA:
        raise ValueError(f"result {res.get('name')!r} is not in the {SCHEMA} schema (build it with result())")

    os.makedirs(out_dir, exist_ok=True)
    path = Path(out_dir) / f"{res['name']}.json"
    write_json(str(path), res)
    return path


@dataclass(frozen=True)
class Entry:
    """One line of a suite: train `algo` with `config` (its Config's fields; the budget is among them) on
    seeds `seed .. seed+num_seeds-1`, or call `fn() -> result dict` for a measurement that is not a run."""

    name: str
    algo: str = ""
    config: dict = field(default_factory=dict)
    num_seeds: int = 1
    seed: int = 0
    what: str = ""
    fn: Callable[[], dict] | None = None
    chunk_iterations: int = 0  # iterations per jitted chunk (0: the runner's default, about 1/20 of the run)


def run_entry(entry: Entry, out_dir: str | os.PathLike = RESULTS) -> dict:
    """Run one suite entry, write its result file and print one line; returns the result."""
    res = entry.fn() if entry.fn is not None else train_entry(entry)
    path = write(res, out_dir)
    print(f"{entry.name}: {one_line(res)} -> {path}", flush=True)
    return res


def train_entry(entry: Entry) -> dict:
    """Train and evaluate through `purerl.runner.train_and_evaluate` (the CLI's numbers), timed by the
    runner (ahead-of-time compile of the chunks apart from their run), with the seed-mean training curve."""
    return trained(entry)[0]


def trained(entry: Entry, callback: Callable | None = None) -> tuple[dict, Any]:
    """`train_entry`'s result and the runner's `RunResult` (final state, metrics, evaluation returns), for a
    benchmark that measures more of the trained agents; `callback` is the runner's per-chunk callback."""
    from purerl import agents, runner

    module = agents.get(entry.algo)
    config = module.Config(**entry.config)
    agent = module.make_agent(config)
    load_before = os.getloadavg()[0]  # other jobs on the machine make timings upper bounds
    run = runner.train_and_evaluate(agent, entry.num_seeds, entry.seed, algo=entry.algo, callback=callback,
                                    chunk_iterations=entry.chunk_iterations)
    summary = run.summary
    unit = agent.budget_unit
    budget_key, rate_key = ("total_timesteps", "env_steps_per_s") if "total_timesteps" in summary else (
        "total_updates", "updates_per_s")
    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    extra = {"iterations": summary["iterations"], "eval_episodes": summary["eval_episodes"],
             "eval_s": summary["eval_s"], "peak_rss_mb": peak_rss_mb,
             "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    res = result(TRAIN, entry.name, entry.what or f"{entry.algo} on {summary['env']}", algo=entry.algo,
                 env=summary["env"], config=dataclasses.asdict(config), budget=summary[budget_key],
                 budget_unit=unit, seeds=summary["seeds"], compile_s=run.compile_s, run_s=run.run_s,
                 throughput=summary[rate_key], throughput_unit=f"{unit}/s (all seeds)",
                 per_seed=run.per_seed_returns, extra=extra)
    if "episode_return" in run.metrics:
        res["scores"]["auc"] = stats.summarize(stats.auc_per_seed(run.metrics["episode_return"]))
        res["curve"] = training_curve(run.metrics["episode_return"], agent.steps_per_iteration)
    return res, run


PROVENANCE = ("schema", "machine", "versions", "command", "git_commit", "recorded_at")


def several_runs(name: str, what: str, runs: list[dict], comparisons: list[dict], extra: dict | None = None,
                 **fields) -> dict:
    """One result file for a benchmark of several training runs compared with each other.

    The file is a COMPARISON headed by the first of `comparisons` (each `stats.compare(a, b)` with the
    `pair` "A vs B" and the `measure` it compares), or while no pair has run yet the first run's TRAIN
    result; `extra["runs"]` holds every run's TRAIN result (without the file's provenance) and
    `extra["comparisons"]` every comparison, each of which the report lists as a row of its own."""
    extra = {**(extra or {}), "runs": [{k: v for k, v in r.items() if k not in PROVENANCE} for r in runs],
             "comparisons": comparisons}
    if comparisons:
        return result(COMPARISON, name, what, comparison=comparisons[0], extra=extra, **fields)
    head = runs[0]
    res = result(TRAIN, name, what, algo=head["algo"], env=head["env"], config=head["config"],
                 budget=head["budget"], budget_unit=head["budget_unit"], seeds=head["seeds"],
                 compile_s=head["compile_s"], run_s=head["run_s"], extra=extra)
    res.update(throughput=head["throughput"], scores=head["scores"])
    return res


def compared(a: dict, b: dict, measure: str, score: str = "final_return") -> dict:
    """`stats.compare` of two TRAIN results' per-seed `scores[score]`, named by its pair and measure."""
    pair = f"{a['extra'].get('label', a['algo'])} vs {b['extra'].get('label', b['algo'])}"
    return {"pair": pair, "measure": measure,
            **stats.compare(a["scores"][score]["per_seed"], b["scores"][score]["per_seed"])}


def training_curve(episode_return: np.ndarray, steps_per_iteration: int) -> dict:
    """The seed-mean training return at about CURVE_POINTS iterations (None where no episode had ended)."""
    with warnings.catch_warnings():  # iterations where no seed finished an episode stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        curve = np.nanmean(np.asarray(episode_return, np.float64), axis=0)
    step = max(1, len(curve) // CURVE_POINTS)
    return {"budget": [int((i + 1) * steps_per_iteration) for i in range(0, len(curve), step)],
            "train_episode_return": [None if not np.isfinite(v) else round(float(v), 2)
                                     for v in curve[::step]]}


def one_line(res: dict) -> str:
    parts = []
    if res.get("compile_s") is not None:
        parts.append(f"compile {res['compile_s']:.1f}s")
    if res.get("run_s") is not None:
        parts.append(f"run {res['run_s']:.1f}s")
    if res.get("throughput"):
        parts.append(f"{res['throughput']['value']:,.0f} {res['throughput']['unit']}")
    final = res.get("scores", {}).get("final_return")
    if final:
        parts.append(f"final return {final['mean']:.1f} [{final['ci'][0]:.1f}, {final['ci'][1]:.1f}]")
    if res.get("comparison"):
        c = res["comparison"]
        low, high = c["difference_ci"]
        parts.append(f"A-B {c['difference']:+.3g} [{low:+.3g}, {high:+.3g}] {c['verdict']}")
    return ", ".join(parts)
