"""SAC (Haarnoja et al., 2018, "Soft Actor-Critic Algorithms and Applications"), continuous actions.

Twin critics with Polyak-averaged targets, a tanh-squashed Gaussian policy (stable log-prob from
`purerl.nn.tanh_gaussian_log_prob`), automatic entropy temperature, `num_envs` vmapped envs and a
uniform replay buffer (`purerl.replay`). Defaults: the usual MuJoCo setting (256x256 ReLU nets, Adam
3e-4, batch 256, tau 5e-3, gamma 0.99, target entropy -dim(A), one gradient step per env transition).

One iteration (`update`) = `rollout_steps` times: one step of all `num_envs` envs (random uniform
actions until `learning_starts` transitions are stored), store the transitions, then `utd * num_envs`
gradient steps (none before `learning_starts`). Everything is inside `lax.scan`.

One gradient step, in this order (rlkit's order, which PMOE's reference code shares):
1. the actor objective at s (reparameterised samples) is evaluated once with `jax.vjp`;
2. the temperature takes its Adam step on L_alpha = -log_alpha * (mean log pi + target_entropy);
3. the actor gradient is pulled back with the NEW alpha; the critic target at s' also uses the new
   alpha: y = r + gamma * (1 - terminated) * (min_i Qbar_i(s', a') - alpha * log pi(a'|s'));
4. critics take their step on sum_i mean (Q_i(s, a) - y)^2, then the targets move by Polyak tau.
All losses are computed from the pre-step networks (only alpha is refreshed first).

With `normalize_obs` (brax's SAC), each env step acts under the statistics so far, then adds the observations
it acted on to them; the gradient steps that follow read their replay batch under the updated statistics. The
buffer holds raw observations, so old transitions are always read with today's statistics.

Truncation is not termination: the buffer stores `info["final_observation"]` as the next observation
and `terminated`/`truncated` separately; only `terminated` removes the bootstrap.

The policy is pluggable (`Policy` below): PMOE-SAC (`purerl.agents.pmoe_sac`) reuses this whole file
with a mixture-of-experts policy; with one expert it is exactly this SAC.

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/sac.md`.

Run it: `python -m purerl.agents.sac --env Pendulum-v1 --num-seeds 3` (same flags as `purerl train sac`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from purerl import envs, evaluation, replay
from purerl.agent import Agent, check_choices, check_positive, concrete, train_fn
from purerl.envs.brax import BraxBackend
from purerl.envs.wrappers import RunningMeanStd
from purerl.evaluation import make_evaluate
from purerl.nn import Activation, EnsembleQ, TanhGaussianActor, sample_tanh_gaussian


@dataclass(frozen=True)
class Config:
    env: str = "Pendulum-v1"
    """environment name (continuous actions only; `purerl list` shows them all)"""
    total_timesteps: int = 30_000
    """env steps per seed (all envs together); trained in whole iterations of num_envs * rollout_steps"""
    num_envs: int = 1
    """parallel (vmapped) environments per seed"""
    rollout_steps: int = 100
    """env steps (of all envs) per iteration; each is followed by its gradient steps (a chunk, for speed)"""
    utd: float = 1.0
    """update-to-data ratio: gradient steps per stored transition (utd * num_envs per env step, a whole
    number: brax's SAC settings take 0.5 with 128 envs)"""
    buffer_size: int = 1_000_000
    """replay capacity in transitions (capped at total_timesteps)"""
    batch_size: int = 256
    """minibatch size of each gradient step"""
    learning_starts: int = 1_000
    """transitions collected with uniform random actions before the first gradient step"""
    gamma: float = 0.99
    """discount factor"""
    tau: float = 5e-3
    """Polyak rate of the target critics (every gradient step)"""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor"""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics"""
    alpha_lr: float = 3e-4
    """Adam learning rate of the log temperature"""
    init_alpha: float = 1.0
    """initial entropy temperature (fixed if not autotune)"""
    autotune: bool = True
    """learn the temperature towards the target entropy"""
    target_entropy_scale: float = 1.0
    """target entropy = -target_entropy_scale * dim(A)"""
    reward_scale: float = 1.0
    """rewards are multiplied by this in the critic target"""
    normalize_obs: bool = False
    """standardise observations with running statistics of every observation acted on (brax's SAC):
    the buffer keeps raw observations, and actor and critics read them, at acting and at every gradient
    step, through the current statistics"""
    hidden: tuple[int, ...] = (256, 256)
    """hidden widths of actor and critics"""
    activation: Activation = "relu"
    """hidden activation: tanh, relu, elu, gelu or silu"""
    max_episode_steps: int = 0
    """episode time limit; 0 keeps the env's own (200 for Pendulum-v1, 1000 for brax)"""
    brax_backend: BraxBackend = "generalized"
    """physics backend for brax envs: generalized, positional, spring or mjx"""
    eval_episodes: int = 16
    """episodes per seed in the final evaluation (deterministic policy: tanh of the mean)"""

    @property
    def steps_per_iteration(self) -> int:
        return self.num_envs * self.rollout_steps

    @property
    def num_iterations(self) -> int:
        return self.total_timesteps // self.steps_per_iteration


# ------------------------------------------------------------------------------------------------
# The policy interface (plain SAC here; PMOE-SAC supplies a mixture).
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    """What the SAC loop needs from a policy. `obs` may carry any leading batch axes.

    - `network`: the flax module; `network.init(key, obs)` gives its params.
    - `sample(params, obs, key) -> (action in [-1, 1], log_prob)`: acting and the critic target.
    - `objective(params, obs, key, q_fn) -> ((lp, q, extra), metrics)`: three scalars; the actor loss
      is alpha * lp - q + extra, and lp also drives the temperature. `q_fn(obs, action)` = min twin Q.
    - `act(params, obs, key) -> action`: the evaluation ("deterministic") policy.
    - `diagnostics(params, obs) -> dict of scalars` (optional): logged once per iteration on a replay batch.
    """

    network: nn.Module
    sample: Callable
    objective: Callable
    act: Callable
    diagnostics: Callable | None = None


def gaussian_policy(config: Config, action_dim: int) -> Policy:
    """The SAC policy: one tanh-Gaussian with state-dependent mean and log-std."""
    network = TanhGaussianActor(action_dim, 1, config.hidden, config.activation)

    def sample(params, obs, key):
        mean, log_std = network.apply(params, obs)
        action, log_prob, _ = sample_tanh_gaussian(key, mean[..., 0, :], log_std[..., 0, :])
        return action, log_prob

    def objective(params, obs, key, q_fn):
        action, log_prob = sample(params, obs, key)
        return (log_prob.mean(), q_fn(obs, action).mean(), jnp.zeros(())), {}

    def act(params, obs, key):
        return jnp.tanh(network.apply(params, obs)[0][..., 0, :])

    return Policy(network, sample, objective, act)


# ------------------------------------------------------------------------------------------------
# State, env, validation
# ------------------------------------------------------------------------------------------------
@struct.dataclass
class Learner:
    """Everything a gradient step changes."""

    actor_params: Any
    critic_params: Any
    target_params: Any
    log_alpha: jax.Array
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any


@struct.dataclass
class TrainState:
    learner: Learner
    buffer: replay.ReplayBuffer
    env_state: Any
    obs: jax.Array
    key: jax.Array
    env_steps: jax.Array  # transitions collected so far (all envs)
    obs_stats: RunningMeanStd | None = None  # normalize_obs only


def make_env(config: Config):
    """Training env: base env -> actions rescaled from [-1, 1] to the bounds -> episode stats."""
    kwargs = {}
    if config.max_episode_steps:
        kwargs["max_steps_in_episode"] = config.max_episode_steps
    if config.env in envs.BRAX_ENVS:
        kwargs["backend"] = config.brax_backend
    env, env_params = envs.make(config.env, **kwargs)
    if envs.is_discrete(env, env_params):
        raise ValueError(
            f"env {config.env!r} has a discrete action space; SAC (and PMOE-SAC) need continuous actions"
        )
    return envs.EpisodeStats(envs.RescaleAction(env)), env_params


def validate(config: Config) -> None:
    envs.check_name(config.env)
    check_positive(config, "total_timesteps", "num_envs", "rollout_steps", "utd", "buffer_size", "batch_size")
    check_positive(config, "actor_lr", "critic_lr", "alpha_lr", "init_alpha", "eval_episodes")
    check_choices(config)
    grad_steps = config.utd * config.num_envs if concrete(config.utd, config.num_envs) else None
    if grad_steps is not None and abs(grad_steps - round(grad_steps)) > 1e-9:  # 0.1 * 30 = 3.0000000000000004
        raise ValueError(f"utd * num_envs = {grad_steps:g} gradient steps per env step, not a whole number")
    if concrete(config.learning_starts) and config.learning_starts < 0:
        raise ValueError(f"learning_starts must be >= 0, got {config.learning_starts}")
    if concrete(config.total_timesteps, config.steps_per_iteration) and \
            config.total_timesteps < config.steps_per_iteration:
        raise ValueError(
            f"total_timesteps = {config.total_timesteps} is less than one iteration "
            f"(num_envs * rollout_steps = {config.steps_per_iteration})"
        )
    if concrete(config.gamma) and not 0.0 <= config.gamma <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {config.gamma}")
    if concrete(config.tau) and not 0.0 < config.tau <= 1.0:
        raise ValueError(f"tau must lie in (0, 1], got {config.tau}")
    if concrete(config.num_envs, config.buffer_size, config.total_timesteps) and \
            config.num_envs > min(config.buffer_size, config.total_timesteps):
        raise ValueError(f"num_envs = {config.num_envs} exceeds the replay capacity")


# ------------------------------------------------------------------------------------------------
# One gradient step (shared with PMOE-SAC)
# ------------------------------------------------------------------------------------------------
def make_gradient_step(config: Config, policy: Policy, critic: nn.Module, action_dim: int):
    """`step(learner, batch, key) -> (learner, metrics)`: one SAC gradient step on a replay batch."""
    actor_tx = optax.adam(config.actor_lr)
    critic_tx = optax.adam(config.critic_lr)
    alpha_tx = optax.adam(config.alpha_lr)
    target_entropy = -config.target_entropy_scale * action_dim

    def step(learner: Learner, batch: replay.Transition, key):
        actor_key, next_key = jax.random.split(key)

        def q_min(obs, action):
            return critic.apply(learner.critic_params, obs, action).min(axis=0)

        # 1. actor objective at s, once; gradients are pulled back below with the new alpha.
        (lp, q, extra), pullback, actor_stats = jax.vjp(
            lambda p: policy.objective(p, batch.obs, actor_key, q_min), learner.actor_params, has_aux=True
        )
        # 2. temperature step
        alpha_loss = -learner.log_alpha * (lp + target_entropy)
        if config.autotune:
            alpha_grad = -(lp + target_entropy)
            updates, alpha_opt = alpha_tx.update(alpha_grad, learner.alpha_opt)
            log_alpha = optax.apply_updates(learner.log_alpha, updates)
        else:
            log_alpha, alpha_opt = learner.log_alpha, learner.alpha_opt
        alpha = jnp.exp(log_alpha)
        # 3. actor step: d/dtheta (alpha * lp - q + extra)
        one = jnp.ones((), lp.dtype)
        (actor_grads,) = pullback((alpha.astype(lp.dtype), -one, one))
        updates, actor_opt = actor_tx.update(actor_grads, learner.actor_opt, learner.actor_params)
        actor_params = optax.apply_updates(learner.actor_params, updates)
        # 4. critics: soft TD target from the pre-step actor and target critics, new alpha
        next_action, next_lp = policy.sample(learner.actor_params, batch.next_obs, next_key)
        next_q = critic.apply(learner.target_params, batch.next_obs, next_action).min(axis=0)
        # the mask in the rewards' dtype: a float32 mask would round gamma to float32 in a float64 step
        not_terminal = 1.0 - batch.terminated.astype(batch.reward.dtype)
        target = config.reward_scale * batch.reward + config.gamma * not_terminal * (next_q - alpha * next_lp)
        target = jax.lax.stop_gradient(target)

        def critic_loss_fn(params):
            qs = critic.apply(params, batch.obs, batch.action)
            return ((qs - target) ** 2).mean(axis=1).sum(), qs

        (critic_loss, qs), critic_grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(
            learner.critic_params
        )
        updates, critic_opt = critic_tx.update(critic_grads, learner.critic_opt, learner.critic_params)
        critic_params = optax.apply_updates(learner.critic_params, updates)
        target_params = optax.incremental_update(critic_params, learner.target_params, config.tau)

        metrics = {
            "actor_loss": alpha * lp - q + extra,
            "critic_loss": critic_loss,
            "alpha_loss": alpha_loss,
            "alpha": alpha,
            "log_prob": lp,
            "q": qs.mean(),
            **actor_stats,
        }
        new = Learner(actor_params, critic_params, target_params, log_alpha, actor_opt, critic_opt, alpha_opt)
        return new, metrics

    def init(actor_params, critic_params) -> Learner:
        log_alpha = jnp.log(jnp.asarray(config.init_alpha, jnp.float32))
        return Learner(
            actor_params,
            critic_params,
            critic_params,
            log_alpha,
            actor_tx.init(actor_params),
            critic_tx.init(critic_params),
            alpha_tx.init(log_alpha),
        )

    return init, step


# ------------------------------------------------------------------------------------------------
# The agent
# ------------------------------------------------------------------------------------------------
def make_agent(config: Config, policy_fn: Callable[[Any, int], Policy] = gaussian_policy) -> Agent:
    """SAC; `policy_fn(config, action_dim) -> Policy` swaps the policy (PMOE-SAC passes its mixture)."""
    validate(config)
    env, env_params = make_env(config)
    obs_shape = env.observation_space(env_params).shape
    action_dim = envs.action_dim(env, env_params)
    policy = policy_fn(config, action_dim)
    critic = EnsembleQ(2, config.hidden, config.activation)
    learner_init, gradient_step = make_gradient_step(config, policy, critic, action_dim)
    capacity = min(config.buffer_size, config.total_timesteps)
    grad_steps = round(config.utd * config.num_envs)
    vmap_reset = jax.vmap(env.reset, in_axes=(0, None))
    vmap_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def init(key):
        key, actor_key, critic_key, env_key = jax.random.split(key, 4)
        obs0 = jnp.zeros(obs_shape, jnp.float32)
        act0 = jnp.zeros((action_dim,), jnp.float32)
        learner = learner_init(policy.network.init(actor_key, obs0), critic.init(critic_key, obs0, act0))
        example = replay.Transition(obs0, act0, jnp.zeros(()), obs0, jnp.zeros((), bool), jnp.zeros((), bool))
        buffer = replay.init(example, capacity)
        obs, env_state = vmap_reset(jax.random.split(env_key, config.num_envs), env_params)
        obs_stats = RunningMeanStd.create(obs_shape) if config.normalize_obs else None
        return TrainState(learner, buffer, env_state, obs, key, jnp.zeros((), jnp.int32), obs_stats)

    def observe(obs_stats, obs):
        """What the networks read: the observation, standardised when normalize_obs."""
        return obs if obs_stats is None else obs_stats.normalize(obs)

    def sample_batch(buffer, obs_stats, key):
        batch = replay.sample(buffer, key, config.batch_size)
        return batch._replace(obs=observe(obs_stats, batch.obs), next_obs=observe(obs_stats, batch.next_obs))

    def learn(learner, buffer, obs_stats, key):
        def body(learner, step_key):
            sample_key, loss_key = jax.random.split(step_key)
            return gradient_step(learner, sample_batch(buffer, obs_stats, sample_key), loss_key)

        learner, metrics = jax.lax.scan(body, learner, jax.random.split(key, grad_steps))
        return learner, jax.tree.map(jnp.mean, metrics)

    def env_step(state: TrainState, key):
        act_key, random_key, env_key, learn_key = jax.random.split(key, 4)
        warmup = state.env_steps < config.learning_starts
        acting_obs = observe(state.obs_stats, state.obs)
        policy_action, _ = policy.sample(state.learner.actor_params, acting_obs, act_key)
        random_action = jax.random.uniform(random_key, (config.num_envs, action_dim), minval=-1.0, maxval=1.0)
        action = jnp.where(warmup, random_action, policy_action)
        next_obs, env_state, reward, terminated, truncated, info = vmap_step(
            jax.random.split(env_key, config.num_envs), state.env_state, action, env_params
        )
        transition = replay.Transition(
            state.obs, action, reward, info["final_observation"], terminated, truncated
        )
        buffer = replay.add(state.buffer, transition)
        # brax's order: the observations just acted on join the statistics before this step's gradient steps
        obs_stats = None if state.obs_stats is None else state.obs_stats.update(state.obs)
        env_steps = state.env_steps + config.num_envs
        metric_shapes = jax.eval_shape(learn, state.learner, buffer, obs_stats, learn_key)[1]
        learner, metrics = jax.lax.cond(
            env_steps >= config.learning_starts,
            lambda: learn(state.learner, buffer, obs_stats, learn_key),
            lambda: (
                state.learner,
                jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), metric_shapes),
            ),
        )
        done = info["episode_done"]
        episode = (done.sum(), (info["episode_return"] * done).sum())
        new_state = TrainState(learner, buffer, env_state, next_obs, state.key, env_steps, obs_stats)
        return new_state, (metrics, episode)

    def update(state: TrainState):
        key, steps_key = jax.random.split(state.key)
        state, (metrics, (episodes, return_sum)) = jax.lax.scan(
            env_step, state, jax.random.split(steps_key, config.rollout_steps)
        )
        metrics = {k: jnp.nanmean(v) for k, v in metrics.items()}
        num_episodes = episodes.sum()
        metrics["episode_return"] = jnp.where(
            num_episodes > 0, return_sum.sum() / jnp.maximum(num_episodes, 1), jnp.nan
        )
        metrics["episodes"] = num_episodes
        if policy.diagnostics is not None:
            batch = sample_batch(state.buffer, state.obs_stats, jax.random.fold_in(key, 2))
            metrics.update(policy.diagnostics(state.learner.actor_params, batch.obs))
        return state.replace(key=key), metrics

    eval_env, _ = envs.make(
        config.env, **({"backend": config.brax_backend} if config.env in envs.BRAX_ENVS else {})
    )
    eval_env = envs.RescaleAction(eval_env)

    def act_fn(state: TrainState, deterministic: bool):
        params = state.learner.actor_params

        def act(act_key, obs):
            obs = observe(state.obs_stats, obs)
            if deterministic:  # the evaluation policy: tanh of the mean (PMOE-SAC: of the chosen expert's)
                return policy.act(params, obs, act_key)
            return policy.sample(params, obs, act_key)[0]

        return act

    acting = evaluation.Policy(eval_env, env_params, act_fn, deterministic_evaluation=True)
    evaluate = make_evaluate(acting, config.eval_episodes)
    return Agent(init, update, evaluate, config.num_iterations, config.steps_per_iteration, config,
                 policy=acting)


def gradient_step_fn(config: Config, policy_fn: Callable[[Any, int], Policy] = gaussian_policy):
    """The jittable `step(learner, batch, key) -> (learner, metrics)` of this config (tests, benchmarks)."""
    validate(config)
    env, env_params = make_env(config)
    action_dim = envs.action_dim(env, env_params)
    critic = EnsembleQ(2, config.hidden, config.activation)
    return make_gradient_step(config, policy_fn(config, action_dim), critic, action_dim)[1]


def make_train(config: Config):
    """`train(key) -> (final TrainState, metrics stacked per iteration)`, fully jittable."""
    return train_fn(make_agent(config))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("sac")
