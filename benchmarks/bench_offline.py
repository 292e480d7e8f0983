"""Offline-RL speed: TD3+BC and IQL gradient updates/s at batch 256 (256x256 nets, the papers' setting), 1 seed
and 8 vmapped seeds, compile time measured apart from run time; optionally dataset generation time.

The dataset is a synthetic D4RL-layout array set of `--rows` rows with hopper's shapes (obs 11, act 3) held on the
device and closed over by `update` (as in training); gradient-step cost does not depend on the data's content.

Usage: `python benchmarks/bench_offline.py speed [--updates 1000 --chunks 3]` -> benchmarks/results/offline_speed.json
       `python benchmarks/bench_offline.py collect --env Pendulum-v1 --size 20000 --expert-steps 12000`
       -> benchmarks/results/offline_collect_<env>.json (generation time per kind, reference returns).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_enable_concurrency_optimized_scheduler=false")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from purerl import data as pdata  # noqa: E402
from purerl.agents import iql, td3_bc  # noqa: E402
from purerl.logging import machine, versions  # noqa: E402
from purerl.sweep import seed_keys  # noqa: E402

RESULTS = Path(__file__).parent / "results"
NOTE = ("2-core CPU shared with ~6 other engineers' jobs (load average 10-20 during the run): timings are noisy "
        "lower bounds of the idle machine's speed.")


def synthetic_file(path: str, rows: int, obs_dim: int = 11, act_dim: int = 3) -> None:
    rng = np.random.default_rng(0)
    d = {"observations": rng.normal(size=(rows, obs_dim)).astype(np.float32),
         "actions": rng.uniform(-1, 1, (rows, act_dim)).astype(np.float32),
         "rewards": rng.normal(size=rows).astype(np.float32),
         "next_observations": rng.normal(size=(rows, obs_dim)).astype(np.float32),
         "terminals": rng.random(rows) < 0.001, "timeouts": np.zeros(rows, bool)}
    d["timeouts"][999::1000] = True
    pdata.write_hdf5(path, d, {"env_id": "hopper", "episode_length": 1000, "purerl_version": "0"}, overwrite=True)


def time_agent(module, path: str, seeds: int, updates: int, chunks: int, stages=(0,), **overrides) -> dict:
    """Compile `update` (`updates` gradient steps per call, `seeds` vmapped) apart from running it, then time
    `chunks` calls. With several `stages` (gradient steps done before each timed group; untimed calls fill
    the gaps) the cost is also measured later in training, for costs that depend on the policy (PRDC's tree
    search); the top-level keys are the first stage's."""
    config = module.Config(dataset=path, num_updates=updates * chunks, updates_per_iteration=updates,
                           brax_backend="spring", **overrides)
    agent = module.make_agent(config)
    keys = seed_keys(range(seeds))
    init = jax.jit(jax.vmap(agent.init))
    state = jax.block_until_ready(init(keys))
    t = time.perf_counter()
    update = jax.jit(jax.vmap(agent.update), donate_argnums=0).lower(state).compile()
    compile_s = time.perf_counter() - t
    done, timed = 0, []
    for stage in stages:
        while done < stage:
            state, metrics = update(state)
            jax.block_until_ready(metrics)
            done += updates
        times = []
        for _ in range(chunks):
            t = time.perf_counter()
            state, metrics = update(state)
            jax.block_until_ready(metrics)
            times.append(time.perf_counter() - t)
        best = min(times)
        timed.append({"after_updates": stage, "call_s": [round(x, 3) for x in times],
                      "updates_per_s_per_seed": round(updates / best, 1),
                      "updates_per_s_all_seeds": round(seeds * updates / best, 1)})
        done += updates * chunks
    first = {k: v for k, v in timed[0].items() if k != "after_updates"}
    return {"seeds": seeds, "updates_per_call": updates, "calls": chunks, "compile_s": round(compile_s, 2),
            **first, **({"stages": timed} if len(stages) > 1 else {})}


def speed(args) -> dict:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hopper-synthetic.hdf5")
        synthetic_file(path, args.rows)
        for name, module in (("td3_bc", td3_bc), ("iql", iql)):
            for seeds in (1, 8):
                r = {"algo": name, **time_agent(module, path, seeds, args.updates, args.chunks)}
                print(json.dumps(r), flush=True)
                results.append(r)
                _write("offline_speed.json", _speed_result(args, results))  # partial results survive a kill
    return _speed_result(args, results)


def _write(name: str, result: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / name, "w") as f:
        json.dump(result, f, indent=2)


def _speed_result(args, results) -> dict:
    return {"benchmark": "offline gradient updates/s, batch 256, 256x256 nets, dataset closed over",
            "rows": args.rows, "results": results, "torch_reference": "not measured (time)",
            "note": NOTE, "versions": versions(), "machine": machine()}


def collect(args) -> dict:
    from purerl.data.collect import KINDS, CollectConfig
    from purerl.data.collect import collect as run_collect

    out = args.out or tempfile.mkdtemp()
    config = CollectConfig(env=args.env, kinds=KINDS, size=args.size, out=out, expert_steps=args.expert_steps,
                           checkpoint_every=args.checkpoint_every, ref_episodes=100, overwrite=True)
    t = time.perf_counter()
    paths = run_collect(config)
    total = time.perf_counter() - t
    files = {}
    for kind, path in paths.items():
        meta = pdata.metadata(path)
        rows = len(pdata.read_hdf5(path)[0]["rewards"])
        files[kind] = {"rows": rows, "generation_s": meta.get("generation_s"), "policy_step": meta["policy_step"]}
    return {"benchmark": f"purerl collect {args.env}", "config": {k: getattr(config, k) for k in (
        "env", "size", "expert_steps", "checkpoint_every", "medium_fraction", "num_envs", "seed")},
            "total_s": round(total, 1), "ref_min_score": meta["ref_min_score"], "ref_max_score": meta["ref_max_score"],
            "medium_checkpoint": meta["medium_checkpoint"], "files": files, "note": NOTE,
            "versions": versions(), "machine": machine()}


def main():
    parser = argparse.ArgumentParser()
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
    if args.cmd == "speed":
        result, name = speed(args), "offline_speed.json"
    else:
        result, name = collect(args), f"offline_collect_{args.env}.json"
    _write(name, result)
    print(f"wrote {RESULTS / name}")


if __name__ == "__main__":
    main()
