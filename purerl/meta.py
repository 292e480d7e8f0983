"""The host loop shared by the ES meta-trainers (`purerl.agents.lpo`, `purerl.agents.lpg`).

A meta-trainer supplies one jittable `generation(es_state, key) -> (es_state, fitness per member)`; this
module compiles it once, runs the generations, appends one metrics row per generation to metrics.jsonl,
writes an orbax checkpoint of the ES state and the fitness history every `checkpoint_every` generations,
and resumes from the newest checkpoint. Generation g uses fold_in(PRNGKey(seed), g), so a resumed run
equals an uninterrupted one bit for bit.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from purerl import checkpoint
from purerl.sweep import check_devices


def generation_key(seed: int, generation: int):
    return jax.random.fold_in(jax.random.PRNGKey(seed), generation)


def check_population(population: int, num_devices: int) -> None:
    """An antithetic population must be even and split evenly over the devices."""
    if population % 2:
        raise ValueError(f"population must be even (antithetic pairs), got {population}")
    if population % num_devices:
        raise ValueError(f"population = {population} is not divisible by num_devices = {num_devices}")
    check_devices(population, num_devices)


def prepare_out(out: str, resume: bool, config: dict) -> None:
    """Refuse to overwrite a non-empty output directory unless resuming; record the config."""
    if not resume and os.path.isdir(out) and os.listdir(out):
        raise ValueError(f"output directory {out!r} is not empty (use --resume to continue it)")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "meta_config.json"), "w") as f:
        json.dump(config, f, indent=1)


def _save(directory, generation, es_state, history):
    leaves = {str(i): np.asarray(x) for i, x in enumerate(jax.tree.leaves(es_state))}
    checkpoint.save(directory, generation, leaves, history)


def _restore(directory, es_state_template):
    leaves, treedef = jax.tree.flatten(es_state_template)
    abstract = {str(i): jax.ShapeDtypeStruct(np.shape(x), jnp.asarray(x).dtype) for i, x in enumerate(leaves)}
    step, restored, history = checkpoint.restore(directory, abstract)
    state = jax.tree.unflatten(treedef, [jnp.asarray(restored[str(i)]) for i in range(len(leaves))])
    return step, state, history


def run_generations(
    generation: Callable, es_state, *, out: str, generations: int, seed: int, checkpoint_every: int,
    resume: bool, population: int, log=print, describe: str = "", evaluate: Callable | None = None,
    eval_every: int = 0,
) -> dict:
    """Run (or resume) `generations` ES generations; returns the final ES state, the fitness history
    (generations x population), the compile time and the seconds per generation run here.

    `evaluate(es_state) -> dict of floats` (e.g. the ES mean scored on fixed held-out tasks) runs after
    every `eval_every`-th generation and after the last; its values join that generation's metrics row."""
    ckpt_dir = os.path.join(out, "checkpoints")
    start, history = 0, {"fitness": np.zeros((0, population), np.float32)}
    if resume and checkpoint.latest(ckpt_dir) is not None:
        start, es_state, history = _restore(ckpt_dir, es_state)
        log(f"resumed at generation {start}")
    step = jax.jit(generation)
    t0 = time.perf_counter()
    compiled = step.lower(es_state, generation_key(seed, start)).compile()
    compile_s = time.perf_counter() - t0
    log(f"compiled one generation in {compile_s:.1f} s ({describe})")
    times, fitness_hist = [], list(history["fitness"])
    for g in range(start, generations):
        t = time.perf_counter()
        es_state, fitness = compiled(es_state, generation_key(seed, g))
        fitness = np.asarray(jax.block_until_ready(fitness))
        times.append(time.perf_counter() - t)
        fitness_hist.append(fitness)
        row = {
            "generation": g + 1, "fitness_mean": float(fitness.mean()), "fitness_max": float(fitness.max()),
            "fitness_min": float(fitness.min()), "std": float(es_state.std),
            "mean_norm": float(jnp.linalg.norm(es_state.mean)), "seconds": times[-1],
        }
        if evaluate is not None and eval_every > 0 and ((g + 1) % eval_every == 0 or g + 1 == generations):
            row.update(evaluate(es_state))
        with open(os.path.join(out, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")
        extra = "".join(f" {k} {v:.3g}" for k, v in row.items() if k.startswith("eval_"))
        log(f"[{g + 1}/{generations}] fitness mean {row['fitness_mean']:.3g} max {row['fitness_max']:.3g} "
            f"|mean| {row['mean_norm']:.3f}{extra} ({times[-1]:.1f} s)")
        if (g + 1) % checkpoint_every == 0 or g + 1 == generations:
            _save(ckpt_dir, g + 1, es_state, {"fitness": np.stack(fitness_hist)})
    return {
        "es_state": es_state,
        "fitness": np.stack(fitness_hist) if fitness_hist else np.zeros((0, population), np.float32),
        "compile_s": compile_s, "generation_s": times,
    }
