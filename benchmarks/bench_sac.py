"""SAC / PMOE-SAC benchmarks.

  python benchmarks/bench_sac.py speed   # gradient updates/s at batch 256, 256x256 nets; PMOE K=4 cost ratio
  python benchmarks/bench_sac.py learn --algo sac   # Pendulum-v1, 30k env steps, 3 vmapped seeds

Compile time is measured separately (`jax.jit(f).lower(args).compile()`), then the compiled call is timed
with `block_until_ready`. Results go to benchmarks/results/sac_speed.json and <algo>_pendulum.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from purerl import replay  # noqa: E402
from purerl.agents import get  # noqa: E402
from purerl.logging import machine, versions, write_json  # noqa: E402
from purerl.sweep import seed_keys  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results")
NOTE = "2-core CPU shared with other jobs (load average ~{:.1f} at start): timings are noisy lower bounds"


def _timed(fn, *args, repeats=3):
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(*args))  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
    return compile_s, min(times), times


def grad_steps_per_s(algo: str, steps: int, **overrides) -> dict:
    """Gradient steps/s of one agent's gradient step on a fixed replay batch (Pendulum-v1 shapes)."""
    module = get(algo)
    config = module.Config(env="Pendulum-v1", batch_size=256, hidden=(256, 256), **overrides)
    agent = module.make_agent(config)
    state = agent.init(jax.random.PRNGKey(0))
    buffer = replay.add(
        state.buffer,
        jax.tree.map(
            lambda x: np.repeat(np.asarray(x)[None], 1000, 0), jax.tree.map(lambda x: x[0], state.buffer.data)
        ),
    )
    step = module.gradient_step_fn(config)

    def many(learner, key):
        def body(learner, k):
            sample_key, loss_key = jax.random.split(k)
            return step(learner, replay.sample(buffer, sample_key, config.batch_size), loss_key)

        return jax.lax.scan(body, learner, jax.random.split(key, steps))[0]

    compile_s, best, times = _timed(many, state.learner, jax.random.PRNGKey(1))
    return {
        "algo": algo,
        "overrides": overrides,
        "grad_steps": steps,
        "compile_s": compile_s,
        "run_s_best": best,
        "run_s_all": times,
        "grad_steps_per_s": steps / best,
    }


def speed(steps: int) -> None:
    load = os.getloadavg()[0]
    sac = grad_steps_per_s("sac", steps)
    rows = [sac]
    try:
        pmoe = grad_steps_per_s("pmoe_sac", steps, num_experts=4)
        pmoe["cost_ratio_vs_sac"] = sac["grad_steps_per_s"] / pmoe["grad_steps_per_s"]
        rows.append(pmoe)
    except ValueError as e:  # pmoe_sac not registered
        print("skipping pmoe_sac:", e)
    out = {
        "benchmark": "SAC gradient step, batch 256, 256x256 nets, Pendulum-v1 shapes (obs 3, act 1)",
        "results": rows,
        "note": NOTE.format(load),
        "load_avg_end": os.getloadavg()[0],
        "versions": versions(),
        "machine": machine(),
    }
    for r in rows:
        print(
            r["algo"],
            f"{r['grad_steps_per_s']:.1f} grad steps/s (compile {r['compile_s']:.1f}s)",
            r.get("cost_ratio_vs_sac", ""),
        )
    write_json(os.path.join(RESULTS, "sac_speed.json"), out)


def learn(algo: str, seeds: list[int], total: int, **overrides) -> None:
    load = os.getloadavg()[0]
    module = get(algo)
    config = module.Config(env="Pendulum-v1", total_timesteps=total, **overrides)
    agent = module.make_agent(config)

    def run(key):
        state, metrics = jax.lax.scan(
            lambda s, _: agent.update(s), agent.init(key), None, length=agent.num_iterations
        )
        return agent.evaluate(state, jax.random.fold_in(key, 0x5EED)), metrics

    keys = seed_keys(seeds)
    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(run)).lower(keys).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    returns, metrics = jax.block_until_ready(compiled(keys))
    run_s = time.perf_counter() - t0
    returns = np.asarray(returns)
    curve = np.asarray(metrics["episode_return"])  # (seeds, iterations); NaN where no episode ended
    steps = (np.arange(curve.shape[1]) + 1) * agent.steps_per_iteration
    out = {
        "benchmark": f"{algo} on Pendulum-v1, {total} env steps per seed, deterministic eval "
        f"({config.eval_episodes} episodes/seed)",
        "bar": "mean eval return > -250 within 30k env steps on 3 of 3 seeds",
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "seeds": seeds,
        "eval_return_mean_per_seed": returns.mean(1).tolist(),
        "seeds_passing_bar": int((returns.mean(1) > -250).sum()),
        "compile_s": compile_s,
        "run_s": run_s,
        "env_steps_per_s": total * len(seeds) / run_s,
        "train_episode_return_curve": {
            "env_steps": steps.tolist(),
            "per_seed": [[None if np.isnan(v) else float(v) for v in c] for c in curve],
        },
        "note": NOTE.format(load),
        "load_avg_end": os.getloadavg()[0],
        "versions": versions(),
        "machine": machine(),
    }
    print(
        algo, "eval per seed", out["eval_return_mean_per_seed"], f"compile {compile_s:.0f}s run {run_s:.0f}s"
    )
    write_json(os.path.join(RESULTS, f"{algo}_pendulum.json"), out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["speed", "learn"])
    parser.add_argument("--algo", default="sac")
    parser.add_argument("--steps", type=int, default=200, help="gradient steps timed (speed)")
    parser.add_argument("--total", type=int, default=30_000, help="env steps per seed (learn)")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    if args.mode == "speed":
        speed(args.steps)
    else:
        learn(args.algo, list(range(args.seeds)), args.total)
