"""Vanilla-PG (GPOMDP) and normalized PG — the baselines of Fatkhullin et al., ICML 2023.

One iteration t (t = 0, 1, ...): sample a batch of full episodes at θ_t (`batch_steps` env steps:
ceil(batch_steps / H) envs, each run for one horizon H), weight each step by
G_t = γ^t (reward-to-go − b(s_t)) with garage's linear-feature baseline b fitted on the *previous*
iteration's data, form the GPOMDP gradient ĝ = (1/N) Σ_i ∇Φ(τ_i, θ_t), and step

- `pg`           (code `sgd`):    θ_{t+1} = θ_t + γ_t ĝ,           γ_t = γ0 (2/(t+2))^{2/3}
- `npg`          (code `nsgdm`):  θ_{t+1} = θ_t + γ_t ĝ / ‖ĝ‖,     γ_t = γ0 (2/(t+2))^{2/3}
- `npg_momentum` (code, unused):  d_t = (1−η_t) d_{t−1} + η_t ĝ,  θ_{t+1} = θ_t + γ_t d_t/‖d_t‖,
                                  γ_t = γ0 · 2/(t+2), η_t = η0 (2/(t+2))^{2/3}, d_0 = ĝ_0.

Paper form by default; `pg_normalization="per_step_mean"` and `gamma_t_prefactor=False` give the published
code's loss scaling (docs/algorithms/npg_igt_harpg.md). Estimators, schedules, rollout and baseline live in
`purerl.pg_estimators` (shared with `npg_igt` and `harpg`).

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/pg.md`.

Run it: `python -m purerl.agents.pg --method npg --num-seeds 5` (same flags as `purerl train pg`).
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
    method: Literal["pg", "npg", "npg_momentum"] = "pg"
    """pg (Vanilla-PG), npg (normalized PG, no momentum) or npg_momentum (normalized PG with momentum)"""


@struct.dataclass
class State:
    theta: jax.Array  # flat policy parameters θ_t
    direction: jax.Array  # d_{t-1} (npg_momentum) / last ĝ
    baseline: jax.Array  # linear-feature baseline coefficients (fitted on iteration t-1's data)
    key: jax.Array
    iteration: jax.Array
    gamma_0: jax.Array  # γ0, η0 live in the state so a sweep can vmap over them
    eta_0: jax.Array


def make_agent(config: Config) -> Agent:
    validate_config(config)
    core = make_core(config)
    step_exp, mom_exp = config.exponents()

    def init(key):
        key, net_key = jax.random.split(key)
        hyper = initial_step_sizes(config)
        theta = core.policy.init(net_key)
        return State(theta, jnp.zeros_like(theta), core.baseline_init, key, jnp.zeros((), jnp.int32), *hyper)

    def update(state: State):
        t = state.iteration
        key, rollout_key = jax.random.split(state.key)
        ep, stats = core.rollout(state.theta, rollout_key)
        g = core.gradient(state.theta, ep, core.weights(ep, state.baseline))
        gamma_t = step_size(config.method, state.gamma_0, t, step_exp)
        eta_t = momentum(config.method, state.eta_0, t, mom_exp)
        if config.method == "pg":
            d = g
            theta = state.theta + gamma_t * d
        elif config.method == "npg":
            d = g
            theta = state.theta + normalized_step(d, gamma_t, config.norm_eps)
        else:  # npg_momentum
            d = jnp.where(t == 0, g, (1.0 - eta_t) * state.direction + eta_t * g)
            theta = state.theta + normalized_step(d, gamma_t, config.norm_eps)
        metrics = {
            "episode_return": stats.episode_return,
            "episode_length": stats.episode_length,
            "episodes": stats.num_episodes,
            "grad_norm": jnp.linalg.norm(g),
            "direction_norm": jnp.linalg.norm(d),
            "step_size": gamma_t,
            "momentum": eta_t,
        }
        new = State(theta, d, core.fit_baseline(ep), key, t + 1, state.gamma_0, state.eta_0)
        return new, metrics

    return Agent(init, update, core.evaluate, config.num_iters, config.num_envs * config.horizon, config,
                 policy=core.acting)


def make_train(config: Config):
    """`train(key) -> (final State, metrics stacked per iteration)`, fully jittable."""
    return train_fn(make_agent(config))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("pg")
