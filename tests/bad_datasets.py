"""Offline dataset files with one defect each, for loader and CLI tests (plain functions, no pytest fixtures).

`write_bad_datasets(directory, fmt)` writes one dataset per case in `CASES` and returns {case: path}; fmt is
"hdf5" (a purerl/D4RL .hdf5 file) or "minari" (a Minari dataset directory in Minari 0.5's layout:
`<dir>/data/metadata.json` + `<dir>/data/main_data.hdf5`, one `episode_{i}` group per episode).
`MESSAGES[fmt][case]` is a regex of the ValueError each gives (`pytest.raises(match=...)`, or a CLI's
`purerl: error: ...` line). Without its defect each file is a valid Pendulum-v1 dataset (obs dim 3, action
dim 1; the hdf5 files carry `env_id` = "Pendulum-v1", Minari directories have no env_id, so pass --env):
`write_good_dataset` writes that file.

The files are written with h5py directly, not with purerl's writer, which refuses bad data.
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np

CASES = ("not_hdf5", "missing_key", "wrong_shape", "wrong_dtype", "nan", "inf")
FORMATS = ("hdf5", "minari")
ENV_ID, OBS_DIM, ACT_DIM = "Pendulum-v1", 3, 1
EPISODE_LENGTHS = (20, 20)
NAN_ROW, INF_ROW = 17, 5  # hdf5: rows of the flat file; minari: rows of episode_1
MINARI_NAN_ROW, MINARI_INF_ROW = 3, 5
TEXT = "this is a text file, not an HDF5 file\n"

MESSAGES = {
    "hdf5": {
        "not_hdf5": r"not_hdf5\.hdf5' is not an HDF5 file",
        "missing_key": r"missing_key\.hdf5': missing the key 'actions'",
        "wrong_shape": r"key 'actions' has 39 rows but 'observations' has 40 \(length mismatch\)",
        "wrong_dtype": r"key 'actions' has dtype \|S4 \(byte strings\), not numbers",
        "nan": rf"key 'rewards' holds a non-finite value \(nan\) at row {NAN_ROW}; clean the data or drop",
        "inf": rf"key 'observations' holds a non-finite value \(inf\) at row {INF_ROW}; clean the data",
    },
    "minari": {
        "not_hdf5": r"main_data\.hdf5' is not an HDF5 file",
        "missing_key": r"episode_1 is missing the key 'actions'",
        "wrong_shape": r"episode_1: key 'actions' has 19 rows but 'rewards' has 20 \(length mismatch\)",
        "wrong_dtype": r"episode_1: key 'actions' has dtype \|S4 \(byte strings\), not numbers",
        "nan": rf"key 'rewards' holds a non-finite value \(nan\) at row {MINARI_NAN_ROW} of episode_1; clean",
        "inf": rf"key 'observations' holds a non-finite value \(inf\) at row {MINARI_INF_ROW} of episode_1",
    },
}


def good_episodes(seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Episodes with Minari's keys: observations (T + 1, 3), actions (T, 1), rewards, terminations,
    truncations (each episode ends with a truncation, as Pendulum's time limit)."""
    rng = np.random.default_rng(seed)
    episodes = []
    for t in EPISODE_LENGTHS:
        episodes.append({
            "observations": rng.normal(size=(t + 1, OBS_DIM)).astype(np.float32),
            "actions": rng.uniform(-1, 1, (t, ACT_DIM)).astype(np.float32),
            "rewards": rng.normal(size=t),
            "terminations": np.zeros(t, bool),
            "truncations": np.arange(t) == t - 1,
        })
    return episodes


def good_rows(seed: int = 0) -> dict[str, np.ndarray]:
    """The same episodes as flat D4RL/purerl rows (40 rows)."""
    eps = good_episodes(seed)
    return {
        "observations": np.concatenate([e["observations"][:-1] for e in eps]),
        "actions": np.concatenate([e["actions"] for e in eps]),
        "rewards": np.concatenate([e["rewards"] for e in eps]).astype(np.float32),
        "next_observations": np.concatenate([e["observations"][1:] for e in eps]),
        "terminals": np.concatenate([e["terminations"] for e in eps]),
        "timeouts": np.concatenate([e["truncations"] for e in eps]),
    }


def write_hdf5_file(path: str, data: dict[str, np.ndarray], metadata: dict | None = None) -> str:
    """A D4RL/purerl-layout file: root datasets plus `metadata/*` scalars."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in data.items():
            f[key] = value
        for key, value in (metadata or {}).items():
            f[f"metadata/{key}"] = value
    return path


def write_minari_dir(root: str, episodes: list[dict], metadata: dict | None = None, data_format: str = "hdf5",
                     dict_obs: bool = False) -> str:
    """A Minari 0.5 dataset directory as `minari.DataCollector` writes it: `<root>/data/metadata.json` and
    `<root>/data/main_data.hdf5` with one group `episode_{i}` per episode (dict observations: a group with one
    dataset per key; here "a" = column 0, "b" = the rest)."""
    data_dir = os.path.join(root, "data")
    os.makedirs(data_dir, exist_ok=True)
    meta = {"total_episodes": len(episodes), "total_steps": int(sum(len(e["rewards"]) for e in episodes)),
            "data_format": data_format, "dataset_id": "purerl-test/bad-v0", **(metadata or {})}
    with open(os.path.join(data_dir, "metadata.json"), "w") as f:
        json.dump(meta, f)
    with h5py.File(os.path.join(data_dir, "main_data.hdf5"), "w") as f:
        for i, episode in enumerate(episodes):
            group = f.create_group(f"episode_{i}")
            group.attrs["id"] = i
            group.attrs["total_steps"] = len(episode["rewards"])
            for key, value in episode.items():
                if key == "observations" and dict_obs:
                    group["observations/a"] = value[:, :1]
                    group["observations/b"] = value[:, 1:]
                else:
                    group[key] = value
    return root


def write_good_dataset(path: str, fmt: str = "hdf5") -> str:
    """The valid dataset each bad case is derived from."""
    if fmt == "minari":
        return write_minari_dir(path, good_episodes())
    return write_hdf5_file(path, good_rows(), {"env_id": ENV_ID, "purerl_version": "0"})


def _bad_rows(case: str) -> dict[str, np.ndarray]:
    rows = good_rows()
    if case == "missing_key":
        del rows["actions"]
    elif case == "wrong_shape":
        rows["actions"] = rows["actions"][:-1]
    elif case == "wrong_dtype":
        rows["actions"] = np.full(rows["actions"].shape, b"left")
    elif case == "nan":
        rows["rewards"][NAN_ROW] = np.nan
    elif case == "inf":
        rows["observations"][INF_ROW, 1] = np.inf
    return rows


def _bad_episodes(case: str) -> list[dict[str, np.ndarray]]:
    episodes = good_episodes()
    bad = episodes[1]
    if case == "missing_key":
        del bad["actions"]
    elif case == "wrong_shape":
        bad["actions"] = bad["actions"][:-1]
    elif case == "wrong_dtype":
        bad["actions"] = np.full(bad["actions"].shape, b"left")
    elif case == "nan":
        bad["rewards"][MINARI_NAN_ROW] = np.nan
    elif case == "inf":
        bad["observations"][MINARI_INF_ROW, 1] = np.inf
    return episodes


def write_bad_datasets(directory: str, fmt: str = "hdf5") -> dict[str, str]:
    """Write one dataset per case in `CASES` under `directory`; returns {case: path} (hdf5: `<case>.hdf5`
    files, minari: `<case>` directories). The expected errors are `MESSAGES[fmt]`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for case in CASES:
        if fmt == "hdf5":
            path = os.path.join(directory, f"{case}.hdf5")
            if case == "not_hdf5":
                with open(path, "w") as f:
                    f.write(TEXT)
            else:
                write_hdf5_file(path, _bad_rows(case), {"env_id": ENV_ID, "purerl_version": "0"})
        else:
            path = os.path.join(directory, case)
            write_minari_dir(path, _bad_episodes(case))
            if case == "not_hdf5":
                with open(os.path.join(path, "data", "main_data.hdf5"), "w") as f:
                    f.write(TEXT)
        paths[case] = path
    return paths
