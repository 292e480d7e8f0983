"""Dataset preprocessing used by the offline baselines (pure numpy functions on the flat dataset dict)."""

from __future__ import annotations

import numpy as np


def normalize_states(data: dict, eps: float = 1e-3) -> tuple[dict, np.ndarray, np.ndarray]:
    """Standardise observations and next_observations with the dataset's mean and std + eps.

    Source: sfujim/TD3_BC `utils.ReplayBuffer.normalize_states` (eps 1e-3; JAX-CORL's IQL uses 1e-5).
    Returns (new data, mean, std); evaluation must apply (obs - mean) / std the same way."""
    mean = data["observations"].mean(0, keepdims=True)
    std = data["observations"].std(0, keepdims=True) + eps
    out = dict(data)
    out["observations"] = ((data["observations"] - mean) / std).astype(np.float32)
    out["next_observations"] = ((data["next_observations"] - mean) / std).astype(np.float32)
    return out, mean[0].astype(np.float32), std[0].astype(np.float32)


def episode_returns(data: dict) -> np.ndarray:
    """Returns of the episodes in a flat dataset, split where observations[i+1] != next_observations[i] or at
    terminal/timeout rows (as ikostrikov/implicit_q_learning's `split_into_trajectories`)."""
    obs, nxt = data["observations"], data["next_observations"]
    done = np.asarray(data["terminals"], bool).copy()
    if "timeouts" in data:
        done |= np.asarray(data["timeouts"], bool)
    gap = np.zeros(len(obs), bool)
    gap[:-1] = np.any(np.abs(obs[1:] - nxt[:-1]) > 1e-6, axis=1)
    ends = np.nonzero(done | gap)[0]
    ends = ends if len(ends) and ends[-1] == len(obs) - 1 else np.append(ends, len(obs) - 1)
    csum = np.concatenate([[0.0], np.cumsum(data["rewards"], dtype=np.float64)])
    starts = np.concatenate([[0], ends[:-1] + 1])
    return csum[ends + 1] - csum[starts]


def iql_reward_scale(data: dict) -> dict:
    """r * 1000 / (max episode return - min episode return) (IQL, MuJoCo locomotion)."""
    returns = episode_returns(data)
    spread = float(returns.max() - returns.min())
    out = dict(data)
    out["rewards"] = (data["rewards"] * (1000.0 / max(spread, 1e-8))).astype(np.float32)
    return out


def antmaze_shift(data: dict) -> dict:
    """r - 1 (IQL, AntMaze)."""
    out = dict(data)
    out["rewards"] = (data["rewards"] - 1.0).astype(np.float32)
    return out


def clip_actions(data: dict, bound: float = 1.0 - 1e-5) -> dict:
    """Clip actions to [-bound, bound] (IQL, so that log-probabilities stay finite)."""
    out = dict(data)
    out["actions"] = np.clip(data["actions"], -bound, bound).astype(np.float32)
    return out
