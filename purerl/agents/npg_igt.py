"""N-PG-IGT: normalized policy gradient with implicit gradient transport (Fatkhullin et al., ICML 2023,
Algorithm 1).

t = 0: d_0 = ĝ(θ_0), θ_1 = θ_0 + γ_0 d_0/‖d_0‖. For t ≥ 1:

    θ̃_t = θ_t + ((1−η_t)/η_t)(θ_t − θ_{t−1})          (extrapolated point)
    τ_t ~ π_{θ̃_t}  (batch of full episodes),  d_t = (1−η_t) d_{t−1} + η_t ĝ(τ_t, θ̃_t)
    θ_{t+1} = θ_t + γ_t d_t / ‖d_t‖,   γ_t = γ0 · 2/(t+2),  η_t = η0 (2/(t+2))^{4/5}

Both the trajectories and the score function are taken at θ̃_t; the update is applied to θ_t. For a
quadratic J, (1−η)∇J(θ_{t−1}) + η∇J(θ̃_t) = ∇J(θ_t): the momentum is transported to the current point.

`igt_eta_lag=True` reproduces the published code, where θ̃_t is built with η_{t−1} while the momentum uses
η_t (docs/algorithms/npg_igt_harpg.md). The GPOMDP estimator, schedules, rollout and baseline are shared
(`purerl.pg_estimators`).

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/npg_igt_harpg.md`.

Run it: `python -m purerl.agents.npg_igt --num-seeds 5` (same flags as `purerl train npg_igt`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
from flax import struct

from purerl.agent import Agent, train_fn
from purerl.pg_estimators import (
    PGConfig,
    initial_step_sizes,
    make_core,
    momentum,
    normalized_step,
    step_size,
    validate_config,
)


@dataclass(frozen=True)
class Config(PGConfig):
    method: Literal["npg_igt"] = "npg_igt"
    """npg_igt (the only method of this file)"""
    igt_eta_lag: bool = False
    """build θ̃_t with η_{t-1} as the published code does (paper: η_t)"""


@struct.dataclass
class State:
    theta: jax.Array  # θ_t
    theta_prev: jax.Array  # θ_{t-1} (= θ_0 at t = 0)
    direction: jax.Array  # d_{t-1}
    baseline: jax.Array
    key: jax.Array
    iteration: jax.Array
    gamma_0: jax.Array  # γ0, η0 live in the state so a sweep can vmap over them
    eta_0: jax.Array


def igt_direction(t, theta, theta_prev, d_prev, eta_t, eta_extrap, grad_at):
    """One IGT step: the extrapolated point θ̃ and d_t = (1−η_t) d_{t−1} + η_t ĝ(θ̃) (d_0 = ĝ(θ_0)).

    `grad_at(θ̃) -> (ĝ, aux)`; `eta_extrap` is the η used for the extrapolation (η_t, or η_{t-1} with lag).
    Shared by the agent and the exact-gradient transport test.
    """
    theta_tilde = jnp.where(t == 0, theta, theta + (1.0 - eta_extrap) / eta_extrap * (theta - theta_prev))
    g, aux = grad_at(theta_tilde)
    d = jnp.where(t == 0, g, (1.0 - eta_t) * d_prev + eta_t * g)
    return d, theta_tilde, g, aux


def make_agent(config: Config) -> Agent:
    validate_config(config)
    core = make_core(config)
    step_exp, mom_exp = config.exponents()

    def init(key):
        key, net_key = jax.random.split(key)
        hyper = initial_step_sizes(config)
        theta = core.policy.init(net_key)
        return State(theta, theta, jnp.zeros_like(theta), core.baseline_init, key, jnp.zeros((), jnp.int32),
                     *hyper)

    def update(state: State):
        t = state.iteration
        key, rollout_key = jax.random.split(state.key)
        gamma_t = step_size(config.method, state.gamma_0, t, step_exp)
        eta_t = momentum(config.method, state.eta_0, t, mom_exp)
        eta_extrap = eta_t
        if config.igt_eta_lag:
            eta_extrap = momentum(config.method, state.eta_0, jnp.maximum(t - 1, 0), mom_exp)

        def grad_at(theta_tilde):
            ep, stats = core.rollout(theta_tilde, rollout_key)
            return core.gradient(theta_tilde, ep, core.weights(ep, state.baseline)), (ep, stats)

        d, theta_tilde, g, (ep, stats) = igt_direction(
            t, state.theta, state.theta_prev, state.direction, eta_t, eta_extrap, grad_at
        )
        theta = state.theta + normalized_step(d, gamma_t, config.norm_eps)
        metrics = {
            "episode_return": stats.episode_return,  # of the policy at θ̃_t, which collected the data
            "episode_length": stats.episode_length,
            "episodes": stats.num_episodes,
            "grad_norm": jnp.linalg.norm(g),
            "direction_norm": jnp.linalg.norm(d),
            "extrapolation": jnp.linalg.norm(theta_tilde - state.theta),
            "step_size": gamma_t,
            "momentum": eta_t,
        }
        new = State(theta, state.theta, d, core.fit_baseline(ep), key, t + 1, state.gamma_0, state.eta_0)
        return new, metrics

    return Agent(init, update, core.evaluate, config.num_iters, config.num_envs * config.horizon, config,
                 policy=core.acting)


def make_train(config: Config):
    """`train(key) -> (final State, metrics stacked per iteration)`, fully jittable."""
    return train_fn(make_agent(config))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("npg_igt")
