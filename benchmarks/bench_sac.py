"""SAC / PMOE-SAC benchmarks.

  python benchmarks/bench_sac.py speed   # gradient updates/s at batch 256, 256x256 nets; PMOE K=4 cost ratio
  python benchmarks/bench_sac.py learn --algo sac   # Pendulum-v1, 30k env steps, 3 vmapped seeds

Compile time is measured separately (`jax.jit(f).lower(args).compile()`), then the compiled call is timed
with `block_until_ready`. Results go to benchmarks/results/sac_speed.json and <algo>_<env>_<k env steps>k.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from purerl import replay  # noqa: E402
from purerl.agents import get  # noqa: E402
from purerl.logging import compile_and_run, machine, versions, write_json  # noqa: E402
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


def learn(algo: str, seeds: list[int], total: int, env: str = "Pendulum-v1", out_dir: str = RESULTS,
          **overrides) -> None:
    load = os.getloadavg()[0]
    module = get(algo)
    config = module.Config(env=env, total_timesteps=total, **overrides)
    agent = module.make_agent(config)

    def run(key):
        state, metrics = jax.lax.scan(
            lambda s, _: agent.update(s), agent.init(key), None, length=agent.num_iterations
        )
        return agent.evaluate(state, jax.random.fold_in(key, 0x5EED)), metrics

    (returns, metrics), compile_s, run_s = compile_and_run(jax.vmap(run), seed_keys(seeds))
    returns = np.asarray(returns)
    curve = np.asarray(metrics["episode_return"])  # (seeds, iterations); NaN where no episode ended
    steps = (np.arange(curve.shape[1]) + 1) * agent.steps_per_iteration
    out = {
        "benchmark": f"{algo} on {env}, {total} env steps per seed, deterministic eval "
        f"({config.eval_episodes} episodes/seed)",
        "bar": "mean eval return > -250 within 30k env steps on 3 of 3 seeds" if env == "Pendulum-v1" else "",
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
    name = f"{algo}_{env.lower().replace('-v1', '')}_{total // 1000}k"
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, f"{name}.json"), out)


def auc_ratio(results_dir: str, env: str, total: int) -> dict:
    """PMOE-SAC vs SAC area under the training-return curve (mean return over training, per seed): the
    difference and, where both areas are positive, the ratio of the means, each with a 95% bootstrap CI over
    seeds; from the two `learn` result files of one env and budget."""
    from purerl.plotting import bootstrap_ci

    def aucs(algo):
        with open(os.path.join(results_dir, f"{algo}_{env.lower().replace('-v1', '')}_{total // 1000}k.json")) as f:
            curve = np.array(json.load(f)["train_episode_return_curve"]["per_seed"], dtype=float)
        filled = np.where(np.isnan(curve), np.nanmin(curve), curve)  # iterations before the first episode end
        return filled.mean(axis=1), curve.shape[0]

    pmoe, n = aucs("pmoe_sac")
    sac, _ = aucs("sac")
    rng = np.random.default_rng(0)
    idx = rng.integers(0, n, (10_000, 2, n))  # independent resamples of the seeds of each algorithm
    diff = pmoe[idx[:, 0]].mean(1) - sac[idx[:, 1]].mean(1)
    out = {"env": env, "total_timesteps": total, "seeds": n, "auc_pmoe_per_seed": pmoe.tolist(),
           "auc_sac_per_seed": sac.tolist(), "auc_difference": float(pmoe.mean() - sac.mean()),
           "auc_difference_ci95": [float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))],
           "auc_mean_ci95": {"pmoe_sac": list(bootstrap_ci(pmoe)), "sac": list(bootstrap_ci(sac))}}
    if min(pmoe.min(), sac.min()) > 0:  # a ratio only means something for positive areas
        ratio = pmoe[idx[:, 0]].mean(1) / sac[idx[:, 1]].mean(1)
        out["auc_ratio"] = float(pmoe.mean() / sac.mean())
        out["auc_ratio_ci95"] = [float(np.percentile(ratio, 2.5)), float(np.percentile(ratio, 97.5))]
    print(json.dumps({k: v for k, v in out.items() if k.startswith("auc_") and "per_seed" not in k}))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["speed", "learn", "auc"])
    parser.add_argument("--algo", default="sac")
    parser.add_argument("--steps", type=int, default=200, help="gradient steps timed (speed)")
    parser.add_argument("--total", type=int, default=30_000, help="env steps per seed (learn)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--env", default="Pendulum-v1", help="environment (learn)")
    parser.add_argument("--num-envs", type=int, default=1, help="parallel envs per seed (learn)")
    parser.add_argument("--brax-backend", default="spring", help="physics backend for brax envs (learn)")
    parser.add_argument("--out", default=RESULTS, help="results directory (learn)")
    args = parser.parse_args()
    if args.mode == "speed":
        speed(args.steps)
    elif args.mode == "auc":  # after `learn` of sac and pmoe_sac on the same --env/--total into --out
        write_json(os.path.join(args.out, f"pmoe_vs_sac_auc_{args.env.lower().replace('-v1', '')}.json"),
                   auc_ratio(args.out, args.env, args.total))
    else:
        learn(args.algo, list(range(args.seeds)), args.total, env=args.env, out_dir=args.out,
              num_envs=args.num_envs, brax_backend=args.brax_backend)
