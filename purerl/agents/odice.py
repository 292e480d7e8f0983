"""O-DICE (Mao, Xu, Zhang & Zhan, ICLR 2024, "ODICE: Revealing the Mystery of Distribution Correction
Estimation via Orthogonal-gradient Update"); offline RL and (`--mode il`) offline imitation learning.

V minimises the V-DICE dual J(V) = (1 - lam) E[V(s)] + lam E[f*(r + gamma (1 - d) V(s') - V(s))] with the
Pearson chi-square conjugate f*(y) = y + y^2/4 (y >= -2), -1 below (read against
maoliyuan/ODICE-Pytorch). Per step, with V_bar an EMA target (min over the twin heads):
  delta_f = r + gamma (1-d) V_bar(s') - V(s),  g_f = grad lam mean f*(delta_f)         (forward: through V(s))
  delta_b = r + gamma (1-d) V(s') - V_bar(s),  g_b = grad lam eta mean f*(delta_b)     (backward: via V(s'))
  g_lin = grad (1 - lam) mean V(s);  c = <g_f, g_b> / max(<g_f, g_f>, 1e-10) (flattened over both heads)
  orthogonal: g = g_lin + g_f + (g_b - c g_f);  true: g_lin + g_f + g_b;  semi: g_lin + g_f.
The three gradients come from ONE forward pass (jax.vjp of (V(s), V(s'))) pulled back with three cotangents.
Policy: weighted BC, w = min(max(delta_f, 0), 100) (the code's form; `weight_form omega` uses the closed-form
ratio max(0, 1 + delta/2) instead), Gaussian with a state-independent log-std, Adam with coupled L2 decay.
Twin V (two LayerNorm MLPs stacked on a leading axis), Adam 2e-4, EMA 0.005 every step.
`mode il`: rewards are set to 0, states are normalised and the policy mean is tanh-squashed (offline IL from
one expert trajectory; pass a dataset holding that trajectory: episode selection is not implemented here).
Not implemented: the reverse-KL conjugate's presets and the per-dataset lam/eta table of the paper's Appendix
D (not retrieved; code defaults lam 0.6, eta 1.0).

Run it: `purerl train odice --dataset Pendulum-v1-medium-replay --num-updates 100000`.

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/odice.md`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.flatten_util import ravel_pytree

from purerl import offline
from purerl.agent import UPDATES, Agent, check_positive, concrete, train_fn
from purerl.evaluation import make_evaluate
from purerl.nn import MLP, gaussian_log_prob


@dataclass(frozen=True)
class Config(offline.OfflineConfig):
    mode: Literal["rl", "il"] = "rl"
    """rl (offline RL) or il (offline imitation: rewards 0, normalised states, tanh policy mean)"""
    lam: float = 0.6
    """weight of the f-divergence term in (1 - lam) E V(s) + lam E f*(delta); in (0, 1) (IL: 0.4)"""
    eta: float = 1.0
    """scale of the (projected) backward gradient; >= 0 (0 = semi-gradient)"""
    gradient: Literal["orthogonal", "true", "semi"] = "orthogonal"
    """value gradient: orthogonal (O-DICE), true (g_f + g_b, no projection) or semi (g_f only)"""
    f_name: Literal["chi2", "rkl"] = "chi2"
    """f-divergence: chi2 (Pearson, f* closed form) or rkl (reverse KL, f*(y) = exp(y - 1))"""
    twin_v: bool = True
    """two V heads trained on their own residuals; targets use their min"""
    layer_norm: bool = True
    """LayerNorm after each hidden Linear of V (MuJoCo setting; off for AntMaze and IL)"""
    weight_form: Literal["relu", "omega"] = "relu"
    """policy weight: relu min(max(delta_f, 0), clip) (the code) or omega min(max(0, 1 + delta_f/2), clip)"""
    weight_clip: float = 100.0
    """upper clip of the policy weights"""
    value_hidden: tuple[int, ...] = (256, 256)
    """hidden widths of V"""
    policy_hidden: tuple[int, ...] = (1024, 1024)
    """hidden widths of the policy mean"""
    value_lr: float = 2e-4
    """Adam learning rate of V (IL: 1e-4)"""
    policy_lr: float = 2e-4
    """Adam learning rate of the policy (IL: 1e-4)"""
    policy_wd: float = 1e-4
    """coupled L2 weight decay of the policy optimiser (PyTorch Adam semantics)"""
    target_ema: float = 0.005
    """EMA rate of the target V (every step)"""
    reward_mode: Literal["iql_scale", "antmaze_m3", "none"] = "iql_scale"
    """iql_scale (r * 1000 / (max - min episode return)), antmaze_m3 (0 if r == 1 else -3) or none"""
    normalize_states: bool = False
    """standardise states with the dataset's mean and std + 1e-3 (always on in mode il)"""


class GaussianPolicy(nn.Module):
    """mean = MLP(obs) (tanh-squashed if `squash`), state-independent log-std (init 0, clipped to [-5, 2])."""

    action_dim: int
    hidden: tuple[int, ...] = (1024, 1024)
    squash: bool = False

    @nn.compact
    def __call__(self, obs):
        mean = MLP(self.hidden, self.action_dim, "relu")(obs)
        if self.squash:
            mean = jnp.tanh(mean)
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return mean, jnp.clip(log_std, -5.0, 2.0)


@struct.dataclass
class TrainState:
    policy: Any
    value: Any
    value_target: Any
    policy_opt: Any
    value_opt: Any
    key: jax.Array


# --- the maths (pure functions, tested against closed forms / brute force) ---------------------------------


def fstar_chi2(y: jax.Array) -> jax.Array:
    """Conjugate of f(x) = (x - 1)^2 with x >= 0: y + y^2/4 for y >= -2, else -1."""
    return jnp.where(y >= -2.0, y + 0.25 * y**2, -1.0)


def omega_chi2(y: jax.Array) -> jax.Array:
    """f*'(y) = the optimal ratio max(0, 1 + y/2)."""
    return jnp.maximum(0.0, 1.0 + 0.5 * y)


def fstar_rkl(y: jax.Array) -> jax.Array:
    return jnp.exp(y - 1.0)


FSTAR = {"chi2": fstar_chi2, "rkl": fstar_rkl}


def policy_weights(delta: jax.Array, form: str = "relu", clip: float = 100.0) -> jax.Array:
    """relu: min(max(delta, 0), clip) (the code); omega: min(max(0, 1 + delta/2), clip). No gradient."""
    w = jnp.maximum(delta, 0.0) if form == "relu" else omega_chi2(delta)
    return jax.lax.stop_gradient(jnp.minimum(w, clip))


def residuals(v_s, v_next, vbar_s, vbar_next, reward, terminal, gamma):
    """delta_f = r + gamma (1-d) V_bar(s') - V(s), delta_b = r + gamma (1-d) V(s') - V_bar(s); V: (H, B)."""
    mask = gamma * (1.0 - terminal.astype(reward.dtype))
    return reward + mask * vbar_next - v_s, reward + mask * v_next - vbar_s


def value_gradients(v_apply, params, target_params, batch, lam, eta, gamma, f_name="chi2"):
    """(g_lin, g_f, g_b, delta_f) from ONE forward pass: jax.vjp of (V(s), V(s')) pulled back with the three
    cotangents dL_lin/dV(s), dL_f/dV(s), dL_b/dV(s'). `v_apply(params, obs) -> (H, B)`."""
    fstar = FSTAR[f_name]
    obs, nxt = batch["observations"], batch["next_observations"]
    (v_s, v_next), pullback = jax.vjp(lambda p: (v_apply(p, obs), v_apply(p, nxt)), params)
    vbar_s = v_apply(target_params, obs).min(0)
    vbar_next = v_apply(target_params, nxt).min(0)
    delta_f, _ = residuals(v_s, v_next, vbar_s, vbar_next, batch["rewards"], batch["terminals"], gamma)

    def l_f(vs):
        return (
            lam
            * fstar(
                residuals(vs, v_next, vbar_s, vbar_next, batch["rewards"], batch["terminals"], gamma)[0]
            ).mean()
        )

    def l_b(vn):
        return (
            lam
            * eta
            * fstar(
                residuals(v_s, vn, vbar_s, vbar_next, batch["rewards"], batch["terminals"], gamma)[1]
            ).mean()
        )

    zero = jnp.zeros_like(v_s)
    ct_lin = jnp.full_like(v_s, (1.0 - lam) / v_s.size)
    cts = (jnp.stack([ct_lin, jax.grad(l_f)(v_s), zero]), jnp.stack([zero, zero, jax.grad(l_b)(v_next)]))
    grads = jax.vmap(lambda a, b: pullback((a, b))[0])(*cts)
    g_lin, g_f, g_b = (jax.tree.map(lambda g, i=i: g[i], grads) for i in range(3))
    return g_lin, g_f, g_b, jax.lax.stop_gradient(delta_f)


def value_gradients_reference(v_apply, params, target_params, batch, lam, eta, gamma, f_name="chi2"):
    """The same three gradients with three `jax.grad` calls (slower; the tests compare both)."""
    fstar = FSTAR[f_name]
    obs, nxt = batch["observations"], batch["next_observations"]
    vbar_s = v_apply(target_params, obs).min(0)
    vbar_next = v_apply(target_params, nxt).min(0)
    mask = gamma * (1.0 - batch["terminals"].astype(batch["rewards"].dtype))
    g_lin = jax.grad(lambda p: (1.0 - lam) * v_apply(p, obs).mean())(params)
    g_f = jax.grad(lambda p: lam * fstar(batch["rewards"] + mask * vbar_next - v_apply(p, obs)).mean())(
        params
    )
    g_b = jax.grad(lambda p: lam * eta * fstar(batch["rewards"] + mask * v_apply(p, nxt) - vbar_s).mean())(
        params
    )
    return g_lin, g_f, g_b


def combine_gradients(g_lin, g_f, g_b, gradient: str = "orthogonal", axis_name: str | None = None):
    """g = g_lin + g_f + (g_b - c g_f) (orthogonal), g_lin + g_f + g_b (true) or g_lin + g_f (semi), flattened
    over all value parameters. With `axis_name` the three gradients are pmean-ed BEFORE the (nonlinear)
    projection."""
    if axis_name is not None:
        g_lin, g_f, g_b = jax.lax.pmean((g_lin, g_f, g_b), axis_name)
    flat_lin, unravel = ravel_pytree(g_lin)
    flat_f, flat_b = ravel_pytree(g_f)[0], ravel_pytree(g_b)[0]
    ff, fb, bb = flat_f @ flat_f, flat_f @ flat_b, flat_b @ flat_b
    c = fb / jnp.maximum(ff, 1e-10)
    perp = flat_b - c * flat_f
    if gradient == "orthogonal":
        g = flat_lin + flat_f + perp
    elif gradient == "true":
        g = flat_lin + flat_f + flat_b
    else:
        g = flat_lin + flat_f
    metrics = {
        "c": c,
        "cos_fb": fb / jnp.maximum(jnp.sqrt(ff * bb), 1e-20),
        "perp_ratio": jnp.sqrt(perp @ perp) / jnp.maximum(jnp.sqrt(ff), 1e-20),
    }
    return unravel(g), metrics


def make_value(hidden, layer_norm: bool, heads: int):
    """(init(key, obs0) -> stacked params, apply(params, obs (B, D)) -> (heads, B))."""
    mlp = MLP(tuple(hidden), 1, "relu", layer_norm=layer_norm)

    def init(key, obs0):
        return jax.vmap(mlp.init, in_axes=(0, None))(jax.random.split(key, heads), obs0)

    def apply(params, obs):
        return jax.vmap(mlp.apply, in_axes=(0, None))(params, obs)[..., 0]

    return init, apply


# --- the agent --------------------------------------------------------------------------------------


def validate(config: Config) -> None:
    offline.check_common(config)
    check_positive(config, "value_lr", "policy_lr", "weight_clip")
    if concrete(config.lam) and not 0.0 < config.lam < 1.0:
        raise ValueError(f"lam must lie in (0, 1), got {config.lam}")
    if concrete(config.eta) and not config.eta >= 0.0:
        raise ValueError(f"eta must be >= 0, got {config.eta}")
    if concrete(config.target_ema) and not 0.0 < config.target_ema <= 1.0:
        raise ValueError(f"target_ema must lie in (0, 1], got {config.target_ema}")
    if concrete(config.policy_wd) and config.policy_wd < 0:
        raise ValueError(f"policy_wd must be >= 0, got {config.policy_wd}")


def make_agent(config: Config, data: offline.OfflineData | None = None) -> Agent:
    """O-DICE; `data` (from `purerl.offline.prepare`) may be passed to reuse a loaded dataset."""
    validate(config)
    il = config.mode == "il"
    if data is None:
        scaling = "episode_range" if (config.reward_mode == "iql_scale" and not il) else "none"
        data = offline.prepare(
            config.dataset,
            config.env,
            config.view,
            config.normalize_states or il,
            reward_scaling=scaling,
            brax_backend=config.brax_backend, eval_env=config.eval_env,
        )
    offline.require_keys(data.data, "observations", "actions", "rewards", "next_observations", "terminals")
    rewards = data.data["rewards"]
    if il:
        rewards = jnp.zeros_like(rewards)
    elif config.reward_mode == "antmaze_m3":
        rewards = jnp.where(rewards == 1.0, 0.0, -3.0)
    dataset = {**data.data, "rewards": rewards}
    obs_dim = dataset["observations"].shape[1]
    action_dim = dataset["actions"].shape[1]
    policy = GaussianPolicy(action_dim, tuple(config.policy_hidden), squash=il)
    v_init, v_apply = make_value(config.value_hidden, config.layer_norm, 2 if config.twin_v else 1)
    policy_tx = optax.chain(
        optax.add_decayed_weights(config.policy_wd), optax.scale_by_adam(), optax.scale(-config.policy_lr)
    )
    value_tx = optax.adam(config.value_lr)
    eta = config.eta if config.gradient != "semi" else 0.0

    def init(key):
        key, k1, k2 = jax.random.split(key, 3)
        obs0 = jnp.zeros((obs_dim,))
        policy_params = policy.init(k1, obs0)
        value_params = v_init(k2, obs0)
        return TrainState(
            policy_params,
            value_params,
            value_params,
            policy_tx.init(policy_params),
            value_tx.init(value_params),
            key,
        )

    def step(state: TrainState, key):
        batch = offline.sample(dataset, key, config.batch_size)
        g_lin, g_f, g_b, delta_f = value_gradients(
            v_apply, state.value, state.value_target, batch, config.lam, eta, config.gamma, config.f_name
        )
        grads, proj = combine_gradients(g_lin, g_f, g_b, config.gradient)
        updates, value_opt = value_tx.update(grads, state.value_opt, state.value)
        value_params = optax.apply_updates(state.value, updates)
        value_target = optax.incremental_update(value_params, state.value_target, config.target_ema)

        weights = policy_weights(delta_f, config.weight_form, config.weight_clip)  # (H, B)

        def policy_loss(params):
            mean, log_std = policy.apply(params, batch["observations"])
            return -(weights * gaussian_log_prob(batch["actions"], mean, log_std)[None]).mean()

        p_loss, grads = jax.value_and_grad(policy_loss)(state.policy)
        updates, policy_opt = policy_tx.update(grads, state.policy_opt, state.policy)
        new = TrainState(
            optax.apply_updates(state.policy, updates),
            value_params,
            value_target,
            policy_opt,
            value_opt,
            state.key,
        )
        return new, {
            "policy_loss": p_loss,
            "v": v_apply(state.value, batch["observations"]).mean(),
            "delta_f": delta_f.mean(),
            "delta_f_min": delta_f.min(),
            "delta_f_max": delta_f.max(),
            "weight_mean": weights.mean(),
            "weight_max": weights.max(),
            "zero_weight_fraction": (weights == 0).mean(),
            **proj,
        }

    def update(state: TrainState):
        key, run_key = jax.random.split(state.key)
        state, metrics = jax.lax.scan(step, state, jax.random.split(run_key, config.updates_per_iteration))
        return state.replace(key=key), {k: v.mean() for k, v in metrics.items()}

    acting = offline.make_policy(data, lambda state: state.policy, policy.apply)
    evaluate = make_evaluate(acting, config.eval_episodes)

    return Agent(
        init,
        update,
        evaluate,
        config.num_updates // config.updates_per_iteration,
        config.updates_per_iteration,
        dataclasses.replace(config, env=data.env),
        UPDATES,
        policy=acting,
    )


def make_train(config: Config, data: offline.OfflineData | None = None):
    """`train(key) -> (final TrainState, metrics stacked per iteration)`, fully jittable."""
    return train_fn(make_agent(config, data))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("odice")
