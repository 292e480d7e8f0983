"""DPO and PPO-clip against the authors' JAX code (luchris429/purejaxrl); LPO's learned drift against
luchris429/discovered-policy-optimisation. One paired float64 iteration per objective, then speed.

    python -m benchmarks.reference.dpo --authors-code /path/to/purejaxrl \
        [--dpo-code /path/to/discovered-policy-optimisation]

Their code is JAX/flax/optax, so both sides run in ONE process under purerl's venv (no reference venv).
purejaxrl's `dpo_continuous_action.py` (DPO) and `ppo_continuous_action.py` (PPO-clip) define the whole
algorithm inside `make_train`, so their `train` itself runs: one iteration of 2 epochs x 2 minibatches (4 Adam
steps; from the second on r != 1, so the drift and the clip act) on brax inverted_pendulum through their
`BraxGymnaxWrapper`, with these documented shims (their files untouched):
- `wrappers.py` imports `navix` for a wrapper not used here: a stub module;
- their module's `jax` is a forwarding proxy whose `lax.scan` records the rollout (the scan over `_env_step`)
  and its last observation, whose `random.permutation` records each epoch's permutation, and whose
  `value_and_grad` records each step's loss, its parts, the gradients and the minibatch `_loss_fn` sees;
- their `TrainState.create` casts the initial parameters to float64 (flax initialises float32 parameters even
  under x64), so the whole iteration runs in float64.
The purerl side is `purerl.agents.ppo.make_agent` (objective "dpo" / "clip") with the authors' initial weights
(layouts mapped), its rollout replaced by theirs (every `done` marked terminated, the final observation the
next one: the truncation deviation below), its permutations replaced by theirs (the same draws on both
sides), and its `jax.grad` wrapped the same way to record each step. Compared per step: GAE advantages and
targets, the losses (actor, value, entropy, total), the mean drift (DPO) and every gradient tensor; after the
iteration: Adam's moments and every parameter tensor. The paired learning rate is 1e-2 (at purejaxrl's 3e-4
the ratios barely leave 1 in 4 steps).

LPO (`--dpo-code`): `dpo/brax_drift.py:compute_drift_loss` (their LPO loss, written for jax 0.3 / brax 0.0.11)
is imported with a stub for `brax.training.normalization` (gone from brax, unused by that function) and its
`jnp.clip(x, a_min=, a_max=)` keywords (gone from jax) forwarded as jnp.clip's bounds, and called with a toy
policy whose "logits" are the log-probabilities themselves, so their drift sees exactly the log-ratios and
advantages given. Their drift net (bias-free Dense(128) -> tanh -> Dense(1) on [log r, (log r)^2, 1 - r,
(1 - r)^2] and A times those, `main_drift_brax.py`) is purerl's `DriftNet` up to the order and sign of the
features: their kernel is mapped onto purerl's rows. Compared: their policy loss and its gradient w.r.t. the
log-probabilities against purerl's -E[r A - D(r, A)] with `as_ppo_drift`, with and without the PPO-clip
offset.
TA-LPO (the drift also reading n/N) has no public code to check against.

Speed: training iterations/s of one jitted DPO training run on both sides (float32, the same brax env and
backend, network, batch, epochs and minibatches), alternating rounds in the same process.
Result: `benchmarks/results/reference/dpo.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import types
from pathlib import Path

import numpy as np

from benchmarks.reference import common

AUTHORS_REPO = "luchris429/purejaxrl"
DPO_REPO = "luchris429/discovered-policy-optimisation"
AUTHORS_MODULES = ("wrappers", "dpo_continuous_action", "ppo_continuous_action")
LPO_MODULE = "brax_drift"
# lr 1e-2: at purejaxrl's 3e-4 the ratios barely leave 1 in 4 steps (the drift and the clip would hardly act)
PAIRED = {
    "env": "inverted_pendulum",
    "num_envs": 4,
    "num_steps": 64,
    "lr": 1e-2,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_eps": 0.2,
    "ent_coef": 0.01,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "hidden": (256, 256),
}
EPOCHS, MINIBATCHES = 2, 2  # the paired iteration: 4 Adam steps, the later ones with r != 1 (a live drift)

TRUNCATION = {
    "name": "time-limit truncation",
    "what": "purejaxrl's GAE cuts the bootstrap at every done (a time limit included); purerl bootstraps a "
    "truncated episode from its final observation and cuts it only at termination",
    "toggle": "the paired update gives purerl the authors' rollout with every done marked terminated (the "
    "same targets); it changes GAE at time limits only, not the update",
}
BRANCHES = {
    "name": "DPO branch combination",
    "what": "the authors combine DPO's two branches as drift1 * is_pos + drift2 * (1 - is_pos); purerl's "
    "dpo_drift selects with jnp.where. They differ only where the unselected branch is not finite: an "
    "advantage of exactly 0 with an infinite log-ratio (their loss is nan, purerl's finite), "
    "which a Gaussian policy with finite parameters and log-probabilities cannot produce; gradients "
    "are the same (both send a zero cotangent into the unselected branch)",
    "toggle": "none needed: the paired update's drift and gradients agree; the edge case is shown by "
    "`branch_edge_case` in this result (their loss on a crafted minibatch)",
}
INITIALISATION = {
    "name": "network",
    "what": "purejaxrl's continuous PPO/DPO nets are 256-256 tanh (actor and critic separate, orthogonal "
    "init as purerl's); purerl's default is 64-64",
    "toggle": "hidden=(256, 256) in the paired update and the speed rounds; the paired update starts both "
    "sides from the authors' initial weights",
}
FEATURES = {
    "name": "LPO feature order and sign",
    "what": "their drift net reads [log r, (log r)^2, 1 - r, (1 - r)^2] and A times those; purerl's reads "
    "[r - 1, (r - 1)^2, log r, (log r)^2] and A times those: the same function class, first-layer "
    "columns permuted and negated",
    "toggle": "their kernel is mapped onto purerl's feature order (rows permuted, the (1 - r) and A(1 - r) "
    "rows negated); nothing else differs",
}


class Proxy:
    """Forwards every attribute to `target`, except the `overrides` given."""

    def __init__(self, target, **overrides):
        self._target = target
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(self._target, name)


@contextlib.contextmanager
def global_x64():
    """x64 for every thread while inside: `jax.enable_x64` is thread-local, and the recording callbacks run on
    another thread, which would be handed the values converted to float32."""
    import jax

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


def record(store: dict, key: str, tree) -> None:
    """Append `tree`'s values (as numpy) to store[key] each time the traced program reaches this point (in
    program order: the callback is ordered)."""
    import jax

    store.setdefault(key, [])
    jax.debug.callback(lambda t: store[key].append(jax.tree.map(np.array, t)), tree, ordered=True)


# --- the authors' side: purejaxrl ---------------------------------------------------------------------------


def import_purejaxrl(directory: str) -> types.SimpleNamespace:
    """Their DPO and PPO modules, imported from the checkout with the navix stub."""
    clash = [name for name in AUTHORS_MODULES if name in sys.modules]
    if clash:
        raise RuntimeError(f"modules named like the authors' are already imported: {clash}")
    sys.modules.setdefault(
        "navix", types.ModuleType("navix")
    )  # only their (unused) NavixGymnaxWrapper needs it
    sys.path.insert(0, str(Path(directory) / "purejaxrl"))
    import dpo_continuous_action  # noqa: I001 (their modules, from their checkout)
    import ppo_continuous_action

    return types.SimpleNamespace(dpo=dpo_continuous_action, clip=ppo_continuous_action)


def authors_config(
    objective: str, num_envs: int, num_steps: int, iterations: int, epochs: int, minibatches: int, env: str
) -> dict:
    config = {
        "LR": PAIRED["lr"],
        "NUM_ENVS": num_envs,
        "NUM_STEPS": num_steps,
        "TOTAL_TIMESTEPS": num_envs * num_steps * iterations,
        "UPDATE_EPOCHS": epochs,
        "NUM_MINIBATCHES": minibatches,
        "GAMMA": PAIRED["gamma"],
        "GAE_LAMBDA": PAIRED["gae_lambda"],
        "CLIP_EPS": PAIRED["clip_eps"],
        "ENT_COEF": PAIRED["ent_coef"],
        "VF_COEF": PAIRED["vf_coef"],
        "MAX_GRAD_NORM": PAIRED["max_grad_norm"],
        "ACTIVATION": "tanh",
        "ENV_NAME": env,
        "ANNEAL_LR": True,
        "NORMALIZE_ENV": False,
        "DEBUG": False,
    }
    if objective == "dpo":
        config.update(DPO_ALPHA=2.0, DPO_BETA=0.6)
    return config


def run_authors_recorded(module, config: dict, seed: int) -> tuple[dict, object]:
    """Their `train` (jitted, float64) with the recording proxy of the module docstring: (records, output)."""
    import jax
    import jax.numpy as jnp

    store: dict = {}
    saved = module.jax, module.TrainState

    def scan(f, init, xs=None, length=None, **kwargs):
        carry, ys = jax.lax.scan(f, init, xs, length, **kwargs)
        if getattr(f, "__name__", "") == "_env_step":
            record(
                store,
                "rollout",
                {
                    "obs": ys.obs,
                    "action": ys.action,
                    "value": ys.value,
                    "reward": ys.reward,
                    "log_prob": ys.log_prob,
                    "done": ys.done,
                    "last_obs": carry[2],
                },
            )
        return carry, ys

    def permutation(key, n, *args, **kwargs):
        perm = jax.random.permutation(key, n, *args, **kwargs)
        record(store, "permutation", perm)
        return perm

    def value_and_grad(fun, **kwargs):
        store["loss_fn"] = fun
        inner = jax.value_and_grad(fun, **kwargs)

        def wrapped(params, traj_batch, gae, targets):
            (loss, aux), grads = inner(params, traj_batch, gae, targets)
            record(
                store,
                "step",
                {
                    "params": params,
                    "obs": traj_batch.obs,
                    "action": traj_batch.action,
                    "log_prob": traj_batch.log_prob,
                    "gae": gae,
                    "targets": targets,
                    "loss": loss,
                    "value_loss": aux[0],
                    "actor_loss": aux[1],
                    "entropy": aux[2],
                    "grads": grads,
                },
            )
            return (loss, aux), grads

        return wrapped

    class Float64TrainState(module.TrainState):
        @classmethod
        def create(cls, *, params, **kwargs):
            return super().create(
                params=jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params), **kwargs
            )

    module.jax = Proxy(
        jax,
        value_and_grad=value_and_grad,
        lax=Proxy(jax.lax, scan=scan),
        random=Proxy(jax.random, permutation=permutation),
    )
    module.TrainState = Float64TrainState
    try:
        out = jax.jit(module.make_train(config))(jax.random.PRNGKey(seed))
        jax.block_until_ready(out)
        jax.effects_barrier()
    finally:
        module.jax, module.TrainState = saved
    return store, out


def to_purerl_params(theirs: dict) -> dict:
    """Their ActorCritic params (actor Dense_0-2, log_std, critic Dense_3-5) in purerl's layout."""
    p = theirs["params"]
    return {
        "params": {
            "actor": {f"Dense_{i}": dict(p[f"Dense_{i}"]) for i in range(3)},
            "critic": {f"Dense_{i}": dict(p[f"Dense_{i + 3}"]) for i in range(3)},
            "log_std": p["log_std"],
        }
    }


def adam_moments(opt_state) -> tuple:
    """(mu, nu) of optax.chain(clip_by_global_norm, adam)'s state."""
    adam = opt_state[1][0]
    return adam.mu, adam.nu


def purerl_adam_moments(state) -> tuple:
    """(mu, nu) of purerl's PPO optimiser in the parameters' layout: it runs the same chain on all parameters
    raveled into one vector (optax.flatten), so its moments are unravelled first."""
    from jax.flatten_util import ravel_pytree

    unravel = ravel_pytree(state.params)[1]
    return tuple(unravel(moment) for moment in adam_moments(state.opt_state))


# --- the purerl side ------------------------------------------------------------------------------------


def purerl_config(
    objective: str, num_envs: int, num_steps: int, iterations: int, epochs: int, minibatches: int, env: str
):
    from purerl.agents import ppo

    return ppo.Config(
        env=env,
        total_timesteps=num_envs * num_steps * iterations,
        num_envs=num_envs,
        num_steps=num_steps,
        update_epochs=epochs,
        num_minibatches=minibatches,
        lr=PAIRED["lr"],
        anneal_lr=True,
        gamma=PAIRED["gamma"],
        gae_lambda=PAIRED["gae_lambda"],
        clip_eps=PAIRED["clip_eps"],
        clip_value=True,
        ent_coef=PAIRED["ent_coef"],
        vf_coef=PAIRED["vf_coef"],
        max_grad_norm=PAIRED["max_grad_norm"],
        normalize_advantages=True,
        hidden=PAIRED["hidden"],
        activation="tanh",
        brax_backend="positional",
        objective=objective,
    )


def purerl_update_on(config, rollout: dict, permutations: list, params) -> tuple[dict, object]:
    """purerl's `update` on the authors' rollout, permutations and initial params (float64): (records, new
    state). Its rollout is replaced by theirs; its `shuffle.permutation` returns theirs (the epoch told
    apart by its key, split from the state's key as `update` splits it); its `jax.grad` records each step."""
    import jax
    import jax.numpy as jnp

    from purerl.agents import ppo
    from purerl.rollout import Transition

    store: dict = {}
    obs = jnp.asarray(rollout["obs"])
    next_obs = jnp.concatenate([obs[1:], jnp.asarray(rollout["last_obs"])[None]], axis=0)
    done = jnp.asarray(rollout["done"])
    traj = Transition(
        obs=obs,
        action=jnp.asarray(rollout["action"]),
        reward=jnp.asarray(rollout["reward"]),
        terminated=done,
        done=done,
        log_prob=jnp.asarray(rollout["log_prob"]),
        final_obs=next_obs,
        episode_return=jnp.zeros_like(jnp.asarray(rollout["reward"])),
    )

    def make_rollout(*args, **kwargs):  # theirs, then purerl's critic over it
        _, critic = saved[0](*args, **kwargs)
        return (lambda params, env_state, last_obs, key: (env_state, next_obs[-1], traj)), critic

    def grad(fun, **kwargs):
        inner = jax.grad(fun, **kwargs)

        def wrapped(params, minibatch, progress):
            grads, stats = inner(params, minibatch, progress)
            record(store, "step", {"params": params, "minibatch": minibatch, "grads": grads, "stats": stats})
            return grads, stats

        return wrapped

    key = jax.random.PRNGKey(0)
    epoch_keys = jax.random.split(jax.random.split(key, 3)[2], config.update_epochs)  # as ppo's update splits

    def permutation(perm_key, n):
        epoch = jnp.argmax(jnp.all(perm_key == epoch_keys, axis=-1))
        return jnp.asarray(np.stack(permutations))[epoch]

    saved = ppo.make_rollout, ppo.jax, ppo.shuffle
    ppo.make_rollout = make_rollout
    ppo.jax = Proxy(jax, grad=grad)
    ppo.shuffle = Proxy(ppo.shuffle, permutation=permutation)  # PPO draws its epochs' orders through it
    try:
        agent = ppo.make_agent(config)
        state = agent.init(jax.random.PRNGKey(1))
        as64 = lambda x: jnp.asarray(x, jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x  # noqa: E731
        state = state.replace(
            params=jax.tree.map(as64, params),
            key=key,
            opt_state=jax.tree.map(lambda x: jnp.zeros_like(as64(x)), state.opt_state),
        )
        new_state, _ = jax.jit(agent.update)(state)
        jax.block_until_ready(new_state)
        jax.effects_barrier()
    finally:
        ppo.make_rollout, ppo.jax, ppo.shuffle = saved
    return store, new_state


def tensors(prefix: str, ours: dict, theirs: dict) -> dict:
    """name -> (ours, theirs) for every leaf of two pytrees of the same (purerl) layout."""
    flat_ours, flat_theirs = common.flatten(ours), common.flatten(theirs)
    return {
        f"{prefix}/{name.removeprefix('params/')}": (flat_ours[name], flat_theirs[name])
        for name in flat_theirs
    }


def mean_drift_pair(module, step: dict, mine: dict) -> tuple:
    """The mean DPO drift of one step: purerl's `dpo_drift` on its own ratios; the authors' from their actor
    loss -(r A - D).mean(), i.e. loss + mean(r A), with their network's ratios."""
    import jax.numpy as jnp

    from purerl.drift import dpo_drift
    from purerl.nn import ActorCritic

    obs, action, old_log_prob, _, advantages, _ = mine["minibatch"]
    pi, _ = module.ActorCritic(action.shape[-1], activation="tanh").apply(step["params"], step["obs"])
    gae = (step["gae"] - step["gae"].mean()) / (step["gae"].std() + 1e-8)
    theirs = step["actor_loss"] + jnp.mean(jnp.exp(pi.log_prob(action) - old_log_prob) * gae)
    our_pi, _ = ActorCritic(action_dim=action.shape[-1], discrete=False, hidden=PAIRED["hidden"]).apply(
        mine["params"], obs
    )
    log_ratio = our_pi.log_prob(action) - old_log_prob
    adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    return dpo_drift(jnp.exp(log_ratio), adv, log_ratio).mean(), theirs


def paired_update(authors, objective: str, args) -> tuple[dict, dict]:
    """One float64 iteration (EPOCHS x MINIBATCHES Adam steps) on both sides: (compared quantities, records).
    Call under x64."""
    module = authors.dpo if objective == "dpo" else authors.clip
    shape = dict(
        num_envs=PAIRED["num_envs"],
        num_steps=PAIRED["num_steps"],
        iterations=1,
        epochs=EPOCHS,
        minibatches=MINIBATCHES,
        env=PAIRED["env"],
    )
    theirs, out = run_authors_recorded(module, authors_config(objective, **shape), args.seed)
    config = purerl_config(objective, **shape)
    ours, new_state = purerl_update_on(
        config, theirs["rollout"][0], theirs["permutation"], to_purerl_params(theirs["step"][0]["params"])
    )
    if len(ours["step"]) != len(theirs["step"]) or len(theirs["step"]) != EPOCHS * MINIBATCHES:
        raise RuntimeError(f"recorded {len(ours['step'])} purerl and {len(theirs['step'])} authors' steps")
    pairs = {}
    for i, (mine, step) in enumerate(zip(ours["step"], theirs["step"], strict=True)):
        obs, _, _, _, advantages, targets = mine["minibatch"]
        stats = mine["stats"]
        total = (
            stats["policy_loss"] + config.vf_coef * stats["value_loss"] - config.ent_coef * stats["entropy"]
        )
        at = f"step{i + 1}"
        pairs.update(
            {
                f"{at}/minibatch_obs": (obs, step["obs"]),
                f"{at}/gae_advantages": (advantages, step["gae"]),
                f"{at}/gae_targets": (targets, step["targets"]),
                f"{at}/loss_total": (total, step["loss"]),
                f"{at}/loss_value": (stats["value_loss"], step["value_loss"]),
                f"{at}/entropy": (stats["entropy"], step["entropy"]),
            }
        )
        if i:  # the first step has r = 1: its actor loss is -mean(normalised A) ~ 1e-17 and its drift 0
            pairs[f"{at}/loss_actor"] = (stats["policy_loss"], step["actor_loss"])
            if objective == "dpo":
                pairs[f"{at}/drift_mean"] = mean_drift_pair(module, step, mine)
        pairs.update(tensors(f"{at}/grad", mine["grads"], to_purerl_params(step["grads"])))
    final = out["runner_state"][0]
    mu, nu = purerl_adam_moments(new_state)
    their_mu, their_nu = adam_moments(final.opt_state)
    pairs.update(tensors("final/adam_mu", mu, to_purerl_params(their_mu)))
    pairs.update(tensors("final/adam_nu", nu, to_purerl_params(their_nu)))
    pairs.update(tensors("final/params", new_state.params, to_purerl_params(final.params)))
    return common.differences(pairs), {
        "theirs": theirs,
        "ours": ours,
        "done_steps": int(np.sum(theirs["rollout"][0]["done"])),
    }


# --- LPO: discovered-policy-optimisation's drift loss -----------------------------------------------------

# purerl's feature i is their feature LPO_ROWS[i] times LPO_SIGNS[i] (their 1 - r is purerl's -(r - 1))
LPO_ROWS = (2, 3, 0, 1, 6, 7, 4, 5)
LPO_SIGNS = (-1.0, 1.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0)


def import_lpo(directory: str):
    """Their `brax_drift` module, with `brax.training.normalization` (gone from brax; unused by
    compute_drift_loss) as a stub."""
    if LPO_MODULE in sys.modules:
        raise RuntimeError(f"a module named {LPO_MODULE!r} is already imported")
    sys.modules.setdefault("brax.training.normalization", types.ModuleType("brax.training.normalization"))
    sys.path.insert(0, str(Path(directory) / "dpo"))
    import brax_drift  # noqa: I001 (their module, from their checkout)
    import jax.numpy as jnp

    # jnp.clip's a_min / a_max keywords are gone (now min / max)
    brax_drift.jnp = Proxy(jnp, clip=lambda x, a_min=None, a_max=None: jnp.clip(x, a_min, a_max))
    return brax_drift


class LogProbIsLogit:
    """A toy action distribution for their loss: the "logits" are the log-probabilities, entropy 0."""

    def log_prob(self, logits, actions):
        return logits

    def entropy(self, logits, rng):
        return logits * 0.0


def paired_lpo(lpo, seed: int) -> dict:
    """Their `compute_drift_loss` against purerl's drift in the mirror-learning loss, for a random drift net
    with and without the PPO-clip offset (call under x64): the policy loss and its gradient w.r.t. the
    log-probabilities."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from purerl.drift import DriftNet, as_ppo_drift

    class TheirDriftNet(nn.Module):  # main_drift_brax.py's layout: bias-free "hidden" (128, tanh), "out" (1)
        @nn.compact
        def __call__(self, x):
            hidden = jnp.tanh(nn.Dense(128, name="hidden", use_bias=False)(x))
            return nn.Dense(1, name="out", use_bias=False)(hidden)

    steps, envs = 16, 8
    keys = jax.random.split(jax.random.PRNGKey(seed), 6)
    old = jax.random.normal(keys[0], (steps, envs)) - 1.0
    new = old + 0.3 * jax.random.normal(keys[1], (steps, envs))
    values = jax.random.normal(keys[2], (steps + 1, envs))
    rewards = jax.random.normal(keys[3], (steps + 1, envs))
    dones = (jax.random.uniform(keys[4], (steps + 1, envs)) < 0.1).astype(jnp.float64)
    their_net = TheirDriftNet()
    drift_params = jax.tree.map(lambda x: 3.0 * x, their_net.init(keys[5], jnp.zeros((1, 8))))  # far from 0
    data = lpo.StepData(
        obs=jnp.zeros((steps + 1, envs, 1)),
        rewards=rewards,
        dones=dones,
        truncation=jnp.zeros_like(dones),
        actions=jnp.zeros((steps, envs)),
        logits=old,
    )
    _, advantages = lpo.compute_gae(
        truncation=data.truncation[1:],
        termination=dones[1:],
        rewards=rewards[1:],
        values=values[:-1],
        bootstrap_value=values[-1],
        lambda_=0.95,
        discount=0.9,
    )
    kernel = drift_params["params"]["hidden"]["kernel"]
    ours_params = {
        "params": {
            "hidden_layer": {"kernel": kernel[jnp.asarray(LPO_ROWS)] * jnp.asarray(LPO_SIGNS)[:, None]},
            "out_layer": {"kernel": drift_params["params"]["out"]["kernel"]},
        }
    }
    quantities = {}
    for ppo_init in (True, False):

        def theirs(log_prob, ppo_init=ppo_init):
            _, info = lpo.compute_drift_loss(
                {"policy": log_prob, "value": values},
                data,
                jax.random.PRNGKey(0),
                LogProbIsLogit(),
                policy_apply=lambda p, obs: p,
                value_apply=lambda p, obs: p[..., None],
                drift_apply=their_net.apply,
                drift_params=drift_params,
                entropy_cost=0.0,
                discounting=0.9,
                lambda_=0.95,
                ppo_init=ppo_init,
            )
            return info["policy_loss"]

        drift = as_ppo_drift(DriftNet(hidden=128, ppo_init=ppo_init), ours_params)

        def ours(log_prob, drift=drift):
            log_ratio = log_prob - old
            ratio = jnp.exp(log_ratio)
            adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            return -(ratio * adv - drift(ratio, log_ratio, adv, None)).mean()

        name = "lpo_ppo_init" if ppo_init else "lpo"
        their_loss, their_grad = jax.value_and_grad(theirs)(new)
        our_loss, our_grad = jax.value_and_grad(ours)(new)
        quantities.update(
            common.differences(
                {
                    f"{name}/policy_loss": (our_loss, their_loss),
                    f"{name}/grad_log_prob": (our_grad, their_grad),
                }
            )
        )
    return quantities


def branch_edge_case(loss_fn, step: dict) -> dict:
    """Their DPO loss and purerl's drift on a crafted minibatch the two branch combinations treat differently:
    one advantage exactly 0 after normalisation, with an old log-probability of +inf (log-ratio -inf)."""
    import jax.numpy as jnp

    from purerl.drift import dpo_drift

    batch_size = step["gae"].shape[0]
    # a grid symmetric about 0 in exactly representable steps sums to exactly 0, so 0 normalises to exactly 0
    grid = jnp.arange(batch_size - 1) - (batch_size - 2) / 2
    gae = jnp.concatenate([jnp.zeros(1), grid])
    minibatch = types.SimpleNamespace(
        obs=step["obs"],
        action=step["action"],
        value=step["targets"],
        log_prob=jnp.asarray(step["log_prob"]).at[0].set(jnp.inf),
    )
    their_loss, _ = loss_fn(step["params"], minibatch, gae, step["targets"])
    normalised = (gae - gae.mean()) / (gae.std() + 1e-8)
    ours = dpo_drift(jnp.zeros(1), normalised[:1], jnp.full(1, -jnp.inf))
    return {
        "advantage": float(normalised[0]),
        "authors_loss": float(their_loss),
        "purerl_drift": float(ours[0]),
    }


# --- speed ----------------------------------------------------------------------------------------------


def training_timers(authors, args) -> tuple[dict, dict]:
    """({"purerl": timer, "authors": timer}, settings): each timer runs one jitted DPO training run of
    `--iterations` iterations (compiled beforehand) and returns iterations/s (float32)."""
    import jax

    from purerl.agent import train_fn
    from purerl.agents import ppo

    shape = dict(
        num_envs=args.num_envs,
        num_steps=args.num_steps,
        iterations=args.iterations,
        epochs=args.epochs,
        minibatches=args.minibatches,
        env=args.speed_env,
    )
    their_train = jax.jit(authors.dpo.make_train(authors_config("dpo", **shape)))
    our_train = jax.jit(train_fn(ppo.make_agent(purerl_config("dpo", **shape))))
    compile_s = {}
    for label, train in (("authors", their_train), ("purerl", our_train)):
        start = time.perf_counter()
        jax.block_until_ready(train(jax.random.PRNGKey(args.seed)))
        compile_s[label] = round(time.perf_counter() - start, 1)
        print(f"  {label}: compiled and ran once in {compile_s[label]} s", flush=True)
    calls = {"n": 0}

    def timer(train):
        def run() -> float:
            calls["n"] += 1
            start = time.perf_counter()
            jax.block_until_ready(train(jax.random.PRNGKey(args.seed + calls["n"])))
            return args.iterations / (time.perf_counter() - start)

        return run

    settings = {
        "env": args.speed_env,
        "brax_backend": "positional",
        "num_envs": args.num_envs,
        "num_steps": args.num_steps,
        "update_epochs": args.epochs,
        "num_minibatches": args.minibatches,
        "hidden": list(PAIRED["hidden"]),
        "iterations_per_call": args.iterations,
        "dtype": "float32",
        "what": "one jitted training run (rollout, GAE, epochs of minibatch updates) per call, both sides; "
        "purerl also bootstraps truncated episodes from their final observations",
        "first_call_s": compile_s,
        "same_process": True,
        "cpu_cores": os.cpu_count(),
    }
    return {"purerl": timer(our_train), "authors": timer(their_train)}, settings


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--authors-code", required=True, help="a checkout of luchris429/purejaxrl")
    parser.add_argument("--authors-commit", default="", help="its commit, if the checkout has no .git")
    parser.add_argument(
        "--dpo-code",
        default="",
        help="a checkout of luchris429/discovered-policy-optimisation (LPO's drift); empty skips that check",
    )
    parser.add_argument("--dpo-commit", default="", help="its commit, if the checkout has no .git")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="alternating speed rounds (0: no speed)")
    parser.add_argument("--speed-env", default="hopper", help="brax env of the speed rounds")
    parser.add_argument("--num-envs", type=int, default=64, help="speed rounds: parallel envs")
    parser.add_argument("--num-steps", type=int, default=64, help="speed rounds: rollout length")
    parser.add_argument("--epochs", type=int, default=4, help="speed rounds: update epochs")
    parser.add_argument("--minibatches", type=int, default=4, help="speed rounds: minibatches per epoch")
    parser.add_argument(
        "--iterations", type=int, default=5, help="speed rounds: training iterations per call"
    )
    args = parser.parse_args(argv)
    if not (Path(args.authors_code) / "purejaxrl" / "dpo_continuous_action.py").is_file():
        parser.exit(
            2,
            f"purerl: error: --authors-code {args.authors_code!r} holds no "
            f"purejaxrl/dpo_continuous_action.py (a checkout of {AUTHORS_REPO})\n",
        )
    if args.dpo_code and not (Path(args.dpo_code) / "dpo" / "brax_drift.py").is_file():
        parser.exit(
            2,
            f"purerl: error: --dpo-code {args.dpo_code!r} holds no dpo/brax_drift.py "
            f"(a checkout of {DPO_REPO})\n",
        )
    if (
        min(args.num_envs, args.num_steps, args.epochs, args.minibatches, args.iterations) < 1
        or args.rounds < 0
    ):
        parser.exit(2, "purerl: error: the speed settings must be positive (--rounds >= 0)\n")
    directory = str(Path(args.authors_code).resolve())
    authors = import_purejaxrl(directory)
    quantities, extra = (
        {},
        {
            "paired_settings": {
                **PAIRED,
                "hidden": list(PAIRED["hidden"]),
                "epochs": EPOCHS,
                "minibatches": MINIBATCHES,
            }
        },
    )
    for objective in ("dpo", "clip"):
        with global_x64():
            got, found = paired_update(authors, objective, args)
            if objective == "dpo":
                extra["branch_edge_case"] = branch_edge_case(
                    found["theirs"]["loss_fn"], found["theirs"]["step"][0]
                )
        quantities.update({f"{objective}/{name}": d for name, d in got.items()})
        print(f"paired iteration, {objective}, float64 ({found['done_steps']} done steps in the rollout):")
        common.print_differences(got)
    print(f"DPO branch edge case: {extra['branch_edge_case']}")
    deviations = [TRUNCATION, BRANCHES, INITIALISATION]
    if args.dpo_code:
        dpo_directory = str(Path(args.dpo_code).resolve())
        with global_x64():
            got = paired_lpo(import_lpo(dpo_directory), args.seed)
        print("LPO drift loss, float64:")
        common.print_differences(got)
        quantities.update(got)
        deviations.append(FEATURES)
        extra["lpo_repo"] = DPO_REPO
        extra["lpo_commit"] = common.authors_commit(dpo_directory, args.dpo_commit)
    name, rel = common.worst(quantities)
    checked = "DPO and PPO-clip iterations" + (" and LPO's drift loss" if args.dpo_code else "")
    verdict = (
        f"{'agrees' if rel <= 1e-6 else 'DIFFERS'}: {checked} match the authors' code to {rel:.1e} "
        f"relative (worst: {name}) with the rollout's dones marked terminated; the DPO branch combination "
        "differs only off the reachable domain"
    )
    print(verdict)
    speed = {}
    if args.rounds:
        timers, settings = training_timers(authors, args)
        rates = common.alternating_rates(timers, args.rounds)
        speed = common.speed_summary(rates["purerl"], rates["authors"], "iterations/s", settings)
        print(
            f"speed: purerl {speed['purerl']:.2f}/s, authors {speed['authors']:.2f}/s, "
            f"ratio {speed['ratio_purerl_over_authors']}"
        )
    res = common.result(
        "dpo",
        "DPO / PPO-clip (purejaxrl) and LPO's drift (discovered-policy-optimisation): "
        "paired float64 updates and speed against the authors' JAX code",
        authors_repo=AUTHORS_REPO,
        authors_commit=common.authors_commit(directory, args.authors_commit),
        quantities=quantities,
        deviations=deviations,
        speed=speed,
        verdict=verdict,
        extra=extra,
    )
    print(common.write(res))


if __name__ == "__main__":
    main()
