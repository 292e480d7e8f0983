"""Continuous coverage task of SubPO (Prajapat et al., ICLR 2024, "Submodular Reinforcement Learning",
sec. 4.6): an ant walks on the plane and is paid for the ground it covers.

A 100 × 100 coverage mask lies over [−20, 20]² (cells of 0.4 m). After every step the torso position
(x, y) marks the 5 × 5 cell block [i, i+5) × [j, j+5), i = ⌊(x + 20)/0.4⌋, j = ⌊(y + 20)/0.4⌋ (block
cells outside the grid are dropped, as a numpy slice would; ⌊·⌋ equals the code's int() for x ≥ −20).
The mask starts empty at reset (the start position is not marked before the first step). Rewards:

- ``reward="submodular"`` (SubPO): (newly covered cells)/10 — the marginal gain of coverage, so an
  episode's rewards sum to (covered cells at its end)/10;
- ``reward="modular"`` (ModPO): (total covered cells)/10 after each step — a cumulative, additive reward.

Episodes are 400 steps (a *truncation*: agents bootstrap there) and *terminate* when |x| > 20 or |y| > 20
or when the ant's own health check fails (torso height outside [0.2, 1.0]). `info["coverage"]` holds the
covered cells after the step. The policy sees only the base env's observation, never the mask.

The ant is brax's ``ant`` (`purerl.envs.brax.BraxEnv`) built with
``exclude_current_positions_from_observation=False``, so the observation keeps the torso x, y (29-d,
like the paper's Ant-v4 with positions; brax's layout: q then qd). The coverage itself reads x, y from
the physics state (`pipeline_state.x.pos[0, :2]`, the torso body), not from the observation.

`CoverageEnv` is generic over the walker: any gymnax-API env plus a `position_fn(state) -> (x, y)`
(the tests drive it with a scripted point mass). Names: ``ant_coverage`` and ``ant_coverage_modular``
(`purerl.envs.make`; keyword ``backend=`` picks brax's physics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from purerl.envs.brax import BraxEnv

REWARDS = ("submodular", "modular")
GRID = 100  # cells per side
HALF_WIDTH = 20.0  # the grid covers [-HALF_WIDTH, HALF_WIDTH]^2
CELL = 2 * HALF_WIDTH / GRID  # 0.4 m
BLOCK = 5  # cells per side of the block marked at each step
REWARD_SCALE = 10.0  # rewards are cells / REWARD_SCALE
HORIZON = 400


# --------------------------------------------------------------------------------------------- maths
def cell_index(xy: jax.Array) -> jax.Array:
    """Grid indices (i, j) = ⌊(xy + 20) / 0.4⌋ of a planar position (may lie outside [0, 100))."""
    return jnp.floor((jnp.asarray(xy, jnp.float32) + HALF_WIDTH) / CELL).astype(jnp.int32)


def block_mask(xy: jax.Array) -> jax.Array:
    """bool[100, 100]: the 5 × 5 block [i, i+5) × [j, j+5) of `xy`, cropped to the grid."""
    i, j = cell_index(xy)
    cells = jnp.arange(GRID)
    rows = (cells >= i) & (cells < i + BLOCK)
    cols = (cells >= j) & (cells < j + BLOCK)
    return rows[:, None] & cols[None, :]


def cover(mask: jax.Array, covered: jax.Array, xy: jax.Array, reward: str):
    """Mark the block of `xy`. Returns (new mask, new covered-cell count, reward): the reward is
    new cells / 10 ("submodular") or the new total / 10 ("modular")."""
    block = block_mask(xy)
    new_cells = jnp.sum(block & ~mask, dtype=jnp.int32)
    covered = covered + new_cells
    gained = new_cells if reward == "submodular" else covered
    return mask | block, covered, gained.astype(jnp.float32) / REWARD_SCALE


def out_of_bounds(xy: jax.Array) -> jax.Array:
    return jnp.any(jnp.abs(xy) > HALF_WIDTH)


# --------------------------------------------------------------------------------------------- env
@struct.dataclass
class CoverageEnvParams(environment.EnvParams):
    max_steps_in_episode: int = HORIZON
    base: Any = None  # the base env's params


@struct.dataclass
class CoverageEnvState(environment.EnvState):
    base: Any  # the base env's state
    mask: jax.Array  # bool[100, 100] covered cells
    covered: jax.Array  # int32 number of covered cells
    time: int


def check_reward(reward: str) -> None:
    if reward not in REWARDS:
        raise ValueError(f"reward: unknown option {reward!r}; valid: {', '.join(REWARDS)}")


class CoverageEnv(environment.Environment):
    """Coverage reward, boundary termination and a 400-step limit on top of `base_env`, whose state gives
    the planar position through `position_fn(base_state) -> xy`. Observations are the base env's."""

    def __init__(self, base_env, position_fn: Callable[[Any], jax.Array], reward: str = "submodular",
                 name: str = "coverage"):
        check_reward(reward)
        self.base_env = base_env
        self.position_fn = position_fn
        self.reward = reward
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def default_params(self) -> CoverageEnvParams:
        return CoverageEnvParams(base=self.base_env.default_params)

    def reset_env(self, key, params):
        obs, base = self.base_env.reset_env(key, params.base)
        mask = jnp.zeros((GRID, GRID), bool)
        return obs, CoverageEnvState(base=base, mask=mask, covered=jnp.zeros((), jnp.int32), time=0)

    def step_env(self, key, state, action, params):
        obs, base, _, base_terminated, _ = self.base_env.step_env(key, state.base, action, params.base)
        xy = self.position_fn(base)
        mask, covered, reward = cover(state.mask, state.covered, xy, self.reward)
        terminated = jnp.logical_or(base_terminated, out_of_bounds(xy))
        new_state = CoverageEnvState(base=base, mask=mask, covered=covered, time=state.time + 1)
        return obs, new_state, reward, terminated, {"coverage": covered}

    def is_terminated(self, state, params):
        return jnp.logical_or(self.base_env.is_terminated(state.base, params.base),
                              out_of_bounds(self.position_fn(state.base)))

    def action_space(self, params=None):
        return self.base_env.action_space(None if params is None else params.base)

    def observation_space(self, params=None):
        return self.base_env.observation_space(None if params is None else params.base)

    @property
    def num_actions(self) -> int:
        return self.base_env.num_actions


def torso_xy(brax_env_state) -> jax.Array:
    """(x, y) of the ant's torso (body 0) from a `purerl.envs.brax.BraxEnvState`."""
    return brax_env_state.brax_state.pipeline_state.x.pos[0, :2]


def make_ant_coverage(reward: str = "submodular", backend: str = "generalized", **brax_kwargs) -> CoverageEnv:
    """Brax ``ant`` (torso x, y kept in the 29-d observation) with the coverage reward."""
    check_reward(reward)  # before building brax
    ant = BraxEnv("ant", backend=backend, exclude_current_positions_from_observation=False, **brax_kwargs)
    name = "ant_coverage" if reward == "submodular" else "ant_coverage_modular"
    return CoverageEnv(ant, torso_xy, reward, name=name)

