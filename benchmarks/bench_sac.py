"""SAC / PMOE-SAC benchmarks.

  python -m benchmarks.bench_sac speed             # gradient steps/s, batch 256, 256x256 nets; PMOE K=4 cost
  python -m benchmarks.bench_sac learn --algo sac  # Pendulum-v1, 30k env steps, 3 vmapped seeds
  python -m benchmarks.bench_sac auc --env Pendulum-v1 --total 30000  # PMOE-SAC vs SAC after both `learn`s

Results go to benchmarks/results/sac_speed.json, <algo>_<env>_<k env steps>k.json and
pmoe_vs_sac_auc_<env>.json (harness schema). `learn` trains and evaluates through
`purerl.runner.train_and_evaluate` (the CLI's numbers).
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import json
import os

import numpy as np

from benchmarks.harness import COMPARISON, SPEED, Entry
from benchmarks.workloads import sac_grad_steps_per_s
from purerl import stats

ROUTER_METRICS = ("router_entropy", "effective_experts", "distinguishable_modes")
PENDULUM_BAR = -250.0  # mean eval return to pass within 30k env steps on Pendulum-v1


def speed(steps: int) -> dict:
    sac = sac_grad_steps_per_s("sac", steps)
    pmoe = sac_grad_steps_per_s("pmoe_sac", steps, num_experts=4)
    pmoe["cost_ratio_vs_sac"] = sac["grad_steps_per_s"] / pmoe["grad_steps_per_s"]
    what = "SAC gradient step, batch 256, 256x256 nets, Pendulum-v1 shapes"
    return harness.result(SPEED, "sac_speed", what, algo="sac", env="Pendulum-v1", compile_s=sac["compile_s"],
                          run_s=sac["run_s_best"],
                          throughput=sac["grad_steps_per_s"], throughput_unit="gradient steps/s",
                          extra={"results": [sac, pmoe], "load_avg_end": os.getloadavg()[0]})


def result_name(algo: str, env: str, total: int) -> str:
    return f"{algo}_{env.lower().replace('-v1', '')}_{total // 1000}k"


def learn(algo: str, num_seeds: int, total: int, env: str, **overrides) -> dict:
    entry = Entry(result_name(algo, env, total), algo=algo, num_seeds=num_seeds,
                  config=dict(env=env, total_timesteps=total, **overrides),
                  what=f"{algo} on {env}, {total} env steps per seed, deterministic eval")
    res, run = harness.trained(entry)
    # PMOE's router on replay batches (purerl.mixture.primitive_metrics): seed mean at 10 points over training
    # and per seed at the end, how many experts the policy uses
    router = [name for name in ROUTER_METRICS if name in run.metrics]
    if router:
        curves = {name: np.asarray(run.metrics[name], np.float64) for name in router}
        iterations = curves[router[0]].shape[1]
        steps_per_iteration = res["budget"] // iterations
        points = np.unique(np.linspace(0, iterations - 1, 10).round().astype(int))
        res["extra"]["router"] = {
            "env_steps": [int((i + 1) * steps_per_iteration) for i in points],
            **{name: {"seed_mean": curve[:, points].mean(axis=0).round(4).tolist(),
                      "final_per_seed": curve[:, -1].round(4).tolist()} for name, curve in curves.items()}}
    if env == "Pendulum-v1":
        per_seed = res["scores"]["final_return"]["per_seed"]
        res["extra"]["bar"] = f"mean eval return > {PENDULUM_BAR:g} within 30k env steps on every seed"
        res["extra"]["seeds_passing_bar"] = sum(r > PENDULUM_BAR for r in per_seed)
    return res


def auc(results_dir: str, env: str, total: int) -> dict:
    """PMOE-SAC vs SAC area under the training-return curve (per seed), from the two `learn` results."""
    def per_seed_auc(algo):
        with open(os.path.join(results_dir, f"{result_name(algo, env, total)}.json")) as f:
            return json.load(f)["scores"]["auc"]["per_seed"]

    comparison = stats.compare(per_seed_auc("pmoe_sac"), per_seed_auc("sac"))
    comparison["measure"] = f"AUC of the training return, {env}"
    return harness.result(COMPARISON, f"pmoe_vs_sac_auc_{env.lower().replace('-v1', '')}", "pmoe_sac vs sac",
                          env=env, budget=total, budget_unit="env steps", comparison=comparison)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sac")
    parser.add_argument("mode", choices=["speed", "learn", "auc"])
    parser.add_argument("--algo", default="sac")
    parser.add_argument("--steps", type=int, default=200, help="gradient steps timed (speed)")
    parser.add_argument("--total", type=int, default=30_000, help="env steps per seed (learn)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--env", default="Pendulum-v1", help="environment (learn)")
    parser.add_argument("--num-envs", type=int, default=1, help="parallel envs per seed (learn)")
    parser.add_argument("--brax-backend", default="spring", help="physics backend for brax envs (learn)")
    parser.add_argument("--out", default=str(harness.RESULTS), help="results directory")
    args = parser.parse_args(argv)
    if args.mode == "speed":
        res = speed(args.steps)
    elif args.mode == "auc":  # after `learn` of sac and pmoe_sac on the same --env/--total into --out
        res = auc(args.out, args.env, args.total)
    else:
        res = learn(args.algo, args.seeds, args.total, args.env, num_envs=args.num_envs,
                    brax_backend=args.brax_backend)
    print(f"{res['name']}: {harness.one_line(res)} -> {harness.write(res, args.out)}")


if __name__ == "__main__":
    main()
