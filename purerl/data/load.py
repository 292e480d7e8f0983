"""`load(path, view=...)`: read purerl/D4RL hdf5 files and Minari directories into a pytree of arrays.

Views:
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

from purerl.data.layout import (
    FLAT_KEYS,
    check_env_dims,
    dtype_problem,
    first_nonfinite,
    nonfinite_message,
    open_hdf5,
    read_hdf5,
    validate,
)

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


def episode_bounds(terminals: np.ndarray, timeouts: np.ndarray | None = None) -> np.ndarray:
    """Row index where each episode starts, plus the number of rows (so episode i = rows [b[i], b[i+1])).
    Episodes end after rows with `terminals` or `timeouts`; rows after the last such row form one more (cut)
    episode."""
    done = np.asarray(terminals, bool).reshape(-1)
    if timeouts is not None:
        done = done | np.asarray(timeouts, bool).reshape(-1)
    ends = np.nonzero(done)[0] + 1
    if len(ends) == 0 or ends[-1] != len(done):
        ends = np.append(ends, len(done))
    return np.concatenate([[0], ends])


def episodes_view(data: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Whole episodes, split after rows where terminals or timeouts is set (a cut last episode is kept)."""
    flat = {k: np.asarray(v) for k, v in data.items() if k in FLAT_KEYS or k.startswith("infos/")}
    bounds = episode_bounds(flat["terminals"], flat.get("timeouts"))
    spans = zip(bounds[:-1], bounds[1:], strict=True)
    return [{k: v[a:b] for k, v in flat.items()} for a, b in spans if b > a]


def read(path: str, obs_keys: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any], str]:
    """Raw arrays, metadata and format ("purerl", "d4rl" or "minari") of a file or Minari directory.

    The data is validated here (keys, dtypes, shapes, NaN/inf), so `metadata(path)` refuses a bad file too."""
    if not os.path.exists(path):
        raise ValueError(f"dataset {path!r} not found")
    if os.path.isdir(path):
        data, metadata = read_minari(path, obs_keys)
        return data, metadata, "minari"
    data, metadata = read_hdf5(path)
    if "observations" not in data:
        if any(key.startswith("episode_") for key in data):
            raise ValueError(
                f"{path!r} looks like a Minari main_data.hdf5 file; pass its dataset directory "
                f"{os.path.dirname(os.path.dirname(os.path.abspath(path)))!r} instead"
            )
        raise ValueError(f"{path!r} is not a D4RL/purerl dataset: the root has no 'observations' dataset")
    validate(data, source=path)
    fmt = "purerl" if "purerl_version" in metadata else "d4rl"
    return _squeeze(data), metadata, fmt


def load(path: str, view: str | None = None, obs_keys: list[str] | None = None, max_episode_steps: int = 1000,
         env_obs_dim: int | None = None, env_act_dim: int | None = None):
    """Load a dataset. Returns a dict of numpy arrays (views "qlearning"/"exact") or a list of episodes.

    `view=None` picks "exact" for purerl files and Minari directories (which store next observations
    exactly) and "qlearning" for real D4RL files. `env_obs_dim`/`env_act_dim` check the dataset against an
    env. Use `metadata(path)` for the file's metadata (reference returns etc.).
    """
    if view is not None and view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; valid views: {', '.join(VIEWS)}")
    data, meta, fmt = read(path, obs_keys)  # validated there
    check_env_dims(data, env_obs_dim, env_act_dim, source=path)
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

MINARI_KEYS = ("observations", "actions", "rewards", "terminations", "truncations")
"""The per-episode datasets of a Minari hdf5 file (group `episode_{id}`); observations has T + 1 rows."""


def minari_data_dir(directory: str) -> str:
    """The directory holding a Minari dataset's `metadata.json` and data files.

    Minari (0.5, `MinariStorage`) writes `<datasets path>/<dataset_id>/data/metadata.json` and, for the hdf5
    format, `.../data/main_data.hdf5`; both the dataset directory and its `data/` directory are accepted."""
    for candidate in (os.path.join(directory, "data"), directory):
        if os.path.isfile(os.path.join(candidate, "metadata.json")):
            return candidate
    if os.path.isfile(os.path.join(directory, "data", "main_data.hdf5")):
        raise ValueError(
            f"{directory!r} looks like a Minari dataset written by Minari < 0.5 (data/main_data.hdf5 "
            "without data/metadata.json), which Minari >= 0.5 does not read either; download it again with "
            "minari >= 0.5"
        )
    raise ValueError(
        f"{directory!r} is not a Minari dataset directory: neither {directory}/data/metadata.json nor "
        f"{directory}/metadata.json exists; pass the directory minari wrote (<datasets path>/<dataset_id>)"
    )


def read_minari(directory: str,
                obs_keys: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A Minari dataset directory (`data/metadata.json` + `data/main_data.hdf5`) as flat D4RL arrays.

    Per episode (groups `episode_{i}` in id order): observations (T+1) -> obs = [:-1], next = [1:];
    terminals = terminations, timeouts = truncations. Dict observations need `obs_keys` (concatenated in
    order).
    Each episode is checked (keys, dtypes, row counts, NaN/inf) and errors name the episode and the row.
    """
    import h5py

    data_dir = minari_data_dir(directory)
    meta_path = os.path.join(data_dir, "metadata.json")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"Minari metadata {meta_path!r} could not be read as JSON ({err})") from None
    data_format = meta.get("data_format", "hdf5")
    if data_format in ("arrow", "parquet"):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError(
                f"Minari dataset {directory!r} is stored in the {data_format!r} format, which needs pyarrow "
                "(pip install pyarrow); purerl reads Minari 'hdf5' datasets without it"
            ) from None
        raise ValueError(
            f"Minari {data_format!r} datasets are not supported yet ({directory!r}); convert it to 'hdf5'"
        )
    if data_format != "hdf5":
        raise ValueError(f"unknown Minari data_format {data_format!r} in {meta_path}")
    path = os.path.join(data_dir, "main_data.hdf5")
    if not os.path.isfile(path):
        raise ValueError(f"Minari dataset {directory!r} has no {path}")
    prefix = f"dataset {directory!r}: "

    parts: dict[str, list[np.ndarray]] = {k: [] for k in FLAT_KEYS}
    with open_hdf5(path, fix="write or download the Minari dataset again") as f:
        names = sorted((k for k in f if k.startswith("episode_")), key=lambda k: int(k.split("_")[1]))
        for name in names:
            ep = f[name]
            for key in MINARI_KEYS:
                if key not in ep:
                    raise ValueError(
                        f"{prefix}{name} is missing the key {key!r} (has: {', '.join(sorted(ep))}); a Minari "
                        f"episode needs {', '.join(MINARI_KEYS)}"
                    )
            obs = ep["observations"]
            if isinstance(obs, h5py.Group):
                if not obs_keys:
                    raise ValueError(
                        f"Minari observations are a dict with keys {sorted(obs)}; pass obs_keys=[...] to "
                        "pick and concatenate them"
                    )
                missing = [k for k in obs_keys if k not in obs]
                if missing:
                    raise ValueError(f"{prefix}{name}: obs_keys {missing} are not among the observations' "
                                     f"keys {sorted(obs)}")
                raw = {f"observations/{k}": obs[k][()] for k in obs_keys}
            else:
                raw = {"observations": obs[()]}
            raw.update({key: ep[key][()] for key in MINARI_KEYS[1:]})
            for key, value in raw.items():
                problem = dtype_problem(value)
                if problem:
                    raise ValueError(f"{prefix}{name}: key {key!r} has {problem}, not numbers; purerl reads "
                                     "numeric observations and actions (Box or Discrete spaces)")
            t = len(raw["rewards"])
            for key, value in raw.items():
                rows = t + 1 if key.startswith("observations") else t
                if len(value) != rows:
                    raise ValueError(
                        f"{prefix}{name}: key {key!r} has {len(value)} rows but 'rewards' has {t} (length "
                        "mismatch); a Minari episode holds T actions, rewards, terminations, truncations and "
                        "T + 1 observations"
                    )
            for key, value in raw.items():
                found = first_nonfinite(value)
                if found:
                    raise ValueError(nonfinite_message(prefix, key, *found, where=f" of {name}"))
            obs = [v.reshape(t + 1, -1) for k, v in raw.items() if k.startswith("observations")]
            obs = np.concatenate(obs, 1)
            if parts["observations"] and obs.shape[1] != parts["observations"][0].shape[1]:
                raise ValueError(
                    f"{prefix}{name}: observations have dimension {obs.shape[1]} but {names[0]}'s have "
                    f"{parts['observations'][0].shape[1]}"
                )
            actions = raw["actions"].reshape(t, -1)
            if parts["actions"] and actions.shape[1] != parts["actions"][0].shape[1]:
                raise ValueError(
                    f"{prefix}{name}: actions have dimension {actions.shape[1]} but {names[0]}'s have "
                    f"{parts['actions'][0].shape[1]}"
                )
            parts["observations"].append(obs[:-1])
            parts["next_observations"].append(obs[1:])
            parts["actions"].append(actions)
            parts["rewards"].append(raw["rewards"].reshape(t))
            parts["terminals"].append(np.asarray(raw["terminations"], bool).reshape(t))
            parts["timeouts"].append(np.asarray(raw["truncations"], bool).reshape(t))
    if not names:
        raise ValueError(f"Minari dataset {directory!r} has no episodes (no episode_* groups in {path})")
    data = {k: np.concatenate(v) for k, v in parts.items()}
    validate(data, source=directory)
    return data, meta
