"""Checkpoints with orbax: the seed-batched train state plus the host-side metrics so far.

Orbax writes each step into a temporary directory and renames it when complete, so a run killed
mid-write leaves the previous checkpoint intact (atomic). Only the newest `keep` steps are kept.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import orbax.checkpoint as ocp


def _manager(directory: str, keep: int = 2) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
    return ocp.CheckpointManager(os.path.abspath(directory), options=options)


def save(directory: str, iteration: int, state: Any, metrics: dict[str, np.ndarray]) -> None:
    """Save `state` (any pytree of arrays) and the metrics (name -> array) at `iteration`."""
    with _manager(directory) as manager:
        manager.save(
            iteration,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),  # sharded arrays: each process writes its own shards
                history=ocp.args.StandardSave({k: np.asarray(v) for k, v in metrics.items()}),
            ),
        )
        manager.wait_until_finished()


def latest(directory: str) -> int | None:
    """The newest complete checkpoint's iteration, or None."""
    if not os.path.isdir(directory):
        return None
    with _manager(directory) as manager:
        return manager.latest_step()


def steps(directory: str) -> list[int]:
    """The iterations of the complete checkpoints kept in `directory`, oldest first ([] if none)."""
    if not os.path.isdir(directory):
        return []
    with _manager(directory) as manager:
        return sorted(manager.all_steps())


class CheckpointMismatch(ValueError):
    """The saved train state has another structure than the agent's (another purerl version, or a config
    that changes the state's fields)."""


def restore(directory: str, abstract_state: Any,
            step: int | None = None) -> tuple[int, Any, dict[str, np.ndarray]]:
    """Restore the checkpoint of iteration `step` (default: the newest); `abstract_state` gives the state's
    structure, shapes and dtypes."""
    with _manager(directory) as manager:
        step = manager.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {directory}")
        try:
            restored = manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract_state), history=ocp.args.StandardRestore()
                ),
            )
        except ValueError as err:
            if "tree structures do not match" not in str(err):
                raise
            # orbax lists the differing paths (field.subfield...) under its first line: name their fields
            fields = sorted({line.strip().rstrip(":").split(".")[0] for line in str(err).splitlines()[1:]
                             if line.strip().endswith(":") and not line.startswith(" ")})
            differ = ", ".join(fields) or "unnamed"
            raise CheckpointMismatch(
                f"the checkpoint in {directory} holds another train state than this agent's (fields that "
                f"differ: {differ}); it was saved by another purerl version or with another configuration: "
                "start a new run") from None
    return step, restored["state"], {k: np.asarray(v) for k, v in restored["history"].items()}
