"""PRDC, O-DICE, TD3+BC, IQL and BC on purerl's brax datasets (`purerl collect`), normalised score per seed
with a 95% bootstrap CI, at a CPU budget (the papers: 1M updates, 256x256 nets, D4RL MuJoCo).

  python -m benchmarks.bench_offline_brax --datasets hopper-medium-replay hopper-medium --updates 20000

Every (dataset, algorithm) trains through `purerl.runner.train_and_evaluate` (the CLI's numbers: its jitted
chunks vmapped over the seeds, compile timed apart from run, then `--eval-episodes` episodes per seed with
the runner's evaluation keys in the brax env the data came from, same physics backend, the agent's own state
normalisation). Scores use the dataset's own reference returns (`ref_min_score` / `ref_max_score` in its
metadata: purerl's random policy and its expert), so they are NOT comparable with published D4RL numbers.
The verdict per dataset: does PRDC / O-DICE beat TD3+BC or IQL with non-overlapping 95% CIs (the
reproduction criterion).

One result file, `<out>/<name>.json` (harness schema, `harness.several_runs`): a COMPARISON, because what
the benchmark decides is PRDC / O-DICE against TD3+BC / IQL; every run's TRAIN result (normalised score per
seed under `scores.normalised_score`) and every pair's `stats.compare` sit under `extra`. It is written
after every algorithm, so a stopped run keeps what it finished.
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import Entry
from purerl import data as pdata
from purerl import stats
from purerl.agents import bc, iql, odice, prdc, td3_bc
from purerl.data.score import normalized_score, reference_returns

ALGOS = ("PRDC", "O-DICE", "TD3+BC", "IQL", "BC")
REGISTRY_NAME = {"PRDC": "prdc", "O-DICE": "odice", "TD3+BC": "td3_bc", "IQL": "iql", "BC": "bc"}
METADATA_KEYS = ("env_id", "kind", "algorithm", "brax_backend", "expert_steps", "policy_step",
                 "ref_min_score", "ref_max_score", "medium_fraction", "git_hash")


def make_config(
    algo: str,
    path: str,
    updates: int,
    chunk: int,
    hidden: tuple[int, ...],
    batch: int,
    episodes: int,
    prdc_alpha: float | None = None,
):
    common = dict(num_updates=updates, updates_per_iteration=chunk, batch_size=batch, eval_episodes=episodes)
    if algo == "PRDC":
        alpha = {} if prdc_alpha is None else {"alpha": prdc_alpha}  # else the per-dataset preset
        return prdc, prdc.config_for(path, hidden=hidden, **alpha, **common)
    if algo == "O-DICE":
        return odice, odice.Config(dataset=path, value_hidden=hidden, policy_hidden=hidden, **common)
    module = {"TD3+BC": td3_bc, "IQL": iql, "BC": bc}[algo]
    return module, module.Config(dataset=path, hidden=hidden, **common)


def run_one(algo: str, dataset: str, path: str, meta: dict, args) -> dict:
    """Train and evaluate `algo` on the dataset: its TRAIN result with the normalised score per seed."""
    _, config = make_config(algo, path, args.updates, args.chunk, tuple(args.hidden), args.batch,
                            args.eval_episodes, args.prdc_alpha)
    entry = Entry(f"{dataset}/{algo}", algo=REGISTRY_NAME[algo], config=dataclasses.asdict(config),
                  num_seeds=args.seeds, what=f"{algo} on {dataset}, {args.updates} updates per seed")
    res, run = harness.trained(entry)
    low, high = reference_returns(meta)
    scores = normalized_score(np.asarray(run.returns, np.float64), low, high).mean(axis=1)
    res["env"] = dataset
    res["scores"]["normalised_score"] = stats.summarize(scores)
    res["extra"].update(label=algo, final_train_metrics={k: np.asarray(v)[:, -1].tolist()
                                                         for k, v in run.metrics.items()})
    score = res["scores"]["normalised_score"]
    print(f"{Path(path).name:45s} {algo:7s} score {score['mean']:6.1f} [{score['ci'][0]:6.1f}, "
          f"{score['ci'][1]:6.1f}]  per seed {np.round(scores, 1).tolist()}  "
          f"compile {res['compile_s']:.0f} s, run {res['run_s']:.0f} s", flush=True)
    return res


def verdicts(runs: list[dict]) -> tuple[dict[str, str], list[dict]]:
    """PRDC / O-DICE vs TD3+BC / IQL on one dataset: beats (CI entirely above), worse (entirely below), else
    overlapping; and `stats.compare` of their normalised scores for each such pair."""
    by_algo = {r["extra"]["label"]: r for r in runs}
    relations, comparisons = {}, []
    for algo in ("PRDC", "O-DICE"):
        bases = [base for base in ("TD3+BC", "IQL") if algo in by_algo and base in by_algo]
        if not bases:
            continue
        ci = by_algo[algo]["scores"]["normalised_score"]["ci"]
        relations[algo] = ", ".join(
            f"{stats.interval_relation(ci, by_algo[base]['scores']['normalised_score']['ci'])} {base}"
            for base in bases)
        comparisons += [harness.compared(by_algo[algo], by_algo[base],
                                         f"normalised score, {by_algo[algo]['env']}", "normalised_score")
                        for base in bases]
    return relations, comparisons


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_offline_brax", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["hopper-medium-replay"],
        help="paths or env-kind names in the dataset cache",
    )
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=1_000, help="updates per scanned iteration")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--name", default="offline_brax")
    parser.add_argument(
        "--prdc-alpha",
        type=float,
        default=None,
        help="PRDC's alpha instead of the per-dataset preset (40 halfcheetah, 2.5 hopper/walker2d)",
    )
    parser.add_argument("--out", default=str(harness.RESULTS), help="results directory")
    args = parser.parse_args(argv)
    what = "PRDC / O-DICE vs TD3+BC / IQL / BC on purerl brax datasets, normalised score, 95% bootstrap CI"
    budget = (f"{args.updates} gradient updates per seed, batch {args.batch}, hidden {args.hidden}, "
              f"{args.seeds} seeds, {args.eval_episodes} evaluation episodes per seed; the papers use 1M "
              "updates on D4RL MuJoCo with 256x256 nets")
    load_before, start = os.getloadavg(), time.perf_counter()
    datasets, runs, comparisons = {}, [], []
    for dataset in args.datasets:
        path = pdata.resolve(dataset)
        meta = pdata.metadata(path)
        entry = datasets[dataset] = {
            "path": path, "rows": int(len(pdata.load(path)["observations"])),
            "metadata": {k: (v.item() if hasattr(v, "item") else v) for k, v in meta.items()
                         if k in METADATA_KEYS}}
        dataset_runs = []
        for algo in args.algos:
            dataset_runs.append(run_one(algo, dataset, path, meta, args))
            entry["verdict"], pairs = verdicts(dataset_runs)
            extra = {"budget": budget, "datasets": datasets, "wall_s": round(time.perf_counter() - start, 1),
                     "load_average_before_after": [list(load_before), list(os.getloadavg())]}
            res = harness.several_runs(args.name, what, runs + dataset_runs, comparisons + pairs, extra,
                                       budget=args.updates, budget_unit="updates",
                                       seeds=list(range(args.seeds)))
            path_written = harness.write(res, args.out)
        runs, comparisons = runs + dataset_runs, comparisons + pairs
        print(f"{dataset}: {entry['verdict']}", flush=True)
    print(f"{args.name}: {harness.one_line(res)} -> {path_written}")


if __name__ == "__main__":
    main()
