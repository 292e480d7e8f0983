"""Ship the PPO experts that `bench_brax_trainers --part train --side purerl` exported as the packaged experts
of `purerl collect` (`purerl.data.shipped`).

    python -m benchmarks.ship_brax_experts RESULTS_DIR/experts/hopper     # -> purerl/data/experts/hopper.*

The source directory is what the accelerator step `benchmarks/gpu_checks.sh RESULTS_DIR ppo-ENV-purerl`
leaves: `expert.npz` / `medium.npz` (one seed's actor-critic params and observation statistics) and their
JSON (the PPO Config, the seed, the run's evaluations, the random and expert returns under the shared
evaluator). The shipped pair keeps the actor and the statistics only (brax's 256x5 critic would take 1 MB per
policy, and collect only acts), names the network in `ppo_network`, and takes its reference returns from the
shared evaluator: ref_min = the uniform-random policy, ref_max = the expert's sampled policy, over 100
episodes. Such an expert has no collect recipe: it gives random, medium, expert and medium-expert.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

import purerl
from benchmarks.reference.common import unflatten
from purerl.collect import PPO_NETWORK_FIELDS
from purerl.data import shipped

KINDS = ("medium", "expert")
ACTING_PREFIXES = ("params/params/actor/", "obs_stats/")  # what collect's PPO policy reads


def ship(source: str, dest: str = shipped.EXPERTS_DIR) -> tuple[str, str]:
    """Write `<dest>/<env>.npz` + `.json` from the bench's export in `source`; returns their paths."""
    info = {}
    for kind in KINDS:
        for ext in (".json", ".npz"):
            if not os.path.exists(os.path.join(source, kind + ext)):
                raise ValueError(f"{source} has no {kind}{ext}: run the ppo-ENV-purerl step of "
                                 "benchmarks/gpu_checks.sh, or bench_brax_trainers --part train --side "
                                 "purerl")
        with open(os.path.join(source, kind + ".json")) as f:
            info[kind] = json.load(f)
    expert = info["expert"]
    config, points = expert["config"], expert["eval_points"]
    policies = {}
    for kind in KINDS:
        with np.load(os.path.join(source, kind + ".npz")) as saved:
            acting = {name: saved[name] for name in saved.files if name.startswith(ACTING_PREFIXES)}
        policies[kind] = unflatten(acting)  # {"a/b": x} -> {"a": {"b": x}}
    meta = {
        "env": expert["env"], "backend": "brax", "brax_backend": expert["brax_backend"], "learner": "ppo",
        "network": {"hidden": config["hidden"], "activation": config["activation"]},
        "ppo_network": {name: config[name] for name in PPO_NETWORK_FIELDS},
        "source": "benchmarks/bench_brax_trainers.py --part train --side purerl (PPO at brax's published "
                  "settings for the env; the best of its seeds)",
        "command": expert["command"], "seed": expert["seed"], "train_env_steps": config["total_timesteps"],
        "policies": {kind: {"checkpoint": points.index(info[kind]["env_steps"]),
                            "step": info[kind]["env_steps"],
                            "eval_return": info[kind]["eval_return_at_snapshot"]}
                     for kind in KINDS},
        "checkpoint_steps": points, "checkpoint_evals": expert["eval_curve"],
        "ref_min": expert["random_return"], "ref_max": expert["expert_return"],
        "purerl_version": purerl.__version__, "git_commit": expert["git_commit"],
    }
    return shipped.save_expert(os.path.join(dest, expert["env"]), policies, meta)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ship_brax_experts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="the bench's experts directory of one env (RESULTS_DIR/experts/ENV)")
    parser.add_argument("--dest", default=shipped.EXPERTS_DIR, help="where the packaged experts live")
    args = parser.parse_args(argv)
    try:
        files = ship(args.source, args.dest)
    except ValueError as error:
        print(f"purerl: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    for path in files:
        print(f"-> {path} ({os.path.getsize(path):,} bytes)")


if __name__ == "__main__":
    main()
