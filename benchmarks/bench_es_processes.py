"""Seconds per ES generation of TA-LPO meta-training (population 32, inner PPO on CartPole-v1) with the
population on 1 device vs sharded over 2 devices.

Two fake host devices in one process can hang in XLA's CPU runtime here (jaxlib's batched LAPACK kernels
block the shared intra-op pool: README, "Known issues"), so "2 devices" is measured the
way `purerl train` uses both cores: 2 processes with one CPU device each, joined by jax.distributed on
127.0.0.1, the population sharded over them by `purerl.sweep.over_seeds` (shard_map). Compile time is
measured separately from the generations.

    python -m benchmarks.bench_es_processes --generations 5
"""

from __future__ import annotations

from benchmarks import harness  # noqa: F401 # isort: skip  (first: sets the XLA CPU flags before jax loads)

import argparse
import json
import os
import subprocess
import sys
import time

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
    t = time.perf_counter()
    step = jax.jit(generation).lower(state, generation_key(0, 0)).compile()
    compile_s = time.perf_counter() - t
    times = []
    for g in range(args.generations):
        t = time.perf_counter()
        state, fitness = step(state, generation_key(0, g))
        fitness = to_host(fitness)
        times.append(time.perf_counter() - t)
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
        __file__,
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

from purerl import logging as plog  # noqa: E402
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
out = {
    "benchmark": "seconds per ES generation, TA-LPO (from scratch) with inner PPO on CartPole-v1",
    "command": "python -m benchmarks.bench_es_processes " + " ".join(sys.argv[1:]),
    "population": args.population,
    "inner_env_steps_per_member": args.total_timesteps,
    "generations_timed": args.generations,
    "results": results,
    "why_processes": "2 fake host devices in one process deadlock in XLA's CPU runtime on this machine; "
    "2 processes with one CPU device each is how purerl uses both cores",
    "load_average_before_after": [load_before, os.getloadavg()[0]],
    "versions": plog.versions(),
    "machine": plog.machine(),
}
os.makedirs("benchmarks/results", exist_ok=True)
with open(f"benchmarks/results/{args.name}.json", "w") as f:
    json.dump(out, f, indent=1)
