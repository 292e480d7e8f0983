"""ES meta-training of a TA-LPO drift on CartPole-v1 at a CPU budget: seconds per generation (compile
separate) and whether fitness improves (mean fitness of the last 10 generations minus the first 10, with a
95% bootstrap CI over generations).

    XLA_FLAGS=... python -m benchmarks.bench_lpo --generations 30 --population 32 --devices 1
"""

from __future__ import annotations

from benchmarks import harness  # noqa: F401 # isort: skip  (first: sets the XLA CPU flags before jax loads)

import argparse
import os

ap = argparse.ArgumentParser()
ap.add_argument("--generations", type=int, default=30)
ap.add_argument("--population", type=int, default=32)
ap.add_argument("--devices", type=int, default=1)
ap.add_argument("--total-timesteps", type=int, default=10_240)
ap.add_argument("--temporal", type=int, default=1)
ap.add_argument("--lr", type=float, default=2.5e-4)
ap.add_argument("--sigma", type=float, default=0.04)
ap.add_argument("--ppo-init", type=int, default=1, help="1: the drift starts at PPO-clip; 0: from scratch")
ap.add_argument("--es-lr", type=float, default=0.01)
ap.add_argument("--out", default="/tmp/bench_lpo")
ap.add_argument("--name", default="lpo_cartpole")
args = ap.parse_args()

flags = [
    f"--xla_force_host_platform_device_count={args.devices}",
    "--xla_cpu_enable_concurrency_optimized_scheduler=false",
]
os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", "")] + flags).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import json  # noqa: E402
import shutil  # noqa: E402

import numpy as np  # noqa: E402

from purerl import logging as plog  # noqa: E402
from purerl.agents import lpo  # noqa: E402

shutil.rmtree(args.out, ignore_errors=True)
cfg = lpo.MetaConfig(
    env="CartPole-v1",
    temporal=bool(args.temporal),
    generations=args.generations,
    population=args.population,
    num_devices=args.devices,
    total_timesteps=args.total_timesteps,
    out=args.out,
    checkpoint_every=10,
    lr=args.lr,
    sigma=args.sigma,
    ppo_init=bool(args.ppo_init),
    es_lr=args.es_lr,
)
res = lpo.meta_train(cfg, log=lambda m: print(m, flush=True))
per_gen = res["fitness"].mean(axis=1)
k = min(10, len(per_gen) // 2)
first, last = per_gen[:k], per_gen[-k:]
rng = np.random.default_rng(0)
boot = np.array([rng.choice(last, k).mean() - rng.choice(first, k).mean() for _ in range(10_000)])
gen_s = np.asarray(res["generation_s"])
out = {
    "benchmark": "ES meta-training generation (TA-LPO drift, inner PPO on CartPole-v1)",
    "config": {k2: v for k2, v in cfg.__dict__.items()},
    "compile_s": res["compile_s"],
    "seconds_per_generation_median": float(np.median(gen_s)),
    "seconds_per_generation": gen_s.tolist(),
    "inner_env_steps_per_generation": cfg.population
    * (cfg.total_timesteps // (cfg.num_envs * cfg.num_steps))
    * cfg.num_envs
    * cfg.num_steps,
    "population_mean_fitness_per_generation": per_gen.tolist(),
    "first_k_mean": float(first.mean()),
    "last_k_mean": float(last.mean()),
    "k": k,
    "last_minus_first": float(last.mean() - first.mean()),
    "last_minus_first_ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
    "versions": plog.versions(),
    "machine": plog.machine(),
    "note": (
        "2-core CPU shared with other jobs: timings are noisy upper bounds. "
        if os.getloadavg()[0] > 3
        else "Idle 2-core CPU. "
    )
    + f"Budget: inner PPO {cfg.total_timesteps // 512} updates x 512 steps (lr {cfg.lr}), 16 eval episodes "
    + "per member; the papers use 1e7-3e7 inner steps "
    "and ~1000 generations on GPUs.",
}
os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
path = os.path.join(os.path.dirname(__file__), "results", f"{args.name}.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
# The drifts (a few kB) and the per-generation metrics go next to the record:
# notebooks/learned_objectives.ipynb evaluates drift_mean.msgpack.
keep = os.path.join(os.path.dirname(path), args.name)
os.makedirs(keep, exist_ok=True)
for name in ("drift_mean.msgpack", "drift_best.msgpack", "metrics.jsonl", "meta_config.json"):
    shutil.copy(os.path.join(args.out, name), keep)
print(
    json.dumps(
        {
            k2: out[k2]
            for k2 in (
                "compile_s",
                "seconds_per_generation_median",
                "first_k_mean",
                "last_k_mean",
                "last_minus_first_ci95",
            )
        }
    )
)
