"""Where generated datasets live: `$PURERL_DATA`, else `$XDG_CACHE_HOME/purerl/datasets` (~/.cache/...).
Generated files never go into git."""

from __future__ import annotations

import os
import typing
from typing import Literal

SUFFIX = "-purerl-v0.hdf5"
# the kinds of dataset that `purerl collect` makes
Kind = Literal["random", "medium", "expert", "medium-replay", "medium-expert", "full-replay"]
KINDS: tuple[str, ...] = typing.get_args(Kind)


def default_cache_dir() -> str:
    if os.environ.get("PURERL_DATA"):
        return os.environ["PURERL_DATA"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "purerl", "datasets")


def dataset_path(env: str, kind: str, directory: str | None = None) -> str:
    """`<dir>/<env>-<kind>-purerl-v0.hdf5`."""
    return os.path.join(directory or default_cache_dir(), f"{env}-{kind}{SUFFIX}")


MINARI_PREFIX = "minari:"


def minari_datasets_dir() -> str:
    """Where minari keeps its datasets (`minari download` writes there): $MINARI_DATASETS_PATH, else
    ~/.minari/datasets, as minari itself decides."""
    home = os.path.expanduser("~")
    return os.environ.get("MINARI_DATASETS_PATH") or os.path.join(home, ".minari", "datasets")


def resolve(dataset: str) -> str:
    """A dataset path, an `env-kind` name (e.g. `Pendulum-v1-medium-replay`) looked up in the cache, or
    `minari:DATASET_ID` (e.g. `minari:mujoco/hopper/medium-v0`, in minari's datasets folder) or
    `minari:DIRECTORY`."""
    if dataset.startswith(MINARI_PREFIX):
        name = dataset[len(MINARI_PREFIX):]
        if os.path.isdir(name):
            return name
        path = os.path.join(minari_datasets_dir(), name)
        if os.path.isdir(path):
            return path
        raise ValueError(f"Minari dataset {name!r} not found at {path}; download it with `minari download "
                         f"{name}` (minari's datasets folder: $MINARI_DATASETS_PATH or ~/.minari/datasets)")
    if os.path.exists(dataset):
        return dataset
    for kind in sorted(KINDS, key=len, reverse=True):
        if dataset.endswith("-" + kind):
            path = dataset_path(dataset[: -len(kind) - 1], kind)
            if os.path.exists(path):
                return path
            raise ValueError(
                f"dataset {dataset!r} not found at {path}; generate it with `purerl collect --env "
                f"{dataset[: -len(kind) - 1]} --kinds {kind}` "
                f"(cache dir: $PURERL_DATA or {default_cache_dir()})"
            )
    raise ValueError(f"dataset {dataset!r} is neither an existing path nor an `env-kind` name "
                     f"(kinds: {', '.join(KINDS)})")
