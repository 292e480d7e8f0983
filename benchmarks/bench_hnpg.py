"""HNPG benchmarks on the continuous combination lock.

- `speed`: iterations/s of HNPG at H = 50 with 1000 on-policy steps per iteration, 5 vmapped seeds, the
  50 000-episode offline dataset per seed; compile time (init, update chunk) measured apart from run time.
- `solve`: online samples to solve the lock versus horizon for HNPG and on-policy TRPO (`hybrid=False`), the
  paper's stopping rule: the moving average (window 10 iterations) of the training batch's success rate
  exceeds 0.5; a run that never does within the iteration cap counts as "not solved" (None).

Usage: `python benchmarks/bench_hnpg.py speed` or
`python benchmarks/bench_hnpg.py solve --horizons 5 10 --iters 150 300`.
Writes benchmarks/results/hnpg_speed.json or hnpg_solve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_enable_concurrency_optimized_scheduler=false")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from purerl.agents import hnpg  # noqa: E402
from purerl.logging import machine, versions  # noqa: E402
from purerl.sweep import seed_keys  # noqa: E402

RESULTS = Path(__file__).parent / "results"
NOTE = "2-core CPU shared with ~6 other jobs (load average ~10): timings are noisy upper bounds."


def _timed(fn, *args):
    t = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - t


def speed(seeds: int, chunk: int, chunks: int, horizon: int) -> dict:
    config = hnpg.Config(horizon=horizon, batch_steps=1000)
    agent = hnpg.make_agent(config)
    keys = seed_keys(range(seeds))
    init = jax.vmap(agent.init)

    def run_chunk(state):
        return jax.lax.scan(lambda s, _: jax.vmap(agent.update)(s), state, None, length=chunk)

    t = time.perf_counter()
    init_c = jax.jit(init).lower(keys).compile()
    init_compile = time.perf_counter() - t
    state, init_run = _timed(init_c, keys)
    t = time.perf_counter()
    chunk_c = jax.jit(run_chunk).lower(state).compile()
    chunk_compile = time.perf_counter() - t
    times = []
    for _ in range(chunks):
        (state, metrics), dt = _timed(chunk_c, state)
        times.append(dt)
    run_s = float(np.median(times))
    return {
        "horizon": horizon,
        "seeds": seeds,
        "steps_per_iteration_per_seed": agent.steps_per_iteration,
        "offline_episodes_per_seed": config.offline_episodes,
        "compile_init_s": init_compile,
        "init_run_s (offline data collection)": init_run,
        "compile_update_chunk_s": chunk_compile,
        "iterations_per_chunk": chunk,
        "chunk_run_s": times,
        "iterations_per_s (all seeds together)": chunk / run_s,
        "env_steps_per_s (all seeds)": chunk * seeds * agent.steps_per_iteration / run_s,
        "time_for_1500_iterations_est_s": 1500 * run_s / chunk,
        "success_last_chunk_per_seed": np.asarray(metrics["success"][-1]).tolist(),
    }


def samples_to_solve(success: np.ndarray, steps_per_iter: int, window: int = 10) -> list:
    """First iteration whose trailing moving average of the batch success exceeds 0.5 -> online samples."""
    out = []
    for s in success:
        ma = (
            np.convolve(s, np.ones(window) / window, mode="full")[: len(s)]
            * window
            / np.minimum(np.arange(1, len(s) + 1), window)
        )
        hit = np.nonzero((ma > 0.5) & (np.arange(len(s)) >= window - 1))[0]
        out.append(int((hit[0] + 1) * steps_per_iter) if len(hit) else None)
    return out


def solve(horizons, iters, seeds: int) -> dict:
    rows = []
    for horizon, n in zip(horizons, iters, strict=True):
        for hybrid in (True, False):
            config = hnpg.Config(horizon=horizon, num_iters=n, hybrid=hybrid)
            train = jax.jit(jax.vmap(hnpg.make_train(config)))
            keys = seed_keys(range(seeds))
            t = time.perf_counter()
            compiled = train.lower(keys).compile()
            compile_s = time.perf_counter() - t
            (_, metrics), run_s = _timed(compiled, keys)
            success = np.asarray(metrics["success"])
            solved = samples_to_solve(success, config.steps_per_iter)
            row = {
                "horizon": horizon,
                "method": "HNPG" if hybrid else "TRPO (hybrid=False)",
                "seeds": seeds,
                "iteration_cap": n,
                "sample_cap": n * config.steps_per_iter,
                "samples_to_solve_per_seed (None = not solved within cap)": solved,
                "solved_seeds": sum(x is not None for x in solved),
                "final_success_ma10_per_seed": success[:, -10:].mean(1).round(3).tolist(),
                "max_success_per_seed": success.max(1).round(3).tolist(),
                "compile_s": compile_s,
                "run_s": run_s,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return {"stopping_rule": "moving average (10 iterations) of training-batch success > 0.5", "runs": rows}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["speed", "solve"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=5)
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--horizon", type=int, default=50)
    parser.add_argument("--horizons", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--iters", type=int, nargs="+", default=[150, 300])
    args = parser.parse_args()
    if args.what == "speed":
        result = speed(args.seeds, args.chunk, args.chunks, args.horizon)
        name = "hnpg_speed.json"
    else:
        result = solve(args.horizons, args.iters, args.seeds)
        name = "hnpg_solve.json"
    result.update(
        versions=versions(),
        machine=machine(),
        note=NOTE,
        command="python benchmarks/bench_hnpg.py " + " ".join(os.sys.argv[1:]),
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
