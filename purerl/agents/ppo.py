"""PPO (Schulman et al., 2017, "Proximal Policy Optimization Algorithms"), discrete and continuous.

One iteration = a rollout of `num_steps` steps in `num_envs` vmapped envs, GAE, then `update_epochs`
passes of `num_minibatches` clipped-surrogate Adam steps. Defaults are purejaxrl's CartPole-v1 setting.

Truncation is not termination: the critic bootstraps from `info["final_observation"]` when an episode
hits its time limit, and only `terminated` removes the bootstrap (see `purerl.returns.gae`).

Run it: `python -m purerl.agents.ppo --env CartPole-v1 --num-seeds 8` (same flags as `purerl train ppo`).

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/ppo.md`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
import optax

from purerl import envs, shuffle
from purerl.agent import Agent, check_choices, check_positive, concrete, train_fn
from purerl.drift import objective_drift
from purerl.envs.brax import BraxBackend
from purerl.envs.wrappers import RunningMeanStd
from purerl.evaluation import make_evaluate
from purerl.nn import Activation, ActorCritic
from purerl.returns import gae
from purerl.rollout import (
    ENV_AXIS,
    TrainState,
    check_action_space,
    critic_values,
    make_env,
    make_policy,
    make_rollout,
    time_limit,
)


@dataclass(frozen=True)
class Config:
    env: str = "CartPole-v1"
    """environment name (`purerl list` shows them all)"""
    total_timesteps: int = 500_000
    """env steps per seed; trained in whole iterations of num_envs * num_steps"""
    num_envs: int = 4
    """parallel (vmapped) environments per seed"""
    num_steps: int = 128
    """rollout length per environment and iteration"""
    update_epochs: int = 4
    """passes over each rollout"""
    num_minibatches: int = 4
    """minibatches per epoch; must divide num_envs * num_steps"""
    lr: float = 2.5e-4
    """Adam learning rate"""
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 over training"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    clip_eps: float = 0.2
    """PPO ratio clipping epsilon (also clips the value update when clip_value)"""
    reward_scale: float = 1.0
    """multiplies the rewards that the critic and the advantages see (brax's reward_scaling); the reported
    returns stay unscaled"""
    clip_value: bool = True
    """clip the value-function update around the rollout's values (as purejaxrl / CleanRL)"""
    ent_coef: float = 0.01
    """entropy bonus coefficient"""
    vf_coef: float = 0.5
    """value-loss coefficient"""
    max_grad_norm: float = 0.5
    """global gradient-norm clip"""
    normalize_advantages: bool = True
    """standardise advantages per minibatch"""
    recompute_advantages: Literal["never", "epoch", "minibatch"] = "never"
    """GAE advantages and value targets from the rollout's critic (never), or recomputed with the current
    critic before every epoch, or for every minibatch (brax's PPO): minibatches are then whole segments of
    segment_length steps of one env, and GAE runs within each segment"""
    segment_length: int = 20
    """recompute_advantages=minibatch: steps per segment (brax's unroll_length); must divide num_steps"""
    hidden: tuple[int, ...] = (64, 64)
    """hidden layer widths of the actor, and of the critic unless value_hidden is given"""
    value_hidden: tuple[int, ...] = ()
    """hidden layer widths of the critic; () uses `hidden` (brax's PPO: a 32x4 actor, a 256x5 critic)"""
    activation: Activation = "tanh"
    """hidden activation: tanh, relu, elu, gelu or silu"""
    log_std_init: float = 0.0
    """initial log standard deviation of the Gaussian policy (continuous actions)"""
    state_dependent_std: bool = False
    """continuous actions: the actor outputs the Gaussian's std beside its mean, softplus(x) + 0.001 (brax's
    PPO; about 0.69 at the start), instead of a learned state-independent log-std from log_std_init"""
    action_squash: Literal["clip", "tanh"] = "clip"
    """continuous actions: clip the Gaussian's sample to the bounds, or squash it with tanh (brax's PPO);
    the ratio is of the unsquashed sample's probabilities either way"""
    normalize_obs: bool = False
    """normalise observations with running statistics shared by the envs"""
    obs_stats_update: Literal["per_step", "before_sgd"] = "per_step"
    """normalize_obs: when the statistics take in observations. per_step: at every env step of the rollout,
    and the loss trains on the observations as the policy saw them. before_sgd (brax's PPO): once per
    iteration, from the whole batch before its SGD epochs; the rollout acts under the statistics held fixed,
    and GAE, the loss and the next rollout see the batch under statistics that include it"""
    max_episode_steps: int = 0
    """episode time limit; 0 keeps the env's own (500 for CartPole-v1, 1000 for brax)"""
    brax_backend: BraxBackend = "generalized"
    """physics backend for brax envs: generalized, positional, spring or mjx"""
    eval_episodes: int = 128
    """episodes per seed in the final evaluation (stochastic policy, as rejax reports)"""
    objective: Literal["clip", "dpo", "learned"] = "clip"
    """policy objective: clip (PPO), dpo (closed-form discovered drift) or learned (a drift from --drift)"""
    drift: str = ""
    """learned objective only: path of a drift file saved by `purerl meta-train lpo` (purerl.agents.lpo)"""

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_iterations(self) -> int:
        return self.total_timesteps // self.batch_size


def make_network(config: Config, env, env_params) -> ActorCritic:
    """PPO's default actor-critic for `env` (also rebuilt by `purerl.collect` to act with saved params)."""
    return ActorCritic(
        action_dim=envs.action_dim(env, env_params),
        discrete=envs.is_discrete(env, env_params),
        hidden=config.hidden,
        activation=config.activation,
        log_std_init=config.log_std_init,
        obs_ndim=len(env.observation_space(env_params).shape),
        value_hidden=config.value_hidden,
        state_dependent_std=config.state_dependent_std,
    )


def validate(config: Config) -> None:
    envs.check_name(config.env)
    check_choices(config)
    check_positive(config, "total_timesteps", "num_envs", "num_steps", "update_epochs", "num_minibatches",
                   "lr")
    check_positive(config, "eval_episodes", "segment_length")
    if config.recompute_advantages == "minibatch" and concrete(config.num_steps, config.segment_length):
        segments = config.num_steps // config.segment_length * config.num_envs
        if config.num_steps % config.segment_length or segments % config.num_minibatches:
            raise ValueError(
                f"recompute_advantages=minibatch: segment_length = {config.segment_length} must divide "
                f"num_steps = {config.num_steps}, and num_minibatches = {config.num_minibatches} the "
                f"number of segments (num_steps / segment_length * num_envs = "
                f"{config.num_steps / config.segment_length * config.num_envs:g})"
            )
    if concrete(config.batch_size, config.num_minibatches) and config.batch_size % config.num_minibatches:
        raise ValueError(
            f"num_envs * num_steps = {config.batch_size} is not divisible by num_minibatches = "
            f"{config.num_minibatches}"
        )
    if concrete(config.total_timesteps, config.batch_size) and config.total_timesteps < config.batch_size:
        raise ValueError(
            f"total_timesteps = {config.total_timesteps} is less than one iteration "
            f"(num_envs * num_steps = {config.batch_size})"
        )
    if config.obs_stats_update == "before_sgd" and not config.normalize_obs:
        raise ValueError("obs_stats_update=before_sgd needs normalize_obs: without normalisation there are "
                         "no statistics to update")
    discounts = (config.gamma, config.gae_lambda)
    if concrete(*discounts) and not all(0.0 <= x <= 1.0 for x in discounts):
        raise ValueError(f"gamma and gae_lambda must lie in [0, 1], got {config.gamma}, {config.gae_lambda}")


def make_agent(config: Config, drift=None, network=None, extra_loss=None) -> Agent:
    """`drift(ratio, log_ratio, advantages, progress) -> D >= 0` replaces the loaded drift of the learned
    objective (meta-training passes one closing over traced drift params); progress = iteration / iterations.
    `network` (optional) replaces the ActorCritic: a flax module whose apply gives (policy, value), with
    sample/log_prob/entropy on the policy, and methods "policy" and "value" for either alone;
    `extra_loss(params, minibatch, policy) -> (loss, stats)` (optional) is added to each minibatch loss (used
    by `purerl.agents.pmoe_ppo`)."""
    validate(config)
    if config.objective != "clip" and drift is None:
        drift = objective_drift(config)
    env, env_params = make_env(config)
    check_action_space(env.action_space(env_params), "PPO")
    discrete = envs.is_discrete(env, env_params)
    obs_shape = env.observation_space(env_params).shape
    if network is None:
        network = make_network(config, env, env_params)
    num_iterations = config.num_iterations

    def learning_rate(count):
        if not config.anneal_lr:
            return config.lr
        iteration = count // (config.num_minibatches * config.update_epochs)
        return config.lr * (1.0 - iteration / num_iterations)

    # On one flat vector of all parameters: Adam's few elementwise ops run once per minibatch step instead of
    # once per weight array (12 for the default actor-critic), which on a CPU is ~10% of PPO's run time.
    optimizer = optax.flatten(optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm), optax.adam(learning_rate, eps=1e-5)
    ))
    vmap_reset = jax.vmap(env.reset, in_axes=(0, None), axis_name=ENV_AXIS)
    rollout, _ = make_rollout(network, env, env_params, config.num_envs, config.num_steps)

    # obs_stats_update=before_sgd (validate: only with normalize_obs): the agent keeps the statistics and the
    # batch holds raw observations
    stats_before_sgd = config.obs_stats_update == "before_sgd"

    def init(key):
        key, net_key, env_key = jax.random.split(key, 3)
        params = network.init(net_key, jnp.zeros(obs_shape))
        obs, env_state = vmap_reset(jax.random.split(env_key, config.num_envs), env_params)
        obs_stats = RunningMeanStd.create(obs_shape) if stats_before_sgd else None
        return TrainState(params, optimizer.init(params), env_state, obs, key, jnp.zeros((), jnp.int32),
                          obs_stats)

    def loss_fn(params, batch, progress=None):
        if config.recompute_advantages == "minibatch":
            pi, value, batch = segments_forward(params, batch)
        else:
            pi, value = network.apply(params, batch[0])
        obs, action, old_log_prob, old_value, advantages, targets = batch
        log_ratio = pi.log_prob(action) - old_log_prob
        ratio = jnp.exp(log_ratio)
        if config.normalize_advantages:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        if config.objective == "clip":
            policy_loss = -jnp.minimum(
                ratio * advantages, jnp.clip(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps) * advantages
            ).mean()
        else:  # mirror-learning form: -E[r A - D(r, A)] with a drift D >= 0, D(1, A) = 0
            policy_loss = -(ratio * advantages - drift(ratio, log_ratio, advantages, progress)).mean()
        if config.clip_value:
            value_clipped = old_value + jnp.clip(value - old_value, -config.clip_eps, config.clip_eps)
            value_loss = 0.5 * jnp.maximum((value - targets) ** 2, (value_clipped - targets) ** 2).mean()
        else:
            value_loss = 0.5 * ((value - targets) ** 2).mean()
        entropy = pi.entropy().mean()
        total = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
        stats = {
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": entropy,
            "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
            "clip_fraction": (jnp.abs(ratio - 1.0) > config.clip_eps).mean(),
        }
        if extra_loss is not None:
            extra, extra_stats = extra_loss(params, batch, pi)
            total, stats = total + extra, {**stats, **extra_stats}
        return total, stats

    segments = config.num_steps // config.segment_length * config.num_envs  # recompute_advantages=minibatch
    flat = lambda x: x.reshape((-1,) + x.shape[2:])

    def critic_gae(params, traj):
        """(values, advantages, targets) of `traj` [time, envs] with the critic of `params`, in one critic
        pass; the next values bootstrap truncated episodes from their final observations."""
        value = lambda o: network.apply(params, o, method="value")
        values, next_values = critic_values(value, traj, time_limit(env_params, traj.done.shape[0]))
        advantages, targets = gae(traj.reward * config.reward_scale, values, next_values, traj.terminated,
                                  traj.done, config.gamma, config.gae_lambda)
        return values, advantages, targets

    def as_segments(x):
        """[num_steps, num_envs, ...] -> [segments, segment_length, ...]: each env's rollout cut in pieces."""
        x = x.reshape((config.num_steps // config.segment_length, config.segment_length) + x.shape[1:])
        return jnp.swapaxes(x, 1, 2).reshape((segments, config.segment_length) + x.shape[3:])

    def segments_forward(params, minibatch):
        """recompute_advantages=minibatch: (policy, values, the loss's 6-tuple) of a minibatch of whole
        segments. As in brax, one critic pass (over the observations and the bootstrap rows of
        `critic_values`) gives both the values the loss trains and, without gradient, GAE within each
        segment; the rollout's values stay the centre of the value clip."""
        pieces, old_values = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), minibatch)  # GAE: time first
        values, advantages, targets = critic_gae(params, pieces)
        advantages, targets = jax.lax.stop_gradient((advantages, targets))
        obs = flat(pieces.obs)
        batch = (obs, flat(pieces.action), flat(pieces.log_prob), flat(old_values), flat(advantages),
                 flat(targets))
        return network.apply(params, obs, method="policy"), flat(values), batch

    def update(state: TrainState):
        key, rollout_key, epoch_key = jax.random.split(state.key, 3)
        progress = state.iteration / num_iterations
        env_state, obs, traj = rollout(state.params, state.env_state, state.obs, rollout_key, state.obs_stats)
        obs_stats = state.obs_stats
        if stats_before_sgd:
            # brax's order: the statistics take in the batch before SGD, and everything after reads the batch
            # under them (the behaviour log-probabilities stay those of the rollout's statistics)
            obs_stats = obs_stats.update(flat(traj.obs))
            traj = traj._replace(obs=obs_stats.normalize(traj.obs),
                                 final_obs=obs_stats.normalize(traj.final_obs))
        values, advantages, targets = critic_gae(state.params, traj)
        # What the loss reads, shuffled into minibatches: transitions, or for recompute_advantages=minibatch
        # whole segments with what GAE needs (the rollout's values stay the centre of the value clip).
        if config.recompute_advantages == "minibatch":
            batch = jax.tree.map(as_segments, (traj, values))
            num_units = segments
        else:
            batch = jax.tree.map(flat, (traj.obs, traj.action, traj.log_prob, values, advantages, targets))
            num_units = config.batch_size

        def epoch(carry, perm):
            epoch_batch = batch
            if config.recompute_advantages == "epoch":
                _, advantages, targets = critic_gae(carry[0], traj)
                epoch_batch = batch[:4] + (flat(advantages), flat(targets))
            minibatches = jax.tree.map(
                lambda x: x[perm].reshape((config.num_minibatches, -1) + x.shape[1:]), epoch_batch
            )

            def minibatch_step(carry, minibatch):
                params, opt_state = carry
                grads, stats = jax.grad(loss_fn, has_aux=True)(params, minibatch, progress)
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), stats

            return jax.lax.scan(minibatch_step, carry, minibatches)

        # every epoch's order at once: jax.random.permutation's draws, computed without XLA's slow CPU sort
        perms = jax.vmap(lambda k: shuffle.permutation(k, num_units))(
            jax.random.split(epoch_key, config.update_epochs))
        (params, opt_state), stats = jax.lax.scan(epoch, (state.params, state.opt_state), perms)
        num_episodes = traj.done.sum()
        metrics = {k: v.mean() for k, v in stats.items()}
        metrics["episode_return"] = jnp.where(
            num_episodes > 0, (traj.episode_return * traj.done).sum() / jnp.maximum(num_episodes, 1), jnp.nan
        )
        metrics["episodes"] = num_episodes
        metrics["learning_rate"] = jnp.asarray(
            learning_rate(state.iteration * config.num_minibatches * config.update_epochs), jnp.float32
        )
        iteration = state.iteration + 1
        new_state = TrainState(params, opt_state, env_state, obs, key, iteration, obs_stats)
        return new_state, metrics

    policy = make_policy(config, network, env_params, discrete)
    evaluate = make_evaluate(policy, config.eval_episodes)

    return Agent(init, update, evaluate, num_iterations, config.batch_size, config, policy=policy)


def make_train(config: Config):
    """`train(key) -> (final TrainState, metrics stacked per iteration)`, fully jittable."""
    return train_fn(make_agent(config))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("ppo")
