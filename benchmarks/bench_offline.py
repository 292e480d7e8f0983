"""Offline-RL speed: TD3+BC and IQL gradient updates/s at batch 256 (256x256 nets, the papers' setting), 1
seed and 8 vmapped seeds, compile time measured apart from run time; optionally dataset generation time.

The dataset is a synthetic D4RL-layout array set of `--rows` rows with hopper's shapes (obs 11, act 3) held on
the device and closed over by `update` (as in training); gradient-step cost does not depend on the data's
content.

Usage: `python -m benchmarks.bench_offline speed [--updates 1000 --chunks 3]` -> results/offline_speed.json
       `python -m benchmarks.bench_offline collect --env Pendulum-v1 --size 20000 --expert-steps 12000`
       -> results/offline_collect_<env>.json (generation time per kind, reference returns).
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import json
import os
import tempfile
import time

from benchmarks.harness import SPEED
from benchmarks.workloads import synthetic_file, time_offline_updates
from purerl import data as pdata
from purerl.agents import iql, td3_bc

NOTE = (
    "2-core CPU shared with ~6 other engineers' jobs (load average 10-20 during the run): timings are noisy "
    "lower bounds of the idle machine's speed."
)


def speed(args) -> dict:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hopper-synthetic.hdf5")
        synthetic_file(path, args.rows)
        for name, module in (("td3_bc", td3_bc), ("iql", iql)):
            for seeds in (1, 8):
                r = {"algo": name, **time_offline_updates(module, path, seeds, args.updates, args.chunks)}
                print(json.dumps(r), flush=True)
                results.append(r)
                harness.write(_speed_result(args, results))  # partial results survive a kill
    return _speed_result(args, results)


def _speed_result(args, results) -> dict:
    first = results[0]
    return harness.result(
        SPEED,
        "offline_speed",
        "offline gradient updates/s, batch 256, 256x256 nets, dataset closed over",
        algo=first["algo"],
        env="hopper (synthetic)",
        compile_s=first["compile_s"],
        run_s=min(first["call_s"]),
        throughput=first["updates_per_s_all_seeds"],
        throughput_unit="updates/s (all seeds)",
        extra={"rows": args.rows, "results": results, "note": NOTE},
    )


def collect(args) -> dict:
    from purerl.collect import KINDS, CollectConfig
    from purerl.collect import collect as run_collect

    out = args.out or tempfile.mkdtemp()
    config = CollectConfig(
        env=args.env,
        kinds=KINDS,
        size=args.size,
        out=out,
        expert_steps=args.expert_steps,
        checkpoint_every=args.checkpoint_every,
        ref_episodes=100,
        expert="train",  # this benchmark times the expert's training too, shipped expert or not
        overwrite=True,
    )
    t = time.perf_counter()
    paths = run_collect(config)
    total = time.perf_counter() - t
    files = {}
    for kind, path in paths.items():
        meta = pdata.metadata(path)
        rows = len(pdata.read_hdf5(path)[0]["rewards"])
        files[kind] = {
            "rows": rows,
            "generation_s": meta.get("generation_s"),
            "policy_step": meta["policy_step"],
        }
    size = sum(f["rows"] for f in files.values())
    return harness.result(
        SPEED,
        f"offline_collect_{args.env}",
        f"purerl collect {args.env}: dataset generation",
        env=args.env,
        config={
            k: getattr(config, k)
            for k in (
                "env",
                "size",
                "expert_steps",
                "checkpoint_every",
                "medium_fraction",
                "num_envs",
                "seed",
            )
        },
        run_s=round(total, 1),
        throughput=size / total,
        throughput_unit="rows/s (all kinds)",
        extra={
            "ref_min_score": meta["ref_min_score"],
            "ref_max_score": meta["ref_max_score"],
            "medium_checkpoint": meta["medium_checkpoint"],
            "files": files,
            "note": NOTE,
        },
    )


def main():
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_offline")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--updates", type=int, default=1000)
    s.add_argument("--chunks", type=int, default=3)
    s.add_argument("--rows", type=int, default=1_000_000)
    c = sub.add_parser("collect")
    c.add_argument("--env", default="Pendulum-v1")
    c.add_argument("--size", type=int, default=20_000)
    c.add_argument("--expert-steps", type=int, default=12_000)
    c.add_argument("--checkpoint-every", type=int, default=1000)
    c.add_argument("--out", default="")
    args = parser.parse_args()
    result = speed(args) if args.cmd == "speed" else collect(args)
    print(f"{result['name']}: {harness.one_line(result)} -> {harness.write(result)}")


if __name__ == "__main__":
    main()
