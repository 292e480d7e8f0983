"""IQL (Kostrikov, Nair & Levine, ICLR 2022, "Offline Reinforcement Learning with Implicit Q-Learning").

Never queries Q at actions outside the dataset: V is fitted by expectile regression to min(Q1_bar, Q2_bar)(s,
a) at dataset actions, Q by TD to r + gamma V(s'), and the policy by advantage-weighted regression. Verified
against ikostrikov/implicit_q_learning. One gradient step, in this order:
1. V:  L_V = mean L2_tau(min Q_bar(s, a) - V(s)),  L2_tau(u) = |tau - 1(u < 0)| u^2;
2. actor: w = min(exp(beta (min Q_bar(s, a) - V_new(s))), 100),  L_pi = -mean w log pi(a|s);
3. critics: y = r + gamma (1 - terminal) V_new(s'),  L_Q = mean (Q1 - y)^2 + (Q2 - y)^2;
4. Polyak tau on Q_bar.
Networks 256-256 ReLU; actor and V orthogonal init (sqrt 2; V's output layer 1), critics flax's default
init with a U(-3e-3, 3e-3) output layer (the code: orthogonal sqrt 2 everywhere); Gaussian actor with mean
tanh(linear) and a
state-independent log-std (init 0, clipped to [-5, 2]); evaluation uses the mean. Adam 3e-4, the actor's
learning rate cosine-decays over num_updates. Data: actions clipped to +-(1 - 1e-5), rewards * 1000 / (max -
min episode return) (MuJoCo setting; `--reward-scaling antmaze` gives r - 1). One `update` =
`updates_per_iteration` steps.

Run it: `purerl train iql --dataset Pendulum-v1-medium-replay --num-updates 100000`.

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/iql.md`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from purerl import offline
from purerl.agent import UPDATES, Agent, check_positive, concrete, train_fn
from purerl.evaluation import make_evaluate
from purerl.nn import MLP, Activation, EnsembleQ, gaussian_log_prob


@dataclass(frozen=True)
class Config(offline.OfflineConfig):
    tau: float = 0.005
    """Polyak rate of the target critics"""
    expectile: float = 0.7
    """expectile of the value regression (0.7 MuJoCo, 0.9 AntMaze)"""
    beta: float = 3.0
    """inverse temperature of the advantage weights (3.0 MuJoCo, 10.0 AntMaze; 'temperature' in the code)"""
    max_weight: float = 100.0
    """clip of exp(beta * advantage)"""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor (cosine-decayed over num_updates)"""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics"""
    value_lr: float = 3e-4
    """Adam learning rate of V"""
    reward_scaling: Literal["episode_range", "antmaze", "none"] = "episode_range"
    """episode_range (r * 1000 / (max - min episode return), MuJoCo), antmaze (r - 1) or none"""
    normalize_states: bool = False
    """standardise states with the dataset's mean and std (IQL's reference code does not)"""
    hidden: tuple[int, ...] = (256, 256)
    """hidden widths of all networks"""
    activation: Activation = "relu"
    """hidden activation"""


class GaussianActor(nn.Module):
    """mean = tanh(linear(MLP(obs))), state-independent log-std clipped to [-5, 2]."""

    action_dim: int
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs):
        mean = jnp.tanh(MLP(self.hidden, self.action_dim, self.activation, out_scale=np.sqrt(2))(obs))
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return mean, jnp.clip(log_std, -5.0, 2.0)


@struct.dataclass
class TrainState:
    actor: Any
    critic: Any
    critic_target: Any
    value: Any
    actor_opt: Any
    critic_opt: Any
    value_opt: Any
    key: jax.Array
    step: jax.Array


# --- the maths (pure functions, tested against hand computations) -----------------------------------

def expectile_loss(u: jax.Array, expectile: float) -> jax.Array:
    """L2_tau(u) = |tau - 1(u < 0)| u^2 (elementwise); u = target - prediction."""
    weight = jnp.where(u > 0, expectile, 1.0 - expectile)
    return weight * u**2


def awr_weights(q: jax.Array, v: jax.Array, beta: float, max_weight: float = 100.0) -> jax.Array:
    """min(exp(beta (Q - V)), max_weight), treated as constants."""
    return jax.lax.stop_gradient(jnp.minimum(jnp.exp(beta * (q - v)), max_weight))


# --- the agent --------------------------------------------------------------------------------------

def validate(config: Config) -> None:
    offline.check_common(config)
    check_positive(config, "actor_lr", "critic_lr", "value_lr", "beta", "max_weight")
    if concrete(config.expectile) and not 0.0 < config.expectile < 1.0:
        raise ValueError(f"expectile must lie in (0, 1), got {config.expectile}")
    if concrete(config.tau) and not 0.0 < config.tau <= 1.0:
        raise ValueError(f"tau must lie in (0, 1], got {config.tau}")


def make_agent(config: Config, data: offline.OfflineData | None = None) -> Agent:
    validate(config)
    if data is None:
        data = offline.prepare(config.dataset, config.env, config.view, config.normalize_states,
                               reward_scaling=config.reward_scaling, clip_actions=1.0 - 1e-5,
                               brax_backend=config.brax_backend, eval_env=config.eval_env)
    dataset = data.data
    obs_dim = dataset["observations"].shape[1]
    action_dim = dataset["actions"].shape[1]
    actor = GaussianActor(action_dim, config.hidden, config.activation)
    critic = EnsembleQ(2, config.hidden, config.activation)
    value = MLP(config.hidden, 1, config.activation)
    actor_tx = optax.adam(optax.cosine_decay_schedule(config.actor_lr, config.num_updates))
    critic_tx, value_tx = optax.adam(config.critic_lr), optax.adam(config.value_lr)

    def init(key):
        key, k1, k2, k3 = jax.random.split(key, 4)
        obs0, act0 = jnp.zeros((obs_dim,)), jnp.zeros((action_dim,))
        actor_params = actor.init(k1, obs0)
        critic_params = critic.init(k2, obs0, act0)
        value_params = value.init(k3, obs0)
        optimisers = actor_tx.init(actor_params), critic_tx.init(critic_params), value_tx.init(value_params)
        return TrainState(actor_params, critic_params, critic_params, value_params, *optimisers, key,
                          jnp.zeros((), jnp.int32))

    def step(state: TrainState, key):
        batch = offline.sample(dataset, key, config.batch_size)
        obs, act = batch["observations"], batch["actions"]
        q_target = critic.apply(state.critic_target, obs, act).min(axis=0)

        # 1. value
        def value_loss_fn(params):
            v = value.apply(params, obs)[..., 0]
            return expectile_loss(q_target - v, config.expectile).mean(), v

        (v_loss, v), grads = jax.value_and_grad(value_loss_fn, has_aux=True)(state.value)
        updates, value_opt = value_tx.update(grads, state.value_opt, state.value)
        value_params = optax.apply_updates(state.value, updates)

        # 2. actor (advantage with the new V)
        value_now = value.apply(value_params, obs)[..., 0]
        weights = awr_weights(q_target, value_now, config.beta, config.max_weight)

        def actor_loss_fn(params):
            mean, log_std = actor.apply(params, obs)
            log_prob = gaussian_log_prob(act, mean, log_std)
            return -(weights * log_prob).mean()

        a_loss, grads = jax.value_and_grad(actor_loss_fn)(state.actor)
        updates, actor_opt = actor_tx.update(grads, state.actor_opt, state.actor)
        actor_params = optax.apply_updates(state.actor, updates)

        # 3. critics (target from the new V at s')
        next_v = value.apply(value_params, batch["next_observations"])[..., 0]
        rewards = batch["rewards"]
        y = rewards + config.gamma * (1.0 - batch["terminals"].astype(rewards.dtype)) * next_v

        def critic_loss_fn(params):
            qs = critic.apply(params, obs, act)
            return ((qs - y) ** 2).mean(axis=1).sum(), qs

        (c_loss, qs), grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(state.critic)
        updates, critic_opt = critic_tx.update(grads, state.critic_opt, state.critic)
        critic_params = optax.apply_updates(state.critic, updates)

        # 4. targets
        critic_target = optax.incremental_update(critic_params, state.critic_target, config.tau)
        new = TrainState(actor_params, critic_params, critic_target, value_params, actor_opt, critic_opt,
                         value_opt, state.key, state.step + 1)
        return new, {"value_loss": v_loss, "actor_loss": a_loss, "critic_loss": c_loss, "v": v.mean(),
                     "q": qs.mean(), "weight": weights.mean()}

    def update(state: TrainState):
        key, run_key = jax.random.split(state.key)
        state, metrics = jax.lax.scan(step, state, jax.random.split(run_key, config.updates_per_iteration))
        return state.replace(key=key), {k: v.mean() for k, v in metrics.items()}

    policy = offline.make_policy(data, lambda state: state.actor, actor.apply)
    evaluate = make_evaluate(policy, config.eval_episodes)

    resolved = dataclasses.replace(config, env=data.env)
    return Agent(init, update, evaluate, config.num_updates // config.updates_per_iteration,
                 config.updates_per_iteration, resolved, UPDATES, policy=policy)


def make_train(config: Config, data: offline.OfflineData | None = None):
    """`train(key) -> (final TrainState, metrics stacked per iteration)`, fully jittable."""
    return train_fn(make_agent(config, data))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("iql")
