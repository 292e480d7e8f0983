"""Evaluation envs from gymnasium (`--eval-env gymnasium:Hopper-v5`): the MuJoCo envs that D4RL's and Minari's
datasets were recorded in, so that an offline agent trained on such data gets a D4RL-comparable score.

Unlike purerl's own envs these run on the host, not inside jit: `GymnasiumEvaluation.run_episodes` steps one
gymnasium env per episode in lockstep and asks the (jitted) policy for all their actions at once.
gymnasium is imported only here and only when such an env is named, so purerl works without it
(`pip install 'purerl[mujoco]'` adds it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

PREFIX = "gymnasium:"


def is_gymnasium(name: str) -> bool:
    return name.startswith(PREFIX)


def _import_gymnasium():
    try:
        import gymnasium
    except ImportError:
        raise ValueError(f"{PREFIX} evaluation envs need gymnasium with MuJoCo: "
                         "pip install 'purerl[mujoco]'") from None
    return gymnasium


def _make(env_id: str):
    gymnasium = _import_gymnasium()
    try:
        return gymnasium.make(env_id)
    except gymnasium.error.Error as err:  # unknown id or version, a missing dependency such as mujoco
        raise ValueError(f"gymnasium env {env_id!r} cannot be made: {err}".replace("\n", " ")) from None
    except ImportError as err:  # a MuJoCo env whose module needs a package that is not installed
        raise ValueError(f"gymnasium env {env_id!r} needs {err.name or err}: pip install 'purerl[mujoco]'") \
            from None


@dataclass(frozen=True)
class GymnasiumEvaluation:
    """A gymnasium env to evaluate a policy in, with the reference returns its scores are normalised by.

    `reference_returns` are (random, expert) mean returns, the dataset's `ref_min_score` / `ref_max_score`
    (what `minari.get_normalized_score` uses); None when the dataset has none (raw returns only)."""

    name: str  # "gymnasium:Hopper-v5"
    observation_shape: tuple[int, ...]
    action_shape: tuple[int, ...]
    max_episode_steps: int
    reference_returns: tuple[float, float] | None = None

    runs_on_host = True  # purerl.evaluation steps it from Python instead of inside jit

    @property
    def env_id(self) -> str:
        return self.name[len(PREFIX):]

    def run_episodes(self, act: Callable[[np.ndarray, int], np.ndarray],
                     reset_seeds: np.ndarray) -> np.ndarray:
        """Undiscounted returns of one episode per reset seed, each ended by termination or the env's
        TimeLimit. `act(observations, t) -> actions` gets the (episodes, obs_dim) float32 observations of step
        t and returns actions in [-1, 1]; an ended episode's rows are computed but not stepped."""
        envs = [_make(self.env_id) for _ in reset_seeds]
        try:
            observations = [env.reset(seed=int(seed))[0] for env, seed in zip(envs, reset_seeds, strict=True)]
            returns = np.zeros(len(envs))
            alive = np.ones(len(envs), bool)
            for t in range(self.max_episode_steps):  # the TimeLimit truncates every episode by then
                actions = np.asarray(act(np.stack(observations).astype(np.float32), t), np.float64)
                for i in np.flatnonzero(alive):
                    space = envs[i].action_space  # inside [-1, 1] (checked by `make`), e.g. Humanoid's 0.4
                    observations[i], reward, terminated, truncated, _ = envs[i].step(
                        np.clip(actions[i], space.low, space.high))
                    returns[i] += float(reward)
                    alive[i] = not (terminated or truncated)
                if not alive.any():
                    break
            return returns
        finally:
            for env in envs:
                env.close()


def make(name: str, reference_returns: tuple[float, float] | None = None) -> GymnasiumEvaluation:
    """The evaluation env `gymnasium:ENV_ID`, checked: it exists, its observations and actions are boxes of
    numbers, its actions lie in [-1, 1] (the offline agents' actors act there and Minari's MuJoCo data
    stores env actions unscaled), and a TimeLimit ends its episodes. Raises a one-line ValueError."""
    if not is_gymnasium(name):
        raise ValueError(f"eval_env must be {PREFIX}ENV_ID (e.g. {PREFIX}Hopper-v5), got {name!r}")
    env_id = name[len(PREFIX):]
    gymnasium = _import_gymnasium()
    env = _make(env_id)
    try:
        obs_space, action_space, limit = env.observation_space, env.action_space, env.spec.max_episode_steps
    finally:
        env.close()
    Box = gymnasium.spaces.Box
    if not isinstance(obs_space, Box) or not isinstance(action_space, Box):
        raise ValueError(f"gymnasium env {env_id!r} has {obs_space} observations and {action_space} actions; "
                         "the offline agents need boxes of numbers (continuous actions)")
    if np.any(action_space.low < -1.0) or np.any(action_space.high > 1.0):
        raise ValueError(f"gymnasium env {env_id!r} has actions in [{action_space.low.min()}, "
                         f"{action_space.high.max()}], beyond the [-1, 1] the offline agents' actors act in")
    if not limit:
        raise ValueError(f"gymnasium env {env_id!r} has no time limit (max_episode_steps); its evaluation "
                         "episodes might never end")
    return GymnasiumEvaluation(name, tuple(obs_space.shape), tuple(action_space.shape), int(limit),
                               reference_returns)
