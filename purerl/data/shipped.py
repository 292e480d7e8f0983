"""The expert policies that ship with purerl (`purerl/data/experts/<env>.npz` + `<env>.json`), their format.

An expert file pair holds what `purerl collect` needs to generate every dataset kind without training:
- `<env>.npz`: the policy snapshots (for PPO: network parameters and observation statistics; for SAC: the
  actor parameters), one array per leaf, named `<policy>/<path in the snapshot pytree>` (e.g.
  `expert/params/params/actor/Dense_0/kernel`), so that a snapshot written by another trainer can be
  converted by writing the same names;
- `<env>.json`: `format`, `env`, `backend`, `brax_backend`, `learner`, `network`, `source`, the `command` and
  the `collect_config` (the training recipe: the `purerl collect` fields that fix the expert), the `seed`,
  `policies` (for "medium" and "expert": checkpoint index, env step, evaluation return), every checkpoint's
  `checkpoint_steps` / `checkpoint_evals`, `ref_min` / `ref_max`, `purerl_version`, `git_commit`.
A file without `collect_config` (an expert trained elsewhere) still gives random, medium, expert and
medium-expert; the replay kinds need the recipe (see `purerl.collect`).
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np

FORMAT = "purerl-expert-v1"
EXPERTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "experts")


def shipped_envs() -> list[str]:
    """Envs with an expert in the package."""
    if not os.path.isdir(EXPERTS_DIR):
        return []
    return sorted(name[: -len(".json")] for name in os.listdir(EXPERTS_DIR) if name.endswith(".json"))


def shipped_expert(env: str) -> str | None:
    """The stem (path without .npz/.json) of the shipped expert for `env`, or None."""
    stem = os.path.join(EXPERTS_DIR, env)
    return stem if os.path.exists(stem + ".json") else None


def _leaf_name(path) -> str:
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):  # DictKey, GetAttrKey, SequenceKey
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
    return "/".join(parts)


def flatten(tree) -> dict[str, np.ndarray]:
    """{leaf name: array} of a pytree (names as in the npz file, without the policy prefix)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {_leaf_name(path): np.asarray(leaf) for path, leaf in leaves}


def unflatten(template, arrays: dict[str, np.ndarray], source: str = "expert file"):
    """`template`'s pytree with its leaves read from `arrays` by name; a missing leaf or a shape that differs
    from the template's is a ValueError naming it."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    for path, leaf in paths:
        name = _leaf_name(path)
        if name not in arrays:
            raise ValueError(f"{source}: no array {name!r} (has: {', '.join(sorted(arrays))})")
        if np.shape(arrays[name]) != np.shape(leaf):
            raise ValueError(f"{source}: array {name!r} has shape {np.shape(arrays[name])}, the policy needs "
                             f"{np.shape(leaf)}")
        leaves.append(np.asarray(arrays[name], leaf.dtype))
    return jax.tree_util.tree_unflatten(treedef, leaves)


def save_expert(stem: str, policies: dict[str, Any], meta: dict[str, Any]) -> tuple[str, str]:
    """Write `<stem>.npz` (the `policies` pytrees, by name) and `<stem>.json` (`meta` plus `format`)."""
    arrays = {f"{name}/{leaf}": value
              for name, tree in policies.items() for leaf, value in flatten(tree).items()}
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
    np.savez_compressed(stem + ".tmp.npz", **arrays)
    os.replace(stem + ".tmp.npz", stem + ".npz")
    with open(stem + ".json.tmp", "w") as f:
        json.dump({"format": FORMAT, **meta}, f, indent=1)
        f.write("\n")
    os.replace(stem + ".json.tmp", stem + ".json")
    return stem + ".npz", stem + ".json"


def load_meta(stem: str) -> dict[str, Any]:
    """The metadata of an expert file pair (its JSON), without reading the policies."""
    with open(stem + ".json") as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{stem}.json: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def load_expert(stem: str) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """({policy name: {leaf name: array}}, metadata) of an expert file pair."""
    meta = load_meta(stem)
    policies: dict[str, dict[str, np.ndarray]] = {}
    with np.load(stem + ".npz", allow_pickle=False) as saved:
        for key in saved.files:
            name, leaf = key.split("/", 1)
            policies.setdefault(name, {})[leaf] = saved[key]
    return policies, meta
