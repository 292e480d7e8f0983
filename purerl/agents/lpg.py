"""TA-LPG: a temporally-aware Learned Policy Gradient (Jackson et al., 2024, "Discovering Temporally-Aware
Reinforcement Learning Algorithms", after Oh et al., 2020, "Discovering Reinforcement Learning Algorithms"),
meta-trained with OpenAI-ES on random grid worlds (`purerl.envs.gridworld`).

The *agent* is tabular (linear, no bias, on `purerl.envs.gridworld` observations): a softmax policy pi(a|s)
and a categorical "target" y(s) over 8 bins whose meaning the learned rule invents (in LPG it plays the role
of a value). Every update it collects 20 steps x `num_envs` transitions and takes one SGD step (grad-norm clip
0.5 on each of the two, lr 40 for the policy, 4 for y) on the loss the *LPG network* prescribes:

    L = mean_t[ pi_hat_t * log pi(a_t|s_t) ] + alpha_y * mean_t KL( y(s_t) || y_hat_t )

The LPG network reads, per step, [r_t, d_t, pi(a_t|s_t), e(y(s_t)), e(y(s_t+1)) * (1 - d_t)] (e: a shared
8 -> 16 -> 1 MLP; TA-LPG adds n/N and log N, the paper's lifetime conditioning), runs a GRU *backwards in
time* over the rollout (reset at episode ends) and outputs pi_hat_t = Dense(1) and y_hat_t =
softmax(Dense(8)). pi and y enter it under stop-gradient. d_t is *termination*; on truncation s_t+1 is the
final observation (truncation is not termination), and the GRU is reset at every episode end either way.

Meta-training (`purerl meta-train lpg`): OpenAI-ES (evosax 0.3.2 Open_ES, antithetic, Adam b1 0.99, lr 0.01
decaying x0.999 per generation, sigma 0.1 constant) over the LPG network's parameters. Antithetic task
sampling: the members theta + sigma eps and theta - sigma eps (i and i + P/2 in evosax's layout) train on the
same sampled level, lifetime and agent key; each is scored by the mean return of `eval_episodes` episodes
after its lifetime, and the shaped fitness is 1 for the better member of the pair and 0 for the other (0.5
each on a tie). Lifetimes differ per task: the update scan runs to the longest lifetime and discards updates
past the task's own N. The population is vmapped and, with several devices, sharded.

Paper scale (groove README): population 1,024, 2,500 generations, GRU width 256, lifetimes up to 250
updates, episode caps up to 750 steps -- "under 3 hours on a single GPU". The CPU defaults here are far
smaller: `MetaConfig`'s defaults are the CPU run recorded by `python -m benchmarks.bench_lpg`
(`benchmarks/results/lpg_grid.json`).

The method, defaults, measured results and what is not reproduced yet:
`docs/algorithms/learned_objectives.md`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from purerl import flags
from purerl.agent import check_positive
from purerl.envs import gridworld
from purerl.meta import check_population, prepare_out, run_generations
from purerl.sweep import over_seeds

TARGET_BINS = 8
RULES = ("lpg", "reinforce")

# ----------------------------------------------------------------------------------------------------------
# The LPG network


class _ResetGRU(nn.Module):
    """One backward-in-time GRU step; `episode_end[t]` cuts what flows back from step t + 1."""

    hidden: int

    @nn.compact
    def __call__(self, h, inputs):
        x, episode_end = inputs
        h = jnp.where(episode_end[:, None], 0.0, h)
        h, _ = nn.GRUCell(self.hidden)(h, x)
        return h, h


class LPGNet(nn.Module):
    hidden: int = 256
    """GRU width"""
    temporal: bool = True
    """TA-LPG: also read the lifetime progress n/N and log N"""

    @nn.compact
    def __call__(self, reward, terminated, pi_taken, y, y_next, episode_end, progress, log_lifetime):
        """Inputs (T, B) and y, y_next (T, B, 8); progress and log_lifetime scalars.
        Returns pi_hat (T, B) and log y_hat (T, B, 8)."""
        embed = nn.Sequential([nn.Dense(16), nn.relu, nn.Dense(1)])
        features = [reward, terminated, pi_taken, embed(y)[..., 0],
                    embed(y_next)[..., 0] * (1.0 - terminated)]
        if self.temporal:
            features += [jnp.full_like(reward, progress), jnp.full_like(reward, log_lifetime)]
        x = jnp.stack(features, axis=-1)
        backward = nn.scan(_ResetGRU, variable_broadcast="params", split_rngs={"params": False}, reverse=True)
        h0 = jnp.zeros((reward.shape[1], self.hidden), x.dtype)
        _, h = backward(self.hidden)(h0, (x, episode_end))
        h = nn.relu(h)
        return nn.Dense(1)(h)[..., 0], jax.nn.log_softmax(nn.Dense(TARGET_BINS)(h))


def lpg_template(hidden: int = 256, temporal: bool = True, key=None):
    """(net, randomly initialised params): the ES starts from flax's default initialisation."""
    net = LPGNet(hidden, temporal)
    t, b = 2, 1
    z, y = jnp.zeros((t, b)), jnp.full((t, b, TARGET_BINS), 1.0 / TARGET_BINS)
    key = jax.random.PRNGKey(0) if key is None else key
    return net, net.init(key, z, z, z, y, y, z.astype(bool), 0.0, 0.0)


def save_lpg(path: str, params, hidden: int, temporal: bool) -> None:
    with open(path, "wb") as f:
        f.write(serialization.msgpack_serialize({
            "hidden": hidden, "temporal": temporal, "params": serialization.to_state_dict(params),
        }))


def load_lpg(path: str):
    """(net, params) from `save_lpg`'s file; a clear error if it is not one."""
    if not os.path.isfile(path):
        raise ValueError(f"LPG file {path!r} does not exist")
    with open(path, "rb") as f:
        data = serialization.msgpack_restore(f.read())
    if not isinstance(data, dict) or not {"hidden", "temporal", "params"} <= set(data):
        raise ValueError(f"{path!r} is not an LPG file (needs hidden, temporal and params)")
    net, template = lpg_template(int(data["hidden"]), bool(data["temporal"]))
    try:
        params = serialization.from_state_dict(template, data["params"])
        for a, b in zip(jax.tree.leaves(template), jax.tree.leaves(params), strict=True):
            if np.shape(a) != np.shape(b):
                raise ValueError(f"parameter shape {np.shape(b)} != {np.shape(a)}")
    except (ValueError, KeyError) as err:
        raise ValueError(f"{path!r} does not match an LPG net of width {data['hidden']}: {err}") from None
    return net, params


# ----------------------------------------------------------------------------------------------------------
# The inner agent: one lifetime on one level


@dataclass(frozen=True)
class MetaConfig:
    temporal: bool = True
    """TA-LPG (the LPG net also reads n/N and log N); False gives plain LPG"""
    generations: int = 200
    """ES generations"""
    population: int = 64
    """ES population (even: antithetic pairs share a task; divisible by num_devices). Paper: 1,024"""
    num_devices: int = 1
    """devices to shard the population over"""
    seed: int = 0
    """meta-training seed"""
    hidden: int = 16
    """LPG GRU width (paper: 256)"""
    num_envs: int = 8
    """parallel envs of the inner agent (paper: 64)"""
    rollout_steps: int = 20
    """steps per env per agent update"""
    actor_lr: float = 40.0
    """SGD learning rate of the tabular policy"""
    target_lr: float = 4.0
    """SGD learning rate of the tabular target y"""
    target_coef: float = 0.5
    """alpha_y, weight of KL(y || y_hat) in the agent loss"""
    max_grad_norm: float = 0.5
    """gradient-norm clip of each agent update, applied to the policy and the target separately"""
    eval_episodes: int = 32
    """episodes scored after the lifetime (fitness = their mean return)"""
    min_size: int = 4
    """smallest grid side"""
    max_size: int = 10
    """largest grid side"""
    max_objects: int = 5
    """most objects per level"""
    num_walls: int = 15
    """wall cells per level (at most a quarter of the grid)"""
    episode_cap: tuple[int, int] = (20, 100)
    """episode length range, log-uniform (paper: 20-750)"""
    lifetime: tuple[int, int] = (10, 50)
    """agent updates per task, log-uniform (paper: 10-250)"""
    sigma: float = 0.1
    """ES noise std (constant)"""
    es_lr: float = 0.01
    """ES Adam learning rate at generation 0 (x0.999 per generation, floor 1e-5; beta1 0.99)"""
    gamma: float = 0.99
    """discount of the REINFORCE reference rule (the learned rule chooses its own)"""
    eval_every: int = 10
    """generations between scorings of the ES mean on `eval_tasks` fixed held-out tasks (0: never)"""
    eval_tasks: int = 64
    """held-out tasks (levels, lifetimes, agent seeds) drawn once from the distribution with seed + 1"""
    checkpoint_every: int = 10
    """generations between orbax checkpoints"""
    out: str = "runs/meta_lpg"
    """output directory (metrics.jsonl, checkpoints/, lpg_mean.msgpack, lpg_best.msgpack)"""
    resume: bool = False
    """continue from the newest checkpoint in out"""

    def distribution(self) -> gridworld.Distribution:
        return gridworld.Distribution(self.min_size, self.max_size, self.max_objects, self.num_walls,
                                      tuple(self.episode_cap), tuple(self.lifetime))


def validate_meta(cfg: MetaConfig) -> None:
    check_positive(cfg, "generations", "population", "num_devices", "hidden", "num_envs", "rollout_steps",
                   "actor_lr", "target_lr", "max_grad_norm", "eval_episodes", "eval_tasks", "sigma", "es_lr",
                   "checkpoint_every")
    if cfg.eval_every < 0:
        raise ValueError(f"eval_every must be >= 0, got {cfg.eval_every}")
    check_population(cfg.population, cfg.num_devices)
    if cfg.target_coef < 0:
        raise ValueError(f"target_coef must be >= 0, got {cfg.target_coef}")
    if not 0.0 <= cfg.gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {cfg.gamma}")
    cfg.distribution().validate()


class Rollout(NamedTuple):
    obs: jax.Array  # (T, B, OBS_DIM)
    action: jax.Array  # (T, B)
    reward: jax.Array
    terminated: jax.Array
    episode_end: jax.Array  # terminated or truncated
    next_obs: jax.Array  # the observation after the step (the final one where the episode ended)


def init_agent():
    zeros = jnp.zeros
    return {"pi": zeros((gridworld.OBS_DIM, gridworld.NUM_ACTIONS)),
            "y": zeros((gridworld.OBS_DIM, TARGET_BINS))}


def collect(agent, obs, env_state, level: gridworld.Level, key, steps: int):
    """`steps` steps of every env under the agent's policy -> (obs, env_state, Rollout)."""

    def one(carry, key):
        obs, env_state = carry
        act_key, env_key = jax.random.split(key)
        action = jax.random.categorical(act_key, obs @ agent["pi"])
        env_keys = jax.random.split(env_key, obs.shape[0])
        next_obs, env_state, reward, terminated, truncated, final_obs = jax.vmap(
            gridworld.step, in_axes=(0, 0, 0, None))(env_keys, env_state, action, level)
        step = Rollout(obs, action, reward, terminated.astype(jnp.float32), terminated | truncated, final_obs)
        return (next_obs, env_state), step

    (obs, env_state), rollout = jax.lax.scan(one, (obs, env_state), jax.random.split(key, steps))
    return obs, env_state, rollout


def reinforce_signal(rollout: Rollout, gamma: float):
    """pi_hat of the hand-written reference rule: minus the within-rollout discounted return-to-go, centred"""

    def back(g, step):
        reward, episode_end = step
        g = reward + gamma * jnp.where(episode_end, 0.0, g)
        return g, g

    _, returns = jax.lax.scan(back, jnp.zeros_like(rollout.reward[0]), (rollout.reward, rollout.episode_end),
                              reverse=True)
    return -(returns - returns.mean())


def agent_loss(agent, rollout: Rollout, rule_fn):
    log_pi = jax.nn.log_softmax(rollout.obs @ agent["pi"])
    log_pi_taken = jnp.take_along_axis(log_pi, rollout.action[..., None], axis=-1)[..., 0]
    log_y = jax.nn.log_softmax(rollout.obs @ agent["y"])
    y, y_next = jnp.exp(log_y), jax.nn.softmax(rollout.next_obs @ agent["y"])
    pi_hat, log_y_hat = rule_fn(rollout, jax.lax.stop_gradient(jnp.exp(log_pi_taken)),
                                jax.lax.stop_gradient(y), jax.lax.stop_gradient(y_next))
    pi_hat, log_y_hat = jax.lax.stop_gradient((pi_hat, log_y_hat))
    kl = jnp.sum(y * (log_y - log_y_hat), axis=-1)
    return jnp.mean(pi_hat * log_pi_taken), jnp.mean(kl)


def evaluate_agent(agent, level: gridworld.Level, key, episodes: int, max_steps: int):
    """Mean return of the first episode of `episodes` fresh envs under the (stochastic) policy."""
    reset_key, key = jax.random.split(key)
    reset_keys = jax.random.split(reset_key, episodes)
    obs, env_state = jax.vmap(gridworld.reset, in_axes=(0, None))(reset_keys, level)

    def one(carry, key):
        obs, env_state, total, running = carry
        obs, env_state, rollout = collect(agent, obs, env_state, level, key, 1)
        total = total + running * rollout.reward[0]
        return (obs, env_state, total, running * (1.0 - rollout.episode_end[0])), None

    init = (obs, env_state, jnp.zeros(episodes), jnp.ones(episodes))
    (_, _, total, _), _ = jax.lax.scan(one, init, jax.random.split(key, max_steps))
    return total.mean()


def make_lifetime(cfg: MetaConfig, net: LPGNet | None, rule: str = "lpg", evaluate: bool = True):
    """`lifetime(lpg_params, level, key) -> mean eval return` of one agent trained for the level's lifetime
    with the learned rule (`rule="lpg"`) or the REINFORCE reference (`rule="reinforce"`; lpg_params unused).
    `evaluate=False` returns the trained agent's parameters instead."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; valid: {', '.join(RULES)}")
    max_updates, max_steps = cfg.lifetime[1], cfg.episode_cap[1]
    clip = optax.clip_by_global_norm(cfg.max_grad_norm)
    lrs = {"pi": cfg.actor_lr, "y": cfg.target_lr}

    def lifetime(lpg_params, level: gridworld.Level, key):
        reset_key, run_key, eval_key = jax.random.split(key, 3)
        obs, env_state = jax.vmap(gridworld.reset, in_axes=(0, None))(
            jax.random.split(reset_key, cfg.num_envs), level)
        log_lifetime = jnp.log(level.lifetime.astype(jnp.float32))

        def update(carry, n):
            agent, obs, env_state = carry
            obs, env_state, rollout = collect(agent, obs, env_state, level, jax.random.fold_in(run_key, n),
                                              cfg.rollout_steps)
            progress = n / level.lifetime

            def rule_fn(rollout, pi_taken, y, y_next):
                if rule == "reinforce":
                    return reinforce_signal(rollout, cfg.gamma), jnp.log(y)  # y_hat = y: no target loss
                return net.apply(lpg_params, rollout.reward, rollout.terminated, pi_taken, y, y_next,
                                 rollout.episode_end, progress, log_lifetime)

            def loss(agent):
                policy_loss, target_loss = agent_loss(agent, rollout, rule_fn)
                return policy_loss + cfg.target_coef * target_loss

            grads = jax.grad(loss)(agent)
            # policy and target are separate SGD learners, each clipped on its own (else a large target
            # gradient would shrink the policy step)
            new_agent = {k: agent[k] - lrs[k] * clip.update(grads[k], clip.init(grads[k]))[0] for k in agent}
            live = n < level.lifetime  # updates past this task's lifetime are discarded
            agent = jax.tree.map(lambda new, old: jnp.where(live, new, old), new_agent, agent)
            return (agent, obs, env_state), None

        (agent, _, _), _ = jax.lax.scan(update, (init_agent(), obs, env_state), jnp.arange(max_updates))
        if not evaluate:
            return agent
        return evaluate_agent(agent, level, eval_key, cfg.eval_episodes, max_steps)

    return lifetime


# ----------------------------------------------------------------------------------------------------------
# ES meta-training with antithetic task sampling


def pairwise_shaping(returns):
    """1 for the better member of each antithetic pair (i, i + P/2), 0 for the other, 0.5 each on a tie."""
    first, second = jnp.split(returns, 2)
    win = (first > second).astype(jnp.float32) + 0.5 * (first == second)
    return jnp.concatenate([win, 1.0 - win])


def paired_tasks(cfg: MetaConfig, key):
    """One level and agent key per antithetic pair, repeated so members i and i + P/2 share them."""
    level_key, agent_key = jax.random.split(key)
    half = cfg.population // 2
    levels = jax.vmap(gridworld.sample_level, in_axes=(0, None))(jax.random.split(level_key, half),
                                                                  cfg.distribution())
    keys = jax.random.split(agent_key, half)
    return jax.tree.map(lambda x: jnp.concatenate([x, x]), (levels, keys))


def make_es(cfg: MetaConfig):
    from evosax.algorithms import Open_ES
    from evosax.core.fitness_shaping import identity_fitness_shaping_fn

    net, template = lpg_template(cfg.hidden, cfg.temporal, jax.random.PRNGKey(cfg.seed))
    lr = optax.exponential_decay(cfg.es_lr, transition_steps=1, decay_rate=0.999, end_value=1e-5)
    es = Open_ES(cfg.population, template, optimizer=optax.adam(lr, b1=0.99, b2=0.999),
                 std_schedule=optax.constant_schedule(cfg.sigma),
                 fitness_shaping_fn=identity_fitness_shaping_fn)
    return es, net, template


def init_es_state(es, template, seed: int):
    """ES state at the template; dtypes made strong so the jitted generation compiles once."""
    state = es.init(jax.random.PRNGKey(seed), template, es.default_params)
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.asarray(x).dtype), state)


def make_generation(cfg: MetaConfig, num_devices: int | None = None):
    """`generation(es_state, key) -> (es_state, eval return per member)`, one jittable ES step."""
    num_devices = cfg.num_devices if num_devices is None else num_devices
    es, net, template = make_es(cfg)
    population_returns = over_seeds(make_lifetime(cfg, net), num_devices)
    params = es.default_params

    def generation(es_state, key):
        ask_key, task_key, tell_key = jax.random.split(key, 3)
        population, es_state = es.ask(ask_key, es_state, params)
        levels, keys = paired_tasks(cfg, task_key)
        returns = population_returns(population, levels, keys)
        es_state, _ = es.tell(tell_key, population, -pairwise_shaping(returns), es_state, params)  # minimises
        return es_state, returns

    return es, template, generation


def held_out_tasks(cfg: MetaConfig, num_tasks: int, seed: int):
    """(levels, agent keys) drawn from the meta-training distribution with their own seed."""
    level_key, agent_key = jax.random.split(jax.random.PRNGKey(seed))
    levels = jax.vmap(gridworld.sample_level, in_axes=(0, None))(jax.random.split(level_key, num_tasks),
                                                                  cfg.distribution())
    return levels, jax.random.split(agent_key, num_tasks)


def meta_train(cfg: MetaConfig, log=print) -> dict:
    """Run (or resume) ES meta-training of the LPG net; writes metrics.jsonl (fitness = raw eval returns on
    that generation's tasks; eval_return = the ES mean's mean return on the fixed held-out tasks),
    checkpoints, lpg_mean.msgpack and lpg_best.msgpack to cfg.out."""
    validate_meta(cfg)
    prepare_out(cfg.out, cfg.resume, dataclasses.asdict(cfg))
    es, template, generation = make_generation(cfg)
    levels, keys = held_out_tasks(cfg, cfg.eval_tasks, cfg.seed + 1)
    score = jax.jit(jax.vmap(make_lifetime(cfg, LPGNet(cfg.hidden, cfg.temporal)), in_axes=(None, 0, 0)))

    def evaluate(es_state):
        return {"eval_return": float(score(es.get_mean(es_state), levels, keys).mean())}

    res = run_generations(
        generation, init_es_state(es, template, cfg.seed), out=cfg.out, generations=cfg.generations,
        seed=cfg.seed, checkpoint_every=cfg.checkpoint_every, resume=cfg.resume, population=cfg.population,
        log=log, describe=f"population {cfg.population}, {cfg.num_devices} device(s)", evaluate=evaluate,
        eval_every=cfg.eval_every,
    )
    save_lpg(os.path.join(cfg.out, "lpg_mean.msgpack"), es.get_mean(res["es_state"]), cfg.hidden,
             cfg.temporal)
    _, unravel = jax.flatten_util.ravel_pytree(template)
    save_lpg(os.path.join(cfg.out, "lpg_best.msgpack"), unravel(res["es_state"].best_solution), cfg.hidden,
             cfg.temporal)
    return res


def evaluate_rule(cfg: MetaConfig, lpg_params, levels: gridworld.Level, keys, rule: str = "lpg"):
    """Eval return of one agent per (level, key) trained with the rule: jitted and vmapped over the tasks."""
    lifetime = make_lifetime(cfg, LPGNet(cfg.hidden, cfg.temporal), rule)
    return jax.jit(jax.vmap(lifetime, in_axes=(None, 0, 0)))(lpg_params, levels, keys)


def meta_train_main(argv: list[str]) -> None:
    """`purerl meta-train lpg [flags]`."""
    cfg = flags.parse(MetaConfig, argv, prog="purerl meta-train lpg", description=__doc__.split("\n")[0])
    try:
        meta_train(cfg)
    except ValueError as err:
        flags.fail(str(err))
    print(f"LPG files in {cfg.out}: lpg_mean.msgpack, lpg_best.msgpack")
