"""CDSA (Liu, Yang & Li 2024, arXiv 2406.07541): denoising-score test-time action correction of a frozen
offline policy.

RECONSTRUCTION NOTICE. No public code exists and only the abstract and third-party summaries could be read.
Verified from those: a denoising score model of the dataset density's gradient field, an inverse-dynamics
model that turns state-space guidance into an "auxiliary action", plug-and-play on a frozen pre-trained
offline policy, VaR as the risk metric. EVERYTHING ELSE IN THIS FILE IS OUR RECONSTRUCTION
(marked [R] here and in docs/algorithms/cdsa.md):
- the noise-conditional state score model s(x, sigma) = net([x, log sigma]) / sigma trained by denoising score
  matching with NCSN weighting, L = mean || sigma s(x + sigma z, sigma) + z ||^2, log sigma ~ U[log sigma_min,
  log sigma_max] (`dsm_loss`);
- the forward model f(s, a) -> s' - s (the paper names no forward model; we need one to know where the base
  action leads);
- the correction rule (`correct`): s1 = s + f(s, a0); ds = kappa sigma_e^2 s(s1, sigma_e) (a Tweedie denoising
  step); a_aux = J_{s'} I(s, s1) . ds (aux_form "jvp") or I(s, s1 + ds) - I(s, s1) ("difference");
  a = clip(a0 + lam a_aux, -1, 1), repeated n_correction_steps times; lam = 0 returns a0 bit for bit;
- all hyperparameters (network sizes, sigma range, sigma_e, kappa, lam, schedules);
- the risk metrics' exact definitions (VaR: the "lower" empirical alpha-quantile; CVaR: mean of returns <=
  VaR).
Not implemented: the "joint" (state, action) score variant.

API: `train_models(dataset, config, key) -> Models` (score, inverse dynamics, forward model trained in one
jitted scan with three optimisers; the Models carry the dataset's state-normalisation statistics) and
`make_corrected_policy(base_act, models, config, obs_mean=..., obs_std=...) -> act(params, obs, key)` (pure,
jittable; refuses base-policy statistics that differ from the models'). Entry point (not an `Agent`: CDSA has
no training loop of its own, it wraps a trained base agent):
`purerl train cdsa --dataset Pendulum-v1-medium --base td3_bc --out runs/cdsa` (or
`python -m purerl.agents.cdsa`) trains the base agent and the CDSA models, then evaluates base and corrected
policy with identical reset keys in one jitted program.

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/cdsa.md`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from purerl import flags, offline
from purerl.agent import check_choices, check_positive, train_fn
from purerl.agents import iql, td3_bc
from purerl.data import reference_returns
from purerl.data.score import normalized_score
from purerl.evaluation import evaluate_policy
from purerl.logging import versions
from purerl.nn import MLP
from purerl.sweep import seed_keys


@dataclass(frozen=True)
class Config:
    dataset: str = "Pendulum-v1-medium"
    """dataset: an hdf5 path, a Minari directory, or an `env-kind` name in the cache (`purerl collect`)"""
    models_dataset: str = ""
    """dataset the CDSA models are trained on (cross-task reuse); empty: the same as `dataset`"""
    env: str = ""
    """evaluation env; empty: the dataset's env_id metadata"""
    base: Literal["td3_bc", "iql"] = "td3_bc"
    """base offline agent: td3_bc or iql (trained with its default config except num_updates)"""
    base_updates: int = 100_000
    """gradient steps of the base agent"""
    base_hidden: tuple[int, ...] = (256, 256)
    """hidden widths of the base agent's networks"""
    seeds: tuple[int, ...] = (0,)
    """seeds (base policy and CDSA models share the seed), vmapped"""
    sigma_min: float = 0.01
    """smallest noise level of the score model (normalised state units)"""
    sigma_max: float = 1.0
    """largest noise level of the score model"""
    score_hidden: tuple[int, ...] = (256, 256, 256)
    """hidden widths of the score model (SiLU)"""
    model_hidden: tuple[int, ...] = (256, 256, 256)
    """hidden widths of the inverse-dynamics and forward models (ReLU)"""
    model_steps: int = 200_000
    """gradient steps of the three CDSA models"""
    score_batch: int = 1024
    """minibatch of the score model"""
    model_batch: int = 256
    """minibatch of the inverse-dynamics and forward models"""
    lr: float = 3e-4
    """Adam learning rate of the three models"""
    cosine_lr: bool = False
    """cosine-decay the learning rate to 0 over model_steps (our addition, not in the paper)"""
    lam: float = 0.25
    """weight of the auxiliary action; 0 is the base policy exactly"""
    kappa: float = 1.0
    """size of the denoising step in units of sigma_e^2 * score"""
    sigma_e: float = 0.1
    """noise level at which the score is evaluated at test time"""
    aux_form: Literal["jvp", "difference"] = "jvp"
    """jvp (first order) or difference"""
    n_correction_steps: int = 1
    """correction iterations per env step"""
    risk_alpha: float = 0.1
    """tail level of VaR / CVaR"""
    eval_episodes: int = 100
    """episodes per seed (base and corrected share reset keys)"""
    out: str = ""
    """directory for results.json; empty: print only"""


def validate(config: Config) -> None:
    """Clear ValueErrors (field named) before anything compiles or is written."""
    check_choices(config)
    for name in ("sigma_min", "sigma_max", "sigma_e"):
        value = getattr(config, name)
        if not value > 0:
            raise ValueError(f"{name} must be > 0 (a noise level), got {value}")
    if config.sigma_min >= config.sigma_max:
        raise ValueError(f"sigma_min = {config.sigma_min} must be < sigma_max = {config.sigma_max}")
    check_positive(
        config,
        "model_steps",
        "score_batch",
        "model_batch",
        "lr",
        "kappa",
        "n_correction_steps",
        "eval_episodes",
        "base_updates",
    )
    if config.lam < 0:
        raise ValueError(f"lam must be >= 0, got {config.lam}")
    if not 0.0 < config.risk_alpha < 1.0:
        raise ValueError(f"risk_alpha must lie in (0, 1), got {config.risk_alpha}")
    if not config.seeds:
        raise ValueError("seeds must not be empty")


# --- the maths ------------------------------------------------------------------------------------------


def score_apply(net: MLP, params, x: jax.Array, sigma) -> jax.Array:
    """s(x, sigma) = net([x, log sigma]) / sigma (NCSNv2 parameterisation); sigma scalar or per-row."""
    sigma = jnp.broadcast_to(jnp.asarray(sigma, jnp.float32), x.shape[:-1])
    return net.apply(params, jnp.concatenate([x, jnp.log(sigma)[..., None]], -1)) / sigma[..., None]


def dsm_loss(score_fn: Callable, x: jax.Array, sigma: jax.Array, z: jax.Array) -> jax.Array:
    """Denoising score matching, NCSN weighting: mean_i || sigma_i s(x_i + sigma_i z_i, sigma_i) + z_i ||^2.

    x, z: (B, d); sigma: (B,); `score_fn(x_noisy, sigma) -> (B, d)`."""
    s = score_fn(x + sigma[:, None] * z, sigma)
    return jnp.mean(jnp.sum((sigma[:, None] * s + z) ** 2, -1))


def sample_sigmas(key: jax.Array, n: int, sigma_min: float, sigma_max: float) -> jax.Array:
    """log sigma ~ Uniform[log sigma_min, log sigma_max]."""
    return jnp.exp(jax.random.uniform(key, (n,), minval=jnp.log(sigma_min), maxval=jnp.log(sigma_max)))


def correct(
    forward_fn: Callable,
    inverse_fn: Callable,
    score_fn: Callable,
    s: jax.Array,
    a0: jax.Array,
    lam,
    kappa: float,
    sigma_e: float,
    aux_form: str = "jvp",
    n_steps: int = 1,
) -> jax.Array:
    """The state-guided correction ([R]) for one state s and base action a0.

    forward_fn(s, a) -> predicted next state; inverse_fn(s, s') -> action; score_fn(x, sigma) -> grad log
    p_sigma. lam may be traced (a vmapped sweep); lam == 0 returns a0 bit for bit."""
    a = a0
    for _ in range(n_steps):
        s1 = forward_fn(s, a)
        ds = kappa * sigma_e**2 * score_fn(s1, sigma_e)
        if aux_form == "jvp":
            _, a_aux = jax.jvp(lambda sp: inverse_fn(s, sp), (s1,), (ds,))
        else:
            a_aux = inverse_fn(s, s1 + ds) - inverse_fn(s, s1)
        a = jnp.clip(a + lam * a_aux, -1.0, 1.0)
    return jnp.where(jnp.asarray(lam) == 0, a0, a)


def value_at_risk(returns: jax.Array, alpha: float = 0.1) -> jax.Array:
    """Empirical alpha-quantile with numpy's "lower" interpolation (an observed return), last axis."""
    n = returns.shape[-1]
    return jnp.sort(returns, -1)[..., int(np.floor(alpha * (n - 1)))]


def conditional_value_at_risk(returns: jax.Array, alpha: float = 0.1) -> jax.Array:
    """Mean of the returns <= VaR_alpha (along the last axis)."""
    var = value_at_risk(returns, alpha)[..., None]
    tail = returns <= var
    return jnp.sum(jnp.where(tail, returns, 0.0), -1) / jnp.sum(tail, -1)


# --- the models -----------------------------------------------------------------------------------------


@struct.dataclass
class Models:
    score: Any
    inverse: Any
    forward: Any
    obs_mean: jax.Array  # the dataset's state-normalisation statistics the models were trained under
    obs_std: jax.Array


def networks(config: Config, obs_dim: int, act_dim: int):
    score = MLP(config.score_hidden, obs_dim, "silu")
    inverse = MLP(config.model_hidden, act_dim, "relu")
    forward = MLP(config.model_hidden, obs_dim, "relu")
    return score, inverse, forward


def model_fns(config: Config, models: Models, obs_dim: int, act_dim: int):
    """(forward_fn, inverse_fn, score_fn) on single normalised states, for `correct`."""
    score, inverse, forward = networks(config, obs_dim, act_dim)
    return (
        lambda s, a: s + forward.apply(models.forward, jnp.concatenate([s, a], -1)),
        lambda s, sp: jnp.tanh(inverse.apply(models.inverse, jnp.concatenate([s, sp], -1))),
        lambda x, sigma: score_apply(score, models.score, x, sigma),
    )


def _dims(models: Models) -> tuple[int, int]:
    obs_dim = int(models.obs_mean.shape[-1])
    act_dim = int(jax.tree_util.tree_leaves(models.inverse)[-1].shape[-1])  # the output layer's kernel/bias
    return obs_dim, act_dim


def train_models(dataset, config: Config, key: jax.Array, obs_mean=None, obs_std=None) -> tuple[Models, dict]:
    """Train score, inverse-dynamics and forward models in one jitted scan (three Adam optimisers).

    dataset: an `offline.OfflineData` (its normalisation statistics are stored with the models) or a dict of
    already-normalised arrays `observations`, `actions`, `next_observations` (statistics from
    obs_mean/obs_std, default identity). Inverse/forward models use only stored (s, a, s') rows, never
    obs[i+1]. `key` may carry a leading seed axis (shape (n, 2)): the seeds are then trained in one vmapped
    program. Returns (models, metrics with the loss curves averaged over 100 chunks)."""
    validate(config)
    if isinstance(dataset, offline.OfflineData):
        obs_mean, obs_std, data = dataset.obs_mean, dataset.obs_std, dataset.data
    else:
        data = dataset
    obs, act = jnp.asarray(data["observations"]), jnp.asarray(data["actions"])
    nxt = jnp.asarray(data["next_observations"])
    obs_dim, act_dim = obs.shape[1], act.shape[1]
    obs_mean = np.zeros(obs_dim, np.float32) if obs_mean is None else np.asarray(obs_mean, np.float32)
    obs_std = np.ones(obs_dim, np.float32) if obs_std is None else np.asarray(obs_std, np.float32)
    states = jnp.concatenate([obs, nxt])
    score, inverse, forward = networks(config, obs_dim, act_dim)
    tx = optax.adam(
        optax.cosine_decay_schedule(config.lr, config.model_steps) if config.cosine_lr else config.lr
    )

    def init(key):
        k1, k2, k3 = jax.random.split(key, 3)
        params = (
            score.init(k1, jnp.zeros(obs_dim + 1)),
            inverse.init(k2, jnp.zeros(2 * obs_dim)),
            forward.init(k3, jnp.zeros(obs_dim + act_dim)),
        )
        return params, tuple(tx.init(p) for p in params)

    def losses(params, key):
        ks, kz, kn, km = jax.random.split(key, 4)
        x = states[jax.random.randint(ks, (config.score_batch,), 0, states.shape[0])]
        sigma = sample_sigmas(kn, config.score_batch, config.sigma_min, config.sigma_max)
        z = jax.random.normal(kz, x.shape)
        l_score = dsm_loss(lambda xn, sg: score_apply(score, params[0], xn, sg), x, sigma, z)
        idx = jax.random.randint(km, (config.model_batch,), 0, obs.shape[0])
        s, a, sp = obs[idx], act[idx], nxt[idx]
        l_inv = jnp.mean((jnp.tanh(inverse.apply(params[1], jnp.concatenate([s, sp], -1))) - a) ** 2)
        l_fwd = jnp.mean((forward.apply(params[2], jnp.concatenate([s, a], -1)) - (sp - s)) ** 2)
        return l_score + l_inv + l_fwd, (l_score, l_inv, l_fwd)  # disjoint parameters: one grad, three steps

    def step(carry, key):
        params, opts = carry
        grads, parts = jax.grad(losses, has_aux=True)(params, key)
        new = [tx.update(g, o, p) for g, o, p in zip(grads, opts, params, strict=True)]
        params = tuple(optax.apply_updates(p, u) for p, (u, _) in zip(params, new, strict=True))
        return (params, tuple(o for _, o in new)), jnp.stack(parts)

    def run(key):
        init_key, run_key = jax.random.split(key)
        (params, _), curve = jax.lax.scan(step, init(init_key), jax.random.split(run_key, config.model_steps))
        chunks = min(100, config.model_steps)
        curve = curve[: config.model_steps // chunks * chunks].reshape(chunks, -1, 3).mean(1)
        return params, curve

    key = jnp.asarray(key)
    batched = key.ndim == 2
    (p_score, p_inv, p_fwd), curve = jax.jit(jax.vmap(run) if batched else run)(key)
    mean, std = jnp.asarray(obs_mean), jnp.asarray(obs_std)
    if batched:
        mean, std = (jnp.broadcast_to(v, (key.shape[0],) + v.shape) for v in (mean, std))
    models = Models(p_score, p_inv, p_fwd, mean, std)
    return models, {"score_loss": curve[..., 0], "inverse_loss": curve[..., 1], "forward_loss": curve[..., 2]}


def check_normalisation(models: Models, obs_mean, obs_std, atol: float = 1e-6) -> None:
    """ValueError unless the base policy's state-normalisation statistics equal the models' (host values)."""
    pairs = (
        ("mean", np.asarray(models.obs_mean), np.asarray(obs_mean)),
        ("std", np.asarray(models.obs_std), np.asarray(obs_std)),
    )
    for name, ours, theirs in pairs:
        if ours.shape != theirs.shape or not np.allclose(ours, theirs, rtol=0.0, atol=atol):
            raise ValueError(
                f"normalisation statistics differ: the CDSA models were trained with state {name} "
                f"{ours.ravel()[:4]}..., the base policy uses {theirs.ravel()[:4]}...; train the models "
                "with the base policy's statistics"
            )


def make_corrected_policy(
    base_act: Callable, models: Models, config: Config, *, obs_mean, obs_std
) -> Callable:
    """`act(params, obs, key, lam=config.lam) -> action`: base action a0 = base_act(params, obs, key) on the
    normalised obs, corrected by `correct`. Pure and jittable; lam may be a traced array (vmapped sweeps).
    obs_mean/obs_std: the base policy's normalisation statistics (must equal the models', else ValueError)."""
    validate(config)
    check_normalisation(models, obs_mean, obs_std)
    return make_corrected_policy_traced(base_act, models, config, *_dims(models))


# --- entry point: base vs corrected on a dataset -------------------------------------------------------


def base_module(name: str):
    return {"td3_bc": td3_bc, "iql": iql}[name]


def base_policy(name: str, base_config, obs_dim: int, act_dim: int) -> Callable:
    """`act(params, obs, key)` of the base agent's deterministic evaluation action (before clipping)."""
    mod = base_module(name)
    if name == "td3_bc":
        actor = mod.Actor(act_dim, base_config.hidden, base_config.activation)
        return lambda p, obs, k: actor.apply(p, obs)
    actor = mod.GaussianActor(act_dim, base_config.hidden, base_config.activation)
    return lambda p, obs, k: actor.apply(p, obs)[0]


def run(config: Config) -> dict:
    """Train base agent + CDSA models per seed, evaluate both with shared reset keys; `out/results.json`."""
    validate(config)
    mod = base_module(config.base)
    base_config = dataclasses.replace(
        mod.Config(dataset=config.dataset, env=config.env),
        num_updates=config.base_updates,
        hidden=config.base_hidden,
        updates_per_iteration=min(1000, config.base_updates),
    )
    mod.validate(base_config)
    # the base agent's own preprocessing (as in its make_agent): IQL scales rewards and clips actions
    prep = {}
    if config.base == "iql":
        prep = {"reward_scaling": base_config.reward_scaling, "clip_actions": 1.0 - 1e-5}
    data = offline.prepare(
        config.dataset,
        config.env,
        base_config.view,
        base_config.normalize_states,
        brax_backend=base_config.brax_backend,
        **prep,
    )
    model_data = data
    if config.models_dataset and config.models_dataset != config.dataset:
        model_data = offline.prepare(
            config.models_dataset,
            data.env,
            base_config.view,
            base_config.normalize_states,
            brax_backend=base_config.brax_backend,
        )
        probe = Models(None, None, None, model_data.obs_mean, model_data.obs_std)
        check_normalisation(probe, data.obs_mean, data.obs_std)  # before any training or writing
    obs_dim, act_dim = data.data["observations"].shape[1], data.data["actions"].shape[1]
    agent = mod.make_agent(base_config, data)
    keys = seed_keys(config.seeds)
    base_states, _ = jax.jit(jax.vmap(train_fn(agent)))(keys)
    models, curves = train_models(model_data, config, keys)
    base_act = base_policy(config.base, base_config, obs_dim, act_dim)
    mean, std = jnp.asarray(data.obs_mean), jnp.asarray(data.obs_std)

    def evaluate_pair(actor_params, models, key):
        act = make_corrected_policy_traced(base_act, models, config, obs_dim, act_dim)

        def run_policy(lam):
            def policy(k, obs):
                return jnp.clip(act(actor_params, (obs - mean) / std, k, lam), -1.0, 1.0)

            return evaluate_policy(data.eval_env, data.env_params, policy, key, config.eval_episodes)

        return jax.vmap(run_policy)(jnp.asarray([0.0, config.lam]))  # same key: paired episodes

    returns = jax.jit(jax.vmap(evaluate_pair))(
        base_states.actor, models, jax.random.split(keys[0], len(keys))
    )
    lo, hi = reference_returns(data.metadata, data.env)
    scores = np.asarray(normalized_score(np.asarray(returns), lo, hi))  # (seeds, 2, episodes)
    summary = {}
    for i, name in enumerate(("base", "cdsa")):
        summary[name] = {
            "mean_score": scores[:, i].mean(1).tolist(),
            f"VaR_{config.risk_alpha}": np.asarray(value_at_risk(scores[:, i], config.risk_alpha)).tolist(),
            f"CVaR_{config.risk_alpha}": np.asarray(
                conditional_value_at_risk(scores[:, i], config.risk_alpha)
            ).tolist(),
        }
    result = {
        "config": dataclasses.asdict(config),
        "env": data.env,
        "summary": summary,
        "final_model_losses": {k: np.asarray(v)[:, -1].tolist() for k, v in curves.items()},
        "versions": versions(),
        "note": "CDSA is reconstructed from the paper's abstract (no public code); see purerl/agents/cdsa.py",
    }
    if config.out:
        os.makedirs(config.out, exist_ok=True)
        with open(os.path.join(config.out, "results.json"), "w") as f:
            json.dump(result, f, indent=1)
    return result


def make_corrected_policy_traced(base_act, models: Models, config: Config, obs_dim: int, act_dim: int):
    """As `make_corrected_policy` for models that are traced (inside vmap/jit): no host-side statistics check
    — the caller must have checked them (`run` does, before training)."""
    forward_fn, inverse_fn, score_fn = model_fns(config, models, obs_dim, act_dim)

    def act(params, obs, key, lam=config.lam):
        a0 = base_act(params, obs, key)
        return correct(
            forward_fn,
            inverse_fn,
            score_fn,
            obs,
            a0,
            lam,
            config.kappa,
            config.sigma_e,
            config.aux_form,
            config.n_correction_steps,
        )

    return act


def main(argv: list[str] | None = None) -> dict:
    """`purerl train cdsa [flags]` and `python -m purerl.agents.cdsa [flags]`: flags from `Config`; bad input
    (config, dataset, normalisation statistics) exits with `purerl: error: ...` before anything is written."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    config = flags.parse(Config, argv, prog="purerl train cdsa", description=(__doc__ or "").split("\n")[0])
    try:
        result = run(config)
    except ValueError as err:
        flags.fail(str(err))
    print(json.dumps(result["summary"], indent=1))
    return result


if __name__ == "__main__":
    main()
