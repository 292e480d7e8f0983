"""The continuous combination lock of HNPG (Zhou, Sekhari, Song, Sun, ICLR 2024), gymnax-1.0 API.

Latent state z ∈ {0 = A, 1 = B, 2 = C (dead)} and step h. Each episode lasts exactly `horizon` steps.
- Observation: x ∈ R^d (d = 2^⌈log2(H+4)⌉) with x[0:H+3] ~ N(0, σ²), then x[z] += 1, x[3+h] += 1;
  o = W x with W the unnormalised Sylvester Hadamard matrix (±1 entries). Decode with Wᵀo / d.
- Action: a ∈ R^A, never clipped; the env draws k ~ Categorical(softmax(a / τ)). The good index is
  opt_a[h] in A and opt_b[h] in B (lock sequences drawn from `params.lock_key`, so vmapping over
  params gives different locks).
- Transition for h < H−1: in A/B with the good k → swap A↔B with prob p_switch, else stay; otherwise → C
  (absorbing). Reward 0 on every non-final step (`reward_mode="anti_at_failure"`, non-default, instead pays
  Bernoulli(p_anti_r)·anti_r at the failing step).
- Final step (h = H−1, terminated): reward 1 if alive and k is good, else anti_r with prob p_anti_r.
  `info["success"]` marks final steps that paid 1. There is no truncation.

`collect_offline` builds the paper's ε-greedy expert dataset in a memory-lean form: it stores the latent
path, which steps took a random action, and the final reward; `offline_transition` regenerates any
(s, a, r, s') inside jit from fold_in keys (a few MB per seed instead of ~1.3 GB at H = 50).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces


def obs_dim(horizon: int) -> int:
    return 2 ** math.ceil(math.log2(horizon + 4))


def hadamard(n: int) -> np.ndarray:
    """Sylvester Hadamard matrix of size n (a power of 2), entries ±1."""
    w = np.ones((1, 1), np.float32)
    while w.shape[0] < n:
        w = np.block([[w, w], [w, -w]])
    return w


@struct.dataclass
class LockParams(environment.EnvParams):
    lock_key: jax.Array = struct.field(default_factory=lambda: jax.random.PRNGKey(0))
    p_switch: float = 0.5
    p_anti_r: float = 0.5
    anti_r: float = 0.1
    noise: float = 0.1
    temperature: float = 0.1
    max_steps_in_episode: int = 50  # = horizon (used as the evaluation scan length; no truncation)


@struct.dataclass
class LockState(environment.EnvState):
    z: jax.Array
    h: jax.Array
    time: int


class CombinationLock(environment.Environment):
    """Continuous combination lock; `horizon`, `action_dim` and `reward_mode` are static (shapes)."""

    def __init__(self, horizon: int = 50, action_dim: int = 10, reward_mode: str = "terminal_only"):
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if action_dim < 2:
            raise ValueError(f"action_dim must be >= 2, got {action_dim}")
        if reward_mode not in ("terminal_only", "anti_at_failure"):
            raise ValueError(f"reward_mode must be 'terminal_only' or 'anti_at_failure', got {reward_mode!r}")
        self.horizon = horizon
        self.num_actions_ = action_dim
        self.reward_mode = reward_mode
        self.dim = obs_dim(horizon)
        self.w = jnp.asarray(hadamard(self.dim))

    @property
    def name(self) -> str:
        return "comblock"

    @property
    def default_params(self) -> LockParams:
        return LockParams(max_steps_in_episode=self.horizon)

    # ---- pieces shared with the offline collector -------------------------------------------------
    def lock(self, params: LockParams) -> jax.Array:
        """Good action indices, shape (2, H): row 0 for state A, row 1 for state B."""
        return jax.random.randint(params.lock_key, (2, self.horizon), 0, self.num_actions_)

    def good_index(self, params, z, h):
        lock = self.lock(params)
        return lock[
            jnp.clip(z, 0, 1), jnp.clip(h, 0, self.horizon - 1)
        ]  # dead state uses row B (as the code)

    def observe(self, key, z, h, params):
        noise = params.noise * jax.random.normal(key, (self.dim,))
        x = jnp.where(jnp.arange(self.dim) < self.horizon + 3, noise, 0.0)
        x = x.at[z].add(1.0).at[3 + h].add(1.0)
        return self.w @ x

    def decode(self, obs):
        """x = Wᵀ o / d (the noisy one-hot features)."""
        return obs @ self.w / self.dim

    def latent_step(self, key, z, h, action, params):
        """-> (next z, reward, success, alive-and-good) for one step from latent (z, h)."""
        k_key, switch_key, anti_key = jax.random.split(key, 3)
        k = jax.random.categorical(k_key, jnp.asarray(action, jnp.float32) / params.temperature)
        good = (z < 2) & (k == self.good_index(params, z, h))
        switch = jax.random.bernoulli(switch_key, params.p_switch)
        next_z = jnp.where(good, jnp.where(switch, 1 - z, z), 2)
        final = h == self.horizon - 1
        anti = params.anti_r * jax.random.bernoulli(anti_key, params.p_anti_r)
        success = final & good
        reward = jnp.where(final, jnp.where(good, 1.0, anti), 0.0)
        if self.reward_mode == "anti_at_failure":
            reward = jnp.where(~final & (z < 2) & ~good, anti, reward)
        return next_z, reward, success

    # ---- gymnax API --------------------------------------------------------------------------------
    def reset_env(self, key, params):
        z_key, obs_key = jax.random.split(key)
        z = jax.random.bernoulli(z_key).astype(jnp.int32)
        h = jnp.zeros((), jnp.int32)
        return self.observe(obs_key, z, h, params), LockState(z=z, h=h, time=0)

    def step_env(self, key, state, action, params):
        step_key, obs_key = jax.random.split(key)
        next_z, reward, success = self.latent_step(step_key, state.z, state.h, action, params)
        next_h = state.h + 1
        terminated = next_h >= self.horizon
        obs = self.observe(obs_key, next_z, next_h, params)
        new_state = LockState(z=next_z, h=next_h, time=state.time + 1)
        return obs, new_state, reward, terminated, {"success": success}

    def is_terminal(self, state, params):
        return state.h >= self.horizon

    def is_truncated(self, state, params):
        return jnp.zeros((), bool)

    def action_space(self, params=None):
        return spaces.Box(0.0, 1.0, (self.num_actions_,), jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (self.dim,), jnp.float32)

    @property
    def num_actions(self) -> int:
        return self.num_actions_


def make_params(env: CombinationLock, key: jax.Array, **overrides) -> LockParams:
    """Env params with the lock sequence drawn from `key` (vmappable over keys)."""
    return env.default_params.replace(lock_key=key, **overrides)


# ---- offline ε-greedy expert data ----------------------------------------------------------------------


@struct.dataclass
class OfflineData:
    """`episodes` ε-greedy expert episodes; every (s, a, r, s') is regenerated by `offline_transition`."""

    z: jax.Array  # (N, H+1) int8 latent path (z[:, h+1] is the state after step h)
    random_action: jax.Array  # (N, H) bool: step took a Uniform[0,1]^A action instead of the one-hot
    final_reward: jax.Array  # (N,) reward of the last step (all earlier rewards are 0)
    key: jax.Array  # base key: observations / random actions come from fold_in(fold_in(key, i), h)


def _episode_keys(key, i, h):
    k = jax.random.fold_in(jax.random.fold_in(key, i), h)
    return jax.random.split(k, 3)  # obs key, random-action key, env-step key


def behaviour_action(env: CombinationLock, params, data_key, i, h, z, random_action):
    _, act_key, _ = _episode_keys(data_key, i, h)
    expert = jax.nn.one_hot(env.good_index(params, z, h), env.num_actions_)
    return jnp.where(random_action, jax.random.uniform(act_key, (env.num_actions_,)), expert)


def collect_offline(env: CombinationLock, params, key, episodes: int = 50_000, eps: float | None = None):
    """ε-greedy expert episodes (ε = 1/H by default): with prob 1−ε the one-hot good action of the latent
    state (row B in the dead state), else a Uniform[0,1]^A action; the one-hot still goes through the env
    softmax. Jittable; memory O(N·H) bytes."""
    eps = 1.0 / env.horizon if eps is None else eps
    data_key, start_key, eps_key = jax.random.split(key, 3)
    idx = jnp.arange(episodes)
    z0 = jax.random.bernoulli(start_key, 0.5, (episodes,)).astype(jnp.int32)
    random_action = jax.random.bernoulli(eps_key, eps, (episodes, env.horizon))

    def one_step(z, h, rand, i):
        _, _, step_key = _episode_keys(data_key, i, h)
        action = behaviour_action(env, params, data_key, i, h, z, rand)
        return env.latent_step(step_key, z, h, action, params)

    def scan_step(z, inputs):
        h, rand = inputs
        next_z, reward, _ = jax.vmap(one_step, in_axes=(0, None, 0, 0))(z, h, rand, idx)
        return next_z, (next_z, reward)

    _, (zs, rewards) = jax.lax.scan(scan_step, z0, (jnp.arange(env.horizon), random_action.T))
    z = jnp.concatenate([z0[None], zs], 0).T.astype(jnp.int8)
    return OfflineData(z=z, random_action=random_action, final_reward=rewards[-1], key=data_key)


COUNTERFACTUAL_TAG = 1_000_003  # folded into a step's key: the branch draws share no key with the stored path


def offline_transition(env: CombinationLock, params, data: OfflineData, i, h, counterfactual: float = 0.0):
    """The stored transition of episode `i` at step `h`: (obs, action, reward, next_obs, done).

    `counterfactual` (a Python float, 0 = the data as collected): with this probability, drawn per (i, h)
    from fixed keys so the dataset stays fixed, the transition is replaced by a branch from the same state:
    a uniformly random one-hot action, with its next state and reward drawn from the lock. The ε-greedy
    collector never takes a *wrong one-hot* action in an on-lock state, so without branches a critic sees
    no such action there (its random actions are Uniform[0,1]^A vectors). The stored episode goes on along
    its own path; only this one transition branches."""
    z = data.z[i, h].astype(jnp.int32)
    next_z = data.z[i, h + 1].astype(jnp.int32)
    obs_key, _, _ = _episode_keys(data.key, i, h)
    next_obs_key, _, _ = _episode_keys(data.key, i, h + 1)
    obs = env.observe(obs_key, z, h, params)
    action = behaviour_action(env, params, data.key, i, h, z, data.random_action[i, h])
    done = h == env.horizon - 1
    reward = jnp.where(done, data.final_reward[i], 0.0)
    next_obs = env.observe(next_obs_key, next_z, h + 1, params)
    if counterfactual > 0.0:  # static branch: the published data's program is unchanged at 0
        step_key = jax.random.fold_in(jax.random.fold_in(data.key, i), h)
        keys = jax.random.split(jax.random.fold_in(step_key, COUNTERFACTUAL_TAG), 4)
        branch = jax.random.bernoulli(keys[0], counterfactual)
        choice = jax.random.randint(keys[1], (), 0, env.num_actions_)
        branch_action = jax.nn.one_hot(choice, env.num_actions_)
        branch_z, branch_reward, _ = env.latent_step(keys[2], z, h, branch_action, params)
        action = jnp.where(branch, branch_action, action)
        reward = jnp.where(branch, branch_reward, reward)
        next_obs = jnp.where(branch, env.observe(keys[3], branch_z, h + 1, params), next_obs)
    return obs, action, reward, next_obs, done
