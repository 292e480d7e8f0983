"""Behaviour cloning: the baseline every offline-RL paper compares against.

A deterministic tanh actor (TD3+BC's actor network) regressed onto the dataset's actions with MSE, on states
normalised like TD3+BC (dataset mean / std + 1e-3) — i.e. TD3+BC's actor loss without the Q term. Adam 3e-4,
batch 256. One `update` = `updates_per_iteration` gradient steps.

Run it: `purerl train bc --dataset Pendulum-v1-medium-replay --num-updates 100000`.

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/bc.md`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from purerl import offline
from purerl.agent import UPDATES, Agent, check_positive, train_fn
from purerl.evaluation import make_evaluate
from purerl.nn import Activation, TanhActor


@dataclass(frozen=True)
class Config(offline.OfflineConfig):
    lr: float = 3e-4
    """Adam learning rate"""
    normalize_states: bool = True
    """standardise states with the dataset's mean and std + 1e-3 (training and evaluation)"""
    hidden: tuple[int, ...] = (256, 256)
    """hidden widths"""
    activation: Activation = "relu"
    """hidden activation"""


@struct.dataclass
class TrainState:
    actor: Any
    opt: Any
    key: jax.Array


def bc_loss(pi: jax.Array, action: jax.Array) -> jax.Array:
    """mean over batch and action dims of (pi(s) - a)^2."""
    return ((pi - action) ** 2).mean()


def make_agent(config: Config, data: offline.OfflineData | None = None) -> Agent:
    offline.check_common(config)
    check_positive(config, "lr")
    if data is None:
        data = offline.prepare(config.dataset, config.env, config.view, config.normalize_states,
                               brax_backend=config.brax_backend, eval_env=config.eval_env)
    dataset = data.data
    obs_dim, action_dim = dataset["observations"].shape[1], dataset["actions"].shape[1]
    actor = TanhActor(action_dim, config.hidden, config.activation)
    tx = optax.adam(config.lr)

    def init(key):
        key, actor_key = jax.random.split(key)
        params = actor.init(actor_key, jnp.zeros((obs_dim,)))
        return TrainState(params, tx.init(params), key)

    def step(state: TrainState, key):
        batch = offline.sample(dataset, key, config.batch_size)
        loss, grads = jax.value_and_grad(
            lambda p: bc_loss(actor.apply(p, batch["observations"]), batch["actions"]))(state.actor)
        updates, opt = tx.update(grads, state.opt, state.actor)
        return TrainState(optax.apply_updates(state.actor, updates), opt, state.key), {"bc_loss": loss}

    def update(state: TrainState):
        key, run_key = jax.random.split(state.key)
        state, metrics = jax.lax.scan(step, state, jax.random.split(run_key, config.updates_per_iteration))
        return state.replace(key=key), {k: v.mean() for k, v in metrics.items()}

    policy = offline.make_policy(data, lambda state: state.actor, lambda p, obs: (actor.apply(p, obs), None))
    evaluate = make_evaluate(policy, config.eval_episodes)

    return Agent(init, update, evaluate, config.num_updates // config.updates_per_iteration,
                 config.updates_per_iteration, dataclasses.replace(config, env=data.env), UPDATES,
                 policy=policy)


def make_train(config: Config, data: offline.OfflineData | None = None):
    """`train(key) -> (final TrainState, metrics stacked per iteration)`, fully jittable."""
    return train_fn(make_agent(config, data))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("bc")
