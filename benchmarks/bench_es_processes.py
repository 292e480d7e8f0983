"""Seconds per ES generation of TA-LPO meta-training (population 32, inner PPO on CartPole-v1) with the
population on 1 device vs sharded over 2 devices.

Two fake host devices in one process can hang in XLA's CPU runtime here (jaxlib's batched LAPACK kernels
block the shared intra-op pool: README, "Known limitations"), so "2 devices" is measured the
way `purerl train` uses both cores: 2 processes with one CPU device each, joined by jax.distributed on
127.0.0.1, the population sharded over them by `purerl.sweep.over_seeds` (shard_map). Compile time is
measured apart from the generations (`harness.compile_timed`, then each generation by `harness.run_timed`).

    python -m benchmarks.bench_es_processes --generations 5
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: sets the XLA CPU flags before jax loads)

import argparse
import json
import os
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--generations", type=int, default=5)
ap.add_argument("--population", type=int, default=32)
ap.add_argument("--total-timesteps", type=int, default=10_240)
ap.add_argument("--name", default="lpo_es_generation_processes")
ap.add_argument("--worker", type=int, default=-1, help=argparse.SUPPRESS)
ap.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
ap.add_argument("--port", default="", help=argparse.SUPPRESS)
ap.add_argument("--result", default="", help=argparse.SUPPRESS)
args = ap.parse_args()


def worker():
    from purerl.sweep import init_distributed

    if args.processes > 1:
        init_distributed(f"127.0.0.1:{args.port}", args.processes, args.worker, timeout_s=120)
    import jax
    import numpy as np

    from purerl.agents import lpo
    from purerl.meta import generation_key
    from purerl.sweep import to_host

    cfg = lpo.MetaConfig(
        temporal=True,
        ppo_init=False,
        population=args.population,
        num_devices=args.processes,
        total_timesteps=args.total_timesteps,
        lr=1e-2,
    )
    lpo.validate_meta(cfg)
    es, template, generation = lpo.make_generation(cfg)
    state = lpo.init_es_state(cfg, es, template)
    step, compile_s = harness.compile_timed(generation, state, generation_key(0, 0))
    times = []
    for g in range(args.generations):
        (state, fitness), seconds = harness.run_timed(step, state, generation_key(0, g))
        fitness = to_host(fitness)
        times.append(seconds)
    if args.worker <= 0:
        with open(args.result, "w") as f:
            json.dump(
                {
                    "compile_s": compile_s,
                    "generation_s": times,
                    "fitness_mean": float(np.mean(fitness)),
                    "devices": len(jax.devices()),
                    "processes": jax.process_count(),
                },
                f,
            )


def launch(processes: int, xla_flags: str, result: str):
    from purerl.workers import free_port, worker_env

    env = worker_env() if processes > 1 or "eigen" in xla_flags else dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = xla_flags
    port = str(free_port())
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_es_processes",
        "--generations",
        str(args.generations),
        "--population",
        str(args.population),
        "--total-timesteps",
        str(args.total_timesteps),
        "--processes",
        str(processes),
        "--port",
        port,
        "--result",
        result,
    ]
    procs = [subprocess.Popen(cmd + ["--worker", str(i)], env=env) for i in range(processes)]
    codes = [p.wait(timeout=1800) for p in procs]
    if any(codes):
        raise SystemExit(f"worker exit codes {codes}")
    with open(result) as f:
        return json.load(f)


if args.worker >= 0:
    worker()
    raise SystemExit(0)

import numpy as np  # noqa: E402

from benchmarks.harness import SPEED  # noqa: E402
from purerl.cpu import CPU_XLA_FLAGS  # noqa: E402

SCHEDULER_OFF = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
setups = {
    "1 process, 1 device, XLA's multi-threaded ops": (1, SCHEDULER_OFF),
    "1 process, 1 device, single-threaded ops": (1, " ".join(CPU_XLA_FLAGS)),
    "2 processes x 1 device (population sharded), single-threaded ops": (2, " ".join(CPU_XLA_FLAGS)),
}
load_before = os.getloadavg()[0]
results = {}
for label, (processes, flags) in setups.items():
    r = launch(processes, flags, f"/tmp/{args.name}_{processes}.json")
    r["xla_flags"] = flags
    r["seconds_per_generation_median"] = float(np.median(r["generation_s"]))
    results[label] = r
    print(
        f"{label}: compile {r['compile_s']:.1f} s, {r['seconds_per_generation_median']:.2f} s/generation",
        flush=True,
    )
sharded = results[list(setups)[-1]]
what = "seconds per ES generation, TA-LPO (from scratch) with inner PPO on CartPole-v1"
res = harness.result(
    SPEED, args.name, what, algo="lpo", env="CartPole-v1", compile_s=round(sharded["compile_s"], 3),
    run_s=sharded["seconds_per_generation_median"],
    throughput=args.population * args.total_timesteps / sharded["seconds_per_generation_median"],
    throughput_unit="inner env steps/s (2 processes)",
    extra={"population": args.population, "inner_env_steps_per_member": args.total_timesteps,
           "generations_timed": args.generations, "results": results,
           "why_processes": "2 fake host devices in one process deadlock in XLA's CPU runtime on this "
                            "machine; 2 processes with one CPU device each is how purerl uses both cores",
           "load_average_before_after": [load_before, os.getloadavg()[0]]})
print(f"{args.name}: {harness.one_line(res)} -> {harness.write(res)}")
