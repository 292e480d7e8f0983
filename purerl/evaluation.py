"""Jitted evaluation: run fresh episodes of a policy in parallel and return their undiscounted returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp


def evaluate_policy(
    env,
    env_params,
    act: Callable[[jax.Array, jax.Array], jax.Array],
    key: jax.Array,
    num_episodes: int,
    max_steps: int | None = None,
) -> jax.Array:
    """Returns of `num_episodes` parallel episodes; `act(key, obs) -> action` for a single observation.

    Each env runs until its first episode ends (terminated or truncated); the scan length is the env's
    time limit (`env_params.max_steps_in_episode`) unless `max_steps` is given.
    """
    steps = int(max_steps if max_steps is not None else env_params.max_steps_in_episode)
    reset_key, run_key = jax.random.split(key)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_episodes), env_params)

    def step(carry, step_key):
        obs, env_state, returns, alive = carry
        act_key, env_key = jax.random.split(step_key)
        action = jax.vmap(act)(jax.random.split(act_key, num_episodes), obs)
        obs, env_state, reward, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(env_key, num_episodes), env_state, action, env_params
        )
        returns = returns + jnp.where(alive, reward, 0.0)
        alive = alive & ~(terminated | truncated)
        return (obs, env_state, returns, alive), None

    init = (obs, env_state, jnp.zeros(num_episodes), jnp.ones(num_episodes, bool))
    (_, _, returns, _), _ = jax.lax.scan(step, init, jax.random.split(run_key, steps))
    return returns


@dataclass(frozen=True)
class Policy:
    """How a trained agent acts, apart from its training: the env it is evaluated in and its action choice.

    `act_fn(state, deterministic) -> act(key, obs) -> action` binds a train state once (e.g. reads the
    observation statistics), then gives the action for one observation: sampled from the policy, or, with
    `deterministic=True`, its most likely action (the mode). `env` is the evaluation env (no training
    wrappers), so saved runs can be evaluated and rendered exactly as the runner evaluates them.
    `deterministic_evaluation` is the mode the agent's final evaluation acts in: the sampled policy for the
    on-policy actor-critics (as rejax reports), the mode where the method's authors evaluate that way (SAC,
    the policy-gradient estimators, the offline agents)."""

    env: Any
    env_params: Any
    act_fn: Callable[[Any, bool], Callable[[jax.Array, jax.Array], jax.Array]]
    deterministic_evaluation: bool = False


def make_evaluate(policy: Policy, num_episodes: int) -> Callable[[Any, jax.Array], jax.Array]:
    """`evaluate(state, key) -> returns` of `num_episodes` fresh episodes of the policy, acting in its
    evaluation mode (`policy.deterministic_evaluation`)."""

    def evaluate(state, key):
        act = policy.act_fn(state, policy.deterministic_evaluation)
        return evaluate_policy(policy.env, policy.env_params, act, key, num_episodes)

    return evaluate
