"""Learned policy objectives: LPO (Lu et al., 2022, "Discovered Policy Optimisation") and TA-LPO (Jackson et
al., 2024, "Discovering Temporally-Aware Reinforcement Learning Algorithms"), meta-trained with OpenAI-ES.

PPO's actor loss is written in mirror-learning form, -E[r A - D(r, A)], with a *drift* D >= 0 and
D(1, A) = 0. PPO-clip is the drift ReLU((r - clip(r)) A); DPO is a closed-form soft version; LPO learns D
with a small bias-free MLP on features that all vanish at r = 1 (so the drift conditions hold by
construction); TA-LPO also multiplies the features by the training progress n/N.

Meta-training (`purerl meta-train lpo`): one jitted ES generation samples a population of drift params
(evosax 0.3.2 Open_ES, antithetic), trains one inner PPO agent per member with `purerl.agents.ppo`
(`objective="learned"`, the drift passed in as a traced function), scores each by the mean return of
`eval_episodes` fresh episodes at the end of training, and takes one ES step (evosax minimises, so it is
told -fitness). The population is vmapped and, with several devices, sharded with `purerl.sweep.over_seeds`.
All members of a generation share one PRNG key (common random numbers); generation g uses
fold_in(PRNGKey(seed), g), so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from purerl.agents import ppo
from purerl.meta import check_population, prepare_out, run_generations

# ----------------------------------------------------------------------------------------------------------
# Drift functions


def clip_drift(ratio, advantages, eps: float = 0.2):
    """PPO-clip as a drift: min(rA, clip(r)A) = rA - ReLU((r - clip(r, 1-eps, 1+eps)) A)."""
    return jax.nn.relu((ratio - jnp.clip(ratio, 1.0 - eps, 1.0 + eps)) * advantages)


def dpo_drift(ratio, advantages, log_ratio=None, alpha: float = 2.0, beta: float = 0.6):
    """DPO's closed-form drift (Lu et al. 2022): soft clips in ratio space (A >= 0) and log-ratio space (A < 0)."""
    log_ratio = jnp.log(ratio) if log_ratio is None else log_ratio
    pos = (ratio - 1.0) * advantages
    neg = log_ratio * advantages
    return jnp.where(
        advantages >= 0,
        jax.nn.relu(pos - alpha * jnp.tanh(pos / alpha)),
        jax.nn.relu(neg - beta * jnp.tanh(neg / beta)),
    )


def drift_features(ratio, advantages, progress=None, log_ratio=None, temporal: bool = False):
    """LPO's 8 features [u, A u] with u = [r-1, (r-1)^2, log r, (log r)^2]; TA-LPO appends progress * those 8.

    Every feature is exactly 0 at r = 1 (and so is its derivative w.r.t. r for the squared ones).
    """
    log_ratio = jnp.log(ratio) if log_ratio is None else log_ratio
    d = ratio - 1.0
    u = jnp.stack([d, d * d, log_ratio, log_ratio * log_ratio], axis=-1)
    x = jnp.concatenate([u, advantages[..., None] * u], axis=-1)
    if temporal:
        if progress is None:
            raise ValueError("a temporal (TA-LPO) drift needs the training progress n/N")
        x = jnp.concatenate([x, jnp.asarray(progress, x.dtype)[..., None] * x], axis=-1)
    return x


class DriftNet(nn.Module):
    """D(r, A[, n/N]) = ReLU(g(x) [+ clip drift] - shift), g = bias-free Dense(hidden) -> tanh -> Dense(1).

    No biases => g(0) = 0, and the shift keeps the ReLU inactive near r = 1, so D = 0 and dD/dr = 0 there.
    """

    hidden: int = 128
    temporal: bool = False
    ppo_init: bool = True
    clip_eps: float = 0.2
    shift: float = 1e-4

    def setup(self):
        self.hidden_layer = nn.Dense(self.hidden, use_bias=False)
        self.out_layer = nn.Dense(1, use_bias=False)

    def raw(self, ratio, advantages, progress=None, log_ratio=None):
        """g(x): the bias-free MLP on the drift features (before the clip-drift offset, shift and ReLU)."""
        x = drift_features(ratio, advantages, progress, log_ratio, self.temporal)
        return self.out_layer(jnp.tanh(self.hidden_layer(x)))[..., 0]

    def __call__(self, ratio, advantages, progress=None, log_ratio=None):
        g = self.raw(ratio, advantages, progress, log_ratio)
        if self.ppo_init:
            g = g + clip_drift(ratio, advantages, self.clip_eps)
        return jax.nn.relu(g - self.shift)


def drift_template(hidden: int = 128, temporal: bool = False, ppo_init: bool = True):
    """Zero drift params (the pytree whose shapes every saved drift must match)."""
    net = DriftNet(hidden=hidden, temporal=temporal, ppo_init=ppo_init)
    params = net.init(jax.random.PRNGKey(0), jnp.ones(3), jnp.zeros(3), jnp.zeros(3))
    return net, jax.tree.map(jnp.zeros_like, params)


def as_ppo_drift(net: DriftNet, params):
    """The `drift(ratio, log_ratio, advantages, progress)` function that `ppo.make_agent` takes."""
    return lambda ratio, log_ratio, adv, progress: net.apply(params, ratio, adv, progress, log_ratio)


def save_drift(path: str, params, hidden: int, temporal: bool, ppo_init: bool = True) -> None:
    meta = {"hidden": hidden, "temporal": temporal, "ppo_init": ppo_init}
    blob = serialization.msgpack_serialize(
        {"meta": json.dumps(meta), "params": jax.tree.map(np.asarray, serialization.to_state_dict(params))}
    )
    with open(path, "wb") as f:
        f.write(blob)


def load_drift(path: str):
    """(DriftNet, params) from a file written by `save_drift`; wrong shapes -> ValueError."""
    if not path:
        raise ValueError("objective 'learned' needs a drift file: pass --drift PATH (from purerl meta-train lpo)")
    if not os.path.isfile(path):
        raise ValueError(f"drift file {path!r} does not exist")
    with open(path, "rb") as f:
        try:
            raw = serialization.msgpack_restore(f.read())
            meta = json.loads(raw["meta"])
            saved = raw["params"]
        except Exception as err:  # noqa: BLE001 - any parse failure is a bad file
            raise ValueError(f"drift file {path!r} is not a purerl drift file ({err})") from None
    net, template = drift_template(int(meta["hidden"]), bool(meta["temporal"]), bool(meta.get("ppo_init", True)))
    want = jax.tree.map(np.shape, serialization.to_state_dict(template))
    got = jax.tree.map(np.shape, saved)
    if want != got:
        raise ValueError(f"drift file {path!r} has parameter shapes {got}, expected {want} for its meta {meta}")
    return net, serialization.from_state_dict(template, jax.tree.map(jnp.asarray, saved))


def objective_drift(config: ppo.Config):
    """The drift function for a PPO config's objective (not used for objective='clip')."""
    if config.objective == "dpo":
        return lambda ratio, log_ratio, adv, progress: dpo_drift(ratio, adv, log_ratio)
    if config.objective == "learned":
        net, params = load_drift(config.drift)
        return as_ppo_drift(net, params)
    raise ValueError(f"objective {config.objective!r} has no drift function")


# ----------------------------------------------------------------------------------------------------------
# ES meta-training


@dataclass(frozen=True)
class MetaConfig:
    env: str = "CartPole-v1"
    """meta-training environment (inner PPO runs on it)"""
    temporal: bool = True
    """TA-LPO (drift also sees training progress n/N); False gives plain LPO"""
    ppo_init: bool = True
    """add PPO's clip drift to the network (ES starts at PPO-clip); False: the drift is the network alone and
    ES starts from (almost) no drift, i.e. an unconstrained policy gradient, as in the LPO paper"""
    generations: int = 30
    """ES generations"""
    population: int = 32
    """ES population size (even: antithetic pairs; divisible by num_devices)"""
    num_devices: int = 1
    """devices to shard the population over"""
    seed: int = 0
    """meta-training seed"""
    total_timesteps: int = 10_240
    """inner PPO env steps per member (the meta-training horizon)"""
    num_envs: int = 4
    """inner PPO parallel envs"""
    num_steps: int = 128
    """inner PPO rollout length"""
    update_epochs: int = 4
    """inner PPO epochs per update"""
    num_minibatches: int = 4
    """inner PPO minibatches per epoch"""
    lr: float = 2.5e-4
    """inner PPO learning rate"""
    eval_episodes: int = 16
    """episodes scored per member at the end of inner training (fitness = their mean return)"""
    hidden: int = 128
    """drift network width"""
    sigma: float = 0.04
    """ES noise std at generation 0 (decays x0.999 per generation, floor 0.01)"""
    es_lr: float = 0.01
    """ES Adam learning rate at generation 0 (decays x0.999 per generation, floor 1e-3; beta1 0.99)"""
    init_scale: float = 0.01
    """std of the random initial ES mean (0 makes antithetic pairs tie exactly: the net is even in its params)"""
    checkpoint_every: int = 5
    """generations between orbax checkpoints"""
    out: str = "runs/meta_lpo"
    """output directory (metrics.jsonl, checkpoints/, drift_mean.msgpack, drift_best.msgpack)"""
    resume: bool = False
    """continue from the newest checkpoint in out"""

    def inner(self) -> ppo.Config:
        return ppo.Config(
            env=self.env, total_timesteps=self.total_timesteps, num_envs=self.num_envs, num_steps=self.num_steps,
            update_epochs=self.update_epochs, num_minibatches=self.num_minibatches, lr=self.lr,
            eval_episodes=self.eval_episodes, objective="learned",
        )


def validate_meta(cfg: MetaConfig) -> None:
    from purerl.agent import check_positive

    check_positive(cfg, "generations", "population", "num_devices", "hidden", "sigma", "es_lr", "checkpoint_every")
    check_population(cfg.population, cfg.num_devices)
    if cfg.init_scale < 0:
        raise ValueError(f"init_scale must be >= 0, got {cfg.init_scale}")
    ppo.validate(cfg.inner())


def make_es(cfg: MetaConfig):
    from evosax.algorithms import Open_ES

    net, template = drift_template(cfg.hidden, cfg.temporal, cfg.ppo_init)
    lr = optax.exponential_decay(cfg.es_lr, transition_steps=1, decay_rate=0.999, end_value=1e-3)
    std = optax.exponential_decay(cfg.sigma, transition_steps=1, decay_rate=0.999, end_value=min(0.01, cfg.sigma))
    es = Open_ES(
        cfg.population, template, optimizer=optax.adam(lr, b1=0.99, b2=0.999), std_schedule=std,
    )
    return es, net, template


def make_member_fitness(cfg: MetaConfig, net: DriftNet):
    """`fitness(drift_params, key)`: train one inner PPO agent with that drift; mean final eval return."""
    inner = cfg.inner()

    def fitness(params, key):
        agent = ppo.make_agent(inner, drift=as_ppo_drift(net, params))
        train_key, eval_key = jax.random.split(key)
        state = agent.init(train_key)
        state, _ = jax.lax.scan(lambda s, _: agent.update(s), state, None, length=agent.num_iterations)
        return agent.evaluate(state, eval_key).mean()

    return fitness


def init_es_state(cfg: MetaConfig, es, template):
    """ES state with a small random mean; dtypes made strong so the jitted generation compiles once."""
    init_key, mean_key = jax.random.split(jax.random.PRNGKey(cfg.seed))
    flat, unravel = jax.flatten_util.ravel_pytree(template)
    mean = unravel(cfg.init_scale * jax.random.normal(mean_key, flat.shape))
    state = es.init(init_key, mean, es.default_params)
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.asarray(x).dtype), state)


def make_generation(cfg: MetaConfig, num_devices: int | None = None, population_fitness=None):
    """`generation(es_state, key) -> (es_state, fitness per member)`, one jittable ES step."""
    from purerl.sweep import over_seeds

    num_devices = cfg.num_devices if num_devices is None else num_devices
    es, net, template = make_es(cfg)
    if population_fitness is None:
        population_fitness = over_seeds(make_member_fitness(cfg, net), num_devices)
    params = es.default_params

    def generation(es_state, key):
        ask_key, eval_key, tell_key = jax.random.split(key, 3)
        population, es_state = es.ask(ask_key, es_state, params)
        keys = jnp.broadcast_to(eval_key, (cfg.population,) + eval_key.shape)  # common random numbers
        fitness = population_fitness(population, keys)
        es_state, _ = es.tell(tell_key, population, -fitness, es_state, params)  # evosax minimises
        return es_state, fitness

    return es, template, generation


def meta_train(cfg: MetaConfig, log=print, population_fitness=None) -> dict:
    """Run (or resume) ES meta-training; writes metrics.jsonl, checkpoints and the drift files to cfg.out.

    `population_fitness(population, keys) -> fitness` replaces the inner PPO runs (tests use a toy)."""
    validate_meta(cfg)
    prepare_out(cfg.out, cfg.resume, dataclasses.asdict(cfg))
    es, template, generation = make_generation(cfg, population_fitness=population_fitness)
    res = run_generations(
        generation, init_es_state(cfg, es, template), out=cfg.out, generations=cfg.generations, seed=cfg.seed,
        checkpoint_every=cfg.checkpoint_every, resume=cfg.resume, population=cfg.population, log=log,
        describe=f"population {cfg.population}, {cfg.num_devices} device(s)",
    )
    drift_meta = (cfg.hidden, cfg.temporal, cfg.ppo_init)
    save_drift(os.path.join(cfg.out, "drift_mean.msgpack"), es.get_mean(res["es_state"]), *drift_meta)
    _, unravel = jax.flatten_util.ravel_pytree(template)
    save_drift(os.path.join(cfg.out, "drift_best.msgpack"), unravel(res["es_state"].best_solution), *drift_meta)
    return res


def meta_train_main(argv: list[str]) -> None:
    """`purerl meta-train lpo [flags]`."""
    from purerl import flags

    cfg = flags.parse(MetaConfig, argv, prog="purerl meta-train lpo", description=__doc__.split("\n")[0])
    try:
        meta_train(cfg)
    except ValueError as err:
        flags.fail(str(err))
    print(f"drift files in {cfg.out}: drift_mean.msgpack, drift_best.msgpack")
