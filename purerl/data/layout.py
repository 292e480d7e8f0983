"""The D4RL hdf5 layout (gym-mujoco "v2") that purerl writes and reads, and its validation.

Root datasets, N rows, episodes stored contiguously (an episode ends at a row with `terminals` or `timeouts`):
observations (N, obs_dim), actions (N, act_dim), rewards (N,), next_observations (N, obs_dim),
terminals (N,) bool (true termination), timeouts (N,) bool (time limit without termination),
`infos/action_log_probs` (N,) and `metadata/*` scalars. Source: D4RL
`scripts/generation/mujoco/collect_data.py` and `d4rl/offline_env.py`.
Loading checks every file (`validate`): keys, dtypes, shapes, NaN/inf.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")
"""Keys every dataset must have (as d4rl's `get_dataset`)."""
FLAT_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
"""Keys of the in-memory dataset pytree, in this order."""
DTYPES = {
    "observations": np.float32,
    "actions": np.float32,
    "rewards": np.float32,
    "next_observations": np.float32,
    "terminals": np.bool_,
    "timeouts": np.bool_,
}


_KIND_NAMES = {"S": "byte strings", "U": "strings", "O": "Python objects (e.g. variable-length strings)",
               "c": "complex numbers", "V": "raw or compound records", "M": "dates", "m": "time deltas"}


def dtype_problem(value: Any) -> str | None:
    """Why an array cannot be a dataset key (e.g. "dtype |S4 (byte strings)"), or None for numbers/bools."""
    dtype = np.asarray(value).dtype
    if dtype.kind in "biuf":
        return None
    return f"dtype {dtype.str} ({_KIND_NAMES.get(dtype.kind, 'not numbers')})"


def first_nonfinite(value: Any) -> tuple[int, float] | None:
    """(row, value) of the first row holding a NaN or +-inf, or None (always None for int/bool arrays)."""
    value = np.asarray(value)
    if value.dtype.kind != "f" or value.size == 0 or np.isfinite(value).all():
        return None
    bad = ~np.isfinite(value.reshape(len(value), -1))
    row = int(np.argmax(bad.any(axis=1)))
    return row, float(value.reshape(len(value), -1)[row][bad[row]][0])


def nonfinite_message(prefix: str, key: str, row: int, bad: float, where: str = "") -> str:
    return (f"{prefix}key {key!r} holds a non-finite value ({bad}) at row {row}{where}; clean the data or "
            "drop those rows")


def validate(data: dict[str, Any], obs_dim: int | None = None, act_dim: int | None = None,
             required: tuple[str, ...] = REQUIRED_KEYS, source: str | None = None) -> None:
    """Raise a ValueError naming the offending key (and `source`, the file, if given): missing keys, dtypes
    that are not numbers (strings, objects), length mismatch, wrong shapes, wrong obs/action dims, NaN or inf
    (with the first bad row)."""
    prefix = f"dataset {source!r}: " if source else "dataset: "
    for key in required:
        if key not in data:
            raise ValueError(
                f"{prefix}missing the key {key!r} (has: {', '.join(sorted(data))}); a D4RL/purerl dataset "
                f"needs {', '.join(required)}"
            )
    keys = [key for key in FLAT_KEYS if key in data]
    for key in keys:
        problem = dtype_problem(data[key])
        if problem:
            expected = "bool" if DTYPES[key] is np.bool_ else "float32"
            raise ValueError(f"{prefix}key {key!r} has {problem}, not numbers; store it as {expected}")
        if np.ndim(data[key]) == 0:
            raise ValueError(f"{prefix}key {key!r} is a scalar; it needs one row per transition")
    n = len(data["observations"])
    for key in keys + (["infos/action_log_probs"] if "infos/action_log_probs" in data else []):
        if len(data[key]) != n:
            raise ValueError(
                f"{prefix}key {key!r} has {len(data[key])} rows but 'observations' has {n} (length "
                "mismatch); every key needs one row per transition"
            )
    for key in ("rewards", "terminals", "timeouts"):
        if key in data:
            shape = np.shape(data[key])
            if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
                raise ValueError(f"{prefix}key {key!r} must have shape (N,) or (N, 1), got {shape}")
    for key in ("observations", "next_observations", "actions"):
        if key in data and np.ndim(data[key]) != 2:
            raise ValueError(f"{prefix}key {key!r} must have shape (N, dim), got {np.shape(data[key])}")
    check_env_dims(data, obs_dim, act_dim, source)
    if "next_observations" in data and np.shape(data["next_observations"]) != np.shape(data["observations"]):
        raise ValueError(
            f"{prefix}key 'next_observations' has shape {np.shape(data['next_observations'])} but "
            f"'observations' has {np.shape(data['observations'])}"
        )
    for key in keys:
        found = first_nonfinite(data[key])
        if found:
            raise ValueError(nonfinite_message(prefix, key, *found))


def check_env_dims(data: dict[str, Any], obs_dim: int | None, act_dim: int | None,
                   source: str | None = None) -> None:
    """Raise a ValueError if the (validated) dataset's observation or action dimension is not the env's."""
    prefix = f"dataset {source!r}: " if source else "dataset: "
    for key, dim in (("observations", obs_dim), ("next_observations", obs_dim), ("actions", act_dim)):
        if dim is not None and key in data and np.shape(data[key])[1] != dim:
            raise ValueError(
                f"{prefix}key {key!r} has dimension {np.shape(data[key])[1]} but the environment's is {dim}"
            )


def write_hdf5(path: str, data: dict[str, Any], metadata: dict[str, Any], overwrite: bool = False) -> None:
    """Write a dataset (flat keys, `infos/...` keys) and `metadata/...` scalars to `path`, gzip-compressed.

    An existing file is never replaced unless `overwrite`; the file is written to `path + ".tmp"` first and
    renamed, so an interrupted write never leaves a half-written dataset under the final name.
    """
    import h5py

    if os.path.exists(path) and not overwrite:
        raise ValueError(f"dataset file {path!r} exists; pass overwrite=True (--overwrite) to replace it")
    validate(data)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        for key, value in data.items():
            value = np.asarray(value, DTYPES.get(key))
            f.create_dataset(key, data=value, compression="gzip" if value.ndim else None)
        for key, value in metadata.items():
            f[f"metadata/{key}"] = value
    os.replace(tmp, path)


def open_hdf5(path: str, fix: str = "pass a D4RL/purerl .hdf5 file or a Minari dataset directory"):
    """`h5py.File(path, "r")`, with a ValueError naming the file (and `fix`, what to do) when it is not HDF5
    or cannot be opened."""
    import h5py

    if not h5py.is_hdf5(path):
        raise ValueError(
            f"{path!r} is not an HDF5 file (no HDF5 signature: a text file, an unfinished download or "
            f"another format?); {fix}"
        )
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path!r} could not be opened as HDF5 ({err}); the file may be truncated or "
                         "corrupt: download or collect it again") from None


def read_hdf5(path: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """All datasets of a D4RL/purerl hdf5 file: (data incl. `infos/...`, metadata without its prefix)."""
    import h5py

    data: dict[str, np.ndarray] = {}
    metadata: dict[str, Any] = {}

    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        value = obj[()]
        if name.startswith("metadata/"):
            if isinstance(value, bytes):
                value = value.decode()
            elif isinstance(value, np.generic):
                value = value.item()
            metadata[name[len("metadata/"):]] = value
        else:
            data[name] = np.asarray(value)

    with open_hdf5(path) as f:
        try:
            f.visititems(visit)
        except OSError as err:
            raise ValueError(f"{path!r} could not be read ({err}); the file may be truncated or corrupt: "
                             "download or collect it again") from None
    return data, metadata
