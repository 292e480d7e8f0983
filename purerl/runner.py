"""Run an agent over many seeds: jitted chunks, progress, checkpoints, resume, run outputs.

The whole seed batch is one program (`purerl.sweep.over_seeds`); `update` is scanned in chunks of
iterations so that progress, metrics and checkpoints happen on the host between chunks. Chunk boundaries
depend only on the iteration counter, so a resumed run executes exactly the same compiled chunks as an
uninterrupted one and ends bit for bit identical.

Outputs in `--out DIR`: `config.json`, `metrics.csv`, `summary.json` and `checkpoints/`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from purerl import checkpoint, compile_once, sweep
from purerl.agent import ENV_STEPS, Agent
from purerl.evaluation import runs_on_host
from purerl.logging import (
    EVAL_RETURN,
    LoggerName,
    Loggers,
    Progress,
    check_loggers,
    machine,
    versions,
    write_json,
    write_metrics_csv,
)
from purerl.stats import bootstrap_ci

EVAL_SALT = 0x5EED  # evaluation keys are fold_in(PRNGKey(seed), EVAL_SALT): disjoint from training


@dataclass(frozen=True)
class RunOptions:
    num_seeds: int = 1
    """seeds trained in one vmapped program: seed, seed+1, ..., seed+num_seeds-1"""
    seed: int = 0
    """first seed"""
    num_devices: int = 1
    """devices to shard the seed axis over (must divide num_seeds)"""
    out: str | None = None
    """output directory (config.json, metrics.csv, summary.json, checkpoints/); refused if non-empty"""
    overwrite: bool = False
    """allow writing into a non-empty --out directory (its old contents are removed)"""
    checkpoint_every: int = 0
    """save an orbax checkpoint every N iterations (0: only at the end of the run)"""
    chunk_iterations: int = 0
    """iterations per jitted chunk between progress updates (0: about 1/20 of the run)"""
    logger: Annotated[tuple[LoggerName, ...], tyro.conf.UseAppendAction] = ("csv",)
    """where metrics go, besides metrics.csv (always written): tensorboard (DIR/tensorboard, needs --out),
    wandb (W&B, files in DIR/wandb; pip install 'purerl[wandb]'); repeat the flag for several"""
    eval_every: int = 0
    """evaluate the current policy every N iterations on the final evaluation's fixed keys and log eval/return
    with a 95% CI over seeds (0: only the final evaluation); changes no training number"""
    progress: bool = True
    """show a live progress display"""
    num_processes: int = 1
    """processes of a multi-host run (jax.distributed); the seed axis is sharded over all their devices"""
    process_id: int = 0
    """this process's index in a multi-host run (0 writes the outputs)"""
    coordinator: str | None = None
    """HOST:PORT of process 0's coordinator in a multi-host run (default: cluster auto-detection)"""
    distributed_timeout: int = 30
    """seconds after which a silent (dead) process makes the others fail instead of hanging"""
    workers: int = 0
    """local worker processes that split the seeds (CPU): 0 = one per CPU core on a CPU-only machine
    (largest divisor of num_seeds not above the core count; env PURERL_WORKERS overrides), 1 = this process"""
    cpu_threads: int = 0
    """threads that XLA's CPU client runs a program on: 0 = 1 in each worker process and one per core in a
    single process; 1 is faster for programs of many tiny operations (PPO on CartPole), more for big ones
    (brax physics)"""

    @property
    def seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.num_seeds))


def check_out_dir(out: str | None, overwrite: bool) -> None:
    """Refuse a non-empty output directory (unless overwrite) before anything is computed."""
    if out and os.path.isdir(out) and os.listdir(out) and not overwrite:
        raise ValueError(f"output directory {out!r} exists and is not empty; pass --overwrite or choose "
                         "another")
    if out and os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"output path {out!r} exists and is not a directory")


def chunk_size(num_iterations: int, options: RunOptions) -> int:
    target = options.chunk_iterations or _default_chunk(num_iterations)
    every = math.gcd(options.checkpoint_every, options.eval_every)  # gcd(n, 0) = n
    if every:
        # Chunks must end on every checkpoint and evaluation iteration: take the largest divisor of both.
        target = max(d for d in range(1, min(target, every) + 1) if every % d == 0)
    return min(target, num_iterations)


def check_options(options: RunOptions, out: str | None = None) -> None:
    """Raise a ValueError for run options that cannot work, before anything is compiled or written; `out`
    replaces `options.out` (a resumed run writes into its own directory)."""
    if options.cpu_threads < 0:
        raise ValueError(f"cpu_threads must be >= 0 (0: automatic), got {options.cpu_threads}")
    if options.eval_every < 0:
        raise ValueError(f"eval_every must be >= 0 (0: only the final evaluation), got {options.eval_every}")
    check_loggers(options.logger, out or options.out)


def _default_chunk(num_iterations: int) -> int:
    """About 1/20 of the run, preferring a divisor of it between 1/40 and 1/10: then every chunk has the
    same length and only one chunk program is compiled (a remainder chunk costs a second compile)."""
    target = max(1, math.ceil(num_iterations / 20))
    divisors = [d for d in range(math.ceil(num_iterations / 40), num_iterations // 10 + 1)
                if num_iterations % d == 0]
    return min(divisors, key=lambda d: abs(d - target)) if divisors else target


@dataclass
class RunResult:
    state: Any
    metrics: dict[str, np.ndarray]  # name -> (num_seeds, num_iterations)
    returns: np.ndarray  # (num_seeds, eval_episodes) final evaluation
    summary: dict[str, Any]

    @property
    def per_seed_returns(self) -> np.ndarray:
        """(num_seeds,) final return of each seed: the mean over its evaluation episodes."""
        return self.returns.mean(axis=1)

    @property
    def compile_s(self) -> float:
        return self.summary["compile_s"]

    @property
    def run_s(self) -> float:
        return self.summary["run_s"]


ChunkCallback = Callable[[int, dict[str, np.ndarray]], None]
"""`callback(budget_done, chunk_metrics)`, called on the host after each chunk: `budget_done` is the budget
spent so far per seed (env steps, or updates for offline agents; `agent.budget_unit`), `chunk_metrics` maps
each metric to its (num_seeds, chunk_iterations) values of that chunk."""


def run(
    algo: str,
    agent: Agent,
    options: RunOptions,
    resume_dir: str | None = None,
    callback: ChunkCallback | None = None,
) -> RunResult:
    """Train `agent` on `options.seeds`; write outputs to `options.out` (or `resume_dir`) if given.

    `callback` (if given) sees each chunk's metrics between chunks; it runs outside the compiled programs,
    so it changes no number of the run."""
    seeds = options.seeds
    sweep.check_devices(len(seeds), options.num_devices)
    out = resume_dir or options.out
    check_options(options, out)
    if resume_dir is None and jax.process_index() == 0:
        check_out_dir(out, options.overwrite)
    # Each process trains its own share of the seeds in a program of its own (no collective inside it): the
    # seeds are independent, and a process's program is then exactly a one-process run of those seeds.
    # Processes meet only between chunks, to gather metrics (process 0 writes) and to checkpoint.
    num_devices = options.num_devices // jax.process_count()  # this process's devices
    my_seeds = sweep.process_seeds(seeds)
    total = agent.num_iterations
    chunk = chunk_size(total, options)
    ckpt_dir = os.path.join(out, "checkpoints") if out else None

    writer = jax.process_index() == 0  # in multi-host runs only process 0 writes files
    run_config = {"algo": algo, "config": dataclasses.asdict(agent.config),
                  "run": dataclasses.asdict(options)}  # config.json, and the W&B run's config
    iteration, host_metrics = 0, {}
    if resume_dir is not None:
        # restore straight into the seed sharding over every process's devices (each reads its own rows)
        sharding = sweep.seed_sharding(options.num_devices)
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct((len(seeds),) + x.shape[1:], x.dtype,
                                                               sharding=sharding),
                                jax.eval_shape(jax.vmap(agent.init), sweep.seed_keys(my_seeds)))
        iteration, state, saved = checkpoint.restore(ckpt_dir, abstract)
        state = sweep.place(sweep.to_local(state, num_devices), num_devices)
        if num_devices == 1:  # the uninterrupted run's programs, not ones of its own
            state = sweep.uncommitted(state)
        host_metrics = {k: [v] for k, v in saved.items()}
    else:
        if out and writer:
            if os.path.isdir(out) and options.overwrite:
                shutil.rmtree(out)
            os.makedirs(out, exist_ok=True)
            write_json(os.path.join(out, "config.json"), run_config)
        state = sweep.init_over_seeds(agent.init, sweep.seed_keys(my_seeds), num_devices,
                                      compiling=compile_once.process_0_first("init"))

    state_names = _float_leaf_names(state)

    def scan_chunk(length):
        def body(s):
            s, metrics = jax.lax.scan(lambda c, _: agent.update(c), s, None, length=length)
            return s, metrics, _finite_float_leaves(s)

        return jax.jit(sweep.over_seeds(body, num_devices), donate_argnums=0)

    compiled: dict[int, Any] = {}
    compile_s = 0.0

    def get_compiled(length):
        nonlocal compile_s
        if length not in compiled:
            t0 = time.perf_counter()
            lowered = scan_chunk(length).lower(state)  # every worker traces while process 0 compiles
            with compile_once.process_0_first(f"chunk_{length}"):
                compiled[length] = lowered.compile()
            compile_s += time.perf_counter() - t0
        return compiled[length]

    # Periodic and final evaluations share the fixed keys fold_in(PRNGKey(seed), EVAL_SALT): evaluation points
    # then differ only by the policy, and the one at the last iteration is the final evaluation.
    eval_keys = jax.vmap(lambda k: jax.random.fold_in(k, EVAL_SALT))(sweep.seed_keys(my_seeds))
    eval_keys = sweep.place(eval_keys, num_devices)
    evaluate = None
    eval_s = 0.0

    def evaluate_returns():
        """(num_seeds, eval_episodes) returns of the current policy, on the host of every process."""
        nonlocal evaluate, eval_s
        t0 = time.perf_counter()
        if runs_on_host(agent.evaluate):  # a gymnasium env: stepped from Python, nothing to compile
            returns = np.asarray(sweep.to_host(agent.evaluate(state, eval_keys)))
            eval_s += time.perf_counter() - t0
            return returns
        if evaluate is None:
            lowered = jax.jit(sweep.over_seeds(agent.evaluate, num_devices)).lower(state, eval_keys)
            with compile_once.process_0_first("evaluate"):
                evaluate = lowered.compile()
        returns = np.asarray(sweep.to_host(evaluate(state, eval_keys)))
        eval_s += time.perf_counter() - t0
        return returns

    start_iteration = iteration
    resumed_at = None if resume_dir is None else iteration * agent.steps_per_iteration
    loggers = Loggers(options.logger if writer else (), out, os.path.basename(os.path.abspath(out or algo)),
                      run_config, resumed_at)
    if resume_dir is not None:  # a logger that starts empty on resume gets the series up to the checkpoint
        history = _concat(host_metrics)
        evaluated = _evaluations(history[EVAL_RETURN], 1, "budget") if EVAL_RETURN in history else []
        loggers.log_history(history, seeds, agent.steps_per_iteration,
                            {e["iteration"]: (e["return_mean"], *e["return_ci"]) for e in evaluated})
    progress = Progress(total, options.progress and writer, label=f"{algo} {len(seeds)} seed(s)")
    progress.update(iteration, {})
    last_eval = None  # (mean, ci_low, ci_high) of the latest evaluation, for the progress line
    run_s = 0.0
    try:
        while iteration < total:
            length = min(chunk - iteration % chunk, total - iteration)
            fn = get_compiled(length)
            t0 = time.perf_counter()
            state, metrics, finite = fn(state)
            # waits for the chunk; (num_seeds, length) per metric, (num_seeds, leaves) finite flags
            metrics, finite = sweep.to_host((metrics, finite))
            run_s += time.perf_counter() - t0
            first = iteration + 1
            iteration += length
            problem = _non_finite(metrics, np.asarray(finite), state_names, first, seeds)
            eval_ci = None
            if options.eval_every:  # a NaN-padded series, so that it lines up with the others (and resumes)
                evaluated = np.full((len(seeds), length), np.nan)
                if not problem and iteration % options.eval_every == 0:
                    evaluated[:, -1] = evaluate_returns().mean(axis=1)
                    last_eval = eval_ci = _mean_ci(evaluated[:, -1])
                metrics = {**metrics, EVAL_RETURN: evaluated}
            for name, value in metrics.items():
                host_metrics.setdefault(name, []).append(np.asarray(value))
            loggers.log_chunk(metrics, seeds, first, agent.steps_per_iteration, eval_ci)
            progress.update(iteration, _progress_stats(metrics, iteration * agent.steps_per_iteration,
                                                       agent.budget_unit, last_eval))
            if callback is not None:
                callback(iteration * agent.steps_per_iteration, metrics)
            # nothing of a non-finite chunk is checkpointed: the last checkpoint stays the last finite one
            if problem:
                progress.close()
                _stop_diverged(problem, out if writer else None, ckpt_dir, algo, agent, options, host_metrics)
            at_checkpoint = options.checkpoint_every and iteration % options.checkpoint_every == 0
            if ckpt_dir and (at_checkpoint or iteration == total):
                checkpoint.save(ckpt_dir, iteration, sweep.to_global(state, options.num_devices),
                                _concat(host_metrics))
    finally:
        progress.close()
        loggers.close()

    metrics = _concat(host_metrics)
    returns = evaluate_returns()

    per_seed = returns.mean(axis=1)
    executed = total - start_iteration
    steps_per_seed = total * agent.steps_per_iteration
    env_name = getattr(agent.config, "env", getattr(agent.config, "dataset", ""))
    summary = {
        "status": "completed",
        "algo": algo,
        "env": env_name,
        "num_seeds": len(seeds),
        "seeds": seeds,
        "num_devices": options.num_devices,
        "num_processes": jax.process_count(),
        "iterations": total,
        "budget_unit": agent.budget_unit,
        **_budget(agent.budget_unit, steps_per_seed,
                  len(seeds) * executed * agent.steps_per_iteration / max(run_s, 1e-9)),
        "final_return_mean": float(per_seed.mean()),
        "final_return_min": float(per_seed.min()),
        "final_return_max": float(per_seed.max()),
        "final_return_per_seed": [float(x) for x in per_seed],
        "eval_episodes": int(returns.shape[1]),
        # a gymnasium evaluation env adds its name and the D4RL-normalised scores of the final returns
        **(agent.evaluate.scores(per_seed) if runs_on_host(agent.evaluate) else {}),
        "compile_s": round(compile_s, 3),
        "run_s": round(run_s, 3),
        "eval_s": round(eval_s, 3),
        **({"evaluations": _evaluations(metrics[EVAL_RETURN], agent.steps_per_iteration, agent.budget_unit)}
           if EVAL_RETURN in metrics else {}),
        "resumed_from": start_iteration if resume_dir is not None else None,
        "versions": versions(),
        "machine": machine(),
    }
    if out and writer:
        write_metrics_csv(os.path.join(out, "metrics.csv"), metrics, seeds, agent.steps_per_iteration,
                          agent.budget_unit)
        write_json(os.path.join(out, "summary.json"), summary)
    return RunResult(state, metrics, returns, summary)


def train_and_evaluate(
    agent: Agent,
    num_seeds: int = 1,
    seed: int = 0,
    *,
    algo: str | None = None,
    callback: ChunkCallback | None = None,
    chunk_iterations: int = 0,
    num_devices: int = 1,
    progress: bool = False,
) -> RunResult:
    """Train `agent` on seeds `seed .. seed+num_seeds-1` and evaluate it: what `purerl train` computes.

    The one "train, then evaluate" of the package: training runs through the runner's jitted chunks, the
    final evaluation uses the runner's keys (`fold_in(PRNGKey(seed), EVAL_SALT)`), so a seed's final return
    is the CLI's to the bit. The result holds the final state, the metrics (num_seeds, num_iterations), the
    returns (num_seeds, eval_episodes), `per_seed_returns`, and `compile_s` / `run_s` (ahead-of-time
    compile, then the chunks' execution) with the rest of the CLI's summary. No files are written."""
    options = RunOptions(num_seeds=num_seeds, seed=seed, num_devices=num_devices,
                         chunk_iterations=chunk_iterations, progress=progress)
    return run(algo or _algo_name(agent), agent, options, callback=callback)


def _algo_name(agent: Agent) -> str:
    """'ppo' for an agent built by purerl.agents.ppo (its Config's module)."""
    return type(agent.config).__module__.rsplit(".", 1)[-1]


class TrainingDiverged(RuntimeError):
    """A loss, metric or part of the train state became non-finite; the run stopped at the end of that
    chunk."""


def _float_leaf_names(state) -> list[str]:
    """Names ('params.params.actor.Dense_0.kernel', ...) of the float leaves of the state, in tree order."""
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    return [jax.tree_util.keystr(path, simple=True, separator=".") for path, x in leaves
            if np.issubdtype(x.dtype, np.inexact)]


def _finite_float_leaves(state) -> jax.Array:
    """One flag per float leaf of the state: are all its values finite? (In the jitted chunk, per seed.)"""
    flags = [jnp.isfinite(x).all() for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.stack(flags) if flags else jnp.ones((0,), bool)


def _non_finite(metrics: dict[str, np.ndarray], finite: np.ndarray, state_names: list[str], first: int,
                seeds: list[int]) -> str | None:
    """What became non-finite in the chunk that began at iteration `first`, or None.

    A metric that is +-inf names its first iteration. NaN is not an error in a metric: agents report NaN for
    "no value this iteration" (no episode ended, learning not started). A NaN loss that is applied reaches the
    parameters, and any non-finite float in the state (parameters, optimiser, env, buffers) is caught at the
    end of its chunk."""
    bad_metrics = []
    for name, values in metrics.items():
        values = np.asarray(values)
        if np.issubdtype(values.dtype, np.floating) and np.isinf(values).any():
            hits = np.argwhere(np.isinf(values))  # (seed row, iteration column)
            row, col = hits[np.argmin(hits[:, 1])]
            bad_metrics.append((col, row, name))
    if bad_metrics:
        col, row, name = min(bad_metrics)
        return f"non-finite {name} at iteration {first + col} (seed {seeds[row]})"
    if finite.size and not finite.all():
        row, leaf = np.argwhere(~finite)[0]
        others = int((~finite[row]).sum()) - 1  # by the chunk's end a NaN has often spread to other leaves
        length = next(iter(metrics.values())).shape[1] if metrics else 1
        last = first + length - 1
        return (f"non-finite {state_names[leaf]}{f' (and {others} more state arrays)' if others else ''} at "
                f"iteration {last} (seed {seeds[row]}; found at the end of the chunk of iterations "
                f"{first}-{last})")
    return None


def _stop_diverged(problem, out, ckpt_dir, algo, agent, options, host_metrics) -> None:
    """Record the divergence (metrics so far, summary.json with the status) and raise TrainingDiverged."""
    last = checkpoint.latest(ckpt_dir) if ckpt_dir else None
    if last is not None:
        hint = (f"; the last finite checkpoint (iteration {last}) is kept: change a flag and continue with "
                f"`purerl train --resume {out or os.path.dirname(ckpt_dir)} --FLAG VALUE`")
    else:
        hint = "; no checkpoint was saved before it (--checkpoint-every N keeps one to resume from)"
    if out:
        write_metrics_csv(os.path.join(out, "metrics.csv"), _concat(host_metrics), options.seeds,
                          agent.steps_per_iteration, agent.budget_unit)
        write_json(os.path.join(out, "summary.json"), {
            "status": "non-finite", "error": problem, "algo": algo, "num_seeds": options.num_seeds,
            "seeds": options.seeds, "last_finite_checkpoint": last, "versions": versions(),
            "machine": machine(),
        })
    sweep.wait_for_all_processes("diverged")  # process 0 has written its files before any process exits
    raise TrainingDiverged(problem + hint)


def _concat(host_metrics: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate(v, axis=1) for k, v in host_metrics.items()}


def _budget(unit: str, per_seed: int, per_second: float) -> dict[str, float]:
    """The budget and throughput under their unit's names: `total_timesteps` and `env_steps_per_s` for env
    steps, `total_updates` and `updates_per_s` for gradient updates on a dataset."""
    if unit == ENV_STEPS:
        return {"total_timesteps": per_seed, "env_steps_per_s": round(per_second, 1)}
    return {"total_updates": per_seed, "updates_per_s": round(per_second, 1)}


def _progress_stats(metrics: dict[str, np.ndarray], done: int, unit: str,
                    last_eval: tuple[float, float, float] | None = None) -> dict[str, float | str]:
    stats: dict[str, float | str] = {unit.replace(" ", "_"): float(done)}
    if "episode_return" in metrics:
        values = np.asarray(metrics["episode_return"], dtype=np.float64)
        if np.isfinite(values).any():
            stats["return"] = float(np.nanmean(values[:, -max(1, values.shape[1] // 4):]))
    if last_eval is not None:
        stats["eval"] = "{:.4g} [{:.4g}, {:.4g}]".format(*last_eval)
    return stats


def _mean_ci(per_seed: np.ndarray) -> tuple[float, float, float]:
    """Mean over seeds and its 95% bootstrap CI (purerl.stats: fixed resampling seed, so reproducible)."""
    mean, low, high = bootstrap_ci(per_seed)
    return float(mean), float(low), float(high)


def _evaluations(eval_return: np.ndarray, steps_per_iteration: int, unit: str) -> list[dict[str, Any]]:
    """summary.json's record of the periodic evaluations, from the NaN-padded (num_seeds, iterations) series:
    per evaluation its iteration, budget, mean over seeds with the 95% CI, and each seed's return."""
    out = []
    for column in np.flatnonzero(~np.isnan(eval_return).all(axis=0)):
        mean, low, high = _mean_ci(eval_return[:, column])
        iteration = int(column) + 1
        out.append({"iteration": iteration, unit.replace(" ", "_"): iteration * steps_per_iteration,
                    "return_mean": mean, "return_ci": [low, high],
                    "return_per_seed": [float(x) for x in eval_return[:, column]]})
    return out


def load_run_config(directory: str) -> dict[str, Any]:
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        raise ValueError(f"cannot resume: {path} not found (is {directory!r} a purerl run directory?)")
    with open(path) as f:
        return json.load(f)
