"""`collect`: D4RL-style datasets (random, medium, expert, medium-replay, medium-expert, full-replay) from
purerl's own SAC (`purerl.agents.sac`), deterministic given the seed.

Pipeline for one environment:
1. Train SAC for `expert_steps` env steps (replay capacity = expert_steps, so nothing is overwritten), keeping
   the actor parameters every `checkpoint_every` env steps (checkpoint 0 = the initial policy) and evaluating
   each on `eval_episodes` episodes with sampled actions. Checkpoints, evaluations, reference returns and the
   replay buffer are saved to `<out>/<env>-expert-purerl-v0.ckpt.npz` and reused on the next call (resumable).
2. ref_max = mean return of the expert over `ref_episodes` episodes (sampled actions); ref_min = the same for
   the uniform-random policy.
3. medium = first checkpoint whose evaluation reaches ref_min + medium_fraction * (ref_max - ref_min)
   (deviation: D4RL's `f * ref_max` is meaningless for negative returns such as Pendulum's; both agree when
   ref_min = 0).
4. random / medium / expert: `num_envs` envs in a jitted scan with sampled actions until at least `size` rows
   of complete episodes exist; rows are then ordered episode-contiguously (by completion step, ties by env
   index), cut to exactly `size` rows, and the cut row gets timeouts = True.
5. medium-replay = the replay transitions collected before the medium checkpoint (incl. the random warm-up),
   full-replay = the first `size` replay transitions; both reordered episode-contiguously (complete episodes
   in completion order, then unfinished episode tails by env index, each tail's last row flagged as a
   timeout). medium-expert = stitch(medium, expert) as D4RL's stitch script (cap 2 * size).
6. Labels: terminals = terminated; timeouts = truncated & ~terminated (termination has precedence);
   next_observations = info["final_observation"] (pre-reset). Actions are in [-1, 1] (as D4RL; SAC's
   tanh-Gaussian, rescaled to the env's bounds by `envs.RescaleAction`); `infos/action_log_probs` holds
   log pi(a|s) for the rollout kinds (the replay buffer does not store it).
Files: `<out>/<env>-<kind>-purerl-v0.hdf5`, gzip; an existing file is kept (skipped), never replaced unless
`overwrite`.

`expert_algo="ppo"` (a PPO expert where SAC is too slow: on a 2-core CPU SAC's
256x256 updates run at ~25-70 per second, so D4RL's 1M-step SAC expert takes hours, while PPO's 64x64 nets
train at thousands of env steps per second): the kinds keep their definitions with PPO as the learner. PPO has
no replay buffer; its training data is the on-policy rollouts, so medium-replay / full-replay are those
rollouts *regenerated* (`Behaviour.policy_sequence`): `ppo_num_envs` envs step continuously (episodes run on
across updates, as in training) and act with the policy of each iteration (kept after every iteration, with
its observation statistics frozen at the iteration's start) for that iteration's `ppo_num_steps` steps. Same
policies, envs and schedule as the training run; only the random draws differ. Actions are PPO's Gaussian
samples clipped to the bounds (rescaled to [-1, 1]); `infos/action_log_probs` is the log-density of the
unclipped sample. The file metadata's `algorithm` says which learner made it.

Shipped experts (`purerl.data.shipped`, `--expert auto|shipped|train`): purerl carries the medium and expert
policies of some envs (`purerl/data/experts/<env>.npz` + `.json`, written by `export_expert` from a training
checkpoint), so collect makes random, medium, expert and medium-expert with no training: the same rollouts as
above, seeded by `--seed`, acting with the shipped policies (with the recipe's seed they are the files that
training gives). The replay kinds need the learner's data up to a checkpoint; this module *re-runs the stored
training recipe* (`collect_config` and `seed` in the JSON) for just the env steps they need, rather than
storing that data's source: for PPO the source is the policy of every iteration (~40 KB each, over a hundred
iterations for 200k rows), for SAC a replay buffer of up to `size` rows, either far beyond the 1 MB a shipped
file may take, while the training is deterministic on one machine and costs only the steps needed (the
medium checkpoint is usually early). The retrained medium policy is compared bit for bit with the shipped one;
metadata `replay_reproduced` records the outcome (another CPU or XLA version may round differently: the replay
kinds then follow the same recipe but are not the shipped expert's own run).
An expert trained elsewhere (e.g. PPO at brax's published settings on an accelerator) has no recipe, so it
gives random, medium, expert and medium-expert only. Its JSON names its acting network in `ppo_network`
(`PPO_NETWORK_FIELDS`: brax's scheme is a 32x4 SiLU actor with a state-dependent std and tanh-squashed
samples), and its file holds only the actor and the observation statistics.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

import purerl
from purerl import envs, flags
from purerl.agent import check_choices
from purerl.agents import ppo, sac
from purerl.data import shipped
from purerl.data.cache import KINDS, Kind, dataset_path, default_cache_dir
from purerl.data.layout import read_hdf5, write_hdf5
from purerl.data.summary import stats_path, summarize, write_stats
from purerl.envs.brax import BraxBackend
from purerl.evaluation import evaluate_policy
from purerl.rollout import training_obs_stats

_KIND_SALT = {kind: i + 1 for i, kind in enumerate(KINDS)}
_EVAL_SALT, _REF_SALT, _REPLAY_SALT, _TRAIN_SALT = 101, 102, 103, 104


@dataclass(frozen=True)
class CollectConfig:
    env: str = "Pendulum-v1"
    """environment name (continuous actions; `purerl list`)"""
    kinds: tuple[Kind, ...] = ("medium", "medium-replay", "medium-expert")
    """dataset kinds to write: random, medium, expert, medium-replay, medium-expert, full-replay"""
    size: int = 1_000_000
    """rows per dataset (D4RL: 1M; use e.g. 20_000 on a CPU); medium-expert has up to 2 * size"""
    out: str = ""
    """output directory (default: $PURERL_DATA or ~/.cache/purerl/datasets)"""
    seed: int = 0
    """collection seed: same config + seed -> identical files"""
    expert_steps: int = 1_000_000
    """env steps of expert (SAC) training (Pendulum-v1: 20_000 is plenty)"""
    checkpoint_every: int = 10_000
    """env steps between policy checkpoints (a multiple of sac_num_envs * sac_rollout_steps)"""
    medium_fraction: float = 1.0 / 3.0
    """medium = first checkpoint reaching this fraction of the random-to-expert return range"""
    num_envs: int = 16
    """parallel envs for dataset rollouts"""
    episode_length: int = 0
    """episode time limit; 0 keeps the env's own (200 for Pendulum-v1, 1000 for brax)"""
    brax_backend: BraxBackend = "generalized"
    """physics backend for brax envs"""
    eval_episodes: int = 10
    """episodes per checkpoint evaluation"""
    ref_episodes: int = 100
    """episodes for the reference returns (expert and random)"""
    sac_num_envs: int = 1
    """SAC expert: parallel envs"""
    sac_rollout_steps: int = 500
    """SAC expert: env steps per jitted iteration (checkpoint_every must be a multiple of num_envs * this)"""
    sac_learning_starts: int = 1_000
    """SAC expert: random warm-up transitions"""
    sac_hidden: tuple[int, ...] = (256, 256)
    """SAC expert: hidden widths"""
    expert_algo: Literal["sac", "ppo"] = "sac"
    """learner of the expert and medium policies: "sac" (D4RL's) or "ppo" (far cheaper per env step on a CPU;
    medium-replay / full-replay are then its on-policy data, regenerated: see the module docstring)"""
    ppo_num_envs: int = 16
    """PPO expert: parallel envs"""
    ppo_num_steps: int = 128
    """PPO expert: steps per env per iteration (checkpoint_every must be a multiple of ppo_num_envs * this)"""
    expert: Literal["auto", "shipped", "train"] = "auto"
    """where the expert and medium policies come from: "shipped" = the expert that ships with purerl for
    this env (no training; `--seed` seeds the collection only), "train" = train one with the flags above,
    "auto" = the shipped one when there is one and the command names no training flag (in Python: no
    training field differs from both its default and the shipped recipe), else train"""
    export_expert: str = ""
    """write the expert trained with these flags (its checkpoint in --out) as a shipped-expert file pair
    `<dir>/<env>.npz` + `<env>.json` into this directory, instead of collecting"""
    overwrite: bool = False
    """replace existing dataset files and a mismatching expert checkpoint"""
    progress: bool = True
    """print progress lines"""


def validate(config: CollectConfig) -> None:
    """Raise a ValueError for a config that cannot work, before anything compiles (the config that collect
    runs: with a shipped expert, its training recipe in place of the training flags)."""
    envs.check_name(config.env)
    check_choices(config)
    if config.export_expert and config.expert == "shipped":
        raise ValueError("--export-expert writes the expert trained with the flags given; use it with "
                         "--expert train, not shipped")
    config, stem = resolve_expert(config)
    trained_elsewhere = stem is not None and "collect_config" not in shipped.load_meta(stem)
    replay = [kind for kind in config.kinds if kind in ("medium-replay", "full-replay")]
    if trained_elsewhere and replay:
        raise ValueError(f"the shipped {config.env} expert was trained elsewhere and has no training recipe: "
                         f"it gives random, medium, expert and medium-expert, not {', '.join(replay)} (leave "
                         "them out of --kinds, or pass --expert train)")
    for name in ("size", "expert_steps", "checkpoint_every", "num_envs", "eval_episodes", "ref_episodes",
                 "sac_num_envs", "sac_rollout_steps", "ppo_num_envs", "ppo_num_steps"):
        if getattr(config, name) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(config, name)!r}")
    if not 0.0 < config.medium_fraction < 1.0:
        raise ValueError(f"medium_fraction must lie in (0, 1), got {config.medium_fraction}")
    if config.episode_length < 0:
        raise ValueError(f"episode_length must be >= 0, got {config.episode_length}")
    env, params = envs.make(config.env, **_env_kwargs(config))
    if envs.is_discrete(env, params):
        raise ValueError(f"env {config.env!r} has discrete actions; offline datasets need continuous actions")
    if not trained_elsewhere:  # the training fields (of the flags, or of a shipped recipe)
        validate_training(config)


def validate_training(config: CollectConfig) -> None:
    names = (("sac_num_envs", "sac_rollout_steps") if config.expert_algo == "sac"
             else ("ppo_num_envs", "ppo_num_steps"))
    per_iteration = getattr(config, names[0]) * getattr(config, names[1])
    if config.checkpoint_every % per_iteration:
        raise ValueError(f"checkpoint_every = {config.checkpoint_every} is not a multiple of {names[0]} * "
                         f"{names[1]} = {per_iteration}")
    if config.expert_steps < config.checkpoint_every:
        raise ValueError(f"expert_steps = {config.expert_steps} is less than checkpoint_every = "
                         f"{config.checkpoint_every}")
    if config.expert_algo == "ppo":
        ppo.validate(ppo_config(config))  # e.g. a batch that the 32 minibatches do not divide


def _env_kwargs(config: CollectConfig) -> dict:
    kwargs = {}
    if config.episode_length:
        kwargs["max_steps_in_episode"] = config.episode_length
    if config.env in envs.BRAX_ENVS:
        kwargs["backend"] = config.brax_backend
    return kwargs


def _log(config: CollectConfig, message: str) -> None:
    if config.progress:
        print(f"[collect {config.env}] {message}", file=sys.stderr, flush=True)


# --- behaviour policies and rollouts -------------------------------------------------------------------

class Behaviour:
    """Rollout machinery for one env (actions in [-1, 1], rescaled to the env's bounds).

    `act(params, key, obs) -> (action, log_prob)` is SAC's tanh-Gaussian sample; `act_random` is uniform.
    Jitted functions are cached per policy so repeated rollouts compile once."""

    def __init__(self, env, env_params, act=None, num_envs: int = 16):
        self.env = envs.RescaleAction(env)
        self.env_params = env_params
        self.act_dim = envs.action_dim(env, env_params)
        self.num_envs = num_envs
        self.act = act
        self._fns: dict = {}

    def act_random(self, params, key, obs):
        del params, obs
        action = jax.random.uniform(key, (self.act_dim,), minval=-1.0, maxval=1.0)
        return action, jnp.asarray(-self.act_dim * np.log(2.0), jnp.float32)

    def _start(self, key, num_envs: int):
        return jax.vmap(self.env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), self.env_params)

    def _step(self, act, params, carry, key):
        """One step of all envs (auto-reset) acting with `act(params, .)`: the labelled D4RL row."""
        env, env_params = self.env, self.env_params
        obs, state = carry
        num_envs = obs.shape[0]
        act_key, env_key = jax.random.split(key)
        act_keys = jax.random.split(act_key, num_envs)
        action, log_prob = jax.vmap(act, in_axes=(None, 0, 0))(params, act_keys, obs)
        action = jnp.clip(action, -1.0, 1.0)
        next_obs, state, reward, terminated, truncated, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(env_key, num_envs), state, action, env_params
        )
        row = {
            "observations": obs, "actions": action, "rewards": reward,
            "next_observations": info["final_observation"], "terminals": terminated,
            "timeouts": truncated & ~terminated, "infos/action_log_probs": log_prob,
        }
        return (next_obs, state), row

    def _rollout_fns(self, act):
        if ("rollout", act) in self._fns:
            return self._fns[("rollout", act)]
        chunk_len = int(self.env_params.max_steps_in_episode)
        start = jax.jit(lambda key: self._start(key, self.num_envs))

        @jax.jit
        def chunk(params, obs, state, key):
            step = lambda carry, k: self._step(act, params, carry, k)  # noqa: E731
            (obs, state), rows = jax.lax.scan(step, (obs, state), jax.random.split(key, chunk_len))
            return obs, state, rows

        self._fns[("rollout", act)] = (start, chunk)
        return start, chunk

    def policy_sequence(self, act, policies, steps_per_policy: int, num_envs: int,
                        key) -> dict[str, np.ndarray]:
        """The data-collection schedule of an on-policy learner, regenerated: `num_envs` envs step
        continuously (episodes run on across policy changes) and act with `policies[i]` (a pytree with a
        leading axis) for steps i * steps_per_policy ... (i + 1) * steps_per_policy - 1. Rows in replay
        layout: row j is step j // num_envs of env j % num_envs."""
        if ("sequence", act, steps_per_policy, num_envs) not in self._fns:
            def run(policies, key):
                start_key, run_key = jax.random.split(key)
                carry = self._start(start_key, num_envs)

                def block(carry, inputs):
                    params, block_key = inputs
                    step = lambda c, k: self._step(act, params, c, k)  # noqa: E731
                    return jax.lax.scan(step, carry, jax.random.split(block_key, steps_per_policy))

                n = jax.tree.leaves(policies)[0].shape[0]
                _, rows = jax.lax.scan(block, carry, (policies, jax.random.split(run_key, n)))
                return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[3:]), rows)

            self._fns[("sequence", act, steps_per_policy, num_envs)] = jax.jit(run)
        return jax.device_get(self._fns[("sequence", act, steps_per_policy, num_envs)](policies, key))

    def rollout(self, act, params, key, size: int) -> dict[str, np.ndarray]:
        """Exactly `size` episode-contiguous rows of complete episodes; the cut last row is a timeout."""
        start, chunk = self._rollout_fns(act)
        start_key, run_key = jax.random.split(key)
        obs, state = start(start_key)
        parts, complete, i = [], 0, 0
        while complete < size:
            obs, state, rows = chunk(params, obs, state, jax.random.fold_in(run_key, i))
            parts.append(jax.device_get(rows))
            i += 1
            done = np.concatenate([p["terminals"] | p["timeouts"] for p in parts])
            complete = int(sum(np.nonzero(done[:, e])[0].max() + 1 for e in range(self.num_envs)
                               if done[:, e].any()))
        rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        t_idx, e_idx = episode_order(rows["terminals"] | rows["timeouts"])
        data = {k: np.asarray(v[t_idx[:size], e_idx[:size]]) for k, v in rows.items()}
        if not data["terminals"][-1]:
            data["timeouts"][-1] = True
        return data

    def evaluate(self, act, params, key, episodes: int) -> float:
        """Mean return of `episodes` fresh episodes (sampled actions)."""
        if ("eval", act, episodes) not in self._fns:
            self._fns[("eval", act, episodes)] = jax.jit(lambda p, k: evaluate_policy(
                self.env, self.env_params, lambda kk, o: act(p, kk, o)[0], k, episodes))
        return float(jnp.mean(self._fns[("eval", act, episodes)](params, key)))


def episode_order(done: np.ndarray, tails: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(time, env) indices of the rows of `done` (shape (T, E)) in episode-contiguous order.

    Complete episodes come in completion order (ties by env index); with `tails`, the unfinished last episode
    of each env follows (by env index), so every row appears exactly once."""
    episodes, open_tails = [], []
    for e in range(done.shape[1]):
        start = 0
        for t in np.nonzero(done[:, e])[0]:
            episodes.append((t, e, start))
            start = t + 1
        if start < done.shape[0]:
            open_tails.append((done.shape[0] - 1, e, start))
    episodes.sort()
    if tails:
        episodes += open_tails
    ts = [np.arange(s, t + 1) for t, e, s in episodes]
    es = [np.full(t + 1 - s, e) for t, e, s in episodes]
    if not ts:
        return np.zeros(0, int), np.zeros(0, int)
    return np.concatenate(ts), np.concatenate(es)


def replay_dataset(buffer: dict[str, np.ndarray], num_envs: int, rows: int) -> dict[str, np.ndarray]:
    """The first `rows` replay transitions (a multiple of num_envs; buffer row i = step i // E, env i % E),
    reordered episode-contiguously; unfinished episode tails end with timeouts = True."""
    steps = rows // num_envs
    grid = {k: v[: steps * num_envs].reshape((steps, num_envs) + v.shape[1:]) for k, v in buffer.items()}
    t_idx, e_idx = episode_order(grid["terminals"] | grid["timeouts"], tails=True)
    data = {k: np.asarray(v[t_idx, e_idx]) for k, v in grid.items()}
    # flag the last row of each unfinished tail (a row whose successor is not the next step of the same env)
    last = np.ones(len(t_idx), bool)
    last[:-1] = (e_idx[1:] != e_idx[:-1]) | (t_idx[1:] != t_idx[:-1] + 1)
    data["timeouts"] = data["timeouts"] | (last & ~data["terminals"])
    return data


def stitch(first: dict[str, np.ndarray], second: dict[str, np.ndarray], cap: int) -> dict[str, np.ndarray]:
    """D4RL's stitch_dataset: cut `first` after its last terminal/timeout row, append `second`, cap rows."""
    done = np.asarray(first["terminals"], bool) | np.asarray(first["timeouts"], bool)
    cut = int(np.nonzero(done)[0].max()) + 1 if done.any() else 0
    keys = [k for k in first if k in second]
    return {k: np.concatenate([first[k][:cut], second[k]])[:cap] for k in keys}


# --- expert training ------------------------------------------------------------------------------------

def _fingerprint(config: CollectConfig) -> str:
    keys = ("env", "seed", "expert_steps", "checkpoint_every", "episode_length", "brax_backend",
            "eval_episodes", "ref_episodes", "sac_num_envs", "sac_rollout_steps", "sac_learning_starts",
            "sac_hidden")
    if config.expert_algo != "sac":  # SAC fingerprints stay as they were, so existing caches remain valid
        keys += ("expert_algo", "ppo_num_envs", "ppo_num_steps")
    return repr({k: getattr(config, k) for k in keys})


def sac_config(config: CollectConfig):
    return sac.Config(
        env=config.env, total_timesteps=config.expert_steps, num_envs=config.sac_num_envs,
        rollout_steps=config.sac_rollout_steps, buffer_size=config.expert_steps,
        learning_starts=config.sac_learning_starts, hidden=config.sac_hidden,
        max_episode_steps=config.episode_length, brax_backend=config.brax_backend,
    )


def ppo_config(config: CollectConfig):
    """PPO for MuJoCo-style control (the PPO paper's settings, 64x64 tanh nets, observation normalisation)."""
    return ppo.Config(
        env=config.env, total_timesteps=config.expert_steps, num_envs=config.ppo_num_envs,
        num_steps=config.ppo_num_steps, update_epochs=10, num_minibatches=32, lr=3e-4, anneal_lr=False,
        gamma=0.99, gae_lambda=0.95, clip_eps=0.2, clip_value=True, ent_coef=0.0, hidden=(64, 64),
        activation="tanh", normalize_obs=True, max_episode_steps=config.episode_length,
        brax_backend=config.brax_backend,
    )


@dataclass(frozen=True)
class ExpertLearner:
    """What collect needs from the expert's learner. `act(policy, key, obs) -> (action in [-1, 1], log_prob)`
    acts with a `snapshot(state)` of the learner; `on_policy` learners keep one snapshot per iteration (their
    training data is regenerated from that sequence), off-policy ones keep their replay buffer."""

    agent: object
    act: object
    snapshot: object
    on_policy: bool


# The PPO Config fields that define an expert's acting network: a shipped expert trained elsewhere (e.g. with
# brax's PPO settings: a small actor with a state-dependent std, its samples squashed by tanh) names them in
# its JSON's `ppo_network`.
PPO_NETWORK_FIELDS = ("hidden", "activation", "log_std_init", "state_dependent_std", "action_squash",
                      "normalize_obs")


def expert_learner(config: CollectConfig, ppo_network: dict | None = None) -> ExpertLearner:
    """The expert's learner: SAC or PPO with collect's recipe, or, given `ppo_network` (a shipped expert's
    PPO_NETWORK_FIELDS), PPO with that network. Such an expert's snapshots hold only what acting reads (the
    actor and the observation statistics): its critic is not shipped."""
    env, env_params = envs.make(config.env, **_env_kwargs(config))
    if config.expert_algo == "sac":
        sac_cfg = sac_config(config)
        policy = sac.gaussian_policy(sac_cfg, envs.action_dim(env, env_params))
        return ExpertLearner(sac.make_agent(sac_cfg), lambda p, k, o: policy.sample(p, o, k),
                             lambda state: state.learner.actor_params, on_policy=False)

    ppo_cfg = ppo_config(config)
    if ppo_network:
        unknown = sorted(set(ppo_network) - set(PPO_NETWORK_FIELDS))
        if unknown:
            raise ValueError(f"the expert's ppo_network names fields that are not the network's: {unknown}")
        ppo_cfg = flags.from_dict(ppo.Config, {**dataclasses.asdict(ppo_cfg), **ppo_network})
    train_env, train_params = ppo.make_env(ppo_cfg)
    network = ppo.make_network(ppo_cfg, train_env, train_params)
    space = env.action_space(env_params)
    low, high = jnp.asarray(space.low, jnp.float32), jnp.asarray(space.high, jnp.float32)

    def act(policy, key, obs):
        # as in training: observations normalised with the learner's statistics, the Gaussian sample clipped
        # to the bounds by the env (or squashed by tanh); log_prob is that of the raw sample
        pi = network.apply(policy["params"], policy["obs_stats"].normalize(obs), method="policy")
        sample = pi.sample(seed=key)
        if ppo_cfg.action_squash == "tanh":
            action = jnp.tanh(sample)
        else:
            action = 2.0 * (jnp.clip(sample, low, high) - low) / (high - low) - 1.0
        return action, pi.log_prob(sample)

    def snapshot(state):
        params = state.params
        if ppo_network:  # the actor alone: brax's PPO critic (256x5) would take 1 MB per policy
            params = {"params": {"actor": state.params["params"]["actor"]}}
        return {"params": params, "obs_stats": training_obs_stats(state)}

    return ExpertLearner(ppo.make_agent(ppo_cfg), act, snapshot, on_policy=True)


def run_training(config: CollectConfig, learner: ExpertLearner, seed: int, num_chunks: int):
    """Train the expert's learner for `num_chunks` * checkpoint_every env steps from `seed`: (final state,
    policy snapshot after every chunk (index 0 = the initial policy), their env steps, the per-iteration
    policy sequence of an on-policy learner (else None), seconds). Deterministic given the seed on one
    machine."""
    agent = learner.agent
    state = jax.jit(agent.init)(jax.random.fold_in(jax.random.PRNGKey(seed), _TRAIN_SALT))
    per_chunk = config.checkpoint_every // agent.steps_per_iteration

    def iteration(state, _):
        policy = learner.snapshot(state) if learner.on_policy else None  # the policy this iteration acts with
        state, metrics = agent.update(state)
        return state, (metrics["episode_return"], policy)

    run_chunk = jax.jit(lambda s: jax.lax.scan(iteration, s, None, length=per_chunk))
    checkpoints, steps, sequence = [jax.device_get(learner.snapshot(state))], [0], []
    t0 = time.perf_counter()
    for i in range(num_chunks):
        state, (returns, policies) = run_chunk(state)
        checkpoints.append(jax.device_get(learner.snapshot(state)))
        sequence.append(jax.device_get(policies))
        steps.append((i + 1) * config.checkpoint_every)
        ret = float(np.nanmean(np.asarray(returns)))
        _log(config, f"expert {config.expert_algo.upper()} {i + 1}/{num_chunks} ({steps[-1]} env steps, "
                     f"train return {ret:.1f}, {time.perf_counter() - t0:.0f} s)")
    sequence = jax.tree.map(lambda *xs: np.concatenate(xs), *sequence) if learner.on_policy else None
    return state, checkpoints, steps, sequence, time.perf_counter() - t0


def replay_buffer(state) -> dict[str, np.ndarray]:
    """A SAC run's replay transitions so far, in the D4RL keys (buffer row i = step i // E of env i % E)."""
    data = jax.device_get(state.buffer.data)
    n = int(state.env_steps)
    return {
        "observations": data.obs[:n], "actions": data.action[:n], "rewards": data.reward[:n],
        "next_observations": data.next_obs[:n], "terminals": data.terminated[:n],
        "timeouts": data.truncated[:n] & ~data.terminated[:n],
    }


def train_expert(config: CollectConfig, out: str) -> dict:
    """Train (or reload) the expert: checkpoints (list of policy snapshots), evals, refs, and the training
    data's source (SAC: the replay buffer; PPO: the per-iteration policy sequence)."""
    path = os.path.join(out, f"{config.env}-expert-purerl-v0.ckpt.npz")
    learner = expert_learner(config)
    agent = learner.agent
    env, env_params = envs.make(config.env, **_env_kwargs(config))
    behaviour = Behaviour(env, env_params, learner.act, config.num_envs)
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), _TRAIN_SALT)
    buffer_keys = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
    if os.path.exists(path):
        treedef = jax.tree.structure(jax.eval_shape(learner.snapshot, jax.eval_shape(agent.init, key)))
        saved = np.load(path, allow_pickle=False)
        if str(saved["fingerprint"]) == _fingerprint(config):
            n = len(saved["evals"])
            leaves = [saved[f"leaf{i}"] for i in range(treedef.num_leaves)]
            checkpoints = [jax.tree.unflatten(treedef, [leaf[j] for leaf in leaves]) for j in range(n)]
            _log(config, f"reusing the expert checkpoint {path}")
            expert = {"checkpoints": checkpoints, "evals": saved["evals"], "ref_min": float(saved["ref_min"]),
                      "ref_max": float(saved["ref_max"]), "steps": saved["steps"], "path": path,
                      "behaviour": behaviour, "train_s": float(saved["train_s"])}
            if learner.on_policy:
                expert["sequence"] = jax.tree.unflatten(
                    treedef, [saved[f"sequence{i}"] for i in range(treedef.num_leaves)])
            else:
                expert["buffer"] = {k: saved["buffer_" + k] for k in buffer_keys}
            return expert
        if not config.overwrite:
            raise ValueError(f"expert checkpoint {path!r} was made with another config; "
                             "pass --overwrite to retrain")
    state, checkpoints, steps, sequence, train_s = run_training(
        config, learner, config.seed, config.expert_steps // config.checkpoint_every)
    eval_key = jax.random.fold_in(jax.random.PRNGKey(config.seed), _EVAL_SALT)
    evals = np.array([
        behaviour.evaluate(behaviour.act, p, jax.random.fold_in(eval_key, j), config.eval_episodes)
        for j, p in enumerate(checkpoints)])
    ref_key = jax.random.fold_in(jax.random.PRNGKey(config.seed), _REF_SALT)
    ref_max = behaviour.evaluate(behaviour.act, checkpoints[-1], jax.random.fold_in(ref_key, 0),
                                 config.ref_episodes)
    ref_min = behaviour.evaluate(behaviour.act_random, checkpoints[-1], jax.random.fold_in(ref_key, 1),
                                 config.ref_episodes)
    expert = {"checkpoints": checkpoints, "evals": evals, "ref_min": ref_min, "ref_max": ref_max,
              "steps": np.array(steps), "path": path, "behaviour": behaviour, "train_s": train_s}
    if learner.on_policy:
        expert["sequence"] = sequence
        extra = {f"sequence{i}": leaf for i, leaf in enumerate(jax.tree.leaves(expert["sequence"]))}
    else:
        expert["buffer"] = replay_buffer(state)
        extra = {"buffer_" + k: v for k, v in expert["buffer"].items()}
    leaves = [np.stack(x) for x in zip(*[jax.tree.leaves(p) for p in checkpoints], strict=True)]
    os.makedirs(out, exist_ok=True)
    np.savez(path + ".tmp.npz", fingerprint=_fingerprint(config), evals=evals, ref_min=ref_min,
             ref_max=ref_max, steps=np.array(steps), train_s=train_s,
             **{f"leaf{i}": leaf for i, leaf in enumerate(leaves)}, **extra)
    os.replace(path + ".tmp.npz", path)
    _log(config, f"expert: trained in {train_s:.0f} s, evals {np.round(evals, 1).tolist()}, "
                 f"ref_min {ref_min:.1f}, ref_max {ref_max:.1f}")
    return expert


def training_data(config: CollectConfig, expert: dict, rows: int) -> dict[str, np.ndarray]:
    """The expert run's first `rows` training transitions, episode-contiguous (`replay_dataset`). SAC: its
    replay buffer. PPO: its on-policy data, regenerated with the same policy per iteration, envs and schedule
    (`Behaviour.policy_sequence`; the random draws differ from the training run's)."""
    if "buffer" in expert:
        rows = min(rows, len(expert["buffer"]["observations"]))
        return replay_dataset(expert["buffer"], config.sac_num_envs, rows - rows % config.sac_num_envs)
    per_iteration = config.ppo_num_envs * config.ppo_num_steps
    iterations = min(-(-rows // per_iteration), len(jax.tree.leaves(expert["sequence"])[0]))
    policies = jax.tree.map(lambda x: x[:iterations], expert["sequence"])
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), _REPLAY_SALT)
    buffer = expert["behaviour"].policy_sequence(expert["behaviour"].act, policies, config.ppo_num_steps,
                                                 config.ppo_num_envs, key)
    rows = min(rows, iterations * per_iteration)
    return replay_dataset(buffer, config.ppo_num_envs, rows - rows % config.ppo_num_envs)


def medium_index(evals: np.ndarray, ref_min: float, ref_max: float, fraction: float) -> int:
    """First checkpoint (>= 1) whose evaluation is >= ref_min + fraction * (ref_max - ref_min); else last"""
    threshold = ref_min + fraction * (ref_max - ref_min)
    hits = [j for j in range(1, len(evals)) if evals[j] >= threshold]
    return hits[0] if hits else len(evals) - 1


# --- shipped experts -------------------------------------------------------------------------------------

RECIPE_FIELDS = ("expert_algo", "expert_steps", "checkpoint_every", "episode_length", "brax_backend",
                 "eval_episodes", "ref_episodes", "medium_fraction", "sac_num_envs", "sac_rollout_steps",
                 "sac_learning_starts", "sac_hidden", "ppo_num_envs", "ppo_num_steps")
"""The collect fields that fix the expert and medium policies: a shipped expert's training recipe."""


def resolve_expert(config: CollectConfig) -> tuple[CollectConfig, str | None]:
    """(the config collect runs, the stem of the shipped expert it uses or None to train). With a shipped
    expert the recipe's values replace the training flags; a training flag set to another value than its
    default and the recipe's asks for another expert: "auto" then trains, "shipped" refuses."""
    if config.expert == "train" or config.export_expert:
        return config, None
    stem = shipped.shipped_expert(config.env)
    if stem is None:
        if config.expert == "shipped":
            have = ", ".join(shipped.shipped_envs()) or "none"
            raise ValueError(f"no shipped expert for env {config.env!r} (shipped: {have}); pass --expert "
                             "train to train one")
        return config, None
    meta = shipped.load_meta(stem)
    # an expert trained elsewhere has no recipe, but fixes its learner and the physics it was trained in
    recipe = meta.get("collect_config") or {"expert_algo": meta["learner"],
                                            **({"brax_backend": meta["brax_backend"]} if meta["brax_backend"]
                                               else {})}
    defaults = CollectConfig()
    for name in RECIPE_FIELDS:
        value, default = getattr(config, name), getattr(defaults, name)
        wanted = tuple(recipe[name]) if isinstance(recipe.get(name), list) else recipe.get(name, default)
        if value != default and value != wanted:
            if config.expert == "shipped":
                raise ValueError(f"the shipped {config.env} expert was trained with {name} = {wanted!r}, not "
                                 f"{value!r}; leave --{name.replace('_', '-')} out or pass --expert train")
            return config, None
    kept = {name: tuple(value) if isinstance(value, list) else value
            for name, value in recipe.items() if name in RECIPE_FIELDS}
    return dataclasses.replace(config, **kept), stem


def load_shipped(config: CollectConfig, stem: str) -> dict:
    """The shipped expert as `train_expert` returns a trained one: its medium and expert policies (in
    `policies`), checkpoint evaluations and steps, reference returns; the training data's source is made on
    demand (`recipe_training_data`)."""
    arrays, meta = shipped.load_expert(stem)
    learner = expert_learner(config, meta.get("ppo_network"))
    key = jax.random.PRNGKey(0)
    template = jax.eval_shape(learner.snapshot, jax.eval_shape(learner.agent.init, key))
    policies = {name: shipped.unflatten(template, arrays.get(name, {}), f"{stem}.npz ({name})")
                for name in ("medium", "expert")}
    env, env_params = envs.make(config.env, **_env_kwargs(config))
    _log(config, f"using the shipped expert {stem}.npz ({meta['learner']}, "
                 f"{meta['policies']['expert']['step']} env steps of training)")
    return {"policies": policies, "evals": np.asarray(meta["checkpoint_evals"]), "ref_min": meta["ref_min"],
            "ref_max": meta["ref_max"], "steps": np.asarray(meta["checkpoint_steps"]),
            "medium_checkpoint": meta["policies"]["medium"]["checkpoint"], "path": stem + ".npz",
            "behaviour": Behaviour(env, env_params, learner.act, config.num_envs), "train_s": 0.0,
            "learner": learner, "meta": meta}


def recipe_training_data(config: CollectConfig, expert: dict, rows: int) -> None:
    """Re-run the shipped expert's training recipe far enough for `rows` training transitions (and at least up
    to the medium checkpoint) and put its training data's source into `expert`, as `train_expert` keeps it.
    `expert["reproduced"]` says whether the retrained medium policy is bit-identical to the shipped one."""
    meta, m = expert["meta"], expert["medium_checkpoint"]
    if "collect_config" not in meta:
        raise ValueError(f"the shipped {config.env} expert ({meta.get('source', 'trained elsewhere')}) has "
                         "no training recipe; medium-replay and full-replay need --expert train")
    learner = expert["learner"]
    num_chunks = min(max(m, -(-rows // config.checkpoint_every)), len(expert["steps"]) - 1)
    _log(config, f"re-running the expert's training recipe for {num_chunks * config.checkpoint_every} env "
                 "steps (the replay kinds' source)")
    state, checkpoints, _, sequence, train_s = run_training(config, learner, meta["seed"], num_chunks)
    shipped_leaves = jax.tree.leaves(expert["policies"]["medium"])
    expert["reproduced"] = all(np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(checkpoints[m]), shipped_leaves, strict=True))
    if not expert["reproduced"]:
        _log(config, "warning: the retrained medium policy differs from the shipped one (another CPU or XLA "
                     "version); the replay kinds follow the same recipe but are not the shipped expert's own")
    expert["train_s"] = train_s
    if learner.on_policy:
        expert["sequence"] = sequence
    else:
        expert["buffer"] = replay_buffer(state)


def _command(config: CollectConfig) -> str:
    """The `purerl collect` command line that trains this config's expert."""
    defaults = CollectConfig()
    words = ["purerl", "collect", "--env", config.env, "--expert", "train", "--seed", str(config.seed)]
    for name in RECIPE_FIELDS:
        value = getattr(config, name)
        if value != getattr(defaults, name):
            values = value if isinstance(value, tuple) else [value]
            words += [f"--{name.replace('_', '-')}", *map(str, values)]
    return " ".join(words)


def export_expert(config: CollectConfig, out: str, dest: str) -> tuple[str, str]:
    """Write the expert trained with `config` (its checkpoint `<out>/<env>-expert-purerl-v0.ckpt.npz`) as a
    shipped-expert file pair `<dest>/<env>.npz` + `.json` (`purerl.data.shipped`): the medium and expert
    policies, the recipe, evaluations and reference returns."""
    path = os.path.join(out, f"{config.env}-expert-purerl-v0.ckpt.npz")
    if not os.path.exists(path):
        raise ValueError(f"no expert checkpoint {path!r}; train it first with the same flags (purerl collect "
                         "--expert train ...) or point --out at its directory")
    expert = train_expert(dataclasses.replace(config, overwrite=False), out)
    m = medium_index(expert["evals"], expert["ref_min"], expert["ref_max"], config.medium_fraction)
    last = len(expert["evals"]) - 1
    network = ({"hidden": list(config.sac_hidden)} if config.expert_algo == "sac" else
               {"hidden": list(ppo_config(config).hidden), "activation": ppo_config(config).activation})
    meta = {
        "env": config.env, "backend": "brax" if config.env in envs.BRAX_ENVS else "gymnax",
        "brax_backend": config.brax_backend if config.env in envs.BRAX_ENVS else "",
        "learner": config.expert_algo, "network": network, "source": "purerl collect",
        "command": _command(config), "collect_config": {k: getattr(config, k) for k in RECIPE_FIELDS},
        "seed": config.seed,
        "policies": {name: {"checkpoint": j, "step": int(expert["steps"][j]),
                            "eval_return": float(expert["evals"][j])}
                     for name, j in (("medium", m), ("expert", last))},
        "checkpoint_steps": [int(x) for x in expert["steps"]],
        "checkpoint_evals": [float(x) for x in expert["evals"]],
        "ref_min": float(expert["ref_min"]), "ref_max": float(expert["ref_max"]),
        "train_s": round(float(expert["train_s"]), 1),
        "purerl_version": purerl.__version__, "git_commit": _git_hash(),
    }
    checkpoints = expert["checkpoints"]
    return shipped.save_expert(os.path.join(dest, config.env), {"medium": checkpoints[m],
                                                                 "expert": checkpoints[last]}, meta)


# --- the whole pipeline ---------------------------------------------------------------------------------

def _git_hash() -> str:
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def build(config: CollectConfig, out: str | None = None,
          shipped_stem: str | None = None) -> tuple[dict, dict]:
    """(kind -> dataset dict, shared metadata) for `config.kinds`, without writing anything; the expert is the
    shipped one at `shipped_stem` (`resolve_expert`) or else trained (or reloaded) from `config`."""
    out = out or config.out or default_cache_dir()
    if shipped_stem:
        expert = load_shipped(config, shipped_stem)
    else:
        expert = train_expert(config, out)  # also for "random": the reference returns come from this run
    behaviour = expert["behaviour"]
    ref_min, ref_max = expert["ref_min"], expert["ref_max"]
    m = medium_index(expert["evals"], ref_min, ref_max, config.medium_fraction)
    steps = expert["steps"]
    policies = expert.get("policies") or {"medium": expert["checkpoints"][m],
                                          "expert": expert["checkpoints"][-1]}
    replay_rows = max([int(steps[m])] * ("medium-replay" in config.kinds) + [config.size] * (
        "full-replay" in config.kinds) + [0])
    if replay_rows and "sequence" not in expert and "buffer" not in expert:
        recipe_training_data(config, expert, replay_rows)
    root = jax.random.PRNGKey(config.seed)
    cache: dict[str, dict[str, np.ndarray]] = {}

    def make(kind):
        if kind in cache:
            return cache[kind]
        key = jax.random.fold_in(root, _KIND_SALT[kind])
        if kind == "random":  # the uniform policy ignores the parameters
            data = behaviour.rollout(behaviour.act_random, policies["expert"], key, config.size)
        elif kind in ("medium", "expert"):
            data = behaviour.rollout(behaviour.act, policies[kind], key, config.size)
        elif kind == "medium-replay":
            data = training_data(config, expert, int(steps[m]))
        elif kind == "full-replay":
            data = training_data(config, expert, config.size)
        else:  # medium-expert
            data = stitch(make("medium"), make("expert"), 2 * config.size)
        cache[kind] = data
        return data

    env_params = behaviour.env_params
    meta = {
        "env_id": config.env,
        "backend": "brax" if config.env in envs.BRAX_ENVS else "gymnax",
        "backend_version": _backend_version(config.env),
        "brax_backend": config.brax_backend if config.env in envs.BRAX_ENVS else "",
        "episode_length": int(env_params.max_steps_in_episode),
        "collect_seed": config.seed,
        "ref_min_score": ref_min,
        "ref_max_score": ref_max,
        "medium_fraction": config.medium_fraction,
        "medium_checkpoint": m,
        "algorithm": config.expert_algo.upper(),
        "expert_steps": int(steps[-1]),
        "expert_source": f"shipped {os.path.basename(expert['path'])}" if shipped_stem else "trained",
        "purerl_version": purerl.__version__,
        "git_hash": _git_hash(),
    }
    policy_step = {"random": 0, "medium": int(steps[m]), "expert": int(steps[-1]),
                   "medium-replay": int(steps[m]), "full-replay": int(steps[-1]),
                   "medium-expert": int(steps[-1])}
    if "reproduced" in expert:
        meta["replay_reproduced"] = expert["reproduced"]
    datasets = {}
    for kind in config.kinds:
        t0 = time.perf_counter()
        datasets[kind] = (make(kind), {**meta, "kind": kind, "policy_step": policy_step[kind],
                                       "generation_s": 0.0})
        datasets[kind][1]["generation_s"] = round(time.perf_counter() - t0, 3)
    return datasets, {**meta, "expert_train_s": expert["train_s"], "evals": expert["evals"].tolist()}


def collect(config: CollectConfig) -> dict[str, str]:
    """Write the requested kinds; returns kind -> file path. Existing files are kept unless `overwrite`."""
    validate(config)
    config, stem = resolve_expert(config)
    out = config.out or default_cache_dir()
    paths = {kind: dataset_path(config.env, kind, out) for kind in config.kinds}
    todo = tuple(k for k in config.kinds if config.overwrite or not os.path.exists(paths[k]))
    for kind in config.kinds:
        if kind not in todo:
            _log(config, f"{paths[kind]} exists, kept (pass --overwrite to regenerate)")
            if not os.path.exists(stats_path(paths[kind])):  # files from before the statistics sidecar
                write_stats(paths[kind], summarize(read_hdf5(paths[kind])[0]))
    if not todo:
        return paths
    datasets, _ = build(dataclasses.replace(config, kinds=todo), out, stem)
    for kind, (data, meta) in datasets.items():
        stats = summarize(data)
        write_hdf5(paths[kind], data, {**meta, "statistics": json.dumps(stats)}, overwrite=config.overwrite)
        write_stats(paths[kind], stats)
        _log(config, f"wrote {paths[kind]} ({len(data['observations'])} rows, {meta['generation_s']:.1f} s; "
                     f"return {stats['return']['mean']:.1f} +- {stats['return']['std']:.1f} over "
                     f"{stats['episodes']} episodes)")
    return paths


def _backend_version(env: str) -> str:
    from importlib.metadata import version

    return version("brax" if env in envs.BRAX_ENVS else "gymnax")


def main(argv: list[str]) -> dict[str, str]:
    """`purerl collect --env ENV --kinds a,b --size N --out DIR [...]` (tyro flags of CollectConfig)."""
    argv = list(argv)
    for i, arg in enumerate(argv):  # accept comma-separated kinds as well as space-separated
        if arg == "--kinds" and i + 1 < len(argv) and "," in argv[i + 1]:
            argv[i + 1: i + 2] = argv[i + 1].split(",")
    config = flags.parse(CollectConfig, argv, prog="purerl collect",
                         description="Generate D4RL-style offline datasets from purerl's own experts "
                                     "(shipped with purerl, or trained here with SAC or PPO).")
    training_flags = {"--" + name.replace("_", "-") for name in RECIPE_FIELDS}
    if config.expert == "auto" and any(arg.split("=")[0].replace("_", "-") in training_flags for arg in argv):
        # a command that names a training flag trains, as every such command did before experts were shipped
        config = dataclasses.replace(config, expert="train")
    try:
        if config.export_expert:
            validate(config)
            written = export_expert(config, config.out or default_cache_dir(), config.export_expert)
            _log(config, f"wrote {written[0]} and {written[1]}")
            return {"npz": written[0], "json": written[1]}
        return collect(config)
    except ValueError as err:
        flags.fail(str(err))
