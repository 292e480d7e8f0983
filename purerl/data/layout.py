"""The D4RL hdf5 layout (gym-mujoco "v2") that purerl writes and reads, and its validation.

Root datasets, N rows, episodes stored contiguously (an episode ends at a row with `terminals` or `timeouts`):
observations (N, obs_dim), actions (N, act_dim), rewards (N,), next_observations (N, obs_dim),
terminals (N,) bool (true termination), timeouts (N,) bool (time limit without termination),
`infos/action_log_probs` (N,) and `metadata/*` scalars. Source: D4RL `scripts/generation/mujoco/collect_data.py`
and `d4rl/offline_env.py` (see `shared/algorithms/offline_data.md`, sec. 2).
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


def validate(data: dict[str, Any], obs_dim: int | None = None, act_dim: int | None = None,
             required: tuple[str, ...] = REQUIRED_KEYS) -> None:
    """Raise a ValueError naming the offending key: missing keys, length mismatch, wrong obs/action dims."""
    for key in required:
        if key not in data:
            raise ValueError(f"dataset is missing the key {key!r} (has: {', '.join(sorted(data))})")
    n = len(data["observations"])
    for key in FLAT_KEYS + ("infos/action_log_probs",):
        if key in data and len(data[key]) != n:
            raise ValueError(
                f"dataset key {key!r} has {len(data[key])} rows but 'observations' has {n} (length mismatch)"
            )
    for key in ("rewards", "terminals", "timeouts"):
        if key in data:
            shape = np.shape(data[key])
            if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
                raise ValueError(f"dataset key {key!r} must have shape (N,) or (N, 1), got {shape}")
    for key, dim in (("observations", obs_dim), ("next_observations", obs_dim), ("actions", act_dim)):
        if key in data and np.ndim(data[key]) != 2:
            raise ValueError(f"dataset key {key!r} must have shape (N, dim), got {np.shape(data[key])}")
        if dim is not None and key in data and np.shape(data[key])[1] != dim:
            raise ValueError(
                f"dataset key {key!r} has dimension {np.shape(data[key])[1]} but the environment's is {dim}"
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

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return data, metadata
