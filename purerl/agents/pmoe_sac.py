"""PMOE-SAC (Ren et al., 2021, "Probabilistic Mixture-of-Experts for Efficient Deep Reinforcement Learning").

The actor is a mixture of K tanh-Gaussian experts with a softmax router,
pi(a|s) = sum_k w_k(s) Tanh(N(mu_k(s), sigma_k(s)^2)). Everything else is SAC (`purerl.agents.sac`:
replay, twin critics, temperature, truncation handling, gradient-step order) — only the policy differs.

Networks (`purerl.nn.TanhGaussianActor(router=True)`): a shared ReLU trunk, ONE mean head and ONE
log-std head with K*A outputs (reshaped to (K, A)), and a router Linear(trunk, K) applied to
`stop_gradient(trunk)`, so the router loss never trains the trunk.

Actor objective per gradient step (official rlkit-pmoe semantics, `router_loss="mse"`):
1. sample every expert at s with the reparameterisation trick: a_k = tanh(mu_k + sigma_k eps_k);
2. score all of them with the min twin critic (one critic call on (B, K, .)) and take k* = argmax_k q_k
   (no gradient through the argmax);
3. expert loss alpha * log pi_{k*}(a_{k*}|s) - q_{k*}: only expert k*'s heads and the trunk get gradient;
   the temperature is driven by log pi_{k*} as in SAC;
4. router loss ("frequency approximate gradient") mean_{b,k} (w_k(s) - onehot(k*)_k)^2, minimised at
   w_k(s) = P(k* = k | s).
Acting and the critic target sample k ~ Categorical(w(s)) and play that expert's sample. Evaluation
(`eval_router="sample"`, the reference) also samples k but plays tanh(mu_k); `"argmax"` takes the heaviest.
As in `sac.py`, all losses use the pre-step networks except the freshly updated temperature.

Baselines (docs/algorithms/pmoe.md): `router_loss="gumbel"` (straight-through Gumbel-softmax one-hot z, action
sum_k z_k a_k, loss alpha sum_k z_k lp_k - Qmin(s, a); the router learns from this loss only) and
`router_loss="reinforce"` (k ~ Cat(w), experts trained on the sampled k, router by the score function
with baseline sum_j w_j q_j). With `num_experts=1` every variant is exactly SAC (tests check this).

Truncation: bootstrap on `truncated`, mask only on `terminated` (rlkit masks on any terminal; with
brax's 1000-step time limit, purerl's handling is the correct one).

Run it: `python -m purerl.agents.pmoe_sac --env Pendulum-v1 --num-experts 4`.

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/pmoe.md`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp

from purerl.agent import check_choices, concrete, train_fn
from purerl.agents import sac
from purerl.mixture import (  # noqa: F401 -- the mixture metrics are part of PMOE's API
    choose_expert,
    distinguishable_modes,
    primitive_metrics,
)
from purerl.nn import TanhGaussianActor, sample_tanh_gaussian


@dataclass(frozen=True)
class Config(sac.Config):
    num_experts: int = 4
    """K, the number of tanh-Gaussian experts (primitives); 1 reproduces SAC exactly"""
    router_loss: Literal["mse", "gumbel", "reinforce"] = "mse"
    """router training: mse (PMOE's frequency approximate gradient), gumbel or reinforce (baselines)"""
    eval_router: Literal["sample", "argmax"] = "sample"
    """evaluation expert choice: sample k ~ w(s) (reference code) or argmax w(s); plays tanh(mu_k)"""


def mixture_policy(config: Config, action_dim: int) -> sac.Policy:
    """The PMOE policy (K experts + router) in the `purerl.agents.sac.Policy` interface."""
    K = config.num_experts
    network = TanhGaussianActor(action_dim, K, config.hidden, config.activation, router=True)

    def experts(params, obs, key):
        """All experts' reparameterised samples; the noise comes from `key` exactly as SAC's does."""
        mean, log_std, logits = network.apply(params, obs)
        action, log_prob, _ = sample_tanh_gaussian(key, mean, log_std)  # (..., K, A), (..., K)
        return action, log_prob, logits

    def sample(params, obs, key):
        action, log_prob, logits = experts(params, obs, key)
        k = jax.random.categorical(jax.random.fold_in(key, 1), logits)
        return choose_expert(action, k), choose_expert(log_prob, k)

    def objective(params, obs, key, q_fn):
        action, log_prob, logits = experts(params, obs, key)
        obs_k = jnp.broadcast_to(obs[..., None, :], obs.shape[:-1] + (K,) + obs.shape[-1:])
        q = q_fn(obs_k, action)  # (B, K): one critic call on all experts
        w = jax.nn.softmax(logits)
        if config.router_loss == "mse":
            k_star = jnp.argmax(jax.lax.stop_gradient(q), axis=-1)
            lp, q_sel = choose_expert(log_prob, k_star), choose_expert(q, k_star)
            router = ((w - jax.nn.one_hot(k_star, K)) ** 2).mean()
        elif config.router_loss == "reinforce":
            k_star = jax.random.categorical(jax.random.fold_in(key, 1), logits)
            lp, q_sel = choose_expert(log_prob, k_star), choose_expert(q, k_star)
            advantage = jax.lax.stop_gradient(q_sel - (w * q).sum(-1))
            router = -(advantage * choose_expert(jax.nn.log_softmax(logits), k_star)).mean()
        else:  # gumbel: straight-through one-hot of Gumbel-softmax(logits, tau=1)
            gumbel = jax.random.gumbel(jax.random.fold_in(key, 1), logits.shape)
            soft = jax.nn.softmax(logits + gumbel)
            k_star = jnp.argmax(soft, axis=-1)
            z = jax.nn.one_hot(k_star, K) + soft - jax.lax.stop_gradient(soft)
            mixed = (z[..., None] * action).sum(-2)
            lp, q_sel = (z * log_prob).sum(-1), q_fn(obs, mixed)
            router = jnp.zeros((), lp.dtype)
        stats = {"router_loss": router, "top_expert_share": jax.nn.one_hot(k_star, K).mean(0).max()}
        return (lp.mean(), q_sel.mean(), router), stats

    def act(params, obs, key):
        mean, _, logits = network.apply(params, obs)
        if config.eval_router == "argmax":
            k = jnp.argmax(logits, axis=-1)
        else:
            k = jax.random.categorical(key, logits)
        return jnp.tanh(choose_expert(mean, k))

    def diagnostics(params, obs):
        return primitive_metrics(network.apply(params, obs))

    return sac.Policy(network, sample, objective, act, diagnostics)


# ------------------------------------------------------------------------------------------------
# Agent
# ------------------------------------------------------------------------------------------------
def validate(config: Config) -> None:
    if concrete(config.num_experts) and config.num_experts < 1:
        raise ValueError(f"num_experts must be >= 1, got {config.num_experts}")
    check_choices(config)


def make_agent(config: Config):
    validate(config)
    return sac.make_agent(config, mixture_policy)


def gradient_step_fn(config: Config):
    validate(config)
    return sac.gradient_step_fn(config, mixture_policy)


def make_train(config: Config):
    """`train(key) -> (final TrainState, metrics stacked per iteration)`, fully jittable."""
    return train_fn(make_agent(config))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("pmoe_sac")
