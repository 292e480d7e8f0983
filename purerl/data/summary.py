"""What a dataset holds, in numbers: `summarize(data)` and the `.stats.json` sidecar that `purerl collect`
writes beside every dataset file.

Works on any dataset in the flat D4RL layout (purerl's files, D4RL's, a Minari dataset read by
`purerl.data.load(..., view="exact")`). Episodes are split after rows with `terminals` or `timeouts`; rows
after the last such row form one more (cut) episode, as `episodes_view` keeps it. Standard deviations are
over the population (ddof = 0); quartiles use numpy's default (linear) interpolation.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from purerl.data.load import episode_bounds

ACTION_BOUND = 0.99
"""An action coordinate with |a| >= this is at the bound (actions of D4RL-style files lie in [-1, 1])."""


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    """Episodes, episode lengths, returns, per-step rewards, and the share of action coordinates at the
    bounds (`ACTION_BOUND`)."""
    rewards = np.asarray(data["rewards"], np.float64).reshape(-1)
    if len(rewards) == 0:
        raise ValueError("dataset: no rows to summarise")
    bounds = episode_bounds(data["terminals"], data.get("timeouts"))
    lengths = np.diff(bounds)
    returns = np.add.reduceat(rewards, bounds[:-1])
    actions = np.asarray(data["actions"], np.float64)
    q25, median, q75 = np.percentile(returns, [25, 50, 75])
    return {
        "rows": int(len(rewards)),
        "episodes": int(len(lengths)),
        "terminals": int(np.asarray(data["terminals"], bool).sum()),
        "timeouts": int(np.asarray(data["timeouts"], bool).sum()) if "timeouts" in data else 0,
        "episode_length": {"min": int(lengths.min()), "median": float(np.median(lengths)),
                           "mean": float(lengths.mean()), "max": int(lengths.max())},
        "return": {"mean": float(returns.mean()), "std": float(returns.std()), "min": float(returns.min()),
                   "q25": float(q25), "median": float(median), "q75": float(q75),
                   "max": float(returns.max())},
        "reward_per_step": {"mean": float(rewards.mean()), "std": float(rewards.std())},
        "actions_at_bounds": float(np.mean(np.abs(actions) >= ACTION_BOUND)),
    }


def stats_path(dataset_path: str) -> str:
    """The sidecar of `x.hdf5`: `x.stats.json`."""
    root, _ = os.path.splitext(dataset_path)
    return root + ".stats.json"


def write_stats(dataset_path: str, stats: dict[str, Any]) -> str:
    """Write the sidecar beside the dataset file (via a temporary file, as the dataset); returns its path."""
    path = stats_path(dataset_path)
    with open(path + ".tmp", "w") as f:
        json.dump(stats, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return path
