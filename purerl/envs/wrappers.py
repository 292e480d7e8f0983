"""Environment wrappers on the gymnax-1.0 functional API.

Every wrapper keeps the API `reset(key, params) -> (obs, state)` and
`step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)`, so they compose
in any order and agents never know which wrappers are present.

Auto-reset is done by the base environment (gymnax 1.0 resets inside `step` and keeps the pre-reset
observation in `info["final_observation"]`; `purerl.envs.brax.BraxEnv` does the same). Wrappers that
transform observations transform `final_observation` identically, so agents can bootstrap from it on
truncation.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

from purerl import evaluation


class Wrapper:
    """Forwards every attribute it does not define to the wrapped environment."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)

    @property
    def unwrapped(self):
        return getattr(self._env, "unwrapped", self._env)

    def reset(self, key, params=None):
        return self._env.reset(key, params)

    def step(self, key, state, action, params=None):
        return self._env.step(key, state, action, params)

    def step_without_reset(self):
        """`purerl.evaluation.step_without_reset` of the wrapped env, or None: a wrapper that keeps a state
        of its own (episode statistics, observation statistics) steps only through `step`."""
        return None


@struct.dataclass
class EpisodeStatsState:
    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array
    returned_episode_return: jax.Array  # return of the last finished episode (0 before the first)
    returned_episode_length: jax.Array


class EpisodeStats(Wrapper):
    """Tracks undiscounted episode return and length.

    `info["episode_done"]` marks steps that ended an episode (terminated or truncated) and
    `info["episode_return"]`/`info["episode_length"]` hold that episode's totals on those steps.
    """

    def reset(self, key, params=None):
        obs, env_state = self._env.reset(key, params)
        zero = jnp.zeros((), jnp.float32)
        zero_count = jnp.zeros((), jnp.int32)
        return obs, EpisodeStatsState(env_state, zero, zero_count, zero, zero_count)

    def step(self, key, state, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params)
        done = jnp.logical_or(terminated, truncated)
        ep_return = state.episode_return + reward
        ep_length = state.episode_length + 1
        new_state = EpisodeStatsState(
            env_state=env_state,
            episode_return=jnp.where(done, 0.0, ep_return),
            episode_length=jnp.where(done, 0, ep_length),
            returned_episode_return=jnp.where(done, ep_return, state.returned_episode_return),
            returned_episode_length=jnp.where(done, ep_length, state.returned_episode_length),
        )
        info = {**info, "episode_done": done, "episode_return": ep_return, "episode_length": ep_length}
        return obs, new_state, reward, terminated, truncated, info


@struct.dataclass
class RunningMeanStd:
    """Running mean and variance (Chan et al. parallel update), started at mean 0, var 1, count eps."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape):
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32),
                   jnp.asarray(1e-4, jnp.float32))

    def update(self, batch: jax.Array) -> RunningMeanStd:
        """Update with a batch whose leading axis is the sample axis."""
        return self.update_from_moments(batch.mean(axis=0), batch.var(axis=0), batch.shape[0])

    def update_from_moments(self, batch_mean, batch_var, batch_count) -> RunningMeanStd:
        delta = batch_mean - self.mean
        total = self.count + batch_count
        mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        return RunningMeanStd(mean, m2 / total, total)

    def merge(self) -> RunningMeanStd:
        """Exactly pool statistics batched along the leading axis (e.g. one per vmapped env)."""
        total = self.count.sum()
        mean = jnp.einsum("n,n...->...", self.count, self.mean) / total
        second = self.var + (self.mean - mean) ** 2
        return RunningMeanStd(mean, jnp.einsum("n,n...->...", self.count, second) / total, total)

    def normalize(self, x: jax.Array, clip: float = 10.0) -> jax.Array:
        return jnp.clip((x - self.mean) / jnp.sqrt(self.var + 1e-8), -clip, clip)


@struct.dataclass
class NormalizeObservationState:
    env_state: Any
    obs_stats: RunningMeanStd


class NormalizeObservation(Wrapper):
    """Normalises observations with running statistics kept in the env state.

    With `axis_name`, the statistics are shared by all envs of a `jax.vmap(..., axis_name=axis_name)`
    (every env holds the same copy, updated with the moments of the whole batch), as a vectorised
    normaliser should be: per-env statistics let each env drift towards its own normalisation (an env
    whose pendulum spins learns to call spinning "normal"). Without `axis_name` each env keeps its own.
    `info["final_observation"]` is normalised with the same statistics. `update_stats=False` freezes them.
    """

    def __init__(self, env, clip: float = 10.0, update_stats: bool = True, axis_name: str | None = None):
        super().__init__(env)
        self.clip = clip
        self.update_stats = update_stats
        self.axis_name = axis_name

    def _observe(self, stats: RunningMeanStd, obs):
        obs = jnp.asarray(obs, jnp.float32)
        if self.update_stats:
            if self.axis_name is None:
                stats = stats.update(obs[None])
            else:
                mean = jax.lax.pmean(obs, self.axis_name)
                var = jax.lax.pmean((obs - mean) ** 2, self.axis_name)
                stats = stats.update_from_moments(mean, var, jax.lax.psum(1.0, self.axis_name))
        return stats, stats.normalize(obs, self.clip)

    def reset(self, key, params=None):
        obs, env_state = self._env.reset(key, params)
        stats, norm_obs = self._observe(RunningMeanStd.create(jnp.shape(obs)), obs)
        return norm_obs, NormalizeObservationState(env_state, stats)

    def step(self, key, state, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params)
        stats, norm_obs = self._observe(state.obs_stats, obs)
        final_observation = stats.normalize(jnp.asarray(info["final_observation"]), self.clip)
        info = {**info, "final_observation": final_observation}
        return norm_obs, NormalizeObservationState(env_state, stats), reward, terminated, truncated, info


class _ActionWrapper(Wrapper):
    """A wrapper that only maps the action before it reaches the environment: subclasses define
    `action(action, params)`."""

    def step(self, key, state, action, params=None):
        return self._env.step(key, state, self.action(action, params), params)

    def step_without_reset(self):
        inner = evaluation.step_without_reset(self._env)
        if inner is None:
            return None
        return lambda key, state, action, params: inner(key, state, self.action(action, params), params)


class ClipAction(_ActionWrapper):
    """Clips continuous actions to the action space's bounds before they reach the environment."""

    def action(self, action, params=None):
        space = self._env.action_space(params if params is not None else self._env.default_params)
        return jnp.clip(action, space.low, space.high)


def unit_to_bounds(action, space):
    """Maps actions in [-1, 1] affinely onto the space's [low, high]."""
    return space.low + (action + 1.0) * 0.5 * (space.high - space.low)


def tanh_to_bounds(action, space):
    """Squashes unbounded actions into the space's [low, high] with tanh (the identity's smooth stand-in
    near 0 for [-1, 1] bounds)."""
    return unit_to_bounds(jnp.tanh(action), space)


class TanhAction(_ActionWrapper):
    """Squashes unbounded continuous actions into the action space's bounds with tanh (`tanh_to_bounds`)
    before they reach the environment: a Gaussian policy in front of it acts as brax PPO's tanh-squashed
    Normal, with the log-probabilities of the unsquashed sample."""

    def action(self, action, params=None):
        return tanh_to_bounds(action, self._env.action_space(params if params is not None
                                                             else self._env.default_params))


class RescaleAction(_ActionWrapper):
    """Maps actions from [-1, 1] to the action space's [low, high] (clipping first)."""

    def action(self, action, params=None):
        space = self._env.action_space(params if params is not None else self._env.default_params)
        return unit_to_bounds(jnp.clip(action, -1.0, 1.0), space)


def is_discrete(env, params) -> bool:
    return isinstance(env.action_space(params), spaces.Discrete)


def action_dim(env, params) -> int:
    space = env.action_space(params)
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    return math.prod(space.shape)  # static: an agent built inside a program (a --sweep) reads it too


def find_obs_stats(env_state) -> RunningMeanStd | None:
    """The observation statistics in a (possibly wrapped) env state, or None."""
    while env_state is not None:
        if isinstance(env_state, NormalizeObservationState):
            return env_state.obs_stats
        env_state = getattr(env_state, "env_state", None)
    return None
