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

The method, defaults, measured results and what is not reproduced yet:
`docs/algorithms/learned_objectives.md`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import jax
import jax.flatten_util
import jax.numpy as jnp
import optax

from purerl import flags
from purerl.agent import check_positive
from purerl.agents import ppo
from purerl.drift import (  # noqa: F401 -- the drift API, also reached as purerl.agents.lpo.*
    DriftNet,
    as_ppo_drift,
    clip_drift,
    dpo_drift,
    drift_features,
    drift_template,
    load_drift,
    objective_drift,
    save_drift,
)
from purerl.meta import check_population, prepare_out, run_generations
from purerl.sweep import over_seeds

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
    """std of the random initial ES mean (0 makes antithetic pairs tie exactly: the net is even in params)"""
    checkpoint_every: int = 5
    """generations between orbax checkpoints"""
    out: str = "runs/meta_lpo"
    """output directory (metrics.jsonl, checkpoints/, drift_mean.msgpack, drift_best.msgpack)"""
    resume: bool = False
    """continue from the newest checkpoint in out"""

    def inner(self) -> ppo.Config:
        return ppo.Config(
            env=self.env, total_timesteps=self.total_timesteps, num_envs=self.num_envs,
            num_steps=self.num_steps,
            update_epochs=self.update_epochs, num_minibatches=self.num_minibatches, lr=self.lr,
            eval_episodes=self.eval_episodes, objective="learned",
        )


def validate_meta(cfg: MetaConfig) -> None:
    check_positive(cfg, "generations", "population", "num_devices", "hidden", "sigma", "es_lr",
                   "checkpoint_every")
    check_population(cfg.population, cfg.num_devices)
    if cfg.init_scale < 0:
        raise ValueError(f"init_scale must be >= 0, got {cfg.init_scale}")
    ppo.validate(cfg.inner())


def make_es(cfg: MetaConfig):
    from evosax.algorithms import Open_ES

    net, template = drift_template(cfg.hidden, cfg.temporal, cfg.ppo_init)
    lr = optax.exponential_decay(cfg.es_lr, transition_steps=1, decay_rate=0.999, end_value=1e-3)
    std = optax.exponential_decay(cfg.sigma, transition_steps=1, decay_rate=0.999,
                                  end_value=min(0.01, cfg.sigma))
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
    best = unravel(res["es_state"].best_solution)
    save_drift(os.path.join(cfg.out, "drift_best.msgpack"), best, *drift_meta)
    return res


def meta_train_main(argv: list[str]) -> None:
    """`purerl meta-train lpo [flags]`."""
    cfg = flags.parse(MetaConfig, argv, prog="purerl meta-train lpo", description=__doc__.split("\n")[0])
    try:
        meta_train(cfg)
    except ValueError as err:
        flags.fail(str(err))
    print(f"drift files in {cfg.out}: drift_mean.msgpack, drift_best.msgpack")
