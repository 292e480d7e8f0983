"""Advantage and return estimators. Time is the leading axis of every input.

Truncation is not termination: `next_values[t]` must be the value of the *true* next observation
(`info["final_observation"]` when the episode ended at t), `terminated[t]` removes the bootstrap and
`done[t] = terminated[t] | truncated[t]` cuts the recursion at episode boundaries.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

GAE_UNROLL = 16  # GAE's time steps per loop trip


def gae(rewards, values, next_values, terminated, done, gamma: float, lam: float):
    """Generalised advantage estimation. Returns `(advantages, value_targets)`.

    delta_t = r_t + gamma * (1 - terminated_t) * V(s'_t) - V(s_t)
    A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1}
    """
    # the masks take the values' dtype: float32 masks would round gamma * lam to float32 in a float64 run
    dtype = jnp.result_type(values, jnp.float32)
    not_terminated = 1.0 - jnp.asarray(terminated, dtype)
    not_done = 1.0 - jnp.asarray(done, dtype)
    deltas = rewards + gamma * not_terminated * next_values - values

    def step(next_advantage, inputs):
        delta, cont = inputs
        advantage = delta + gamma * lam * cont * next_advantage
        return advantage, advantage

    # unrolled: the same arithmetic per step, but a 128-step rollout costs 8 loop trips instead of 128 (each
    # trip of XLA's CPU loop costs more than this step's few elementwise operations)
    _, advantages = jax.lax.scan(step, jnp.zeros_like(deltas[0]), (deltas, not_done), reverse=True,
                                 unroll=GAE_UNROLL)
    return advantages, advantages + values


def discounted_returns(rewards, done, gamma: float, bootstrap=None):
    """Reward-to-go sum_k gamma^k r_{t+k} within each episode (cut at `done`), optionally bootstrapped
    from `bootstrap` (the value after the last step) where the segment did not end."""
    not_done = 1.0 - jnp.asarray(done, jnp.result_type(rewards, jnp.float32))  # float64 runs keep gamma exact
    init = jnp.zeros_like(rewards[0]) if bootstrap is None else bootstrap

    def step(next_return, inputs):
        reward, cont = inputs
        ret = reward + gamma * cont * next_return
        return ret, ret

    _, returns = jax.lax.scan(step, init, (rewards, not_done), reverse=True)
    return returns
