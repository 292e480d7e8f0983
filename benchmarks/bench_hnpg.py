"""HNPG benchmarks on the continuous combination lock.

- `speed`: iterations/s of HNPG at H = 50 with 1000 on-policy steps per iteration, 5 vmapped seeds, the
  50 000-episode offline dataset per seed; compile time (init, update chunk) measured apart from run time.
- `solve`: online samples to solve the lock versus horizon for HNPG and on-policy TRPO (`hybrid=False`), the
  paper's stopping rule: the moving average (window 10 iterations) of the training batch's success rate
  exceeds 0.5; a run that never does within the iteration cap counts as "not solved" (None).

- `headline`: one long HNPG (or `--trpo`) run at one horizon (default H = 50, the spec's 1.5M-step budget
  = 1500 iterations x 1000 steps), 5 vmapped seeds, in compiled chunks of `--chunk` iterations so the result
  file (success per iteration, samples to solve so far, timings) is rewritten after every chunk and a run cut
  off by `--max-seconds` still leaves its evidence. It stops early once every seed has met the stopping rule.

Usage: `python -m benchmarks.bench_hnpg speed`,
`python -m benchmarks.bench_hnpg solve --horizons 5 10 --iters 150 300 [--name hnpg_solve_h10]` or
`python -m benchmarks.bench_hnpg headline --horizon 50 --iters 1500 --chunk 50 --max-seconds 600`.
Writes benchmarks/results/hnpg_speed.json, hnpg_solve.json (or `--name`.json) or hnpg_headline_h<H>.json
(`--out DIR` writes elsewhere).
"""

from __future__ import annotations

from benchmarks import harness  # noqa: F401 # isort: skip  (first: sets the XLA CPU flags before jax loads)

import argparse
import json
import os
import time
from pathlib import Path

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


def compile_chunked(agent, seeds: int, chunk: int):
    """Compile the vmapped init and a scan of `chunk` vmapped updates apart from running them ->
    (initial state, compiled chunk, timings dict)."""
    keys = seed_keys(range(seeds))
    t = time.perf_counter()
    init_c = jax.jit(jax.vmap(agent.init)).lower(keys).compile()
    compile_init = time.perf_counter() - t
    state, init_run = _timed(init_c, keys)

    def run_chunk(state):
        return jax.lax.scan(lambda s, _: jax.vmap(agent.update)(s), state, None, length=chunk)

    t = time.perf_counter()
    chunk_c = jax.jit(run_chunk).lower(state).compile()
    timings = {
        "compile_init_s": compile_init,
        "init_run_s (offline data collection)": init_run,
        "compile_update_chunk_s": time.perf_counter() - t,
        "iterations_per_chunk": chunk,
    }
    return state, chunk_c, timings


def speed(seeds: int, chunk: int, chunks: int, horizon: int) -> dict:
    config = hnpg.Config(horizon=horizon, batch_steps=1000)
    agent = hnpg.make_agent(config)
    state, chunk_c, timings = compile_chunked(agent, seeds, chunk)
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
        **timings,
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


def learned_suffix(p_good: np.ndarray) -> list[int]:
    """Per seed: how many of the last timesteps pick the good action with probability > 0.5."""
    return [int(np.argmin(np.append(row[::-1] > 0.5, False))) for row in p_good]


def headline(
    horizon: int, iters: int, seeds: int, chunk: int, max_seconds: float, hybrid: bool, write
) -> dict:
    """Train in compiled chunks, rewriting the result after each, until `iters` or `max_seconds` run out."""
    config = hnpg.Config(horizon=horizon, num_iters=iters, hybrid=hybrid)
    agent, parts = hnpg.make_agent_and_parts(config)
    p_good_fn = hnpg.good_action_probability(parts)
    start = time.perf_counter()
    state, chunk_c, timings = compile_chunked(agent, seeds, chunk)
    success, chunk_times, suffix_history = [], [], []
    result = {}
    while len(success) * chunk < iters:
        (state, metrics), dt = _timed(chunk_c, state)
        chunk_times.append(dt)
        success.append(np.asarray(metrics["success"]).T)  # (seeds, chunk)
        curve = np.concatenate(success, axis=1)
        solved = samples_to_solve(curve, config.steps_per_iter)
        p_good = np.asarray(p_good_fn(state.policy, state.env_params, jax.random.key(len(success))))
        suffix_history.append(learned_suffix(p_good))
        method = "HNPG" if hybrid else "TRPO (hybrid=False)"
        result = {
            "benchmark": f"{method} on the H={horizon} combination lock: online samples to solve "
            "(moving-average success > 0.5), per-timestep good-action probability",
            "horizon": horizon,
            "method": method,
            "seeds": seeds,
            "iteration_cap": iters,
            "iterations_run": curve.shape[1],
            "online_samples_per_seed": curve.shape[1] * config.steps_per_iter,
            "samples_to_solve_per_seed (None = not solved yet)": solved,
            "solved_seeds": sum(x is not None for x in solved),
            "success_ma10_last_per_seed": curve[:, -10:].mean(1).round(3).tolist(),
            "max_success_per_seed": curve.max(1).round(3).tolist(),
            "learned_suffix_per_seed (last timesteps with P(good action) > 0.5)": suffix_history[-1],
            "learned_suffix_after_each_chunk": suffix_history,
            "p_good_action_per_h_per_seed": p_good.round(3).tolist(),
            **timings,
            "chunk_run_s": chunk_times,
            "iterations_per_s (all seeds together)": chunk / float(np.median(chunk_times)),
            "wall_s": time.perf_counter() - start,
            "success_per_iteration": curve.round(3).tolist(),
        }
        write(result)
        print(
            f"iter {curve.shape[1]}: success ma10 {result['success_ma10_last_per_seed']} solved {solved} "
            f"learned suffix {suffix_history[-1]} "
            f"({dt:.1f} s/chunk)",
            flush=True,
        )
        if all(x is not None for x in solved):
            print("stopping: every seed has met the stopping rule", flush=True)
            break
        if time.perf_counter() - start + dt > max_seconds:
            print(f"stopping: the next chunk would pass --max-seconds {max_seconds}", flush=True)
            break
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["speed", "solve", "headline"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=5)
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--horizon", type=int, default=50)
    parser.add_argument("--horizons", type=int, nargs="+", default=[5, 10])
    parser.add_argument(
        "--iters", type=int, nargs="+", default=None, help="iteration caps (solve: 150 300; headline: 1500)"
    )
    parser.add_argument("--max-seconds", type=float, default=float("inf"), help="headline: wall-clock cap")
    parser.add_argument("--trpo", action="store_true", help="headline: hybrid=False")
    parser.add_argument("--name", default=None, help="result file name (without .json)")
    parser.add_argument("--out", default=str(RESULTS), help="results folder")
    parser.add_argument("--note", default=NOTE, help="what the machine was doing (stored in the result)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    default_name = {
        "speed": "hnpg_speed",
        "solve": "hnpg_solve",
        "headline": f"hnpg_headline_h{args.horizon}" + ("_trpo" if args.trpo else ""),
    }[args.what]
    path = out / f"{args.name or default_name}.json"

    def write(result: dict) -> None:
        result.update(
            versions=versions(),
            machine=machine(),
            note=args.note,
            command="python -m benchmarks.bench_hnpg " + " ".join(os.sys.argv[1:]),
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2, default=str))
        tmp.replace(path)  # atomic: a reader never sees half a file

    if args.what == "speed":
        result = speed(args.seeds, args.chunk, args.chunks, args.horizon)
    elif args.what == "solve":
        result = solve(args.horizons, args.iters or [150, 300], args.seeds)
    else:
        iters = args.iters[0] if args.iters else 1500
        result = headline(args.horizon, iters, args.seeds, args.chunk, args.max_seconds, not args.trpo, write)
    write(result)
    print(
        json.dumps({k: v for k, v in result.items() if k != "success_per_iteration"}, indent=2, default=str)
    )


if __name__ == "__main__":
    main()
