"""Reference returns for normalised scores.

D4RL's table (`d4rl/infos.py`, REF_MIN_SCORE / REF_MAX_SCORE; v1/v2 reuse the v0 values) applies ONLY to real
D4RL gym-mujoco/antmaze files. purerl's own datasets carry their reference returns in the file's metadata
(`ref_min_score` = mean return of the uniform-random policy, `ref_max_score` = mean return of the expert,
100 episodes each), because brax/gymnax environments differ from gym-mujoco.
"""

from __future__ import annotations

D4RL_REFS: dict[str, tuple[float, float]] = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
    "antmaze": (0.0, 1.0),
}
"""env family -> (R_min, R_max) of D4RL (random, expert)."""


def d4rl_refs(name: str) -> tuple[float, float]:
    """(R_min, R_max) for a D4RL dataset or env name such as `hopper-medium-v2` or `antmaze-umaze-v0`."""
    family = name.split("-")[0].lower()
    if family not in D4RL_REFS:
        raise ValueError(f"no D4RL reference returns for {name!r}; known: {', '.join(D4RL_REFS)}")
    return D4RL_REFS[family]
