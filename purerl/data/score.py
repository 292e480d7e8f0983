"""D4RL normalised score: 100 * (R - R_min) / (R_max - R_min) (Fu et al. 2020, `d4rl.get_normalized_score`).

It is linear, so the score of the mean return equals the mean of the per-episode scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from purerl.data.refs import d4rl_refs


def normalized_score(returns, ref_min: float, ref_max: float):
    """100 * (R - ref_min) / (ref_max - ref_min), elementwise on `returns` (numpy or jax arrays)."""
    if ref_max == ref_min:
        raise ValueError(f"reference returns are equal (ref_min = ref_max = {ref_min}); cannot normalise")
    return 100.0 * (returns - ref_min) / (ref_max - ref_min)


def reference_returns(metadata: dict[str, Any] | None = None, name: str | None = None) -> tuple[float, float]:
    """(ref_min, ref_max): from a purerl/Minari file's metadata if it has them, else D4RL's table for
    `name`."""
    if metadata and "ref_min_score" in metadata and "ref_max_score" in metadata:
        return float(metadata["ref_min_score"]), float(metadata["ref_max_score"])
    if name is None:
        raise ValueError("the dataset's metadata has no ref_min_score/ref_max_score; give a D4RL env name")
    return d4rl_refs(name)


def score_of(returns, metadata: dict[str, Any] | None = None, name: str | None = None) -> float:
    """Normalised score of the mean return (what D4RL papers report)."""
    lo, hi = reference_returns(metadata, name)
    return float(normalized_score(float(np.mean(np.asarray(returns))), lo, hi))
