"""Hyperparameter sweeps: every configuration of a grid, times every seed, in one program.

`purerl train ppo --sweep lr=1e-4,3e-4,1e-3 --sweep ent_coef=0,0.01 --num-seeds 8` trains the 6
configurations of the product of the values, each on the 8 seeds, as one jit-compiled program: the sweep
compiles once instead of once per configuration, and every kernel runs over configurations and seeds at once.

How: the agent is built *inside* the program from a config whose swept fields are traced scalars, and that
build is `jax.vmap`ped over the grid's columns of values (`swept_agent`). The result is an ordinary `Agent`,
so the runner trains it like any other: seeds vmapped around it, jitted chunks, worker processes, devices.

What can be swept: a numeric (int or float) config field that the agent uses only as an array value (learning
rates, coefficients, discount factors). A field that sets a shape, a loop count, the number of iterations
or a Python branch cannot take a traced value; `swept_agent` finds such a field by tracing the agent with
that field traced (`jax.eval_shape`, nothing is compiled) and refuses it by name. Every configuration is also
built once with its concrete values, so the agent's own checks (`lr must be positive`, ...) see them.

Seed s of configuration c starts from the key of its separate run and computes the same thing, batched over
one more axis. Like a seed trained alone instead of inside a batch (docs/running.md), the wider program rounds
differently in the last bit: it agrees with the separate run to float rounding at first, then drifts. Inside
sweeps it is reproducible bit for bit: a configuration gives the same numbers in any sweep of 2 or more
configurations that holds it, whatever the other configurations and fields (tests/test_config_sweep.py).

Outputs under `OUT`: one run directory per configuration, `OUT/<label>/` (`lr=0.0003,ent_coef=0.01`) with the
`config.json`, `metrics.csv` and `summary.json` of a run, and `OUT/sweep.json` listing the configurations.
A sweep keeps no checkpoints (it cannot be resumed); `compile_s` and `run_s` in each summary are the whole
sweep's.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import jax
import numpy as np
import tyro

from purerl import runner
from purerl.agent import Agent
from purerl.logging import machine, versions, write_json, write_metrics_csv

Value = int | float


@dataclass(frozen=True)
class SweepOptions:
    sweep: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """FIELD=V1,V2,...: train every value of a numeric config field in one program with the seeds (repeat
    the flag to sweep the product of several fields; a.b names a field of a nested config). Writes
    OUT/<configuration>/ (config.json, metrics.csv, summary.json) and OUT/sweep.json; no checkpoints"""


@dataclass(frozen=True)
class Grid:
    """The swept fields with their values; the configurations are the product, the last field fastest."""

    fields: dict[str, tuple[Value, ...]]

    @property
    def points(self) -> list[dict[str, Value]]:
        combinations = itertools.product(*self.fields.values())
        return [dict(zip(self.fields, values, strict=True)) for values in combinations]


def label(point: dict[str, Value]) -> str:
    """The name of a configuration, also its directory: `lr=0.0003,ent_coef=0.01`."""
    return ",".join(f"{name}={value!r}" for name, value in point.items())


def parse_grid(specs: Sequence[str], config: Any) -> Grid:
    """The grid of `--sweep FIELD=V1,V2,...` flags over the fields of `config` (ValueError on bad input)."""
    fields: dict[str, tuple[Value, ...]] = {}
    for spec in specs:
        name, equals, text = (part.strip() for part in spec.partition("="))
        if not equals or not name or not text:
            raise ValueError(f"--sweep {spec!r}: expected FIELD=V1,V2,... (e.g. --sweep lr=1e-4,3e-4)")
        if name in fields:
            raise ValueError(f"--sweep {name} is given twice: list all its values in one flag")
        kind = _field_type(config, name)
        if kind not in (int, float):  # bool is not int here: type hints name the declared type
            shown = getattr(kind, "__name__", str(kind))
            raise ValueError(f"--sweep {name}: only int and float config fields can be swept "
                             f"({name} is {shown})")
        values = tuple(_parse_value(name, kind, item.strip()) for item in text.split(","))
        if len(set(values)) < len(values):
            raise ValueError(f"--sweep {name}: a value is listed twice in {text!r}")
        fields[name] = values
    return Grid(fields)


def _field_type(config: Any, dotted: str) -> Any:
    obj = config
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else []
        if part not in names:
            where = ".".join(parts[:depth]) or type(config).__module__.rsplit(".", 1)[-1]
            raise ValueError(f"--sweep {dotted}: {where} has no config field {part!r} "
                             f"(fields: {', '.join(names)})")
        kind = typing.get_type_hints(type(obj))[part]
        obj = getattr(obj, part)
    return kind


def _parse_value(name: str, kind: type, text: str) -> Value:
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"--sweep {name}: {text!r} is not a{'n int' if kind is int else ' float'}") from None
    if not np.isfinite(value):
        raise ValueError(f"--sweep {name}: {text!r} is not a finite number")
    return value


def with_values(config: Any, point: dict[str, Any]) -> Any:
    """`config` with the (dotted) fields of `point` replaced."""
    for name, value in point.items():
        config = _replace(config, name.split("."), value)
    return config


def _replace(obj: Any, path: list[str], value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: value})
    return dataclasses.replace(obj, **{path[0]: _replace(getattr(obj, path[0]), path[1:], value)})


@dataclass(frozen=True)
class Sweep:
    """A grid made one agent: `agent` trains every configuration of `points` (in that order) per seed."""

    agent: Agent
    grid: Grid
    points: list[dict[str, Value]]
    configs: list[Any]  # the concrete config of each configuration
    metric_names: list[str]  # the metrics of one configuration's update


def metric_name(name: str, point_label: str) -> str:
    """The swept agent's name for metric `name` of one configuration, e.g. `episode_return [lr=0.001]`
    (a non-finite metric is then reported with its configuration)."""
    return f"{name} [{point_label}]"


def swept_agent(make_agent: Callable[[Any], Agent], config: Any, grid: Grid) -> Sweep:
    """One agent that runs every configuration of `grid` (the grid's fields of `config` replaced) in one
    program: state, metrics and evaluation carry the configurations inside each seed.

    Raises ValueError, before anything compiles, when a configuration fails the agent's checks or when a
    swept field cannot take a traced value (it sets shapes, loop counts or Python control flow)."""
    points = grid.points
    configs = [with_values(config, point) for point in points]
    agents = [make_agent(c) for c in configs]  # the agent's own checks, on concrete values
    first = agents[0]
    for point, agent in zip(points, agents, strict=True):
        if (agent.num_iterations, agent.steps_per_iteration) != \
                (first.num_iterations, first.steps_per_iteration):
            changed = [name for name in point if point[name] != points[0][name]]
            raise ValueError(f"--sweep {', '.join(changed)}: changes the number of iterations or their size "
                             "(every configuration of a sweep runs the same iterations); use separate runs")
    columns = {name: np.asarray([point[name] for point in points], np.float32 if kind is float else np.int32)
               for name, kind in ((name, type(values[0])) for name, values in grid.fields.items())}
    metric_names = _check_traceable(make_agent, config, columns, first, points[0])
    labels = [label(point) for point in points]

    def build(values):  # one configuration, its swept fields traced scalars
        return make_agent(with_values(config, values))

    def init(key):  # every configuration starts from the seed's key, as its separate run does
        return jax.vmap(lambda values: build(values).init(key))(columns)

    def update(state):
        state, metrics = jax.vmap(lambda values, s: build(values).update(s))(columns, state)
        # the agent contract's metrics are scalars: one per metric and configuration
        return state, {metric_name(name, point_label): value[c] for name, value in metrics.items()
                       for c, point_label in enumerate(labels)}

    def evaluate(state, key):
        returns = jax.vmap(lambda values, s: build(values).evaluate(s, key))(columns, state)
        # the runner reads one vector of episode returns per seed: the configurations' episodes back to back
        return returns.reshape(-1)

    agent = Agent(init, update, evaluate, first.num_iterations, first.steps_per_iteration, config,
                  first.budget_unit)
    return Sweep(agent, grid, points, configs, metric_names)


def _check_traceable(make_agent, config, columns: dict[str, np.ndarray], first: Agent,
                     first_point: dict[str, Value]) -> list[str]:
    """Trace init, update and evaluate of the configurations with the swept fields as traced scalars
    (shapes only, nothing compiles); refuse the first field that cannot be traced, by name. Returns the
    metric names."""
    try:
        return _trace(make_agent, config, columns, first)
    except _TRACING_ERRORS:
        pass
    for name in columns:  # which field is it? trace each alone, the others at their first value
        others = {k: v for k, v in first_point.items() if k != name}
        try:
            _trace(make_agent, with_values(config, others), {name: columns[name]}, first)
        except _TRACING_ERRORS as err:
            reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0]}" if str(err).strip() else \
                type(err).__name__
            raise ValueError(
                f"--sweep {name}: the agent uses {name} as a Python value when it is built (an array shape, "
                f"a loop count or a branch), so it cannot vary inside one program; use separate runs "
                f"({reason})"
            ) from err
    raise ValueError(f"--sweep {', '.join(columns)}: these fields cannot vary together inside one program; "
                     "use separate runs")


# What tracing a config value that must be concrete raises: jax's concretization errors are TypeErrors (bool,
# int or array conversion of a tracer); traced slice bounds raise IndexError.
_TRACING_ERRORS = (TypeError, IndexError)


def _trace(make_agent, config, columns, first: Agent) -> list[str]:
    def build(values):
        return make_agent(with_values(config, values))

    key = jax.ShapeDtypeStruct((2,), np.uint32)
    state = jax.eval_shape(lambda k: jax.vmap(lambda v: build(v).init(k))(columns), key)
    _, metrics = jax.eval_shape(lambda s: jax.vmap(lambda v, x: build(v).update(x))(columns, s), state)
    jax.eval_shape(lambda s, k: jax.vmap(lambda v, x: build(v).evaluate(x, k))(columns, s), state, key)
    one = jax.eval_shape(first.init, key)
    per_configuration = jax.tree.leaves(jax.tree.map(lambda x: (x.shape[1:], x.dtype), state))
    if jax.tree.structure(one) != jax.tree.structure(state) or \
            jax.tree.leaves(jax.tree.map(lambda x: (x.shape, x.dtype), one)) != per_configuration:
        raise TypeError("the traced train state differs from a configuration's own")
    return list(metrics)


def check_options(options: runner.RunOptions) -> None:
    """Refuse run options a sweep cannot honour (before anything compiles)."""
    if options.checkpoint_every:
        raise ValueError("--checkpoint-every: a sweep keeps no checkpoints (train a chosen configuration "
                         "as a run of its own to checkpoint and resume it)")


@dataclass
class SweepResult:
    runs: list[runner.RunResult]  # one per configuration, in the order of `points`
    points: list[dict[str, Value]]
    summary: dict[str, Any]  # what sweep.json holds


def run(algo: str, sweep: Sweep, options: runner.RunOptions,
        callback: runner.ChunkCallback | None = None) -> SweepResult:
    """Train every configuration of `sweep` on `options.seeds` in one program; write the outputs to
    `options.out` if given (one run directory per configuration and sweep.json)."""
    out = options.out
    writer = out and jax.process_index() == 0
    if writer:
        runner.check_out_dir(out, options.overwrite)
        if os.path.isdir(out) and options.overwrite:
            shutil.rmtree(out)
        for point, config in zip(sweep.points, sweep.configs, strict=True):
            os.makedirs(os.path.join(out, label(point)), exist_ok=True)
            write_json(os.path.join(out, label(point), "config.json"), {
                "algo": algo, "config": dataclasses.asdict(config),
                "run": dataclasses.asdict(dataclasses.replace(options, out=os.path.join(out, label(point)))),
                "sweep": {"label": label(point), "values": point, "fields": list(sweep.grid.fields)},
            })
    # the runner trains the swept agent as one run without outputs of its own
    whole = runner.run(algo, sweep.agent, dataclasses.replace(options, out=None), callback=callback)
    num_seeds, count = len(options.seeds), len(sweep.points)
    returns = whole.returns.reshape(num_seeds, count, -1)
    states = jax.device_get(whole.state)  # sliced per configuration on the host: no program per slice
    runs = []
    for c, point in enumerate(sweep.points):
        metrics = {name: whole.metrics[metric_name(name, label(point))] for name in sweep.metric_names}
        per_seed = returns[:, c].mean(axis=1)
        summary = dict(
            whole.summary,
            final_return_mean=float(per_seed.mean()), final_return_min=float(per_seed.min()),
            final_return_max=float(per_seed.max()), final_return_per_seed=[float(x) for x in per_seed],
            eval_episodes=int(returns.shape[2]),
            sweep={"label": label(point), "values": point, "configurations": count,
                   "shared": "compile_s, run_s and eval_s are the whole sweep's: one program for every "
                             "configuration"},
        )
        state = jax.tree.map(lambda x, c=c: x[:, c], states)
        runs.append(runner.RunResult(state, metrics, returns[:, c], summary))
    summary = {
        "status": "completed", "algo": algo, "env": whole.summary["env"], "fields": sweep.grid.fields,
        "seeds": options.seeds, "configurations": [
            {"label": label(point), "dir": label(point), "values": point,
             **{k: r.summary[k] for k in ("final_return_mean", "final_return_min", "final_return_max")}}
            for point, r in zip(sweep.points, runs, strict=True)],
        **{k: whole.summary[k] for k in ("iterations", "budget_unit", "total_timesteps", "total_updates",
                                          "compile_s", "run_s", "eval_s") if k in whole.summary},
        "versions": versions(), "machine": machine(),
    }
    if writer:
        for point, r in zip(sweep.points, runs, strict=True):
            directory = os.path.join(out, label(point))
            write_metrics_csv(os.path.join(directory, "metrics.csv"), r.metrics, options.seeds,
                              sweep.agent.steps_per_iteration, sweep.agent.budget_unit)
            write_json(os.path.join(directory, "summary.json"), r.summary)
        write_json(os.path.join(out, "sweep.json"), summary)
    return SweepResult(runs, sweep.points, summary)


def print_summary(summary: dict[str, Any], out: str | None) -> None:
    """What `purerl train ... --sweep` prints: each configuration's final return over the seeds."""
    budget = summary.get("total_timesteps", summary.get("total_updates"))
    configurations = summary["configurations"]
    width = max(len(c["label"]) for c in configurations)
    lines = [f"{summary['algo']}{' on ' + summary['env'] if summary['env'] else ''}: {len(configurations)} "
             f"configuration(s) x {len(summary['seeds'])} seed(s) x {budget} {summary['budget_unit']}, "
             "one program",
             "  final return (mean over seeds of the per-seed mean over evaluation episodes):"]
    lines += [f"    {c['label']:<{width}}  mean {c['final_return_mean']:.1f}  "
              f"min {c['final_return_min']:.1f}  max {c['final_return_max']:.1f}" for c in configurations]
    lines.append(f"  compile {summary['compile_s']:.1f} s, run {summary['run_s']:.1f} s")
    if out:
        lines.append(f"  outputs in {out} (a run directory per configuration, sweep.json)")
    print("\n".join(lines))
