"""HNPG benchmarks on the continuous combination lock.

- `speed`: iterations/s of HNPG at H = 50 with 1000 on-policy steps per iteration, 5 vmapped seeds, the
  50 000-episode offline dataset per seed; compile time (init, update chunk) measured apart from run time.
- `solve`: online samples to solve the lock versus horizon for HNPG and on-policy TRPO (`hybrid=False`), the
  paper's stopping rule: the moving average (window 10 iterations) of the training batch's success rate
  exceeds 0.5; a run that never does within the iteration cap counts as "not solved" (None).

- `headline`: one long HNPG (or `--trpo`) run at one horizon (default H = 50, the paper code's 1.5M-step
  budget = 1500 iterations x 1000 steps), 5 vmapped seeds, in compiled chunks of `--chunk` iterations so the
  result file (success per iteration, samples to solve so far, timings) is rewritten after every chunk and a
  run cut off by `--max-seconds` still leaves its evidence. It stops early once every seed has met the
  stopping rule.

Usage: `python -m benchmarks.bench_hnpg speed`,
`python -m benchmarks.bench_hnpg solve --horizons 5 10 --iters 150 300 [--name hnpg_solve_h10]` or
`python -m benchmarks.bench_hnpg headline --horizon 50 --iters 1500 --chunk 50 --max-seconds 600`.
Writes benchmarks/results/hnpg_speed.json, hnpg_solve.json (or `--name`.json) or hnpg_headline_h<H>.json
(`--out DIR` writes elsewhere): harness SPEED results (iterations/s or online env steps/s) whose `extra`
holds what each mode measured, the samples to solve from `purerl.stats.samples_to_solve`.
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import json
import time

import jax
import numpy as np

from benchmarks.harness import SPEED
from purerl import stats
from purerl.agents import hnpg
from purerl.sweep import seed_keys

NOTE = "2-core CPU shared with ~6 other jobs (load average ~10): timings are noisy upper bounds."
LATE = 3  # the late timesteps whose critic value gap is tracked per chunk
SOLVED_SUCCESS, SOLVE_WINDOW = 0.5, 10  # the paper's rule: 10-iteration moving average of success > 0.5


def compile_chunked(agent, seeds: int, chunk: int):
    """Compile the vmapped init and a scan of `chunk` vmapped updates apart from running them ->
    (initial state, compiled chunk, timings dict)."""
    keys = seed_keys(range(seeds))
    init_c, compile_init = harness.compile_timed(jax.vmap(agent.init), keys)
    state, init_run = harness.run_timed(init_c, keys)

    def run_chunk(state):
        return jax.lax.scan(lambda s, _: jax.vmap(agent.update)(s), state, None, length=chunk)

    chunk_c, compile_chunk = harness.compile_timed(run_chunk, state)
    timings = {
        "compile_init_s": compile_init,
        "init_run_s (offline data collection)": init_run,
        "compile_update_chunk_s": compile_chunk,
        "iterations_per_chunk": chunk,
    }
    return state, chunk_c, timings


def speed(seeds: int, chunk: int, chunks: int, horizon: int) -> dict:
    config = hnpg.Config(horizon=horizon, batch_steps=1000)
    agent = hnpg.make_agent(config)
    state, chunk_c, timings = compile_chunked(agent, seeds, chunk)
    times = []
    for _ in range(chunks):
        (state, metrics), dt = harness.run_timed(chunk_c, state)
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


def samples_to_solve(success: np.ndarray, steps_per_iter: int) -> list:
    """Per seed, the online samples at the first iteration that meets the stopping rule (None: never)."""
    steps = steps_per_iter * np.arange(1, success.shape[-1] + 1)
    return stats.samples_to_solve(success, steps, SOLVED_SUCCESS, window=SOLVE_WINDOW)


def solve(horizons, iters, seeds: int) -> dict:
    rows = []
    for horizon, n in zip(horizons, iters, strict=True):
        for hybrid in (True, False):
            config = hnpg.Config(horizon=horizon, num_iters=n, hybrid=hybrid)
            timing = harness.timed(jax.vmap(hnpg.make_train(config)), seed_keys(range(seeds)))
            compile_s, run_s, metrics = timing.compile_s, timing.run_s, timing.out[1]
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
    horizon: int, iters: int, seeds: int, chunk: int, max_seconds: float, hybrid: bool, write, data=None
) -> dict:
    """Train in compiled chunks, rewriting the result after each, until `iters` or `max_seconds` run out.
    `data`: Config overrides of the offline data (`offline_counterfactual`, `offline_batch_per_h`)."""
    data = data or {}
    config = hnpg.Config(horizon=horizon, num_iters=iters, hybrid=hybrid, **data)
    agent, parts = hnpg.make_agent_and_parts(config)
    p_good_fn = hnpg.good_action_probability(parts)
    gap_fn = hnpg.one_hot_value_gap(parts)
    start = time.perf_counter()
    state, chunk_c, timings = compile_chunked(agent, seeds, chunk)
    success, chunk_times, suffix_history, gap_history = [], [], [], []
    result = {}
    while len(success) * chunk < iters:
        (state, metrics), dt = harness.run_timed(chunk_c, state)
        chunk_times.append(dt)
        success.append(np.asarray(metrics["success"]).T)  # (seeds, chunk)
        curve = np.concatenate(success, axis=1)
        solved = samples_to_solve(curve, config.steps_per_iter)
        p_good = np.asarray(p_good_fn(state.policy, state.env_params, jax.random.key(len(success))))
        suffix_history.append(learned_suffix(p_good))
        gap = np.asarray(gap_fn(state.q, state.env_params, jax.random.key(len(success))))
        gap_history.append(gap[:, -LATE:].mean(1).round(4).tolist())
        gap_per_h = gap.round(3).tolist()
        method = "HNPG" if hybrid else "TRPO (hybrid=False)"
        result = {
            "benchmark": f"{method} on the H={horizon} combination lock: online samples to solve "
            "(moving-average success > 0.5), per-timestep good-action probability",
            "horizon": horizon,
            "method": method,
            "config_overrides": data,
            "offline_batch_per_h": config.offline_batch,
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
            "one_hot_value_gap_per_h_per_seed (Q(s, good) - mean Q(s, wrong), on the lock)": gap_per_h,
            f"one_hot_value_gap_last_{LATE}_h_after_each_chunk (per seed)": gap_history,
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


def as_result(mode: str, name: str, measured: dict, note: str) -> dict:
    """One mode's measurements as a harness SPEED result; `extra` keeps every measured field."""
    extra = {**measured, "note": note}
    if mode == "solve":
        runs = measured["runs"]
        run_s = sum(r["run_s"] for r in runs)
        samples = sum(r["seeds"] * r["sample_cap"] for r in runs)
        what = "HNPG and on-policy TRPO: online samples to solve the lock vs horizon"
        return harness.result(SPEED, name, what, algo="hnpg", env="combination lock",
                              compile_s=round(sum(r["compile_s"] for r in runs), 3), run_s=round(run_s, 3),
                              throughput=samples / run_s, throughput_unit="online env steps/s (all runs)",
                              extra=extra)
    run_s = float(np.median(measured["chunk_run_s"]))
    rate = measured["iterations_per_s (all seeds together)"]
    # the report's speed row: the update chunk alone, its compile and its unrounded rate
    extra["measurements"] = [{"what": "HNPG update chunk, combination lock",
                              "compile_s": measured["compile_update_chunk_s"],
                              "throughput": {"value": rate, "unit": "iterations/s (all seeds)"}}]
    what = measured.get("benchmark", f"HNPG update chunk, H={measured['horizon']} combination lock")
    return harness.result(SPEED, name, what, algo="hnpg", env=f"combination lock H={measured['horizon']}",
                          seeds=list(range(measured["seeds"])),
                          compile_s=round(measured["compile_update_chunk_s"], 3), run_s=round(run_s, 4),
                          throughput=rate, throughput_unit="iterations/s (all seeds)", extra=extra)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_hnpg", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument(
        "--offline-counterfactual", type=float, default=0.0, help="headline: Config.offline_counterfactual"
    )
    parser.add_argument(
        "--offline-batch-per-h", type=int, default=0, help="headline: Config.offline_batch_per_h"
    )
    parser.add_argument("--name", default=None, help="result file name (without .json)")
    parser.add_argument("--out", default=str(harness.RESULTS), help="results folder")
    parser.add_argument("--note", default=NOTE, help="what the machine was doing (stored in the result)")
    args = parser.parse_args(argv)
    default_name = {
        "speed": "hnpg_speed",
        "solve": "hnpg_solve",
        "headline": f"hnpg_headline_h{args.horizon}" + ("_trpo" if args.trpo else ""),
    }[args.what]
    name = args.name or default_name

    def write(measured: dict) -> dict:  # atomic, so a reader never sees half a file
        res = as_result(args.what, name, measured, args.note)
        harness.write(res, args.out)
        return res

    if args.what == "speed":
        measured = speed(args.seeds, args.chunk, args.chunks, args.horizon)
    elif args.what == "solve":
        measured = solve(args.horizons, args.iters or [150, 300], args.seeds)
    else:
        iters = args.iters[0] if args.iters else 1500
        data = {
            k: v
            for k, v in (
                ("offline_counterfactual", args.offline_counterfactual),
                ("offline_batch_per_h", args.offline_batch_per_h),
            )
            if v
        }
        measured = headline(args.horizon, iters, args.seeds, args.chunk, args.max_seconds, not args.trpo,
                            write, data)
    res = write(measured)
    shown = {k: v for k, v in measured.items() if k != "success_per_iteration"}
    print(json.dumps(shown, indent=2, default=str))
    print(f"{name}: {harness.one_line(res)}")


if __name__ == "__main__":
    main()
