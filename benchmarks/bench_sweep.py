"""A hyperparameter sweep in one program vs the same configurations as separate runs.

  python -m benchmarks.bench_sweep               # PPO CartPole-v1: 4 lr x 4 ent_coef, 8 seeds, 100k steps
  python -m benchmarks.bench_sweep --total 20000 --out /tmp/results  # a smaller budget, elsewhere

Both sides train the same 16 configurations x 8 seeds in this process: the sweep through
`purerl.config_sweep.run` (one init, one chunk and one evaluation program for the grid), the separate runs
through `purerl.runner.run`, one per configuration (each compiles its own three programs). Wall time, compile
and run seconds of each side go into one harness SPEED result, benchmarks/results/sweep_cartpole.json, with
the load average (the CPU is shared) and every configuration's final return under `extra`.
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import os
import time

from benchmarks.harness import SPEED
from purerl import config_sweep, runner
from purerl.agents import ppo

GRID = ("lr=0.0001,0.00025,0.0005,0.001", "ent_coef=0,0.001,0.01,0.03")


def bench(total: int, num_seeds: int) -> dict:
    base = ppo.Config(env="CartPole-v1", total_timesteps=total)
    options = runner.RunOptions(num_seeds=num_seeds, progress=False)
    load_start = os.getloadavg()[0]

    t0 = time.perf_counter()
    swept = config_sweep.swept_agent(ppo.make_agent, base, config_sweep.parse_grid(GRID, base))
    sweep = config_sweep.run("ppo", swept, options)
    sweep_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    separate = [runner.run("ppo", ppo.make_agent(config_sweep.with_values(base, point)), options)
                for point in sweep.points]
    separate_s = time.perf_counter() - t0

    count = len(sweep.points)
    steps = count * num_seeds * total
    labels = [config_sweep.label(point) for point in sweep.points]
    return harness.result(
        SPEED, "sweep_cartpole",
        f"PPO CartPole-v1, {count} configurations ({' x '.join(GRID)}) x {num_seeds} seeds x {total} env "
        "steps: one sweep program vs separate runs, wall time including compiles",
        algo="ppo", env="CartPole-v1", config={"total_timesteps": total, "sweep": list(GRID)}, budget=total,
        budget_unit="env steps", seeds=options.seeds, compile_s=sweep.summary["compile_s"],
        run_s=sweep.summary["run_s"], throughput=steps / sweep_s, throughput_unit="env steps/s (sweep, wall)",
        extra={
            "sweep_wall_s": round(sweep_s, 1), "separate_wall_s": round(separate_s, 1),
            "speedup": round(separate_s / sweep_s, 2),
            "sweep": {k: sweep.summary[k] for k in ("compile_s", "run_s", "eval_s")},
            "separate": {k: round(sum(r.summary[k] for r in separate), 3)
                         for k in ("compile_s", "run_s", "eval_s")},
            "final_return_mean": {label: {"sweep": r.summary["final_return_mean"],
                                          "separate": s.summary["final_return_mean"]}
                                  for label, r, s in zip(labels, sweep.runs, separate, strict=True)},
            "load_avg_start": load_start, "load_avg_end": os.getloadavg()[0],
            "note": "one process on a shared 2-core CPU (other jobs ran alongside; see the load averages)",
        })


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--total", type=int, default=100_000, help="env steps per run and seed")
    parser.add_argument("--num-seeds", type=int, default=8, help="seeds per configuration")
    parser.add_argument("--out", default=str(harness.RESULTS), help="directory for sweep_cartpole.json")
    args = parser.parse_args(argv)
    res = bench(args.total, args.num_seeds)
    print(harness.one_line(res), f"speed-up {res['extra']['speedup']}x", f"-> {harness.write(res, args.out)}")


if __name__ == "__main__":
    main()
