"""Shared machinery of the offline agents (TD3+BC, IQL, BC, and later PRDC/ODICE/CDSA).

- `prepare(...)`: resolve the dataset (path or `env-kind` name in the cache), load a view, check it against
  the evaluation env (obs/action dims: a dataset/env mismatch is a clear error), apply the algorithm's
  preprocessing (state normalisation, reward scaling, action clipping) and return device arrays. The arrays
  are closed over by the agent's `update` (not part of the vmapped state), so a seed sweep shares one device
  copy.
- `sample(data, key, batch_size)`: a uniform minibatch drawn inside jit.
- `make_policy(...)`: the agent's `Policy` in the purerl env with the SAME state normalisation as training,
  which the final evaluation, `purerl.load` and `purerl render` act with; dataset actions are in [-1, 1] and
  the env rescales them to its bounds (`envs.RescaleAction`).

`--eval-env gymnasium:ENV_ID` evaluates instead in a gymnasium MuJoCo env on the host
(`purerl.envs.gymnasium_eval`): the envs Minari's (and D4RL's) MuJoCo data was recorded in, whose actions are
stored unscaled in [-1, 1], so there the policy's actions go to the env as they are.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from purerl import data as pdata
from purerl import envs
from purerl.agent import check_choices, check_positive, concrete
from purerl.envs import gymnasium_eval
from purerl.envs.brax import BraxBackend
from purerl.evaluation import Policy


@dataclass(frozen=True)
class OfflineConfig:
    """The options every offline agent's Config starts from (each agent's Config subclasses it): the dataset,
    the evaluation env, and the budget in gradient updates. `check_common` validates them."""

    dataset: str = "Pendulum-v1-medium-replay"
    """dataset: an hdf5 path, a Minari directory, an `env-kind` name in the cache (`purerl collect`), or
    minari:DATASET_ID (e.g. minari:mujoco/hopper/medium-v0, from `minari download`)"""
    env: str = ""
    """evaluation env; empty: the dataset's env_id metadata"""
    view: Literal["", "qlearning", "exact"] = ""
    """dataset view: qlearning (d4rl.qlearning_dataset) or exact; empty: exact for purerl files, qlearning for
    D4RL"""
    num_updates: int = 1_000_000
    """gradient steps per seed"""
    updates_per_iteration: int = 1000
    """gradient steps per jitted `update` call"""
    batch_size: int = 256
    """minibatch size"""
    gamma: float = 0.99
    """discount factor"""
    eval_episodes: int = 10
    """episodes per seed in the final evaluation"""
    brax_backend: Literal["", BraxBackend] = ""
    """physics backend of a brax evaluation env ("" = the dataset's, from its metadata; else generalized)"""
    eval_env: str = ""
    """evaluate in a gymnasium MuJoCo env instead of a purerl one: gymnasium:ENV_ID (e.g. gymnasium:Hopper-v5,
    pip install 'purerl[mujoco]'), run on the host; on Minari data the summary then adds D4RL-normalised
    scores from the dataset's ref_min_score/ref_max_score"""


@dataclass(frozen=True)
class OfflineData:
    data: dict[str, jax.Array]  # observations, actions, rewards, next_observations, terminals, timeouts
    obs_mean: np.ndarray
    obs_std: np.ndarray
    env: str
    env_params: Any
    eval_env: Any
    metadata: dict[str, Any]
    path: str

    @property
    def size(self) -> int:
        return int(self.data["observations"].shape[0])


def gymnasium_evaluation(eval_env: str, metadata: dict[str, Any]) -> gymnasium_eval.GymnasiumEvaluation:
    """The `gymnasium:` evaluation env, scored with the dataset's reference returns if its metadata has both
    (Minari's mujoco/* datasets do; None: raw returns only)."""
    refs = None
    if metadata.get("ref_min_score") is not None and metadata.get("ref_max_score") is not None:
        refs = (float(metadata["ref_min_score"]), float(metadata["ref_max_score"]))
        if refs[0] == refs[1]:
            raise ValueError(f"the dataset's reference returns are equal ({refs[0]}); cannot normalise "
                             "scores")
    return gymnasium_eval.make(eval_env, refs)


def env_name(dataset: str, env: str = "") -> str:
    """The env of a dataset: `env` if given, else the file's `env_id` metadata."""
    if env:
        return env
    meta = pdata.metadata(pdata.resolve(dataset))
    if "env_id" not in meta:
        raise ValueError(f"dataset {dataset!r} has no env_id metadata (a real D4RL/Minari file?); pass --env")
    return str(meta["env_id"])


def prepare(dataset: str, env: str = "", view: str = "", normalize_states: bool = False,
            obs_eps: float = 1e-3, reward_scaling: str = "none", clip_actions: float = 0.0,
            brax_backend: str = "", eval_env: str = "") -> OfflineData:
    """Load and preprocess a dataset for an offline agent (see the module docstring).

    reward_scaling: "none", "episode_range" (IQL MuJoCo: r * 1000 / (max - min episode return)) or "antmaze"
    (r - 1). clip_actions > 0 clips actions to [-clip_actions, clip_actions]. eval_env `gymnasium:ENV_ID`
    evaluates in that gymnasium env (on the host) instead of a purerl env."""
    if reward_scaling not in ("none", "episode_range", "antmaze"):
        raise ValueError(f"reward_scaling must be none, episode_range or antmaze, got {reward_scaling!r}")
    path = pdata.resolve(dataset)
    meta = pdata.metadata(path)
    if eval_env:
        evaluation = gymnasium_evaluation(eval_env, meta)
        obs_dim, act_dim = int(np.prod(evaluation.observation_shape)), int(np.prod(evaluation.action_shape))
        return _preprocess(path, meta, view, obs_dim, act_dim, eval_env, None, evaluation, normalize_states,
                           obs_eps, reward_scaling, clip_actions)
    name = env_name(dataset, env)
    envs.check_name(name)
    kwargs = {}
    if "episode_length" in meta:
        kwargs["max_steps_in_episode"] = int(meta["episode_length"])
    if name in envs.BRAX_ENVS:
        # evaluate in the physics the data came from, unless asked otherwise
        collected_with = str(meta.get("brax_backend", "") or "")
        kwargs["backend"] = brax_backend or collected_with or "generalized"
        if collected_with and kwargs["backend"] != collected_with:
            print(f"purerl: warning: {path} was collected with brax backend {collected_with!r}; "
                  f"evaluating in {kwargs['backend']!r}", file=sys.stderr)
    base, env_params = envs.make(name, **kwargs)
    if envs.is_discrete(base, env_params):
        raise ValueError(f"env {name!r} has discrete actions; the offline agents need continuous actions")
    obs_dim = int(np.prod(base.observation_space(env_params).shape))
    act_dim = envs.action_dim(base, env_params)
    return _preprocess(path, meta, view, obs_dim, act_dim, name, env_params, envs.RescaleAction(base),
                       normalize_states, obs_eps, reward_scaling, clip_actions)


def _preprocess(path: str, meta: dict[str, Any], view: str, obs_dim: int, act_dim: int, name: str, env_params,
                eval_env, normalize_states: bool, obs_eps: float, reward_scaling: str,
                clip_actions: float) -> OfflineData:
    """`prepare` after the evaluation env is made: load the view (its dims checked against the env's) and
    preprocess it."""
    try:
        raw = pdata.load(path, view=view or None, env_obs_dim=obs_dim, env_act_dim=act_dim)
    except ValueError as err:
        raise ValueError(f"dataset/env mismatch between {path!r} and env {name!r}: {err}") from None
    if reward_scaling == "episode_range":
        raw = pdata.iql_reward_scale(raw)
    elif reward_scaling == "antmaze":
        raw = pdata.antmaze_shift(raw)
    if clip_actions:
        raw = pdata.clip_actions(raw, clip_actions)
    if normalize_states:
        raw, mean, std = pdata.normalize_states(raw, obs_eps)
    else:
        mean, std = np.zeros(obs_dim, np.float32), np.ones(obs_dim, np.float32)
    device = {k: jnp.asarray(v) for k, v in raw.items()}
    return OfflineData(device, mean, std, name, env_params, eval_env, meta, path)


def sample(data: dict[str, jax.Array], key: jax.Array, batch_size: int) -> dict[str, jax.Array]:
    """Uniform minibatch (with replacement) of the flat dataset, inside jit."""
    n = data["observations"].shape[0]
    idx = jax.random.randint(key, (batch_size,), 0, n)
    return {k: v[idx] for k, v in data.items()}


def make_policy(offline: OfflineData, actor_params: Callable[[Any], Any], actor: Callable) -> Policy:
    """How an offline agent acts in its evaluation env: `actor(params, obs) -> (mean, log_std)` sees the
    normalised observation (obs - mean) / std, as in training, and `actor_params(state)` picks its params from
    the train state. A deterministic actor (TD3+BC, BC, PRDC) gives log_std None and acts the same in both
    modes; a Gaussian one (IQL, O-DICE) samples mean + exp(log_std) * N(0, 1) unless deterministic. The final
    evaluation acts with the mean, as the methods' authors evaluate. Actions are clipped to [-1, 1]."""
    obs_mean, obs_std = jnp.asarray(offline.obs_mean), jnp.asarray(offline.obs_std)

    def act_fn(state, deterministic: bool):
        params = actor_params(state)

        def act(key, obs):
            action, log_std = actor(params, (jnp.asarray(obs, jnp.float32) - obs_mean) / obs_std)
            if log_std is not None and not deterministic:
                action = action + jnp.exp(log_std) * jax.random.normal(key, action.shape)
            return jnp.clip(action, -1.0, 1.0)

        return act

    return Policy(offline.eval_env, offline.env_params, act_fn, deterministic_evaluation=True)


def check_common(config) -> None:
    """Validation of the `OfflineConfig` fields of an offline agent's config, and of its string options."""
    check_choices(config)
    if not config.dataset:
        raise ValueError("dataset must name a dataset file or an `env-kind` name (e.g. Pendulum-v1-medium)")
    check_positive(config, "num_updates", "updates_per_iteration", "batch_size", "eval_episodes")
    if config.eval_env:
        if not gymnasium_eval.is_gymnasium(config.eval_env):
            raise ValueError(f"eval_env must be gymnasium:ENV_ID (e.g. gymnasium:Hopper-v5), got "
                             f"{config.eval_env!r}")
        if config.env not in ("", config.eval_env):  # a built agent's config names its eval env in both
            raise ValueError(f"give --env (a purerl env) or --eval-env (a gymnasium env), not both; got env "
                             f"{config.env!r} and eval_env {config.eval_env!r}")
    if concrete(config.num_updates, config.updates_per_iteration) and \
            config.num_updates < config.updates_per_iteration:
        raise ValueError(f"num_updates = {config.num_updates} is less than updates_per_iteration = "
                         f"{config.updates_per_iteration}")
    if concrete(config.gamma) and not 0.0 <= config.gamma <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {config.gamma}")


def require_keys(data: dict[str, jax.Array], *keys: str) -> None:
    """Clear error when a prepared dataset lacks a key an agent needs (e.g. next_observations)."""
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"dataset is missing the key(s) {', '.join(map(repr, missing))} "
                         f"(has: {', '.join(sorted(data))})")
