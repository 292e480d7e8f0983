"""PRDC, O-DICE, TD3+BC, IQL and BC on purerl's brax datasets (`purerl collect`), normalised score per seed
with a 95% bootstrap CI, at a CPU budget (the papers: 1M updates, 256x256 nets, D4RL MuJoCo).

  python -m benchmarks.bench_offline_brax --datasets hopper-medium-replay hopper-medium --updates 20000

Every (dataset, algorithm) is one jitted program vmapped over the seeds: train `--updates` gradient updates,
then evaluate `--eval-episodes` episodes per seed in the brax env the data came from (same physics backend,
the agent's own state normalisation). Compile time is measured apart from run time. Scores use the dataset's
own reference returns (`ref_min_score` / `ref_max_score` in its metadata: purerl's random policy and its
expert), so they are NOT comparable with published D4RL numbers. The verdict per dataset: does PRDC / O-DICE
beat TD3+BC or IQL with non-overlapping 95% CIs (the reproduction criterion). Results are written
after every algorithm to benchmarks/results/<name>.json, so a stopped run keeps what it finished.
"""

from __future__ import annotations

from benchmarks import harness  # noqa: F401 # isort: skip  (first: sets the XLA CPU flags before jax loads)

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jax  # noqa: E402
import numpy as np  # noqa: E402

from purerl import data as pdata  # noqa: E402
from purerl.agent import train_fn  # noqa: E402
from purerl.agents import bc, iql, odice, prdc, td3_bc  # noqa: E402
from purerl.data.score import normalized_score, reference_returns  # noqa: E402
from purerl.logging import compile_and_run, machine, versions  # noqa: E402
from purerl.plotting import bootstrap_ci  # noqa: E402
from purerl.stats import interval_relation  # noqa: E402
from purerl.sweep import seed_keys  # noqa: E402

RESULTS = Path(__file__).parent / "results"
ALGOS = ("PRDC", "O-DICE", "TD3+BC", "IQL", "BC")


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


def run_one(algo: str, path: str, meta: dict, args) -> dict:
    module, config = make_config(
        algo,
        path,
        args.updates,
        args.chunk,
        tuple(args.hidden),
        args.batch,
        args.eval_episodes,
        args.prdc_alpha,
    )
    agent = module.make_agent(config)
    train = train_fn(agent)

    def program(key):
        state, metrics = train(key)
        return agent.evaluate(state, jax.random.fold_in(key, 12345)), metrics

    (returns, metrics), compile_s, run_s = compile_and_run(jax.vmap(program), seed_keys(range(args.seeds)))
    returns = np.asarray(returns, np.float64)  # (seeds, episodes)
    low, high = reference_returns(meta)
    scores = normalized_score(returns, low, high).mean(axis=1)
    mean, ci_low, ci_high = bootstrap_ci(scores)
    print(
        f"{Path(path).name:45s} {algo:7s} score {mean:6.1f} [{ci_low:6.1f}, {ci_high:6.1f}]  per seed "
        f"{np.round(scores, 1).tolist()}  compile {compile_s:.0f} s, run {run_s:.0f} s",
        flush=True,
    )
    return {
        "algo": algo,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(config).items()},
        "score_per_seed": scores.tolist(),
        "score_mean": float(mean),
        "score_ci95": [float(ci_low), float(ci_high)],
        "return_per_seed": returns.mean(axis=1).tolist(),
        "compile_s": round(compile_s, 1),
        "run_s": round(run_s, 1),
        "updates_per_s": round(args.updates / run_s, 1),
        "final_train_metrics": {k: np.asarray(v)[:, -1].tolist() for k, v in metrics.items()},
    }


def verdicts(rows: list[dict]) -> dict[str, str]:
    """PRDC / O-DICE vs TD3+BC / IQL: beats (CI entirely above), worse (entirely below), else overlapping."""
    by_algo = {r["algo"]: r for r in rows}
    out = {}
    for algo in ("PRDC", "O-DICE"):
        if algo not in by_algo:
            continue
        ci = by_algo[algo]["score_ci95"]
        out[algo] = ", ".join(f"{interval_relation(ci, by_algo[base]['score_ci95'])} {base}"
                              for base in ("TD3+BC", "IQL") if base in by_algo)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    args = parser.parse_args()
    out = RESULTS / f"{args.name}.json"
    record = {
        "benchmark": "PRDC / O-DICE vs TD3+BC / IQL / BC on purerl brax datasets, normalised score, 95% "
        "bootstrap CI over seeds",
        "budget": f"{args.updates} gradient updates per seed, batch {args.batch}, hidden {args.hidden}, "
        f"{args.seeds} seeds, {args.eval_episodes} evaluation episodes per seed; the papers use 1M "
        "updates on D4RL MuJoCo with 256x256 nets",
        "command": "python " + " ".join(sys.argv),
        "load_average_before": os.getloadavg(),
        "datasets": {},
        "versions": versions(),
        "machine": machine(),
    }
    t0 = time.perf_counter()
    for dataset in args.datasets:
        path = pdata.resolve(dataset)
        meta = pdata.metadata(path)
        entry = record["datasets"][dataset] = {
            "path": path,
            "rows": int(len(pdata.load(path)["observations"])),
            "metadata": {
                k: (v.item() if hasattr(v, "item") else v)
                for k, v in meta.items()
                if k
                in (
                    "env_id",
                    "kind",
                    "algorithm",
                    "brax_backend",
                    "expert_steps",
                    "policy_step",
                    "ref_min_score",
                    "ref_max_score",
                    "medium_fraction",
                    "git_hash",
                )
            },
            "results": [],
        }
        for algo in args.algos:
            entry["results"].append(run_one(algo, path, meta, args))
            entry["verdict"] = verdicts(entry["results"])
            record["wall_s"] = round(time.perf_counter() - t0, 1)
            record["load_average_after"] = os.getloadavg()
            out.write_text(json.dumps(record, indent=1, default=str))
        print(f"{dataset}: {entry['verdict']}", flush=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
