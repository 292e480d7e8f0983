"""TA-LPG meta-trained by OpenAI-ES on random grid worlds at a CPU budget, then evaluated on held-out tasks.

Records seconds per ES generation (compile separate), the ES mean's return on 64 fixed held-out tasks
every `--eval-every` generations (the learning curve of the rule), and a final comparison on 256 fresh tasks
from the same distribution: the meta-trained rule vs the ES starting point (a random LPG net) vs the
hand-written REINFORCE reference rule, overall and per lifetime bin, mean with 95% bootstrap CIs over tasks.

    python -m benchmarks.bench_lpg --generations 200 --population 64 --name lpg_grid

Writes results/<name>.json, a harness COMPARISON result (the learned rule against the ES starting point,
paired over the test tasks; the rest under `extra`), and the learned rule as results/<name>_lpg_mean.msgpack.
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import dataclasses
import json
import os
import shutil

import numpy as np

from benchmarks.harness import COMPARISON
from purerl import stats


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_lpg", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generations", type=int, default=200)
    ap.add_argument("--population", type=int, default=64)
    ap.add_argument("--temporal", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--num-envs", type=int, default=8)
    ap.add_argument("--lifetime", type=int, nargs=2, default=(10, 50))
    ap.add_argument("--episode-cap", type=int, nargs=2, default=(20, 100))
    ap.add_argument("--eval-episodes", type=int, default=32)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--test-tasks", type=int, default=256)
    ap.add_argument("--work", default="/tmp/bench_lpg", help="meta-training's own output folder (wiped)")
    ap.add_argument("--name", default="lpg_grid")
    ap.add_argument("--out", default=str(harness.RESULTS), help="results folder")
    return ap.parse_args(argv)


def summary(x) -> dict:
    mean, low, high = stats.bootstrap_ci(np.asarray(x))
    return {"mean": float(mean), "ci95": [float(low), float(high)], "n": int(len(x))}


def paired(a, b) -> dict:
    """a - b task by task (both rules ran on the same tasks and keys), with its bootstrap CI over tasks."""
    mean, low, high = stats.bootstrap_ci(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return {"mean": float(mean), "ci95": [float(low), float(high)]}


def main(argv=None) -> None:
    args = parse(argv)
    from purerl.agents import lpg

    shutil.rmtree(args.work, ignore_errors=True)
    cfg = lpg.MetaConfig(temporal=bool(args.temporal), generations=args.generations,
                         population=args.population, hidden=args.hidden, num_envs=args.num_envs,
                         lifetime=tuple(args.lifetime),
                         episode_cap=tuple(args.episode_cap), eval_episodes=args.eval_episodes,
                         eval_every=args.eval_every, out=args.work)
    load_before = os.getloadavg()[0]
    res = lpg.meta_train(cfg, log=lambda m: print(m, flush=True))
    with open(os.path.join(args.work, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    curve = [(r["generation"], r["eval_return"]) for r in rows if "eval_return" in r]

    # the final comparison on fresh tasks (a seed the meta-training never used)
    levels, keys = lpg.held_out_tasks(cfg, args.test_tasks, seed=10_000)
    es, _, template = lpg.make_es(cfg)
    start = es.get_mean(lpg.init_es_state(es, template, cfg.seed))
    _, learned = lpg.load_lpg(os.path.join(args.work, "lpg_mean.msgpack"))
    scores = {
        "learned": lpg.evaluate_rule(cfg, learned, levels, keys),
        "es_start": lpg.evaluate_rule(cfg, start, levels, keys),
        "reinforce": lpg.evaluate_rule(cfg, None, levels, keys, rule="reinforce"),
    }
    scores = {k: np.asarray(v) for k, v in scores.items()}
    lifetimes = np.asarray(levels.lifetime)
    split = int(np.median(lifetimes))
    vs_start = paired(scores["learned"], scores["es_start"])
    comparison = {"difference": vs_start["mean"], "difference_ci": vs_start["ci95"], "confidence": 0.95,
                  "verdict": stats.verdict(vs_start["ci95"]), "paired": True,
                  "measure": f"return on {args.test_tasks} held-out tasks"}
    seconds = np.asarray(res["generation_s"], np.float64)
    median_s = float(np.median(seconds))
    steps_max = cfg.population * cfg.lifetime[1] * cfg.num_envs * cfg.rollout_steps
    extra = {
        "held_out_curve_generation_eval_return": curve,
        "seconds_per_generation": seconds.tolist(),
        "inner_env_steps_per_generation_max": steps_max,
        "test_tasks": args.test_tasks,
        "final": {k: summary(v) for k, v in scores.items()},
        "learned_minus_es_start": vs_start,
        "learned_minus_reinforce": paired(scores["learned"], scores["reinforce"]),
        "by_lifetime": {
            f"lifetime<{split}": {k: summary(v[lifetimes < split]) for k, v in scores.items()},
            f"lifetime>={split}": {k: summary(v[lifetimes >= split]) for k, v in scores.items()},
        },
        "paper_budget": "population 1,024 x 2,500 generations, GRU 256, lifetimes 10-250, "
                        "episode caps 20-750 (groove)",
        "load_average_before_after": [load_before, os.getloadavg()[0]],
        "note": "2-core CPU, possibly shared with other jobs (see load averages); fitness = raw returns on "
                "each generation's own random tasks, eval_return = ES mean on 64 fixed held-out tasks",
    }
    result = harness.result(
        COMPARISON, args.name, "TA-LPG (OpenAI-ES on random grid worlds): learned rule vs ES start",
        algo="lpg", env="random grid worlds", config=dataclasses.asdict(cfg), budget=args.generations,
        budget_unit="ES generations", compile_s=round(float(res["compile_s"]), 3), run_s=median_s,
        throughput=steps_max / median_s, throughput_unit="inner env steps/s (at most)",
        comparison=comparison, extra=extra)
    path = harness.write(result, args.out)
    shutil.copy(os.path.join(args.work, "lpg_mean.msgpack"),
                os.path.join(args.out, f"{args.name}_lpg_mean.msgpack"))
    print(json.dumps({k: extra[k] for k in ("final", "learned_minus_es_start", "learned_minus_reinforce")},
                     indent=1))
    print(f"{args.name}: {harness.one_line(result)} -> {path}")


if __name__ == "__main__":
    main()
