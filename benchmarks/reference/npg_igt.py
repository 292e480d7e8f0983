"""purerl's N-PG-IGT and N-HARPG against the authors' garage fork (aabkn/Stochastic-Policy-Gradient-Methods).

Usage (from the repository root; setup in benchmarks/reference/README.md):
    make garage-env
    python -m benchmarks.reference.npg_igt --authors-code /path/to/Stochastic-Policy-Gradient-Methods
    -> benchmarks/results/reference/npg_igt.json

Their repository is the sources of the `garage` package with the authors' algorithms added
(`torch/algos/{NIGT,STORMHess}.py`, `torch/optimizers/{NIGT,STORMHess}_optimizer.py`). It needs garage-era
packages (akro, dowel, gym 0.17), so its side runs in a venv of its own on Python 3.8 (`make garage-env`,
`benchmarks/reference/requirements-garage.txt`); the checkout is imported as the package `garage`. This
process (purerl's venv, jax) drives and starts itself there with `--side authors...`; they exchange `.npz`
files (`common.py`).

1. Paired iterations, float64 on both sides, CartPole-v1 as their `run_experiment/run_PG.py` sets it up
   (softmax policy 32-32 tanh, linear-feature baseline fitted after each update, discount 0.99, no advantage
   centring, H = 200, gamma_0 0.1, eta_0 1, Hessian batch of 1 episode). Their `SoftmaxMLPPolicy` (torch's
   initialisation, their default torch seed 11) gives purerl its initial weights (torch Linear (out, in) ->
   flax Dense (in, out), flattened as purerl's policy). purerl's `update` then runs 3 iterations; the
   episodes each one rolls out (rolled out again from the same key splits outside `update`: the comparison of
   the momentum state and the parameters shows they are the same) are handed to their `NIGT._train_once` /
   `STORMHess` step in order (their trainer's `obtain_episodes` is a stand-in returning them, complete
   episodes only, as an `EpisodeBatch`), and N-HARPG's uniform draw q of the random point replays purerl's
   (`torch.rand`). Compared at every iteration: the extrapolated point (N-PG-IGT) or the random point
   (N-HARPG), the gradient estimate, the Hessian-vector correction (N-HARPG), the momentum state, the
   updated parameters and the step, and the baseline's coefficients after the fit.
2. Speed: training iterations/s of N-PG-IGT, float32, CartPole-v1, 5000 env steps per iteration, 1 seed:
   purerl's jitted `update` (rollout + estimate + step + baseline fit) against their iteration (garage's
   `LocalSampler` on gym's CartPole-v1 + `NIGT._train_once`, 1 torch thread; their per-iteration
   evaluation episodes are not run); alternating rounds, best of each.

Deviations, each toggled for the paired iterations (purerl config fields that exist for this) and each also
reported left as it is, on the same episodes: the gradient is the mean over all valid steps in their code
(purerl's default: per trajectory, `pg_normalization`), their weights carry no gamma^t (`gamma_t_prefactor`),
their extrapolation uses eta_{t-1} (`igt_eta_lag`), their Hessian-vector correction is a product of batch
means with the opposite sign on the score term (`hvp_form="garage_code"`), and their `compute_advantages`
builds its discount filter in float32 (their side's toggle: that filter in float64).

Monkeypatches on the authors' side (their files are never edited): the checkout is registered as the package
`garage`; `torch.set_default_dtype(float64)` and their `np_to_torch` keeps float64 (it casts to float32) for
the paired iterations; with the toggle, `compute_advantages` gets a float64 filter; `torch.rand` returns
purerl's q; their optimisers' `step` and `compute_grad_estimator` are wrapped to record the gradient, the
Hessian-vector correction and the points they move the policy to.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.reference import common

AUTHORS_REPO = "https://github.com/aabkn/Stochastic-Policy-Gradient-Methods"
GARAGE_PYTHON = common.HERE / ".garage-venv" / "bin" / "python"  # made by `make garage-env`
METHODS = {"npg_igt": "N-PG-IGT", "nharpg": "N-HARPG"}
ITERATIONS = 3
HORIZON, DISCOUNT, GAMMA_0, ETA_0, HIDDEN = 200, 0.99, 0.1, 1.0, (32, 32)  # run_PG.py's CartPole setting
BATCH_STEPS = 5000
TORCH_SEED = 11  # run_PG.py's default -torch_seed


# --- the authors' side (garage venv, Python 3.8, torch) ---------------------------------------------------

MISSING_MODULES = {  # imported by their package files, absent from their repository (stubs stand in)
    "garage.torch.optimizers.SGD_optimizer": "SGDOptimizer",
    "garage.torch.optimizers.SHARP_optimizer": "SHARPOptimizer",
    "garage.torch.algos.SHARP": "SHARP",
}


def import_garage(authors_code: str):
    """Register the checkout (the `garage` package's sources) as the package `garage` and import it, with
    stubs for the three modules their `torch/optimizers/__init__.py` and `torch/algos/__init__.py` import but
    the repository does not contain (`MISSING_MODULES`: optimisers and an algorithm the check never uses),
    and for `torch._six` (gone in torch 2.0; their `Categorical_Distribuation.py` imports `nan` from it)."""
    import math
    import types

    for name, attribute in MISSING_MODULES.items():
        stub = types.ModuleType(name)
        setattr(stub, attribute, None)
        sys.modules[name] = stub
    if importlib.util.find_spec("torch._six") is None:  # gone in torch 2; their categorical imports its nan
        six = types.ModuleType("torch._six")
        six.nan, six.inf = math.nan, math.inf
        sys.modules["torch._six"] = six
    spec = importlib.util.spec_from_file_location(
        "garage", os.path.join(authors_code, "__init__.py"), submodule_search_locations=[authors_code])
    module = importlib.util.module_from_spec(spec)
    sys.modules["garage"] = module
    spec.loader.exec_module(module)
    return module


def keep_float64() -> None:
    """Their `np_to_torch` casts every array to float32; for the float64 iterations it keeps float64, in every
    module that imported it by name."""
    import garage.torch.algos  # noqa: F401  (loads the modules patched below)
    import torch

    def np_to_torch(array):
        return torch.from_numpy(np.asarray(array, np.float64))

    for name in ("garage.torch._functions", "garage.torch.algos.SGDM", "garage.torch.algos.NIGT",
                 "garage.torch.algos.STORMHess"):
        sys.modules[name].np_to_torch = np_to_torch


def float64_discount_filter() -> None:
    """The toggle of their float32 discount filter: `compute_advantages` builds [1, g, g^2, ...] with
    `torch.full(..., dtype=torch.float)` and a float32 `cumprod`; here `torch.full` in that module makes
    float64."""
    import garage.torch._functions as functions
    import torch

    class Float64Full:
        def __getattr__(self, name):
            return getattr(torch, name)

        @staticmethod
        def full(size, value, dtype=None, **kwargs):
            return torch.full(size, value, dtype=torch.float64, **kwargs)

    functions.torch = Float64Full()


def env_spec():
    import akro
    from garage import EnvSpec

    return EnvSpec(akro.Box(low=-np.inf, high=np.inf, shape=(4,), dtype=np.float32), akro.Discrete(2),
                   max_episode_length=HORIZON)


def their_policy(spec):
    """run_PG.py's CartPole policy, seeded as their `set_seed(seed, torch_seed)` seeds torch."""
    import torch
    from garage.torch.policies import SoftmaxMLPPolicy

    torch.manual_seed(TORCH_SEED)
    return SoftmaxMLPPolicy(spec, hidden_sizes=[32, 32], hidden_nonlinearity=torch.nn.Tanh(),
                            output_nonlinearity=None)


def their_algorithm(method: str, spec, policy, sampler=None):
    """run_PG.py's `nigt` / `nstormhess` algorithm and optimiser (the Hessian batch size is moot: fed)."""
    from garage.np.baselines import LinearFeatureBaseline
    from garage.torch.algos import NIGT, STORMHess
    from garage.torch.optimizers import OptimizerWrapper
    from garage.torch.optimizers.NIGT_optimizer import NIGTOptimizer
    from garage.torch.optimizers.STORMHess_optimizer import STORMHessOptimizer

    kwargs = dict(env_spec=spec, policy=policy, value_function=LinearFeatureBaseline(env_spec=spec),
                  sampler=sampler, discount=DISCOUNT, center_adv=False, neural_baseline=False)
    if method == "npg_igt":
        settings = {"eta_0": ETA_0, "gamma_0": GAMMA_0, "normalized": True}
        optimiser = OptimizerWrapper((NIGTOptimizer, settings), policy)
        return NIGT(policy_optimizer=optimiser, **kwargs)
    optimiser = OptimizerWrapper((STORMHessOptimizer, {"eta_0": ETA_0, "gamma_0": GAMMA_0, "normalized": True,
                                                       "hessian_batch_size": 32}), policy)
    return STORMHess(policy_optimizer=optimiser, **kwargs)


def episode_batch(spec, batch: dict):
    """purerl's complete episodes (concatenated steps and their lengths) as their `EpisodeBatch`."""
    from garage import EpisodeBatch

    paths, start = [], 0
    for length in batch["lengths"].astype(int):
        stop = start + length
        dones = np.zeros(length, bool)
        dones[-1] = True
        paths.append({"observations": batch["obs"][start:stop], "actions": batch["actions"][start:stop],
                      "rewards": batch["rewards"][start:stop], "dones": dones, "agent_infos": {},
                      "env_infos": {}, "episode_infos": {}})
        start = stop
    return EpisodeBatch.from_list(spec, paths)


class FedTrainer:
    """Stands in for their `Trainer`: `obtain_episodes` hands out the given batches in order."""

    def __init__(self, batches):
        self.batches, self.step_itr = list(batches), 0

    def obtain_episodes(self, itr, batch_size=None, agent_update=None, env_update=None):
        if not self.batches:
            raise RuntimeError("their code asked for more batches than purerl sampled")
        return self.batches.pop(0)


def layer_arrays(tensors) -> dict:
    """[weight0, bias0, weight1, ...] torch tensors -> {"l0": {"weight", "bias"}, ...} float64 numpy."""
    arrays = [np.asarray(t.detach().cpu().numpy(), np.float64).copy() for t in tensors]
    return {f"l{i}": {"weight": arrays[2 * i], "bias": arrays[2 * i + 1]} for i in range(len(arrays) // 2)}


def record_optimiser(optimizer, method: str, draws: list, log: dict):
    """Wrap their optimiser to record (per iteration) the point the gradient is taken at, the gradient, the
    Hessian-vector correction and random point (N-HARPG), the momentum state and the parameters after it."""
    import torch

    params = optimizer.param_groups[0]["params"]
    step = optimizer.step

    def recorded_step(*args, **kwargs):
        log.setdefault("point", []).append(layer_arrays(params))
        log.setdefault("grad", []).append(layer_arrays([p.grad for p in params]))
        hvp: list = []
        if method == "nharpg":
            estimator = optimizer.compute_grad_estimator

            def recorded_estimator(p, hvp_full_p):
                hvp.append(torch.zeros_like(p) if hvp_full_p is None else hvp_full_p.detach().clone())
                return estimator(p, hvp_full_p)

            optimizer.compute_grad_estimator = recorded_estimator
            closure = kwargs["closure"]

            def recorded_closure(batch_size=None):
                log.setdefault("random_point", []).append(layer_arrays(params))
                return closure(batch_size=batch_size)

            kwargs["closure"] = recorded_closure
        out = step(*args, **kwargs)
        if method == "nharpg":
            optimizer.compute_grad_estimator = estimator
            log.setdefault("hvp", []).append(layer_arrays(hvp))
        momentum = [optimizer.state[p]["momentum_buffer"] for p in params]
        log.setdefault("momentum", []).append(layer_arrays(momentum))
        log.setdefault("after", []).append(layer_arrays(params))
        log.setdefault("gamma", []).append(optimizer.gamma)
        log.setdefault("eta", []).append(optimizer.eta)
        return out

    optimizer.step = recorded_step


def authors_init(args) -> None:
    """Their policy's initial weights (float64)."""
    import torch

    import_garage(args.authors_code)
    torch.set_default_dtype(torch.float64)
    policy = their_policy(env_spec())
    common.save_tree(args.outputs, {"layers": layer_arrays(list(policy.parameters()))})


def authors_paired(args) -> None:
    """Their iterations of one method on purerl's episodes (and q draws); writes what `record_optimiser`
    recorded and the baseline's coefficients after each fit."""
    import torch

    import_garage(args.authors_code)
    torch.set_default_dtype(torch.float64)
    keep_float64()
    if not args.float32_discount_filter:
        float64_discount_filter()
    inputs = common.load_tree(args.inputs)
    spec = env_spec()
    policy = their_policy(spec)
    with torch.no_grad():
        values = flat_layers(inputs["layers"])
        parameters = list(policy.parameters())
        if len(parameters) != len(values):
            raise RuntimeError("purerl's layers do not match their policy")
        for p, value in zip(parameters, values):  # noqa: B905  (Python 3.8 here: no zip(strict=))
            p.copy_(torch.as_tensor(value))
    algo = their_algorithm(args.method, spec, policy)
    batches = []
    for t in range(ITERATIONS):
        batches.append(episode_batch(spec, inputs["episodes"][str(t)]))
        if args.method == "nharpg" and t >= 1:
            batches.append(episode_batch(spec, inputs["hessian_episodes"][str(t)]))
    algo.trainer = FedTrainer(batches)
    draws = [float(inputs["q"][str(t)]) for t in range(1, ITERATIONS)] if args.method == "nharpg" else []
    torch.rand = lambda *size, **kwargs: torch.full(size, draws.pop(0), dtype=torch.float64)
    log: dict = {}
    record_optimiser(algo._policy_optimizer._optimizer, args.method, draws, log)
    baseline = []
    for t in range(ITERATIONS):
        if args.method == "npg_igt":
            algo._train_once(t)
        else:  # SGDM.train's iteration, without its evaluation episodes
            algo._train_once(t, algo.trainer.obtain_episodes(t))
        algo.trainer.step_itr += 1
        baseline.append(np.asarray(algo._value_function._coeffs, np.float64))
    if draws or algo.trainer.batches:
        raise RuntimeError("their code used fewer random draws or batches than purerl made")
    out = {key: {str(t): value for t, value in enumerate(values)} for key, values in log.items()
           if key not in ("gamma", "eta")}
    out["random_point"] = {str(t + 1): v for t, v in enumerate(log.get("random_point", []))}
    out["hvp"] = {str(t): v for t, v in enumerate(log.get("hvp", []))}
    out["gamma"], out["eta"] = np.asarray(log["gamma"]), np.asarray(log["eta"], np.float64)
    out["baseline"] = {str(t): b for t, b in enumerate(baseline)}
    common.save_tree(args.outputs, out)


def flat_layers(layers: dict) -> list:
    """{"l0": {"weight", "bias"}, ...} -> [weight0, bias0, weight1, ...] (their parameter order)."""
    out = []
    for i in range(len(layers)):
        out += [layers[f"l{i}"]["weight"], layers[f"l{i}"]["bias"]]
    return out


def authors_speed(args) -> None:
    """Their N-PG-IGT iteration at their own dtype (float32) with their sampler on gym's CartPole-v1:
    prints iterations/s over `--speed-iters` iterations after one untimed iteration."""
    import torch

    import_garage(args.authors_code)
    from garage.envs import GymEnv
    from garage.experiment.deterministic import set_seed
    from garage.sampler import LocalSampler

    torch.set_num_threads(1)
    set_seed(11, TORCH_SEED)
    env = GymEnv("CartPole-v1", max_episode_length=HORIZON)
    policy = their_policy(env.spec)
    sampler = LocalSampler(agents=policy, envs=env, max_episode_length=HORIZON, seed=11)
    algo = their_algorithm("npg_igt", env.spec, policy, sampler)

    class SamplingTrainer:
        step_itr = 0

        def obtain_episodes(self, itr, batch_size=None, agent_update=None, env_update=None):
            return sampler.obtain_samples(itr, batch_size or BATCH_STEPS,
                                          agent_update=policy.get_param_values())

    algo.trainer = SamplingTrainer()
    algo._train_once(0)
    start = time.perf_counter()
    for t in range(1, args.speed_iters + 1):
        algo._train_once(t)
    rate = args.speed_iters / (time.perf_counter() - start)
    print(json.dumps({"iterations_per_s": rate, "torch_threads": torch.get_num_threads()}))


# --- the purerl side (purerl venv, jax) -----------------------------------------------------------------

def paired_config(method: str, authors_behaviour: bool = True):
    """purerl's config of the paired iterations: run_PG.py's CartPole setting, and with `authors_behaviour`
    every deviation toggled to their code (module docstring)."""
    from purerl.agents import harpg, npg_igt

    common_fields = dict(env="CartPole-v1", num_iters=ITERATIONS, gamma_0=GAMMA_0, eta_0=ETA_0,
                         batch_steps=BATCH_STEPS, discount=DISCOUNT, hidden=HIDDEN,
                         max_episode_length=HORIZON)
    if authors_behaviour:
        common_fields.update(pg_normalization="per_step_mean", gamma_t_prefactor=False)
    if method == "npg_igt":
        return npg_igt.Config(igt_eta_lag=authors_behaviour, **common_fields)
    return harpg.Config(method="nharpg", hessian_batch_episodes=1,
                        hvp_form="garage_code" if authors_behaviour else "paper", **common_fields)


def policy_layout():
    """(ravel, unravel) between purerl's flat θ and flax Dense params of the CartPole policy."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from purerl.nn import PGPolicy

    net = PGPolicy(action_dim=2, discrete=True, hidden=HIDDEN, activation="tanh")
    template = net.init(jax.random.key(0), jnp.zeros(4))
    _, unravel = ravel_pytree(template)

    def ravel(layers: dict):
        pairs = [(layers[f"l{i}"]["weight"], layers[f"l{i}"]["bias"]) for i in range(len(layers))]
        tree = {"params": common.dense_params(pairs)}
        if jax.tree.structure(tree) != jax.tree.structure(template):
            raise RuntimeError("their policy's layers do not match purerl's CartPole policy")
        with jax.enable_x64(True):
            return np.asarray(ravel_pytree(tree)[0], np.float64)

    def layers_of(theta) -> dict:
        with jax.enable_x64(True):
            pairs = common.linear_pairs(jax.tree.map(np.asarray, unravel(jnp.asarray(theta)))["params"])
        return {f"l{i}": {"weight": w, "bias": b} for i, (w, b) in enumerate(pairs)}

    return ravel, layers_of


def complete_episodes(ep) -> dict:
    """purerl's `Episodes` -> the steps of its complete episodes, in order, and their lengths."""
    mask = np.asarray(ep.mask) > 0
    segment = np.asarray(ep.segment)[mask]
    starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]])
    lengths = np.diff(np.r_[starts, segment.size])
    return {"obs": np.asarray(ep.obs, np.float64)[mask], "actions": np.asarray(ep.action)[mask],
            "rewards": np.asarray(ep.reward, np.float64)[mask], "lengths": lengths}


def our_iterations(method: str, theta0) -> dict:
    """purerl's paired iterations (float64, every deviation toggled): per iteration the episodes and draws
    `update` used, the pieces of its estimate (recomputed from the same key splits), the estimates with each
    deviation left as it is on the same episodes, and the state after `update`."""
    import jax
    import jax.numpy as jnp

    from purerl import pg_estimators as pge
    from purerl.agents import harpg, npg_igt

    config = paired_config(method)
    module = npg_igt if method == "npg_igt" else harpg
    agent, core = module.make_agent(config), pge.make_core(config)
    paper = {  # one deviation left as it is (purerl's default), for the report
        "per-step mean": pge.make_core(dataclasses.replace(config, pg_normalization="per_trajectory")),
        "no gamma^t": pge.make_core(dataclasses.replace(config, gamma_t_prefactor=True)),
    }
    _, mom_exp = config.exponents()
    state = agent.init(jax.random.key(0))
    theta0 = jnp.asarray(theta0, jnp.float64)
    state = state.replace(theta=theta0, theta_prev=theta0, direction=jnp.zeros_like(theta0),
                          baseline=jnp.zeros(state.baseline.shape, jnp.float64))
    update, rollout = jax.jit(agent.update), jax.jit(core.rollout)
    hessian_rollout = jax.jit(core.hessian_rollout, static_argnums=2)
    out: dict = {}

    def keep(name, t, value):
        out.setdefault(name, {})[str(t)] = np.asarray(value)

    for t in range(ITERATIONS):
        baseline = state.baseline
        if method == "npg_igt":
            key, rollout_key = jax.random.split(state.key)
            eta_t = pge.momentum(config.method, state.eta_0, t, mom_exp)
            eta_lag = pge.momentum(config.method, state.eta_0, max(t - 1, 0), mom_exp)

            def grad_at(point, rollout_key=rollout_key, baseline=baseline):
                ep, _ = rollout(point, rollout_key)
                return core.gradient(point, ep, core.weights(ep, baseline)), ep

            _, point, g, ep = npg_igt.igt_direction(t, state.theta, state.theta_prev, state.direction, eta_t,
                                                    eta_lag, grad_at)
            keep("point", t, point)
            unlagged = npg_igt.igt_direction(t, state.theta, state.theta_prev, state.direction, eta_t, eta_t,
                                             lambda p: (p, None))[1]
            keep("point without the eta lag", t, unlagged)
        else:
            key, rollout_key, hess_key, q_key = jax.random.split(state.key, 4)
            point = state.theta
            ep, _ = rollout(point, rollout_key)
            g = core.gradient(point, ep, core.weights(ep, baseline))
            q = jax.random.uniform(q_key, dtype=jnp.float64)
            theta_hat = q * state.theta + (1.0 - q) * state.theta_prev
            ep_h, _ = hessian_rollout(theta_hat, hess_key, config.hessian_batch_episodes)
            v = state.theta - state.theta_prev
            segments = config.hessian_batch_episodes * config.horizon
            for form, name in (("garage_code", "hvp"), ("paper", "hvp, paper form")):
                hvp = pge.hessian_vector(core.policy.logp, theta_hat, ep_h, core.weights(ep_h, baseline), v,
                                         segments, form, config.pg_normalization)
                keep(name, t, hvp)
            keep("q", t, q)
            keep("random point", t, theta_hat)
            out.setdefault("hessian_episodes", {})[str(t)] = complete_episodes(ep_h)
        keep("gradient", t, g)
        for name, variant in paper.items():
            g_variant = variant.gradient(point, ep, variant.weights(ep, baseline))
            keep(f"gradient, {name} left as it is", t, g_variant)
        out.setdefault("episodes", {})[str(t)] = complete_episodes(ep)
        keep("theta", t, state.theta)
        state, _ = update(state)
        keep("momentum", t, state.direction)
        keep("after", t, state.theta)
        keep("baseline", t, state.baseline)
    return out


def paired_quantities(method: str, ours: dict, theirs: dict, ravel) -> dict:
    """name -> (ours, theirs) over the paired iterations (their loss gradients and momentum negated: purerl
    ascends J, their optimisers descend -J)."""
    label, pairs = METHODS[method], {}
    for t in range(ITERATIONS):
        k, name = str(t), f"{label} t={t}"
        if method == "npg_igt":
            pairs[f"{name}: extrapolated point"] = (ours["point"][k], ravel(theirs["point"][k]))
        elif t >= 1:
            pairs[f"{name}: random point"] = (ours["random point"][k], ravel(theirs["random_point"][k]))
        pairs[f"{name}: gradient estimate"] = (ours["gradient"][k], -ravel(theirs["grad"][k]))
        if method == "nharpg" and t >= 1:
            pairs[f"{name}: Hessian-vector correction"] = (ours["hvp"][k], -ravel(theirs["hvp"][k]))
        pairs[f"{name}: momentum state d_t"] = (ours["momentum"][k], -ravel(theirs["momentum"][k]))
        pairs[f"{name}: parameters after"] = (ours["after"][k], ravel(theirs["after"][k]))
        their_before = ravel(theirs["after"][str(t - 1)]) if t else ours["theta"]["0"]
        their_step = ravel(theirs["after"][k]) - their_before
        pairs[f"{name}: step"] = (ours["after"][k] - ours["theta"][k], their_step)
        pairs[f"{name}: baseline coefficients"] = (ours["baseline"][k], theirs["baseline"][k])
    return pairs


def left_as_is(method: str, ours: dict, theirs: dict, theirs_float32: dict, ravel) -> list[dict]:
    """Each deviation left as it is: the worst difference it makes over the iterations, same episodes."""
    label = METHODS[method]

    def worst_of(pairs):
        quantities = common.differences(pairs)
        name, _ = common.worst(quantities)
        return {"quantity": name, **quantities[name]}

    iters = [str(t) for t in range(ITERATIONS)]
    grad = lambda k: -ravel(theirs["grad"][k])  # noqa: E731
    report = [
        ("per-step mean gradient", "pg_normalization='per_step_mean'",
         "their loss is the mean of log pi * advantage over all valid steps of the batch; purerl's default "
         "(the paper) averages per trajectory",
         {f"{label} t={k}: gradient estimate": (ours["gradient, per-step mean left as it is"][k], grad(k))
          for k in iters}),
        ("no gamma^t weight", "gamma_t_prefactor=False",
         "their advantage of step t is the reward-to-go minus the baseline; purerl's default (the paper) "
         "weights it by gamma^t",
         {f"{label} t={k}: gradient estimate": (ours["gradient, no gamma^t left as it is"][k], grad(k))
          for k in iters}),
    ]
    if method == "npg_igt":
        report.append(("extrapolation with eta_{t-1}", "igt_eta_lag=True",
                       "their optimiser extrapolates with the eta of the previous step (its `eta` is "
                       "updated in `step`, after `update_model_to_line_point`); the paper uses eta_t",
                       {f"{label} t={k}: extrapolated point": (ours["point without the eta lag"][k],
                                                               ravel(theirs["point"][k]))
                        for k in iters[1:]}))
    else:
        report.append(("Hessian-vector correction of the published code", "hvp_form='garage_code'",
                       "their correction is H v + grad(loss) * (grad(mean step log pi) . v) in loss terms: a "
                       "product of batch means with the opposite sign on the score term; purerl's default is "
                       "the paper's unbiased mean of per-trajectory products",
                       {f"{label} t={k}: Hessian-vector correction": (ours["hvp, paper form"][k],
                                                                      -ravel(theirs["hvp"][k]))
                        for k in iters[1:]}))
    report.append(("their float32 discount filter", "their side: compute_advantages' filter in float64",
                   "their compute_advantages builds the discount powers [1, g, g^2, ...] in float32 (a "
                   "cumprod of float32 0.99) even in a float64 run",
                   paired_quantities(method, ours, theirs_float32, ravel)))
    return [{"name": f"{label}: {name}", "what": what, "toggle": toggle, "untoggled_worst": worst_of(pairs)}
            for name, toggle, what, pairs in report]


def purerl_speed_timer(iters: int):
    """A timer (iterations/s) of purerl's jitted N-PG-IGT `update` at the paired setting (float32, the
    paper's defaults otherwise), and its compile seconds."""
    import jax

    from benchmarks import harness
    from purerl.agents import npg_igt

    config = dataclasses.replace(paired_config("npg_igt", authors_behaviour=True), num_iters=100)
    agent = npg_igt.make_agent(config)
    state = jax.jit(agent.init)(jax.random.key(0))
    program, compile_s = harness.compile_timed(agent.update, state)
    holder = {"state": jax.block_until_ready(program(state)[0])}  # warm-up call

    def timer():
        start = time.perf_counter()
        for _ in range(iters):
            holder["state"] = program(holder["state"])[0]
        jax.block_until_ready(holder["state"])
        return iters / (time.perf_counter() - start)

    return timer, compile_s


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors-code", required=True, help="a checkout of the authors' repository")
    parser.add_argument("--authors-commit", default="", help="its commit (default: git rev-parse HEAD there)")
    parser.add_argument("--reference-python", default=str(GARAGE_PYTHON),
                        help="python of the garage venv (make garage-env)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating speed rounds (0: no speed)")
    parser.add_argument("--speed-iters", type=int, default=5, help="iterations timed per speed round")
    parser.add_argument("--side", choices=("purerl", "authors-init", "authors", "authors-speed"),
                        default="purerl", help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=tuple(METHODS), default="npg_igt", help=argparse.SUPPRESS)
    parser.add_argument("--float32-discount-filter", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", default="", help=argparse.SUPPRESS)
    parser.add_argument("--outputs", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.module = "benchmarks.reference.npg_igt"
    if args.side == "purerl":
        if not os.path.isfile(os.path.join(args.authors_code, "torch", "algos", "NIGT.py")):
            parser.exit(2, f"purerl: error: --authors-code {args.authors_code!r} has no "
                           "torch/algos/NIGT.py\n")
        if not os.access(args.reference_python, os.X_OK):
            parser.exit(2, f"purerl: error: no garage python at {args.reference_python!r} (run make "
                           "garage-env, or pass --reference-python)\n")
        if args.rounds < 0 or args.speed_iters < 1:
            parser.exit(2, "purerl: error: need --rounds >= 0 and --speed-iters >= 1\n")
        args.authors_code = os.path.abspath(args.authors_code)
    return args


def check(args) -> None:
    import jax

    from benchmarks.reference.td3_bc import run_authors, verdict_of

    ravel, _ = policy_layout()
    pairs, deviations = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        init = Path(tmp) / "init.npz"
        run_authors(args, "authors-init", "", str(init))
        layers = common.load_tree(init)["layers"]
        for method in METHODS:
            with jax.enable_x64(True):
                ours = our_iterations(method, ravel(layers))
            inputs = Path(tmp) / f"inputs_{method}.npz"
            common.save_tree(inputs, {"layers": layers, "episodes": ours["episodes"], "q": ours.get("q", {}),
                                      "hessian_episodes": ours.get("hessian_episodes", {})})
            runs = {}
            for filter32 in (False, True):
                outputs = Path(tmp) / f"outputs_{method}_{filter32}.npz"
                run_authors(args, "authors", str(inputs), str(outputs),
                            extra=["--method", method, *(["--float32-discount-filter"] if filter32 else [])])
                runs[filter32] = common.load_tree(outputs)
            pairs.update(paired_quantities(method, ours, runs[False], ravel))
            deviations += left_as_is(method, ours, runs[False], runs[True], ravel)
    quantities = common.differences(pairs)
    print("npg_igt: paired float64 iterations, max abs / rel differences:")
    common.print_differences(quantities)
    print("each deviation left as it is (worst over the iterations): " + common.left_as_is(deviations))

    speed, compile_s = {}, None
    if args.rounds:
        ours_timer, compile_s = purerl_speed_timer(args.speed_iters)

        def authors_timer():
            out = run_authors(args, "authors-speed", "", extra=["--speed-iters", str(args.speed_iters)])
            return json.loads(out.strip().splitlines()[-1])["iterations_per_s"]

        rates = common.alternating_rates({"purerl": ours_timer, "authors": authors_timer}, args.rounds)
        speed = common.speed_summary(rates["purerl"], rates["authors"], "iterations/s", {
            "method": "N-PG-IGT", "env": "CartPole-v1", "env_steps_per_iteration": BATCH_STEPS,
            "dtype": "float32", "seeds": 1, "iterations_per_round": args.speed_iters,
            "authors_torch_threads": 1, "cpu_count": os.cpu_count()})
        print(f"speed: purerl {speed['purerl']:,.1f} vs authors {speed['authors']:,.1f} iterations/s "
              f"(ratio {speed['ratio_purerl_over_authors']})")
    res = common.result(
        "npg_igt", "N-PG-IGT and N-HARPG against aabkn/Stochastic-Policy-Gradient-Methods: three paired "
        "float64 iterations each (CartPole-v1) and iterations/s",
        authors_repo=AUTHORS_REPO,
        authors_commit=common.authors_commit(args.authors_code, args.authors_commit),
        quantities=quantities, deviations=deviations, speed=speed,
        verdict=verdict_of(quantities, 1e-6, deviations),
        config=dataclasses.asdict(paired_config("npg_igt")),
        compile_s=None if compile_s is None else round(compile_s, 2),
        extra={"paired_iterations": ITERATIONS, "paired_methods": list(METHODS.values()),
               "nharpg_config": dataclasses.asdict(paired_config("nharpg"))})
    print(res["extra"]["verdict"])
    print(f"-> {common.write(res)}")


def main(argv=None) -> None:
    args = parse(argv)
    sides = {"authors-init": authors_init, "authors": authors_paired, "authors-speed": authors_speed}
    if args.side in sides:
        return sides[args.side](args)
    from benchmarks import harness  # noqa: F401  (first: the XLA CPU flags of the purerl commands)

    check(args)


if __name__ == "__main__":
    main()
