"""PRDC (with its exact nearest-neighbour search over the whole dataset) and O-DICE gradient updates/s vs
TD3+BC on the same data, batch 256, 1 and 8 vmapped seeds; compile time measured apart from run time (reuses
`workloads.time_offline_updates`). The speed target: a PRDC update with the exact search over a 1M-row dataset
costs at most 3x a TD3+BC update (`cost_ratios_per_update` below).

Data (`--data`):
- `hopper` (default): real states and actions, the purerl hopper files in the dataset cache
  (`purerl collect`), random, medium-replay, full-replay, medium, expert (922,880 distinct rows), topped up
  to `--rows` with medium-expert rows (copies of medium/expert rows).
- `synthetic`: i.i.d. Gaussian states and uniform actions of hopper's shapes (`workloads.synthetic_file`);
  the tree search's worst case (no structure for its bounds to use), not what an RL dataset looks like.

PRDC runs once per `--prdc-modes` search mode. The tree search's cost depends on how far the actor's actions
are from the data, so every run is timed at each of `--stages` (gradient steps done before the timed calls):
at initialisation (an untrained actor, far from the data) and later in training. The brute-force `exact`
search costs the same at every stage, so it is timed at initialisation only.

Usage: `python -m benchmarks.bench_prdc_odice [--rows 1000000 --updates 50 --chunks 3 --stages 0 2000]`
       -> benchmarks/results/prdc_odice_speed_<data>_<rows>.json
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import json
import os
import tempfile
import time
import typing
from pathlib import Path

import h5py
import numpy as np

from benchmarks.harness import SPEED
from benchmarks.workloads import synthetic_file, time_offline_updates
from purerl import data as pdata
from purerl.agents import odice, prdc, td3_bc

CACHE = Path.home() / ".cache" / "purerl" / "datasets"
HOPPER_KINDS = ("random", "medium-replay", "full-replay", "medium", "expert", "medium-expert")
KEYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


def hopper_file(path: str, rows: int) -> None:
    """The cached purerl hopper files, concatenated in `HOPPER_KINDS` order and cut at `rows`."""
    parts, have = {k: [] for k in KEYS}, 0
    for kind in HOPPER_KINDS:
        source = CACHE / f"hopper-{kind}-purerl-v0.hdf5"
        if not source.exists():
            raise FileNotFoundError(f"{source} is missing: run `purerl collect --env hopper` first")
        with h5py.File(source) as f:
            take = min(rows - have, len(f["observations"]))
            for k in KEYS:
                parts[k].append(f[k][:take])
        have += take
        if have == rows:
            break
    if have < rows:
        raise ValueError(f"the cached hopper files hold only {have} rows, fewer than --rows {rows}")
    data = {k: np.concatenate(v) for k, v in parts.items()}
    pdata.write_hdf5(
        path, data, {"env_id": "hopper", "episode_length": 1000, "purerl_version": "0"}, overwrite=True
    )


def ratios(results: list[dict]) -> dict:
    """Per-update cost of each PRDC/O-DICE run over TD3+BC's with the same seeds, at each timed stage."""
    out = {}
    for r in results:
        base = next((b for b in results if b["algo"] == "td3_bc" and b["seeds"] == r["seeds"]), None)
        if base is None or r["algo"] == "td3_bc":
            continue
        for stage in r.get("stages", [{"after_updates": 0, **r}]):
            out[f"{r['algo']}_over_td3_bc_{r['seeds']}_seeds_after_{stage['after_updates']}"] = round(
                base["updates_per_s_per_seed"] / stage["updates_per_s_per_seed"], 2
            )
    return out


def as_result(name: str, args, results: list[dict], elapsed_s: float) -> dict:
    """A harness SPEED result: the first run's updates/s as the headline, every run under extra.results."""
    first = results[0]
    what = ("offline gradient updates/s, batch 256, 256x256 nets, dataset closed over; PRDC's search modes "
            "(all exact): tree = kd-tree leaves of 256 rows, exact = blocked brute force (block 65536, fp32 "
            "HIGHEST)")
    return harness.result(
        SPEED, name, what, algo=first["algo"], env=f"hopper ({args.data})", seeds=list(range(first["seeds"])),
        compile_s=first["compile_s"], run_s=min(first["call_s"]), throughput=first["updates_per_s_all_seeds"],
        throughput_unit=f"updates/s ({first['algo']}, all seeds)",
        extra={"data": args.data, "rows": args.rows, "results": results,
               "cost_ratios_per_update": ratios(results), "elapsed_s": round(elapsed_s, 1),
               "load_average_1_5_15min": os.getloadavg()})


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_prdc_odice", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=("hopper", "synthetic"), default="hopper")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--updates", type=int, default=50, help="gradient steps per timed call")
    parser.add_argument("--chunks", type=int, default=3, help="timed calls per stage (the best one counts)")
    parser.add_argument("--stages", type=int, nargs="+", default=[0, 2000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    search_modes = typing.get_args(typing.get_type_hints(prdc.Config)["search_mode"])
    parser.add_argument("--prdc-modes", nargs="+", default=["tree", "exact"], choices=search_modes)
    parser.add_argument("--odice", action="store_true", help="also time O-DICE")
    parser.add_argument("--out", default="", help="result file (.json); default results/prdc_odice_speed_...")
    args = parser.parse_args(argv)
    out = Path(args.out or harness.RESULTS / f"prdc_odice_speed_{args.data}_{args.rows}.json")
    results, start = [], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hopper-bench.hdf5")
        (hopper_file if args.data == "hopper" else synthetic_file)(path, args.rows)
        for seeds in args.seeds:
            runs = [("td3_bc", td3_bc, {}, [0])]
            for mode in args.prdc_modes:
                stages = args.stages if mode == "tree" else [0]
                runs.append((f"prdc_{mode}", prdc, {"search_mode": mode}, stages))
            if args.odice:
                runs.append(("odice", odice, {}, [0]))
            for name, module, overrides, stages in runs:
                r = {
                    "algo": name,
                    **time_offline_updates(
                        module, path, seeds, args.updates, args.chunks, stages, **overrides
                    ),
                }
                print(json.dumps(r), flush=True)
                results.append(r)
                res = as_result(out.stem, args, results, time.time() - start)
                harness.write(res, out.parent)  # after every run: a stopped run keeps what it finished
    print(f"{res['name']}: {harness.one_line(res)} -> {out}")


if __name__ == "__main__":
    main()
