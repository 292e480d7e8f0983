"""ES meta-training of a TA-LPO drift on CartPole-v1 at a CPU budget: seconds per generation (compile apart)
and whether fitness improves: the population's mean fitness in the last 10 generations against the first 10
(`purerl.stats.compare`, generations resampled), written as a harness COMPARISON result.

    python -m benchmarks.bench_lpo --generations 30 --population 32 --devices 1

The drifts and per-generation metrics are kept next to the result (`results/<name>/`):
notebooks/learned_objectives.ipynb evaluates drift_mean.msgpack.
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import os
import shutil

import numpy as np

from benchmarks.harness import COMPARISON

KEPT_FILES = ("drift_mean.msgpack", "drift_best.msgpack", "metrics.jsonl", "meta_config.json")


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_lpo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--population", type=int, default=32)
    parser.add_argument("--devices", type=int, default=1, help="fake CPU devices the population shards over")
    parser.add_argument("--total-timesteps", type=int, default=10_240, help="inner PPO env steps per member")
    parser.add_argument("--temporal", type=int, default=1)
    parser.add_argument("--lr", type=float, default=2.5e-4)
    parser.add_argument("--sigma", type=float, default=0.04)
    parser.add_argument("--ppo-init", type=int, default=1,
                        help="1: the drift starts at PPO-clip; 0: from scratch")
    parser.add_argument("--es-lr", type=float, default=0.01)
    parser.add_argument("--work", default="/tmp/bench_lpo", help="meta-training's own output folder (wiped)")
    parser.add_argument("--name", default="lpo_cartpole")
    parser.add_argument("--out", default=str(harness.RESULTS), help="results folder")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse(argv)
    # XLA reads the device count once, when jax starts: set it before purerl.agents imports jax.
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} " \
                              f"--xla_force_host_platform_device_count={args.devices}".strip()
    from purerl import stats
    from purerl.agents import lpo

    shutil.rmtree(args.work, ignore_errors=True)
    cfg = lpo.MetaConfig(env="CartPole-v1", temporal=bool(args.temporal), generations=args.generations,
                         population=args.population, num_devices=args.devices,
                         total_timesteps=args.total_timesteps, out=args.work, checkpoint_every=10, lr=args.lr,
                         sigma=args.sigma, ppo_init=bool(args.ppo_init), es_lr=args.es_lr)
    res = lpo.meta_train(cfg, log=lambda m: print(m, flush=True))
    per_generation = np.asarray(res["fitness"]).mean(axis=1)
    k = min(10, len(per_generation) // 2)
    comparison = stats.compare(per_generation[-k:], per_generation[:k])
    comparison["measure"] = f"population mean fitness, last {k} generations vs first {k}"
    seconds = np.asarray(res["generation_s"], np.float64)
    median_s = float(np.median(seconds))
    steps_per_member = (cfg.total_timesteps // (cfg.num_envs * cfg.num_steps)) * cfg.num_envs * cfg.num_steps
    busy = "2-core CPU shared with other jobs: timings are noisy upper bounds. " if os.getloadavg()[0] > 3 \
        else "Idle 2-core CPU. "
    result = harness.result(
        COMPARISON, args.name, f"TA-LPO ES meta-training on CartPole-v1: last {k} vs first {k} generations",
        algo="lpo", env="CartPole-v1", config=dict(vars(cfg)), budget=args.generations,
        budget_unit="ES generations", compile_s=round(float(res["compile_s"]), 3),
        run_s=median_s, throughput=cfg.population * steps_per_member / median_s,
        throughput_unit="inner env steps/s", comparison=comparison,
        extra={"seconds_per_generation": seconds.tolist(),
               "inner_env_steps_per_generation": cfg.population * steps_per_member,
               "population_mean_fitness_per_generation": per_generation.tolist(),
               "note": busy + f"Budget: inner PPO {cfg.total_timesteps // 512} updates x 512 steps (lr "
                              f"{cfg.lr}), 16 eval episodes per member; the papers use 1e7-3e7 inner steps "
                              "and ~1000 generations on GPUs."})
    path = harness.write(result, args.out)
    kept = os.path.join(args.out, args.name)
    os.makedirs(kept, exist_ok=True)
    for name in KEPT_FILES:
        shutil.copy(os.path.join(args.work, name), kept)
    print(f"{args.name}: {harness.one_line(result)} -> {path}")


if __name__ == "__main__":
    main()
