"""What purerl's datasets hold next to D4RL's published figures: records the statistics of collected
datasets and rebuilds the table in docs/datasets.md from the record.

    python -m benchmarks.dataset_stats --data DIR --env hopper --command "purerl collect ..." --wall-s 812
    python -m benchmarks.dataset_stats            # only rebuild the table from the record

`--data DIR` reads `<env>-<kind>-purerl-v0.hdf5` there (the `.stats.json` sidecar, else
`purerl.data.summarize` of the file) into benchmarks/results/offline_dataset_stats.json. `--d4rl DIR` adds
real D4RL v2 files (`<env>-<kind>-v2.hdf5`) summarised the same way. Without them, D4RL's side holds what
D4RL publishes: the reference returns of its random policy and of its expert (`purerl.data.D4RL_REFS`), the
policies behind its random and expert datasets.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import h5py

from benchmarks.convert_legacy import convert
from purerl.data import D4RL_REFS, KINDS, dataset_path, read_hdf5, stats_path, summarize
from purerl.logging import write_json

HERE = Path(__file__).resolve().parent
RECORD = HERE / "results" / "offline_dataset_stats.json"
DOC = HERE.parent / "docs" / "datasets.md"
START, END = "<!-- dataset-stats:start (python -m benchmarks.dataset_stats) -->", "<!-- dataset-stats:end -->"


def file_stats(path: str) -> dict:
    """The sidecar's statistics, else computed from the file; plus the file's reference returns if any."""
    if os.path.exists(stats_path(path)):
        with open(stats_path(path)) as f:
            stats = json.load(f)
        with h5py.File(path, "r") as f:
            meta = {k: f[f"metadata/{k}"][()] for k in ("ref_min_score", "ref_max_score")
                    if f"metadata/{k}" in f}
    else:
        data, meta = read_hdf5(path)
        stats = summarize(data)
    refs = [float(meta[k]) for k in ("ref_min_score", "ref_max_score") if k in meta]
    return {**stats, "refs": refs if len(refs) == 2 else None}


def record(args) -> None:
    results = json.loads(RECORD.read_text())["legacy"] if RECORD.exists() else {
        "benchmark": "statistics of purerl's datasets (purerl.data.summarize) beside D4RL v2's",
        "envs": {}}
    entry = {"command": args.command, "wall_s": args.wall_s, "machine": args.machine, "purerl": {},
             "d4rl": {}}
    for kind in KINDS:
        path = dataset_path(args.env, kind, args.data)
        if os.path.exists(path):
            entry["purerl"][kind] = file_stats(path)
        if args.d4rl and os.path.exists(os.path.join(args.d4rl, f"{args.env}-{kind}-v2.hdf5")):
            entry["d4rl"][kind] = file_stats(os.path.join(args.d4rl, f"{args.env}-{kind}-v2.hdf5"))
    results["envs"][args.env] = entry
    results["machine"] = {"platform": "cpu", "cpu_count": os.cpu_count()}  # where the record was made
    write_json(str(RECORD), convert(RECORD.stem, results))  # the harness schema, these fields under legacy


def normalised(mean_return: float, refs) -> str:
    return f"{100 * (mean_return - refs[0]) / (refs[1] - refs[0]):.1f}" if refs else "-"


def stats_cells(stats: dict, refs) -> list[str]:
    length, ret, reward = stats["episode_length"], stats["return"], stats["reward_per_step"]
    return [f"{stats['rows']:,}", f"{stats['episodes']:,}",
            f"{length['min']} / {length['median']:.0f} / {length['mean']:.0f} / {length['max']}",
            f"{ret['mean']:.1f} ± {ret['std']:.1f}",
            f"{ret['q25']:.0f} / {ret['median']:.0f} / {ret['q75']:.0f}",
            f"{reward['mean']:.2f} ± {reward['std']:.2f}", f"{100 * stats['actions_at_bounds']:.1f}%",
            normalised(ret["mean"], refs)]


def table(results: dict) -> str:
    head = ["env", "kind", "data", "rows", "episodes", "length min / median / mean / max",
            "return mean ± std", "return q25 / median / q75", "reward per step", "actions at bounds",
            "normalised return"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for env, entry in results["envs"].items():
        d4rl_refs = list(D4RL_REFS[env])
        for kind in KINDS:
            if kind in entry["purerl"]:
                stats = entry["purerl"][kind]
                cells = stats_cells(stats, stats["refs"])
                lines.append("| " + " | ".join([env, kind, "purerl (brax)", *cells]) + " |")
            if kind in entry["d4rl"]:
                lines.append("| " + " | ".join([env, kind, "D4RL v2 (file)",
                                                *stats_cells(entry["d4rl"][kind], d4rl_refs)]) + " |")
            elif kind in ("random", "expert"):  # D4RL's reference returns: its random / expert policy's mean
                published = d4rl_refs[0 if kind == "random" else 1]
                cells = ["-"] * 3 + [f"{published:.1f} (reference)", "-", "-", "-",
                                     normalised(published, d4rl_refs)]
                lines.append("| " + " | ".join([env, kind, "D4RL v2 (paper)", *cells]) + " |")
    return "\n".join(lines)


def rebuild_doc(results: dict) -> None:
    text = DOC.read_text()
    before, rest = text.split(START)
    _, after = rest.split(END)
    DOC.write_text(f"{before}{START}\n{table(results)}\n{END}{after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="directory with purerl's collected datasets (records them)")
    parser.add_argument("--env", default="hopper")
    parser.add_argument("--d4rl", help="directory with D4RL v2 files <env>-<kind>-v2.hdf5 (optional)")
    parser.add_argument("--command", default="", help="the collect command that made --data (recorded)")
    parser.add_argument("--wall-s", type=float, default=None, help="its wall-clock seconds (recorded)")
    parser.add_argument("--machine", default="", help="where it ran (recorded)")
    args = parser.parse_args()
    if args.data:
        record(args)
    rebuild_doc(json.loads(RECORD.read_text())["legacy"])


if __name__ == "__main__":
    main()
