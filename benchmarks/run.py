"""Benchmark suites, described as data and run by the harness (`benchmarks.harness`).

    python -m benchmarks.run --suite ppo-cartpole          # PPO CartPole-v1 500k steps, 1 and 8 seeds
    python -m benchmarks.run --suite ppo-pendulum          # PPO Pendulum-v1 1M steps, 4 seeds (+ curve)
    python -m benchmarks.run --suite ppo-halfcheetah       # PPO on brax halfcheetah, env steps/s
    python -m benchmarks.run --suite seed-scaling          # PPO CartPole-v1 100k steps, 1, 2, 4 ... 64 seeds
    python -m benchmarks.run --suite pmoe-pendulum         # (PMOE-)SAC and (PMOE-)PPO, Pendulum-v1, CPU
    python -m benchmarks.run --suite brax-trainers         # PPO and SAC vs brax's own trainers
    python -m benchmarks.run --suite smoke                 # PPO CartPole-v1 100k steps, 1 seed (a minute)
    python -m benchmarks.run --suite accelerator --out DIR # headline benchmarks on a GPU (benchmarks/gpu.sh)
    python -m benchmarks.run --list

Each entry writes `benchmarks/results/<name>.json` in the harness schema. A training entry runs
`purerl.runner.train_and_evaluate` (the CLI's numbers): compile_s is the ahead-of-time compile of the jitted
chunks, run_s their execution (host sync included); the final evaluation is not timed.
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import importlib
import sys
import tempfile
from collections.abc import Callable

import numpy as np

from benchmarks.harness import SPEED, Entry

PENDULUM = dict(
    env="Pendulum-v1", total_timesteps=1_000_000, num_envs=16, num_steps=256, update_epochs=10,
    num_minibatches=8, lr=1e-3, gamma=0.95, ent_coef=0.0, clip_value=False, normalize_obs=True,
    eval_episodes=32,
)
HALFCHEETAH = dict(env="halfcheetah", brax_backend="spring", num_steps=64, update_epochs=4, lr=3e-4,
                   gamma=0.99, ent_coef=0.0, normalize_obs=True)


def sac_speed() -> dict:
    """Gradient steps/s of SAC and PMOE-SAC (K=4) at batch 256 on a fixed replay batch."""
    from benchmarks.workloads import sac_grad_steps_per_s

    sac = sac_grad_steps_per_s("sac", 5_000)
    pmoe = sac_grad_steps_per_s("pmoe_sac", 5_000, num_experts=4)
    return harness.result(SPEED, "sac_grad_steps", "SAC gradient steps/s, batch 256, 256x256 nets",
                          algo="sac", env="Pendulum-v1", compile_s=sac["compile_s"], run_s=sac["run_s_best"],
                          throughput=sac["grad_steps_per_s"], throughput_unit="gradient steps/s",
                          extra={"sac": sac, "pmoe_sac_k4": pmoe,
                                 "pmoe_cost_ratio": sac["grad_steps_per_s"] / pmoe["grad_steps_per_s"]})


def td3_bc_speed() -> dict:
    """TD3+BC updates/s on a 1M-row hopper-shaped dataset held on the device, 1 and 8 vmapped seeds."""
    import os

    from benchmarks.workloads import synthetic_file, time_offline_updates
    from purerl.agents import td3_bc

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hopper-synthetic.hdf5")
        synthetic_file(path, 1_000_000)
        rows = [time_offline_updates(td3_bc, path, seeds, 5_000, 3) for seeds in (1, 8)]
    return harness.result(SPEED, "td3_bc_updates", "TD3+BC updates/s (8 vmapped seeds), 1M-row dataset",
                          algo="td3_bc", env="hopper (synthetic)", seeds=list(range(8)),
                          compile_s=rows[1]["compile_s"], run_s=min(rows[1]["call_s"]),
                          throughput=rows[1]["updates_per_s_all_seeds"],
                          throughput_unit="updates/s (all seeds)",
                          extra={"results": rows})


def es_generation_speed() -> dict:
    """Seconds per OpenAI-ES generation of TA-LPO: 64 members, each an inner PPO run on CartPole-v1."""
    from purerl.agents import lpo

    with tempfile.TemporaryDirectory() as tmp:
        cfg = lpo.MetaConfig(env="CartPole-v1", temporal=True, generations=3, population=64,
                             total_timesteps=100_000, out=tmp, checkpoint_every=10)
        res = lpo.meta_train(cfg, log=lambda m: None)
    seconds = [float(s) for s in res["generation_s"]]
    return harness.result(SPEED, "lpo_es_generation", "TA-LPO OpenAI-ES generation, 64 inner PPO runs",
                          algo="lpo", env="CartPole-v1", compile_s=res["compile_s"],
                          run_s=float(np.median(seconds)),
                          throughput=cfg.population * cfg.total_timesteps / float(np.median(seconds)),
                          throughput_unit="inner env steps/s",
                          extra={"population": cfg.population, "inner_total_timesteps": cfg.total_timesteps,
                                 "seconds_per_generation": seconds})


def side_by_side_with_brax(script: str, env: str) -> Callable[[], dict]:
    """`script`'s speed_result on `env`, imported when the entry runs: bench_brax_trainers (PPO against
    brax's ppo.train, 2 alternating rounds of 300k steps) or bench_brax_sac (SAC against brax's sac.train,
    steady env steps/s, 2 alternating rounds)."""
    def measure() -> dict:
        return importlib.import_module(f"benchmarks.{script}").speed_result(env)

    return measure


def ppo(name: str, num_seeds: int, what: str = "", **config) -> Entry:
    return Entry(name=name, algo="ppo", config=config, num_seeds=num_seeds, what=what)


# PMOE against its base algorithm on Pendulum-v1 at a CPU budget (notebooks/pmoe.py plots these files).
PMOE_SAC_PENDULUM = dict(env="Pendulum-v1", total_timesteps=6_000, rollout_steps=100, learning_starts=1_000,
                         batch_size=128, hidden=(64, 64), eval_episodes=8)
PMOE_PPO_PENDULUM = dict(env="Pendulum-v1", num_envs=16, num_steps=200, total_timesteps=10 * 16 * 200,
                         update_epochs=5, num_minibatches=4, lr=1e-3, anneal_lr=False, gamma=0.95,
                         ent_coef=0.0, clip_value=False, normalize_obs=True, eval_episodes=8, hidden=(64, 64))


SUITES: dict[str, list[Entry]] = {
    "ppo-cartpole": [
        ppo("ppo_cartpole_500k_1seed", 1, env="CartPole-v1", total_timesteps=500_000),
        ppo("ppo_cartpole_500k_8seeds", 8, env="CartPole-v1", total_timesteps=500_000),
    ],
    "ppo-pendulum": [ppo("ppo_pendulum_1m_4seeds", 4, **PENDULUM)],
    "ppo-halfcheetah": [
        ppo("ppo_halfcheetah_spring", 1, "env steps/s of PPO on brax halfcheetah (spring backend), short run",
            total_timesteps=64 * 64 * 10, num_envs=64, num_minibatches=8, eval_episodes=4, **HALFCHEETAH),
    ],
    # Time per seed as the vmapped batch grows: the cost of a seed falls while the device has idle lanes.
    "seed-scaling": [ppo(f"ppo_cartpole_100k_{n}seeds", n, env="CartPole-v1", total_timesteps=100_000)
                     for n in (1, 2, 4, 8, 16, 32, 64)],
    "pmoe-pendulum": [
        Entry("pmoe_cpu_sac_pendulum_6k", "sac", PMOE_SAC_PENDULUM, 5, what="SAC, Pendulum-v1, 6k steps"),
        Entry("pmoe_cpu_pmoe_sac_pendulum_6k", "pmoe_sac", dict(PMOE_SAC_PENDULUM, num_experts=4), 5,
              what="PMOE-SAC (K=4), Pendulum-v1, 6k steps"),
        Entry("pmoe_cpu_ppo_pendulum_32k", "ppo", PMOE_PPO_PENDULUM, 5, what="PPO, Pendulum-v1, 32k steps"),
        Entry("pmoe_cpu_pmoe_ppo_pendulum_32k", "pmoe_ppo",
              dict(PMOE_PPO_PENDULUM, num_experts=5, q_hidden=(64, 64, 64)), 5,
              what="PMOE-PPO (K=5), Pendulum-v1, 32k steps"),
    ],
    # brax's own PPO and SAC trainers with their published hyperparameters against purerl's PPO and SAC
    # matched to them (PPO's full-budget returns: python -m benchmarks.bench_brax_trainers --part train)
    "brax-trainers": [*[Entry(f"brax_trainers_{env}", fn=side_by_side_with_brax("bench_brax_trainers", env))
                        for env in ("walker2d", "hopper", "halfcheetah")],
                      *[Entry(f"brax_sac_{env}", fn=side_by_side_with_brax("bench_brax_sac", env))
                        for env in ("hopper", "walker2d")]],
    "smoke": [ppo("ppo_cartpole_100k_1seed_harness", 1, "the harness end to end: PPO CartPole-v1, 1 seed",
                  env="CartPole-v1", total_timesteps=100_000)],
    # The headline benchmarks on an accelerator, sized to finish in < 10 minutes on one GPU (gpu.sh).
    "accelerator": [
        *[ppo(f"ppo_cartpole_500k_{n}seeds", n, env="CartPole-v1", total_timesteps=500_000)
          for n in (1, 8, 64, 1024)],
        ppo("ppo_halfcheetah_spring_2048envs", 1, "PPO on brax halfcheetah (spring backend), 2048 envs",
            total_timesteps=2048 * 64 * 20, num_envs=2048, num_minibatches=32, eval_episodes=16,
            **HALFCHEETAH),
        Entry("sac_grad_steps", fn=sac_speed),
        Entry("td3_bc_updates", fn=td3_bc_speed),
        Entry("lpo_es_generation", fn=es_generation_speed),
    ],
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", action="append", help="suite name (repeatable); default: ppo-cartpole")
    parser.add_argument("--out", default=str(harness.RESULTS), help="results directory")
    parser.add_argument("--list", action="store_true", help="list suites and exit")
    args = parser.parse_args(argv)
    if args.list:
        for suite, entries in SUITES.items():
            print(f"{suite}: {', '.join(e.name for e in entries)}")
        return
    suites = args.suite or ["ppo-cartpole"]
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        print(f"benchmarks.run: error: unknown suite(s) {', '.join(unknown)}; valid: {', '.join(SUITES)}",
              file=sys.stderr)
        raise SystemExit(2)
    for suite in suites:
        for entry in SUITES[suite]:
            try:
                harness.run_entry(entry, args.out)
            except Exception as e:  # one broken entry must not lose the others' numbers
                print(f"{entry.name} FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
