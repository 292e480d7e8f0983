"""Benchmarks: compile time separate from steady-state run time, env steps/s, peak memory, returns.

    python benchmarks/run.py --suite ppo-cartpole          # PPO CartPole-v1 500k steps, 1 and 8 seeds
    python benchmarks/run.py --suite ppo-pendulum          # PPO Pendulum-v1 1M steps, 4 seeds (+ curve)
    python benchmarks/run.py --suite ppo-halfcheetah       # PPO on brax halfcheetah, env steps/s
    python benchmarks/run.py --suite seed-scaling          # PPO CartPole-v1 100k steps, 1 -> 8 -> 64 seeds
    python benchmarks/run.py --suite accelerator --out DIR # headline benchmarks on a GPU (benchmarks/gpu.sh)
    python benchmarks/run.py --list

Each case writes `benchmarks/results/<case>.json` with the machine and package versions. Times come
from `purerl.runner.run`: compile_s is the ahead-of-time compile of the jitted chunks, run_s the wall
time of executing them (host sync included), and the final evaluation is not timed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # the accelerator suite reuses bench_sac / bench_offline
RESULTS = os.path.join(HERE, "results")


def ppo_case(name, seeds, note="", **config_kwargs):
    from purerl.agents import ppo

    return {"name": name, "algo": "ppo", "config": ppo.Config(**config_kwargs), "num_seeds": seeds, "note": note}


PENDULUM = dict(
    env="Pendulum-v1", total_timesteps=1_000_000, num_envs=16, num_steps=256, update_epochs=10,
    num_minibatches=8, lr=1e-3, gamma=0.95, ent_coef=0.0, clip_value=False, normalize_obs=True, eval_episodes=32,
)

SUITES = {
    "ppo-cartpole": lambda: [
        ppo_case("ppo_cartpole_500k_1seed", 1, env="CartPole-v1", total_timesteps=500_000),
        ppo_case("ppo_cartpole_500k_8seeds", 8, env="CartPole-v1", total_timesteps=500_000),
    ],
    "ppo-pendulum": lambda: [ppo_case("ppo_pendulum_1m_4seeds", 4, **PENDULUM)],
    "ppo-halfcheetah": lambda: [
        ppo_case(
            "ppo_halfcheetah_spring", 1, note="env steps/s of PPO on brax halfcheetah (spring backend), short run",
            env="halfcheetah", brax_backend="spring", total_timesteps=64 * 64 * 10, num_envs=64, num_steps=64,
            update_epochs=4, num_minibatches=8, lr=3e-4, gamma=0.99, ent_coef=0.0, normalize_obs=True,
            eval_episodes=4,
        ),
    ],
    # Time per seed as the vmapped batch grows: the cost of a seed falls while the device has idle lanes.
    "seed-scaling": lambda: [
        ppo_case(f"ppo_cartpole_100k_{n}seeds", n, env="CartPole-v1", total_timesteps=100_000) for n in (1, 8, 64)
    ],
    # The headline benchmarks on an accelerator, sized to finish in < 10 minutes on one GPU (benchmarks/gpu.sh).
    "accelerator": lambda: [
        *[ppo_case(f"ppo_cartpole_500k_{n}seeds", n, env="CartPole-v1", total_timesteps=500_000)
          for n in (1, 8, 64, 1024)],
        ppo_case(
            "ppo_halfcheetah_spring_2048envs", 1, note="PPO on brax halfcheetah (spring backend), 2048 envs",
            env="halfcheetah", brax_backend="spring", total_timesteps=2048 * 64 * 20, num_envs=2048, num_steps=64,
            update_epochs=4, num_minibatches=32, lr=3e-4, gamma=0.99, ent_coef=0.0, normalize_obs=True,
            eval_episodes=16,
        ),
        {"name": "sac_grad_steps", "fn": sac_speed},
        {"name": "td3_bc_updates", "fn": td3_bc_speed},
        {"name": "lpo_es_generation", "fn": es_generation_speed},
    ],
}


def sac_speed() -> dict:
    """Gradient steps/s of SAC (and PMOE-SAC, K=4) at batch 256 on a fixed replay batch."""
    from bench_sac import grad_steps_per_s

    sac = grad_steps_per_s("sac", 5_000)
    pmoe = grad_steps_per_s("pmoe_sac", 5_000, num_experts=4)
    return {"sac": sac, "pmoe_sac_k4": pmoe, "pmoe_cost_ratio": sac["grad_steps_per_s"] / pmoe["grad_steps_per_s"]}


def td3_bc_speed() -> dict:
    """TD3+BC updates/s on a 1M-row hopper-shaped dataset held on the device, 1 and 8 vmapped seeds."""
    import tempfile

    from bench_offline import synthetic_file, time_agent

    from purerl.agents import td3_bc

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hopper-synthetic.hdf5")
        synthetic_file(path, 1_000_000)
        return {"results": [time_agent(td3_bc, path, seeds, 5_000, 3) for seeds in (1, 8)]}


def es_generation_speed() -> dict:
    """Seconds per OpenAI-ES generation of TA-LPO: 64 members, each an inner PPO run on CartPole-v1."""
    import tempfile

    from purerl.agents import lpo

    with tempfile.TemporaryDirectory() as tmp:
        cfg = lpo.MetaConfig(env="CartPole-v1", temporal=True, generations=3, population=64,
                             total_timesteps=100_000, out=tmp, checkpoint_every=10)
        res = lpo.meta_train(cfg, log=lambda m: None)
    return {"population": cfg.population, "inner_total_timesteps": cfg.total_timesteps,
            "compile_s": res["compile_s"], "seconds_per_generation": list(map(float, res["generation_s"])),
            "inner_env_steps_per_s": cfg.population * cfg.total_timesteps / float(np.median(res["generation_s"]))}


def run_function_case(case, out_dir):
    from purerl.logging import machine, versions

    t0 = time.perf_counter()
    result = {"name": case["name"], **case["fn"](), "wall_s": round(time.perf_counter() - t0, 2),
              "versions": versions(), "machine": machine()}
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{case['name']}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2, default=float)
    print(f"{case['name']}: {result['wall_s']:.1f}s -> {path}", flush=True)
    return result


def run_case(case, out_dir, seed=0):
    from purerl import runner
    from purerl.agents import ppo

    agent = {"ppo": ppo}[case["algo"]].make_agent(case["config"])
    load_before = os.getloadavg()[0]  # other jobs on the machine make timings upper bounds
    t0 = time.perf_counter()
    result = runner.run(case["algo"], agent, runner.RunOptions(num_seeds=case["num_seeds"], seed=seed, progress=False))
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()[0]
    summary = dict(result.summary)
    with warnings.catch_warnings():  # iterations where no seed finished an episode stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        curve = np.nanmean(result.metrics["episode_return"], axis=0)
    step = max(1, len(curve) // 50)
    summary.update(
        name=case["name"],
        note=case["note"],
        config=dataclasses.asdict(case["config"]),
        wall_s=round(wall, 2),
        load_average_before_after=[round(load_before, 2), round(load_after, 2)],
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        curve_env_steps=[int((i + 1) * agent.steps_per_iteration) for i in range(0, len(curve), step)],
        curve_episode_return=[None if not np.isfinite(v) else round(float(v), 2) for v in curve[::step]],
    )
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{case['name']}.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=2)
    print(
        f"{case['name']}: compile {summary['compile_s']:.1f}s run {summary['run_s']:.1f}s "
        f"{summary['env_steps_per_s']:,.0f} steps/s  return mean {summary['final_return_mean']:.1f} "
        f"min {summary['final_return_min']:.1f}  -> {path}",
        flush=True,
    )
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", action="append", help="suite name (repeatable); default: ppo-cartpole")
    parser.add_argument("--out", default=RESULTS, help="results directory")
    parser.add_argument("--list", action="store_true", help="list suites and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(SUITES))
        return
    suites = args.suite or ["ppo-cartpole"]
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        sys.exit(f"unknown suite(s) {unknown}; valid: {', '.join(SUITES)}")
    for suite in suites:
        for case in SUITES[suite]():
            try:
                run_function_case(case, args.out) if "fn" in case else run_case(case, args.out)
            except Exception as e:  # one broken case must not lose the others' numbers
                print(f"{case['name']} FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
