"""TD3+BC (Fujimoto & Gu, NeurIPS 2021, "A Minimalist Approach to Offline Reinforcement Learning").

TD3 on a fixed dataset plus a behaviour-cloning term in the actor loss, with states normalised by the
dataset's mean and std (+1e-3). Read against sfujim/TD3_BC:
- critic (every step): a' = clip(pi_bar(s') + clip(N(0, 0.2^2), -0.5, 0.5), -1, 1),
  y = r + gamma (1 - terminal) min(Q1_bar, Q2_bar)(s', a'), loss MSE(Q1, y) + MSE(Q2, y);
- actor (every 2nd step): lam = alpha / mean|Q1(s, pi(s))| (no gradient through lam),
  L = -lam mean Q1(s, pi(s)) + mean (pi(s) - a)^2; then Polyak 0.005 on actor and critic targets.
One `update` = `updates_per_iteration` gradient steps (pairs of a critic-only step and a critic+actor step,
exactly the reference's every-2nd-step schedule without a branch). The dataset is closed over, not vmapped.

Run it: `purerl train td3_bc --dataset Pendulum-v1-medium-replay --num-updates 100000` (dataset from
`purerl collect`; a path to a purerl/D4RL hdf5 file or a Minari directory works too).

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/td3_bc.md`.
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
from purerl.agent import UPDATES, Agent, check_positive, concrete, train_fn
from purerl.evaluation import make_evaluate
from purerl.nn import Activation, EnsembleQ, TanhActor


@dataclass(frozen=True)
class Config(offline.OfflineConfig):
    updates_per_iteration: int = 1000
    """gradient steps per jitted `update` call (even: critic-only and critic+actor steps alternate)"""
    tau: float = 0.005
    """Polyak rate of the target networks (on actor steps)"""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor"""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics"""
    alpha: float = 2.5
    """BC trade-off: lam = alpha / mean|Q|"""
    policy_noise: float = 0.2
    """std of the target-policy smoothing noise"""
    noise_clip: float = 0.5
    """clip of the target-policy smoothing noise"""
    normalize_states: bool = True
    """standardise states with the dataset's mean and std + 1e-3 (training and evaluation)"""
    hidden: tuple[int, ...] = (256, 256)
    """hidden widths of actor and critics"""
    activation: Activation = "relu"
    """hidden activation"""


Actor = TanhActor  # the deterministic actor (BC trains the same one)


@struct.dataclass
class TrainState:
    actor: Any
    actor_target: Any
    critic: Any
    critic_target: Any
    actor_opt: Any
    critic_opt: Any
    key: jax.Array
    step: jax.Array


# --- the maths (pure functions, tested against hand computations) -----------------------------------

def target_action(next_pi: jax.Array, key: jax.Array, policy_noise: float, noise_clip: float) -> jax.Array:
    """Target-policy smoothing: clip(pi_bar(s') + clip(N(0, policy_noise^2), +-noise_clip), -1, 1)."""
    noise = jnp.clip(jax.random.normal(key, next_pi.shape) * policy_noise, -noise_clip, noise_clip)
    return jnp.clip(next_pi + noise, -1.0, 1.0)


def critic_target(reward, terminal, next_q: jax.Array, gamma: float) -> jax.Array:
    """y = r + gamma (1 - terminal) min_i Q_bar_i(s', a'); next_q has shape (2, B). Computed in the rewards'
    dtype: a float32 mask would round gamma to float32 in a float64 (x64) run."""
    return reward + gamma * (1.0 - terminal.astype(jnp.result_type(reward))) * next_q.min(axis=0)


def actor_objective(pi: jax.Array, action: jax.Array, q: jax.Array, alpha: float):
    """-lam mean Q + mean (pi - a)^2 with lam = alpha / mean|Q| treated as a constant (no gradient)."""
    lam = alpha / jax.lax.stop_gradient(jnp.abs(q).mean())
    bc = ((pi - action) ** 2).mean()
    return -lam * q.mean() + bc, (lam, bc)


# --- the agent --------------------------------------------------------------------------------------

def validate(config: Config) -> None:
    offline.check_common(config)
    check_positive(config, "actor_lr", "critic_lr", "alpha")
    if concrete(config.updates_per_iteration) and config.updates_per_iteration % 2:
        raise ValueError("updates_per_iteration must be even (actor every 2nd step), "
                         f"got {config.updates_per_iteration}")
    if concrete(config.tau) and not 0.0 < config.tau <= 1.0:
        raise ValueError(f"tau must lie in (0, 1], got {config.tau}")
    if concrete(config.policy_noise, config.noise_clip) and min(config.policy_noise, config.noise_clip) < 0:
        raise ValueError("policy_noise and noise_clip must be >= 0")


def make_agent(config: Config, data: offline.OfflineData | None = None, bc_target=None) -> Agent:
    """TD3+BC; `data` (from `purerl.offline.prepare`) may be passed to reuse a loaded dataset.

    `bc_target(pi, batch) -> (targets, metrics)` (optional, used by PRDC) replaces the dataset actions in the
    BC term; it receives the actor's current actions without gradient. None: TD3+BC's own batch actions."""
    validate(config)
    if data is None:
        data = offline.prepare(config.dataset, config.env, config.view, config.normalize_states,
                               brax_backend=config.brax_backend, eval_env=config.eval_env)
    dataset = data.data
    obs_dim = dataset["observations"].shape[1]
    action_dim = dataset["actions"].shape[1]
    actor = Actor(action_dim, config.hidden, config.activation)
    critic = EnsembleQ(2, config.hidden, config.activation)
    actor_tx, critic_tx = optax.adam(config.actor_lr), optax.adam(config.critic_lr)

    def init(key):
        key, actor_key, critic_key = jax.random.split(key, 3)
        obs0, act0 = jnp.zeros((obs_dim,)), jnp.zeros((action_dim,))
        actor_params = actor.init(actor_key, obs0)
        critic_params = critic.init(critic_key, obs0, act0)
        return TrainState(actor_params, actor_params, critic_params, critic_params,
                          actor_tx.init(actor_params), critic_tx.init(critic_params), key,
                          jnp.zeros((), jnp.int32))

    def critic_step(state: TrainState, batch, key):
        next_action = target_action(actor.apply(state.actor_target, batch["next_observations"]), key,
                                    config.policy_noise, config.noise_clip)
        next_q = critic.apply(state.critic_target, batch["next_observations"], next_action)
        y = jax.lax.stop_gradient(critic_target(batch["rewards"], batch["terminals"], next_q, config.gamma))

        def loss_fn(params):
            qs = critic.apply(params, batch["observations"], batch["actions"])
            return ((qs - y) ** 2).mean(axis=1).sum(), qs

        (loss, qs), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.critic)
        updates, opt = critic_tx.update(grads, state.critic_opt, state.critic)
        return state.replace(critic=optax.apply_updates(state.critic, updates), critic_opt=opt), {
            "critic_loss": loss, "q": qs.mean()}

    def actor_step(state: TrainState, batch):
        target, extra = batch["actions"], {}
        if bc_target is not None:
            pi_now = jax.lax.stop_gradient(actor.apply(state.actor, batch["observations"]))
            target, extra = bc_target(pi_now, batch)

        def loss_fn(params):
            pi = actor.apply(params, batch["observations"])
            q1 = critic.apply(state.critic, batch["observations"], pi)[0]
            return actor_objective(pi, target, q1, config.alpha)

        (loss, (lam, bc)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.actor)
        updates, opt = actor_tx.update(grads, state.actor_opt, state.actor)
        actor_params = optax.apply_updates(state.actor, updates)
        state = state.replace(
            actor=actor_params, actor_opt=opt,
            actor_target=optax.incremental_update(actor_params, state.actor_target, config.tau),
            critic_target=optax.incremental_update(state.critic, state.critic_target, config.tau),
        )
        return state, {"actor_loss": loss, "lambda": lam, "bc_loss": bc, **extra}

    def pair(state: TrainState, key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        state, m1 = critic_step(state, offline.sample(dataset, k1, config.batch_size), k2)
        batch = offline.sample(dataset, k3, config.batch_size)
        state, m2 = critic_step(state, batch, k4)
        state, m3 = actor_step(state, batch)
        metrics = {"critic_loss": (m1["critic_loss"] + m2["critic_loss"]) / 2, "q": m2["q"], **m3}
        return state.replace(step=state.step + 2), metrics

    def update(state: TrainState):
        key, run_key = jax.random.split(state.key)
        pair_keys = jax.random.split(run_key, config.updates_per_iteration // 2)
        state, metrics = jax.lax.scan(pair, state, pair_keys)
        return state.replace(key=key), {k: v.mean() for k, v in metrics.items()}

    policy = offline.make_policy(data, lambda state: state.actor, lambda p, obs: (actor.apply(p, obs), None))
    evaluate = make_evaluate(policy, config.eval_episodes)

    resolved = dataclasses.replace(config, env=data.env)
    return Agent(init, update, evaluate, config.num_updates // config.updates_per_iteration,
                 config.updates_per_iteration, resolved, UPDATES, policy=policy)


def make_train(config: Config, data: offline.OfflineData | None = None):
    """`train(key) -> (final TrainState, metrics stacked per iteration)`, fully jittable."""
    return train_fn(make_agent(config, data))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("td3_bc")
