"""TRPO (Schulman et al., 2015, "Trust Region Policy Optimization") / NPG, discrete and continuous.

One iteration = a rollout of `num_steps` steps in `num_envs` vmapped envs, GAE advantages from a separately
trained value network, then one natural-gradient step of the policy: conjugate gradient on the damped Fisher
(KL Hessian) for the search direction, scaled so the quadratic KL model equals `max_kl`, and a backtracking
line search on the surrogate (`purerl.natural_gradient.policy_step`, the same step HNPG takes per timestep).
The value network is fitted with Adam for `vf_epochs` passes of `vf_minibatches` minibatches.

Truncation is not termination: the critic bootstraps from `info["final_observation"]` at time limits.
Works on gymnax and brax envs (categorical policy for discrete actions, diagonal Gaussian otherwise).

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/trpo.md`.

Run it: `python -m purerl.agents.trpo --env CartPole-v1 --num-seeds 4` (same flags as `purerl train trpo`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from purerl import envs, evaluation, shuffle
from purerl.agent import Agent, check_choices, check_positive, concrete, train_fn
from purerl.envs.brax import BraxBackend
from purerl.evaluation import make_evaluate
from purerl.natural_gradient import policy_step, trpo_kwargs
from purerl.nn import MLP, Activation
from purerl.returns import gae


@dataclass(frozen=True)
class Config:
    env: str = "CartPole-v1"
    """environment name (`purerl list` shows them all)"""
    total_timesteps: int = 500_000
    """env steps per seed; trained in whole iterations of num_envs * num_steps"""
    num_envs: int = 8
    """parallel (vmapped) environments per seed"""
    num_steps: int = 128
    """rollout length per environment and iteration"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.97
    """GAE lambda"""
    normalize_advantages: bool = True
    """standardise the advantages of each batch"""
    max_kl: float = 0.01
    """trust-region size (mean KL of the full step's quadratic model)"""
    damping: float = 0.1
    """Fisher damping"""
    cg_iters: int = 10
    """conjugate-gradient iterations"""
    cg_tol: float = 1e-10
    """conjugate gradient freezes once the squared residual is below this"""
    ls_backtracks: int = 10
    """line-search fractions tried: 0.5^k, k = 0..ls_backtracks-1"""
    ls_accept_ratio: float = 0.1
    """line search accepts when actual / expected improvement exceeds this"""
    vf_lr: float = 1e-3
    """Adam learning rate of the value network"""
    vf_epochs: int = 5
    """value-network passes over each batch"""
    vf_minibatches: int = 4
    """value-network minibatches per pass; must divide num_envs * num_steps"""
    hidden: tuple[int, ...] = (64, 64)
    """hidden widths of the policy and value networks"""
    activation: Activation = "tanh"
    """hidden activation: tanh, relu, elu, gelu or silu"""
    log_std_init: float = 0.0
    """initial log standard deviation of the Gaussian policy (continuous actions)"""
    max_episode_steps: int = 0
    """episode time limit; 0 keeps the env's own"""
    brax_backend: BraxBackend = "generalized"
    """physics backend for brax envs: generalized, positional, spring or mjx"""
    eval_episodes: int = 128
    """episodes per seed in the final evaluation (stochastic policy)"""

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_iterations(self) -> int:
        return self.total_timesteps // self.batch_size


class Policy(nn.Module):
    """Categorical logits or a diagonal Gaussian with state-independent log std."""

    action_dim: int
    discrete: bool
    hidden: tuple[int, ...]
    activation: str
    log_std_init: float
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs):
        head = MLP(self.hidden, self.action_dim, self.activation, out_scale=0.01, obs_ndim=self.obs_ndim)(obs)
        if self.discrete:
            return distrax.Categorical(logits=head)
        log_std = self.param("log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,))
        return distrax.MultivariateNormalDiag(head, jnp.exp(log_std) * jnp.ones_like(head))


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    final_obs: jax.Array
    episode_return: jax.Array


@struct.dataclass
class TrainState:
    policy: Any
    value: Any
    vf_opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    iteration: jax.Array


def make_env(config: Config):
    kwargs = {}
    if config.max_episode_steps:
        kwargs["max_steps_in_episode"] = config.max_episode_steps
    if config.env in envs.BRAX_ENVS:
        kwargs["backend"] = config.brax_backend
    env, env_params = envs.make(config.env, **kwargs)
    if not envs.is_discrete(env, env_params):
        env = envs.ClipAction(env)
    return envs.EpisodeStats(env), env_params


def validate(config: Config) -> None:
    envs.check_name(config.env)
    check_positive(config, "total_timesteps", "num_envs", "num_steps", "max_kl", "damping", "cg_iters")
    check_positive(config, "ls_backtracks", "vf_lr", "vf_epochs", "vf_minibatches", "eval_episodes")
    check_choices(config)
    if concrete(config.batch_size, config.vf_minibatches) and config.batch_size % config.vf_minibatches:
        raise ValueError(
            f"num_envs * num_steps = {config.batch_size} is not divisible by "
            f"vf_minibatches = {config.vf_minibatches}"
        )
    if concrete(config.total_timesteps, config.batch_size) and config.total_timesteps < config.batch_size:
        raise ValueError(
            f"total_timesteps = {config.total_timesteps} is less than one iteration "
            f"(num_envs * num_steps = {config.batch_size})"
        )
    discounts = (config.gamma, config.gae_lambda)
    if concrete(*discounts) and not all(0.0 <= x <= 1.0 for x in discounts):
        raise ValueError(f"gamma and gae_lambda must lie in [0, 1], got {config.gamma}, {config.gae_lambda}")


def make_agent(config: Config) -> Agent:
    validate(config)
    env, env_params = make_env(config)
    discrete = envs.is_discrete(env, env_params)
    obs_shape = env.observation_space(env_params).shape
    policy_net = Policy(
        envs.action_dim(env, env_params),
        discrete,
        tuple(config.hidden),
        config.activation,
        config.log_std_init,
        len(obs_shape),
    )
    value_net = MLP(tuple(config.hidden), 1, config.activation, out_scale=1.0, obs_ndim=len(obs_shape))
    vf_opt = optax.adam(config.vf_lr)
    minibatch = config.batch_size // config.vf_minibatches
    vmap_reset = jax.vmap(env.reset, in_axes=(0, None))
    vmap_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def init(key):
        key, pi_key, v_key, env_key = jax.random.split(key, 4)
        policy = policy_net.init(pi_key, jnp.zeros(obs_shape))
        value = value_net.init(v_key, jnp.zeros(obs_shape))
        obs, env_state = vmap_reset(jax.random.split(env_key, config.num_envs), env_params)
        return TrainState(policy, value, vf_opt.init(value), env_state, obs, key, jnp.zeros((), jnp.int32))

    def rollout(policy, env_state, obs, key):
        def step(carry, step_key):
            env_state, obs = carry
            act_key, env_key = jax.random.split(step_key)
            action = policy_net.apply(policy, obs).sample(seed=act_key)
            next_obs, env_state, reward, terminated, truncated, info = vmap_step(
                jax.random.split(env_key, config.num_envs), env_state, action, env_params
            )
            done = jnp.logical_or(terminated, truncated)
            t = Transition(
                obs, action, reward, terminated, done, info["final_observation"], info["episode_return"]
            )
            return (env_state, next_obs), t

        (env_state, obs), traj = jax.lax.scan(step, (env_state, obs), jax.random.split(key, config.num_steps))
        return env_state, obs, traj

    def value_fn(params, obs):
        return value_net.apply(params, obs)[..., 0]

    def dist(params, obs):
        return policy_net.apply(params, obs)

    def update(state: TrainState):
        key, rollout_key, vf_key = jax.random.split(state.key, 3)
        env_state, obs, traj = rollout(state.policy, state.env_state, state.obs, rollout_key)
        values = value_fn(state.value, traj.obs)
        next_values = value_fn(state.value, traj.final_obs)
        advantages, targets = gae(
            traj.reward, values, next_values, traj.terminated, traj.done, config.gamma, config.gae_lambda
        )
        flat = jax.tree.map(
            lambda x: x.reshape((config.batch_size,) + x.shape[2:]), (traj, advantages, targets)
        )
        batch, adv, tgt = flat
        if config.normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        policy, stats = policy_step(dist, state.policy, batch.obs, batch.action, adv, **trpo_kwargs(config))

        def vf_epoch(carry, perm_key):
            params, opt_state = carry
            # jax.random.permutation's draw, computed without XLA's slow CPU sort (purerl.shuffle)
            perm = shuffle.permutation(perm_key, config.batch_size)
            mbs = jax.tree.map(
                lambda x: x[perm].reshape((config.vf_minibatches, minibatch) + x.shape[1:]), (batch.obs, tgt)
            )

            def vf_step(carry, mb):
                params, opt_state = carry
                o, t = mb
                loss, grads = jax.value_and_grad(lambda p: jnp.mean((value_fn(p, o) - t) ** 2))(params)
                updates, opt_state = vf_opt.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), loss

            return jax.lax.scan(vf_step, (params, opt_state), mbs)

        (value, vf_opt_state), vf_loss = jax.lax.scan(
            vf_epoch, (state.value, state.vf_opt_state), jax.random.split(vf_key, config.vf_epochs)
        )
        num_episodes = traj.done.sum()
        metrics = {k: v for k, v in stats.items()}
        metrics["value_loss"] = vf_loss.mean()
        metrics["episode_return"] = jnp.where(
            num_episodes > 0, (traj.episode_return * traj.done).sum() / jnp.maximum(num_episodes, 1), jnp.nan
        )
        metrics["episodes"] = num_episodes
        new_state = TrainState(policy, value, vf_opt_state, env_state, obs, key, state.iteration + 1)
        return new_state, metrics

    eval_env, _ = envs.make(
        config.env, **({"backend": config.brax_backend} if config.env in envs.BRAX_ENVS else {})
    )
    if not discrete:
        eval_env = envs.ClipAction(eval_env)

    def act_fn(state: TrainState, deterministic: bool):
        def act(act_key, obs):
            pi = policy_net.apply(state.policy, obs)
            return pi.mode() if deterministic else pi.sample(seed=act_key)

        return act

    acting = evaluation.Policy(eval_env, env_params, act_fn)
    evaluate = make_evaluate(acting, config.eval_episodes)
    return Agent(init, update, evaluate, config.num_iterations, config.batch_size, config, policy=acting)


def make_train(config: Config):
    """`train(key) -> (final TrainState, metrics stacked per iteration)`, fully jittable."""
    return train_fn(make_agent(config))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("trpo")
