"""A2C — synchronous advantage actor-critic, as the continuous (ant coverage) agent of SubPO
(Prajapat, Mutný, Zeilinger, Krause, ICLR 2024, "Submodular Reinforcement Learning", sec. 4.6).

One update = a rollout of `num_steps` steps in `num_envs` vmapped envs (the paper's setting: 15 × 400, i.e.
one full episode per env), GAE(γ, λ) advantages, then ONE Adam step on the whole batch of the loss

    L = −mean[log π(a|s) · Â] + vf_coef · ½ mean[(V(s) − V̂)²] − ent_coef · mean[H(π(·|s))]

(Â and the targets V̂ = Â + V(s) are constants). The actor is an MLP (128-128 ReLU) → tanh mean with a
state-independent log-std initialised at 0.1 (std ≈ 1.105); the critic is a separate 128-128 ReLU MLP
(`purerl.nn.TanhMeanActorCritic`, orthogonal init as the other purerl agents). The paper's code runs two
Adams (actor, critic) at the same learning rate; here one Adam updates both parameter sets, which is the
same update (Adam is per-parameter and the two nets share no parameter) up to Adam's ε and the loss weight.

SubPO vs ModPO on the ant is the *environment's* choice: ``--env ant_coverage`` pays marginal coverage
gains (SubPO) and ``--env ant_coverage_modular`` the cumulative coverage (ModPO); see
`purerl.envs.ant_coverage`. Truncation is not termination: the critic bootstraps from
`info["final_observation"]` at the 400-step limit and only `terminated` (boundary, unhealthy) removes it.

The rollout, env construction and evaluation are PPO's (`purerl.rollout`); only the loss and the single
gradient step differ. Discrete action spaces work too
(categorical policy), e.g. on CartPole-v1.

Run it: `purerl train a2c --env ant_coverage --num-seeds 3` (or `python -m purerl.agents.a2c ...`).

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/a2c.md`.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax

from purerl import envs
from purerl.agent import Agent, check_choices, check_positive, concrete, train_fn
from purerl.envs.brax import BraxBackend
from purerl.evaluation import make_evaluate
from purerl.nn import Activation, ActorCritic, TanhMeanActorCritic
from purerl.returns import gae
from purerl.rollout import ENV_AXIS, TrainState, check_action_space, make_env, make_policy, make_rollout

PAPER_UPDATES = 20_001  # updates of the paper's ant runs (15 envs x 400 steps each)


@dataclass(frozen=True)
class Config:
    env: str = "ant_coverage"
    """environment name: ant_coverage (SubPO reward), ant_coverage_modular (ModPO), or any purerl env"""
    total_timesteps: int = PAPER_UPDATES * 15 * 400
    """env steps per seed, trained in whole updates of num_envs * num_steps (paper: 20,001 updates)"""
    num_envs: int = 15
    """parallel (vmapped) environments per seed"""
    num_steps: int = 400
    """rollout length per environment and update (400 = one ant-coverage episode)"""
    lr: float = 1e-2
    """Adam learning rate (actor and critic)"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    ent_coef: float = 0.01
    """entropy bonus coefficient"""
    vf_coef: float = 1.0
    """weight of the value loss ½(V - V̂)² (with Adam it only matters through Adam's eps)"""
    max_grad_norm: float = 0.0
    """global gradient-norm clip; 0 = no clipping (the paper's setting)"""
    normalize_advantages: bool = False
    """standardise the advantages of each batch (off in the paper's A2C)"""
    hidden: tuple[int, ...] = (128, 128)
    """hidden layer widths of both actor and critic"""
    activation: Activation = "relu"
    """hidden activation: tanh, relu, elu, gelu or silu"""
    log_std_init: float = 0.1
    """initial state-independent log standard deviation of the Gaussian policy (0.1: std ≈ 1.105)"""
    tanh_mean: bool = True
    """squash the Gaussian mean by tanh (the paper's actor); False = ActorCritic's linear mean"""
    normalize_obs: bool = False
    """normalise observations with running statistics shared by the envs (kept in the env state)"""
    max_episode_steps: int = 0
    """episode time limit; 0 keeps the env's own (400 for ant_coverage)"""
    brax_backend: BraxBackend = "generalized"
    """physics backend for brax envs (and ant_coverage): generalized, positional, spring or mjx"""
    eval_episodes: int = 16
    """episodes per seed in the final evaluation (stochastic policy)"""

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_iterations(self) -> int:
        return self.total_timesteps // self.batch_size


def validate(config: Config) -> None:
    envs.check_name(config.env)
    check_positive(config, "total_timesteps", "num_envs", "num_steps", "lr", "eval_episodes")
    check_choices(config)
    if concrete(config.total_timesteps, config.batch_size) and config.total_timesteps < config.batch_size:
        raise ValueError(
            f"total_timesteps = {config.total_timesteps} is less than one update "
            f"(num_envs * num_steps = {config.batch_size})"
        )
    discounts = (config.gamma, config.gae_lambda)
    if concrete(*discounts) and not all(0.0 <= x <= 1.0 for x in discounts):
        raise ValueError(f"gamma and gae_lambda must lie in [0, 1], got {config.gamma}, {config.gae_lambda}")
    for name in ("ent_coef", "vf_coef", "max_grad_norm"):
        if concrete(getattr(config, name)) and getattr(config, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(config, name)!r}")


def a2c_loss(network, params, batch, ent_coef: float, vf_coef: float, normalize_advantages: bool = False):
    """The A2C loss of a flat batch `(obs, action, advantages, targets)`; returns `(loss, stats)`.
    Advantages and targets are treated as constants."""
    obs, action, advantages, targets = batch
    advantages, targets = jax.lax.stop_gradient((advantages, targets))
    if normalize_advantages:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    pi, value = network.apply(params, obs)
    policy_loss = -(pi.log_prob(action) * advantages).mean()
    value_loss = 0.5 * ((value - targets) ** 2).mean()
    entropy = pi.entropy().mean()
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
    return loss, {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}


def make_network(config: Config, env, env_params) -> ActorCritic:
    """Separate actor and critic MLPs; the Gaussian mean is tanh-squashed when `config.tanh_mean`."""
    cls = TanhMeanActorCritic if config.tanh_mean else ActorCritic
    return cls(
        action_dim=envs.action_dim(env, env_params),
        discrete=envs.is_discrete(env, env_params),
        hidden=tuple(config.hidden),
        activation=config.activation,
        log_std_init=config.log_std_init,
        obs_ndim=len(env.observation_space(env_params).shape),
    )


def make_agent(config: Config) -> Agent:
    validate(config)
    env, env_params = make_env(config)
    check_action_space(env.action_space(env_params), "A2C")
    discrete = envs.is_discrete(env, env_params)
    obs_shape = env.observation_space(env_params).shape
    network = make_network(config, env, env_params)
    adam = optax.adam(config.lr)
    optimizer = adam
    if config.max_grad_norm:
        optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), adam)
    vmap_reset = jax.vmap(env.reset, in_axes=(0, None), axis_name=ENV_AXIS)
    rollout, critic = make_rollout(network, env, env_params, config.num_envs, config.num_steps)

    def init(key):
        key, net_key, env_key = jax.random.split(key, 3)
        params = network.init(net_key, jnp.zeros(obs_shape))
        obs, env_state = vmap_reset(jax.random.split(env_key, config.num_envs), env_params)
        return TrainState(params, optimizer.init(params), env_state, obs, key, jnp.zeros((), jnp.int32))

    def update(state: TrainState):
        key, rollout_key = jax.random.split(state.key)
        env_state, obs, traj = rollout(state.params, state.env_state, state.obs, rollout_key)
        values, next_values = critic(state.params, traj)  # next_values bootstrap truncated episodes
        advantages, targets = gae(
            traj.reward, values, next_values, traj.terminated, traj.done, config.gamma, config.gae_lambda
        )
        batch = (traj.obs, traj.action, advantages, targets)
        batch = jax.tree.map(lambda x: x.reshape((config.batch_size,) + x.shape[2:]), batch)
        grads, stats = jax.grad(a2c_loss, argnums=1, has_aux=True)(
            network, state.params, batch, config.ent_coef, config.vf_coef, config.normalize_advantages
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        num_episodes = traj.done.sum()
        metrics = dict(stats)
        metrics["episode_return"] = jnp.where(
            num_episodes > 0, (traj.episode_return * traj.done).sum() / jnp.maximum(num_episodes, 1), jnp.nan
        )
        metrics["episodes"] = num_episodes
        metrics["reward_mean"] = traj.reward.mean()
        return TrainState(params, opt_state, env_state, obs, key, state.iteration + 1), metrics

    policy = make_policy(config, network, env_params, discrete)
    evaluate = make_evaluate(policy, config.eval_episodes)
    return Agent(init, update, evaluate, config.num_iterations, config.batch_size, config, policy=policy)


def make_train(config: Config):
    """`train(key) -> (final TrainState, metrics stacked per update)`, fully jittable."""
    return train_fn(make_agent(config))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("a2c")
