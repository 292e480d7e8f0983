"""The on-policy rollout shared by PPO-style agents (`purerl.agents.ppo`, `purerl.agents.a2c`,
`purerl.agents.pmoe_ppo`): the vmapped training envs, one rollout of an actor-critic in them, and its
policy outside training (the final evaluation's and a saved run's).

The functions read the env options from the agent's config: `env`, `max_episode_steps`, `brax_backend`
and `normalize_obs`, and `action_squash` and `obs_stats_update` where the config has them (PPO's; "clip"
and "per_step" otherwise).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

from purerl import envs
from purerl.envs.wrappers import RunningMeanStd, find_obs_stats, tanh_to_bounds
from purerl.evaluation import Policy


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    log_prob: jax.Array
    final_obs: jax.Array  # the true next observation (pre-reset at episode ends)
    episode_return: jax.Array  # return of the episode that ended at this step (valid where done)


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    iteration: jax.Array
    # the agent's own observation statistics (PPO's obs_stats_update="before_sgd"); None where the env's
    # NormalizeObservation wrapper keeps them (`training_obs_stats` finds either)
    obs_stats: RunningMeanStd | None = None


ENV_AXIS = "envs"  # vmap axis of the parallel envs (observation statistics are shared over it)


def make_base_env(config):
    """The unwrapped env with the config's time limit and brax backend."""
    kwargs = {}
    if config.max_episode_steps:
        kwargs["max_steps_in_episode"] = config.max_episode_steps
    if config.env in envs.BRAX_ENVS + envs.ANT_COVERAGE_ENVS:
        kwargs["backend"] = config.brax_backend
    return envs.make(config.env, **kwargs)


def action_squash(config) -> str:
    """How continuous actions are brought into the bounds: "clip" or "tanh" (`envs.TanhAction`)."""
    return getattr(config, "action_squash", "clip")


def obs_stats_update(config) -> str:
    """When the observation statistics take in observations: "per_step" (the env's NormalizeObservation
    wrapper, at every step) or "before_sgd" (the agent, once per iteration from its whole batch)."""
    return getattr(config, "obs_stats_update", "per_step")


def make_env(config):
    """The training env: base env -> clip (or tanh-squash) actions -> episode stats -> (optional) obs
    normalisation at every step (not with obs_stats_update="before_sgd", whose agent normalises)."""
    env, env_params = make_base_env(config)
    if not envs.is_discrete(env, env_params):
        env = envs.TanhAction(env) if action_squash(config) == "tanh" else envs.ClipAction(env)
    env = envs.EpisodeStats(env)
    if config.normalize_obs and obs_stats_update(config) == "per_step":
        env = envs.NormalizeObservation(env, axis_name=ENV_AXIS)
    return env, env_params


def check_action_space(space, algo: str = "this agent") -> None:
    if not isinstance(space, spaces.Discrete | spaces.Box):
        raise ValueError(f"{algo} supports Discrete and Box action spaces, not {type(space).__name__}")


def make_rollout(network, env, env_params, num_envs: int, num_steps: int):
    """`(rollout, critic)` of `network` (an actor-critic whose apply has methods "policy" and "value") in
    `num_envs` vmapped envs (vmap axis `ENV_AXIS`):
    - `rollout(params, env_state, obs, key, obs_stats=None) -> (env_state, obs, Transition [num_steps,
      num_envs])` samples the policy alone; with `obs_stats` (a `RunningMeanStd`, held fixed) the policy
      sees the observations normalised, and the transitions keep them as the env gave them;
    - `critic(params, traj) -> (values, next_values)` then runs the critic over the whole rollout at once
      (`critic_values`, with the env's `time_limit`): one batched call instead of one small one per step."""
    vmap_step = jax.vmap(env.step, in_axes=(0, 0, 0, None), axis_name=ENV_AXIS)

    def rollout(params, env_state, obs, key, obs_stats=None):
        # All randomness of the rollout is drawn up front, in one batch, rather than split step by step.
        act_key, env_key = jax.random.split(key)
        act_keys = jax.random.split(act_key, num_steps)
        env_keys = jax.random.split(env_key, (num_steps, num_envs))

        def step(carry, keys):
            env_state, obs = carry
            act_key, env_keys = keys
            seen = obs if obs_stats is None else obs_stats.normalize(obs)
            pi = network.apply(params, seen, method="policy")
            action = pi.sample(seed=act_key)
            next_obs, env_state, reward, terminated, truncated, info = vmap_step(
                env_keys, env_state, action, env_params
            )
            done = jnp.logical_or(terminated, truncated)
            transition = Transition(
                obs, action, reward, terminated, done, pi.log_prob(action),
                info["final_observation"], info["episode_return"],
            )
            return (env_state, next_obs), transition

        (env_state, obs), traj = jax.lax.scan(step, (env_state, obs), (act_keys, env_keys))
        return env_state, obs, traj

    limit = time_limit(env_params, num_steps)

    def critic(params, traj: Transition):
        return critic_values(lambda o: network.apply(params, o, method="value"), traj, limit)

    return rollout, critic


def time_limit(env_params, num_steps: int) -> int | None:
    """The env's time limit (`env_params.max_steps_in_episode`, where gymnax-style envs truncate) if it is
    a Python int of at least `num_steps`, else None: see `critic_values`."""
    limit = getattr(env_params, "max_steps_in_episode", None)
    return limit if isinstance(limit, int) and limit >= num_steps else None


def critic_values(value, traj: Transition, limit: int | None) -> tuple[jax.Array, jax.Array]:
    """`(values, next_values)` [num_steps, num_envs] of a rollout, for GAE: the critic `value(obs)` at each
    step's observation and at the step's true next observation (the pre-reset one where an episode ended).

    The next observation of a step is the next step's observation unless an episode ended at the step, so
    `next_values` are `values` shifted by one, except at the rollout's last step and at truncations, whose
    final observations the critic evaluates too. (Terminated steps need no next value: GAE masks it.)
    With `limit` (`time_limit`: the env truncates only when an episode reaches that many steps, and a
    rollout is no longer than that) each env truncates at most once per rollout, so one final observation
    per env is gathered: the critic runs on num_steps + 2 rows per env instead of 2 * num_steps. Without
    it, the critic evaluates every step's final observation."""
    num_steps, num_envs = traj.done.shape
    if limit is None:
        both = value(jnp.concatenate([traj.obs, traj.final_obs]))
        return both[:num_steps], both[num_steps:]
    truncated = jnp.logical_and(traj.done, jnp.logical_not(traj.terminated))
    step = jnp.argmax(truncated, axis=0)  # each env's truncated step, if it has one
    finals = jnp.stack([traj.final_obs[step, jnp.arange(num_envs)], traj.final_obs[-1]])
    both = value(jnp.concatenate([traj.obs, finals]))
    values, at_truncation, after_last = both[:num_steps], both[num_steps], both[num_steps + 1]
    next_values = jnp.concatenate([values[1:], after_last[None]])
    return values, jnp.where(truncated, at_truncation, next_values)


def make_policy(config, network, env_params, discrete: bool) -> Policy:
    """The actor-critic's `Policy` in the base env (no training wrappers; observations normalised with the
    training statistics if any): what the final evaluation runs (`purerl.evaluation.make_evaluate`) and
    what `purerl.load` and `purerl render` act with. Its actions are the env's own: squashed already when
    the config's `action_squash` is "tanh" (the deterministic action is then tanh of the Gaussian's mean)."""
    eval_env, _ = make_base_env(config)  # same dynamics, no training wrappers
    squash = None
    if not discrete:
        if action_squash(config) == "tanh":
            space = eval_env.action_space(env_params)
            squash = lambda action: tanh_to_bounds(action, space)
        eval_env = envs.ClipAction(eval_env)

    def act_fn(state, deterministic: bool):
        stats = training_obs_stats(state)

        def act(act_key, obs):
            if stats is not None:
                obs = stats.normalize(jnp.asarray(obs, jnp.float32))
            pi = network.apply(state.params, obs, method="policy")
            action = pi.mode() if deterministic else pi.sample(seed=act_key)
            return action if squash is None else squash(action)

        return act

    return Policy(eval_env, env_params, act_fn)


def training_obs_stats(state: TrainState) -> RunningMeanStd | None:
    """The observation statistics that the policy of `state` acts with, or None without normalisation: the
    agent's own, or the per-env copies in the env state pooled into one."""
    if state.obs_stats is not None:
        return state.obs_stats
    stats = find_obs_stats(state.env_state)
    return None if stats is None else stats.merge()
