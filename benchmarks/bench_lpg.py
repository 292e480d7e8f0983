"""TA-LPG meta-trained by OpenAI-ES on random grid worlds at a CPU budget, then evaluated on held-out tasks.

Records seconds per ES generation (compile separate), the ES mean's return on 64 fixed held-out tasks
every `--eval-every` generations (the learning curve of the rule), and a final comparison on 256 fresh tasks
from the same distribution: the meta-trained rule vs the ES starting point (a random LPG net) vs the
hand-written REINFORCE reference rule, overall and per lifetime bin, mean with 95% bootstrap CIs over tasks.

    XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false \\
        python -m benchmarks.bench_lpg --generations 200 --population 64 --name lpg_grid
"""

from __future__ import annotations

from benchmarks import harness  # noqa: F401 # isort: skip  (first: sets the XLA CPU flags before jax loads)

import argparse
import dataclasses
import json
import os
import shutil
import sys

ap = argparse.ArgumentParser()
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
ap.add_argument("--out", default="/tmp/bench_lpg")
ap.add_argument("--name", default="lpg_grid")
args = ap.parse_args()

os.environ.setdefault("JAX_PLATFORMS", "cpu")
import numpy as np  # noqa: E402

from purerl import logging as plog  # noqa: E402
from purerl.agents import lpg  # noqa: E402
from purerl.plotting import bootstrap_ci  # noqa: E402

shutil.rmtree(args.out, ignore_errors=True)
cfg = lpg.MetaConfig(
    temporal=bool(args.temporal),
    generations=args.generations,
    population=args.population,
    hidden=args.hidden,
    num_envs=args.num_envs,
    lifetime=tuple(args.lifetime),
    episode_cap=tuple(args.episode_cap),
    eval_episodes=args.eval_episodes,
    eval_every=args.eval_every,
    out=args.out,
)
load_before = os.getloadavg()[0]
res = lpg.meta_train(cfg, log=lambda m: print(m, flush=True))
with open(os.path.join(args.out, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
curve = [(r["generation"], r["eval_return"]) for r in rows if "eval_return" in r]

# final comparison on fresh tasks (a seed the meta-training never used)
levels, keys = lpg.held_out_tasks(cfg, args.test_tasks, seed=10_000)
es, _, template = lpg.make_es(cfg)
start = es.get_mean(lpg.init_es_state(es, template, cfg.seed))
_, learned = lpg.load_lpg(os.path.join(args.out, "lpg_mean.msgpack"))


def summary(x):
    mean, low, high = bootstrap_ci(np.asarray(x))
    return {"mean": float(mean), "ci95": [float(low), float(high)], "n": int(len(x))}


def paired(a, b):
    mean, low, high = bootstrap_ci(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return {"mean": float(mean), "ci95": [float(low), float(high)]}


scores = {
    "learned": lpg.evaluate_rule(cfg, learned, levels, keys),
    "es_start": lpg.evaluate_rule(cfg, start, levels, keys),
    "reinforce": lpg.evaluate_rule(cfg, None, levels, keys, rule="reinforce"),
}
scores = {k: np.asarray(v) for k, v in scores.items()}
lifetimes = np.asarray(levels.lifetime)
split = int(np.median(lifetimes))
final = {k: summary(v) for k, v in scores.items()}
by_lifetime = {
    f"lifetime<{split}": {k: summary(v[lifetimes < split]) for k, v in scores.items()},
    f"lifetime>={split}": {k: summary(v[lifetimes >= split]) for k, v in scores.items()},
}
gen_s = np.asarray(res["generation_s"])
out = {
    "benchmark": "TA-LPG meta-trained with OpenAI-ES (antithetic task sampling) on random grid worlds",
    "command": "python -m benchmarks.bench_lpg " + " ".join(sys.argv[1:]),
    "config": dataclasses.asdict(cfg),
    "compile_s": res["compile_s"],
    "seconds_per_generation_median": float(np.median(gen_s)),
    "inner_env_steps_per_generation_max": cfg.population * cfg.lifetime[1] * cfg.num_envs * cfg.rollout_steps,
    "held_out_curve_generation_eval_return": curve,
    "test_tasks": args.test_tasks,
    "final": final,
    "learned_minus_es_start": paired(scores["learned"], scores["es_start"]),
    "learned_minus_reinforce": paired(scores["learned"], scores["reinforce"]),
    "by_lifetime": by_lifetime,
    "paper_budget": "population 1,024 x 2,500 generations, GRU 256, lifetimes 10-250, "
    "episode caps 20-750 (groove)",
    "load_average_before_after": [load_before, os.getloadavg()[0]],
    "note": "2-core CPU, possibly shared with other jobs (see load averages); fitness = raw returns on each "
    "generation's own random tasks, eval_return = ES mean on 64 fixed held-out tasks",
    "versions": plog.versions(),
    "machine": plog.machine(),
}
os.makedirs("benchmarks/results", exist_ok=True)
with open(f"benchmarks/results/{args.name}.json", "w") as f:
    json.dump(out, f, indent=1)
shutil.copy(os.path.join(args.out, "lpg_mean.msgpack"), f"benchmarks/results/{args.name}_lpg_mean.msgpack")
print(
    json.dumps(
        {
            k: out[k]
            for k in (
                "compile_s",
                "seconds_per_generation_median",
                "final",
                "learned_minus_es_start",
                "learned_minus_reinforce",
            )
        },
        indent=1,
    )
)
