"""`load(path, view=...)`: read purerl/D4RL hdf5 files and Minari directories into a pytree of arrays.

Views (see `shared/algorithms/offline_data.md`, sec. 6):
- "qlearning": exactly `d4rl.qlearning_dataset` — for i in 0..N-2, rows with `timeouts[i]` are skipped, the
  others give (observations[i], actions[i], rewards[i], next = observations[i+1], terminals[i]); row N-1 is
  never emitted. Without a `timeouts` key the time limit is an episode-step counter == max_episode_steps - 1.
  Default for real D4RL files (what published numbers use).
- "exact": every row, with the stored `next_observations` (timeout rows kept; bootstrap mask = 1 - terminal).
  Default for purerl files.
- "episodes": a list of episode dicts split after rows with terminals or timeouts.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from purerl.data.layout import FLAT_KEYS, read_hdf5, validate

VIEWS = ("qlearning", "exact", "episodes")


def _squeeze(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = dict(data)
    for key in ("rewards", "terminals", "timeouts"):
        if key in out and out[key].ndim == 2:
            out[key] = out[key][:, 0]
    return out


def qlearning_view(data: dict[str, np.ndarray], max_episode_steps: int = 1000) -> dict[str, np.ndarray]:
    """`d4rl.qlearning_dataset` semantics, vectorised (see the module docstring)."""
    n = len(data["observations"])
    terminals = np.asarray(data["terminals"], bool)
    if "timeouts" in data:
        timeouts = np.asarray(data["timeouts"], bool)
    else:  # d4rl's counter: a step counter reset after every emitted done/final step
        timeouts = np.zeros(n, bool)
        step = 0
        for i in range(n):
            timeouts[i] = step == max_episode_steps - 1
            step = 0 if (terminals[i] or timeouts[i]) else step + 1
    keep = np.nonzero(~timeouts[: n - 1])[0]
    return {
        "observations": np.asarray(data["observations"][keep], np.float32),
        "actions": np.asarray(data["actions"][keep], np.float32),
        "rewards": np.asarray(data["rewards"][keep], np.float32),
        "next_observations": np.asarray(data["observations"][keep + 1], np.float32),
        "terminals": terminals[keep],
        "timeouts": np.zeros(len(keep), bool),
    }


def exact_view(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every stored row with the stored next_observations."""
    validate(data, required=("observations", "actions", "rewards", "terminals", "next_observations"))
    n = len(data["observations"])
    out = {key: np.asarray(data[key]) for key in FLAT_KEYS if key in data}
    out.setdefault("timeouts", np.zeros(n, bool))
    for key in ("observations", "actions", "rewards", "next_observations"):
        out[key] = out[key].astype(np.float32)
    for key in ("terminals", "timeouts"):
        out[key] = out[key].astype(bool)
    return {key: out[key] for key in FLAT_KEYS}


def episodes_view(data: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Whole episodes, split after rows where terminals or timeouts is set (a cut last episode is kept)."""
    flat = {k: np.asarray(v) for k, v in data.items() if k in FLAT_KEYS or k.startswith("infos/")}
    done = np.asarray(flat["terminals"], bool)
    if "timeouts" in flat:
        done = done | np.asarray(flat["timeouts"], bool)
    ends = np.nonzero(done)[0] + 1
    starts = np.concatenate([[0], ends])
    stops = np.concatenate([ends, [len(done)]])
    return [{k: v[a:b] for k, v in flat.items()} for a, b in zip(starts, stops) if b > a]


def read(path: str, obs_keys: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any], str]:
    """Raw arrays, metadata and format ("purerl", "d4rl" or "minari") of a file or Minari directory."""
    if not os.path.exists(path):
        raise ValueError(f"dataset {path!r} not found")
    if os.path.isdir(path):
        data, metadata = read_minari(path, obs_keys)
        return data, metadata, "minari"
    data, metadata = read_hdf5(path)
    if "observations" not in data:
        raise ValueError(f"{path!r} is not a D4RL/purerl dataset: the root has no 'observations' dataset")
    validate(data)
    fmt = "purerl" if "purerl_version" in metadata else "d4rl"
    return _squeeze(data), metadata, fmt


def load(path: str, view: str | None = None, obs_keys: list[str] | None = None, max_episode_steps: int = 1000,
         env_obs_dim: int | None = None, env_act_dim: int | None = None):
    """Load a dataset. Returns a dict of numpy arrays (views "qlearning"/"exact") or a list of episodes.

    `view=None` picks "exact" for purerl files and Minari directories (which store next observations
    exactly) and "qlearning" for real D4RL files. `env_obs_dim`/`env_act_dim` check the dataset against an env.
    Use `metadata(path)` for the file's metadata (reference returns etc.).
    """
    if view is not None and view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; valid views: {', '.join(VIEWS)}")
    data, meta, fmt = read(path, obs_keys)
    validate(data, env_obs_dim, env_act_dim)
    view = view or ("qlearning" if fmt == "d4rl" else "exact")
    if view == "episodes":
        return episodes_view(data)
    if view == "qlearning":
        return qlearning_view(data, int(meta.get("episode_length", max_episode_steps)))
    return exact_view(data)


def metadata(path: str, obs_keys: list[str] | None = None) -> dict[str, Any]:
    """The dataset's metadata (purerl: env_id, kind, reference returns, ...; Minari: metadata.json)."""
    return read(path, obs_keys)[1]


# --- Minari -------------------------------------------------------------------------------------------

def read_minari(directory: str, obs_keys: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A Minari dataset directory (`metadata.json` + `data/main_data.hdf5`) as flat D4RL arrays.

    Per episode (groups `episode_{i}` in id order): observations (T+1) -> obs = [:-1], next = [1:];
    terminals = terminations, timeouts = truncations. Dict observations need `obs_keys` (concatenated in order).
    """
    meta_path = os.path.join(directory, "metadata.json")
    if not os.path.isfile(meta_path):
        raise ValueError(f"{directory!r} is not a Minari dataset directory: metadata.json not found")
    with open(meta_path) as f:
        meta = json.load(f)
    data_format = meta.get("data_format", "hdf5")
    if data_format == "arrow":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError(
                f"Minari dataset {directory!r} is stored in the 'arrow' format, which needs pyarrow "
                "(pip install pyarrow); purerl reads Minari 'hdf5' datasets without it"
            ) from None
        raise ValueError(f"Minari 'arrow' datasets are not supported yet ({directory!r}); convert it to 'hdf5'")
    if data_format != "hdf5":
        raise ValueError(f"unknown Minari data_format {data_format!r} in {meta_path}")
    path = os.path.join(directory, "data", "main_data.hdf5")
    if not os.path.isfile(path):
        raise ValueError(f"Minari dataset {directory!r} has no data/main_data.hdf5")
    import h5py

    parts: dict[str, list[np.ndarray]] = {k: [] for k in FLAT_KEYS}
    with h5py.File(path, "r") as f:
        names = sorted((k for k in f if k.startswith("episode_")), key=lambda k: int(k.split("_")[1]))
        for name in names:
            ep = f[name]
            for key in ("observations", "actions", "rewards", "terminations", "truncations"):
                if key not in ep:
                    raise ValueError(f"Minari episode {name!r} is missing the key {key!r}")
            obs = ep["observations"]
            if isinstance(obs, h5py.Group):
                if not obs_keys:
                    raise ValueError(
                        f"Minari observations are a dict with keys {sorted(obs)}; pass obs_keys=[...] to pick "
                        "and concatenate them"
                    )
                obs = np.concatenate([np.asarray(obs[k][()], np.float32).reshape(len(obs[k]), -1) for k in obs_keys], 1)
            else:
                obs = np.asarray(obs[()], np.float32)
                obs = obs.reshape(len(obs), -1)
            t = len(ep["actions"])
            if len(obs) != t + 1:
                raise ValueError(f"Minari episode {name!r}: observations has {len(obs)} rows, expected T + 1 = {t + 1}")
            actions = np.asarray(ep["actions"][()], np.float32)
            parts["observations"].append(obs[:-1])
            parts["next_observations"].append(obs[1:])
            parts["actions"].append(actions.reshape(t, -1))
            parts["rewards"].append(np.asarray(ep["rewards"][()], np.float32).reshape(t))
            parts["terminals"].append(np.asarray(ep["terminations"][()], bool).reshape(t))
            parts["timeouts"].append(np.asarray(ep["truncations"][()], bool).reshape(t))
    if not names:
        raise ValueError(f"Minari dataset {directory!r} has no episodes")
    return {k: np.concatenate(v) for k, v in parts.items()}, meta
