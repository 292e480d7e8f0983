"""HARPG and N-HARPG: Hessian-aided recursive policy gradient (Fatkhullin et al., ICML 2023, Algorithm 2).

t = 0: d_0 = ĝ(θ_0), θ_1 = θ_0 + γ_0 d_0 (/‖d_0‖). For t ≥ 1:

    q_t ~ U(0, 1),  θ̂_t = q_t θ_t + (1 − q_t) θ_{t−1}
    τ_t ~ π_{θ_t} (main batch),  τ̂_t ~ π_{θ̂_t} (second, independent "Hessian" batch)
    v_t = B̂(τ̂_t, θ̂_t)(θ_t − θ_{t−1})          (Hessian-vector product, forward-over-reverse autodiff)
    d_t = (1 − η_t)(d_{t−1} + v_t) + η_t ĝ(τ_t, θ_t)
    HARPG:   θ_{t+1} = θ_t + γ_t d_t,          γ_t = γ0 (2/(t+2))^{1/2},  η_t = η0 · 2/(t+2)
    N-HARPG: θ_{t+1} = θ_t + γ_t d_t/‖d_t‖,    γ_t = γ0 · 2/(t+2),        η_t = η0 · 2/(t+2)

B̂v = (1/N) Σ_i [∇²Φ_i v + ∇Φ_i (∇log p(τ̂_i)·v)] is unbiased for ∇²J(θ̂) v, so E_q[v_t] = ∇J(θ_t) −
∇J(θ_{t−1}) without importance weights. `hvp_form="garage_code"` uses the published code's estimate instead
(wrong sign on the score term, product of batch means: biased; docs/algorithms/npg_igt_harpg.md).
Estimators live in `purerl.pg_estimators`.

Sample budget: each iteration costs batch_steps (rounded up to whole horizons) + hessian_batch_episodes · H
env steps; `steps_per_iteration` counts both rollouts.

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/npg_igt_harpg.md`.

Run it: `python -m purerl.agents.harpg --method nharpg --num-seeds 5` (same flags as `purerl train harpg`).
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
    hessian_vector,
    initial_step_sizes,
    make_core,
    momentum,
    normalized_step,
    step_size,
    validate_config,
)


@dataclass(frozen=True)
class Config(PGConfig):
    method: Literal["harpg", "nharpg"] = "nharpg"
    """nharpg (normalized step) or harpg (plain step)"""
    hessian_batch_episodes: int = 1
    """episodes in the second (Hessian) rollout at θ̂_t, each costing one horizon of env steps"""
    hvp_form: Literal["paper", "garage_code"] = "paper"
    """paper (unbiased B̂v) or garage_code (the published code's biased estimate)"""


@struct.dataclass
class State:
    theta: jax.Array  # θ_t
    theta_prev: jax.Array  # θ_{t-1}
    direction: jax.Array  # d_{t-1}
    baseline: jax.Array
    key: jax.Array
    iteration: jax.Array
    gamma_0: jax.Array  # γ0, η0 live in the state so a sweep can vmap over them
    eta_0: jax.Array


def harpg_direction(t, d_prev, g, hvp, eta_t):
    """d_t = (1−η_t)(d_{t−1} + B̂v) + η_t ĝ, and d_0 = ĝ_0 (shared with the tracking test)."""
    return jnp.where(t == 0, g, (1.0 - eta_t) * (d_prev + hvp) + eta_t * g)


def make_agent(config: Config) -> Agent:
    validate_config(config)
    if config.hessian_batch_episodes < 1:
        raise ValueError(f"hessian_batch_episodes must be >= 1, got {config.hessian_batch_episodes}")
    core = make_core(config)
    step_exp, mom_exp = config.exponents()
    h_envs = config.hessian_batch_episodes
    h_segments = h_envs * config.horizon

    def init(key):
        key, net_key = jax.random.split(key)
        hyper = initial_step_sizes(config)
        theta = core.policy.init(net_key)
        return State(theta, theta, jnp.zeros_like(theta), core.baseline_init, key, jnp.zeros((), jnp.int32),
                     *hyper)

    def update(state: State):
        t = state.iteration
        key, rollout_key, hess_key, q_key = jax.random.split(state.key, 4)
        gamma_t = step_size(config.method, state.gamma_0, t, step_exp)
        eta_t = momentum(config.method, state.eta_0, t, mom_exp)
        # main batch at θ_t
        ep, stats = core.rollout(state.theta, rollout_key)
        g = core.gradient(state.theta, ep, core.weights(ep, state.baseline))
        # Hessian batch at the random point θ̂_t between θ_{t-1} and θ_t
        q = jax.random.uniform(q_key)
        theta_hat = q * state.theta + (1.0 - q) * state.theta_prev
        v = state.theta - state.theta_prev
        ep_h, _ = core.hessian_rollout(theta_hat, hess_key, h_envs)
        hvp = hessian_vector(
            core.policy.logp, theta_hat, ep_h, core.weights(ep_h, state.baseline), v, h_segments,
            config.hvp_form, config.pg_normalization,
        )
        d = harpg_direction(t, state.direction, g, hvp, eta_t)
        if config.method == "nharpg":
            theta = state.theta + normalized_step(d, gamma_t, config.norm_eps)
        else:
            theta = state.theta + gamma_t * d
        metrics = {
            "episode_return": stats.episode_return,
            "episode_length": stats.episode_length,
            "episodes": stats.num_episodes,
            "grad_norm": jnp.linalg.norm(g),
            "hvp_norm": jnp.linalg.norm(hvp),
            "direction_norm": jnp.linalg.norm(d),
            "step_size": gamma_t,
            "momentum": eta_t,
        }
        new = State(theta, state.theta, d, core.fit_baseline(ep), key, t + 1, state.gamma_0, state.eta_0)
        return new, metrics

    steps = (config.num_envs + h_envs) * config.horizon
    return Agent(init, update, core.evaluate, config.num_iters, steps, config, policy=core.acting)


def make_train(config: Config):
    """`train(key) -> (final State, metrics stacked per iteration)`, fully jittable."""
    return train_fn(make_agent(config))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("harpg")
