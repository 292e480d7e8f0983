"""PMOE-PPO: PPO with a probabilistic mixture-of-experts policy (Ren et al., 2021, "Probabilistic
Mixture-of-Experts for Efficient Deep Reinforcement Learning"; PPO variant after the co-author's
`pmoe_ppo.py`; the paper's own PPO variant is unverified).

Policy: pi(a|s) = sum_k w_k(s) N(a; mu_k(s), diag sigma_k^2), k = 1..K. The actor MLP's output layer is ONE
head with K*A outputs reshaped to (K, A); the log-std is one free vector of K*A entries (state-independent, as
in PPO); the router w(s) = softmax(Linear(stop_gradient(h(s)))) reads the actor's last hidden layer h(s)
through a stop-gradient, so no router term trains the trunk.

Everything else is `purerl.agents.ppo` (rollout, GAE, truncation bootstrap, minibatches, clipping, value
loss, optimiser), reused through its `network` / `extra_loss` hooks:
- acting samples every expert, draws k ~ Categorical(w(s)) and plays a_k; the stored log-likelihood is the
  MIXTURE log pi(a|s) = logsumexp_k(log w_k(s) + log N(a; mu_k, sigma_k)) (logsumexp, never log(sum(exp))),
  and the PPO ratio uses it, so the clipped surrogate trains experts and router;
- the entropy bonus (ent_coef, PPO's) uses sum_k w_k H(N_k) (the mixture entropy has no closed form);
- router target (`router_coef > 0`, PMOE's "frequency approximate gradient"): an auxiliary Q(s, a) MLP
  regressed on the GAE returns, L_Q = mean (Q(s, a) - R)^2 (weight `q_coef`); k* = argmax_k Q(s, mu_k(s))
  scores each expert at its MEAN action (the co-author code scores one random sample per expert; the PPO loss
  hook has no key) and L_w = router_coef * mean_{b,k} (w_k(s) - onehot(k*)_k)^2, Q and k* under stop-gradient.
- logged per update: router entropy, effective experts, distinguishable-primitive count
  (docs/algorithms/pmoe.md),
  router/Q losses.

With `num_experts=1` there is no router and no auxiliary Q (log w = 0 exactly), the mixture density is the
Gaussian density bit for bit and the parameters are PPO's: the agent IS `ppo` (tests check equality).
Continuous (Box) action spaces only; the env wrapper clips actions as in PPO.

Run it: `python -m purerl.agents.pmoe_ppo --env Pendulum-v1 --num-experts 5`.

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/pmoe.md`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from purerl import envs
from purerl.agent import Agent, concrete, train_fn
from purerl.agents import ppo
from purerl.mixture import choose_expert, primitive_metrics
from purerl.nn import MLP, dense
from purerl.rollout import make_env


@dataclass(frozen=True)
class Config(ppo.Config):
    env: str = "Pendulum-v1"
    """environment name (see `purerl list`); PMOE's Gaussian experts need a continuous action space"""
    num_experts: int = 5
    """K, the number of Gaussian experts (primitives); 1 is exactly PPO"""
    router_coef: float = 1.0
    """weight of the router's MSE loss to the one-hot best expert by the auxiliary Q (0: router trained only
    through the mixture likelihood in the PPO ratio, and no auxiliary Q)"""
    q_coef: float = 0.5
    """weight of the auxiliary Q(s, a) regression on the GAE returns (only used to score experts)"""
    q_hidden: tuple[int, ...] = (64, 64, 64)
    """hidden widths of the auxiliary Q network (ReLU)"""


class GaussianMixture:
    """Mixture of K diagonal Gaussians with router logits; the `ppo` policy interface (sample, log_prob,
    entropy). logits (..., K); mean, std (..., K, A)."""

    def __init__(self, logits, mean, std):
        self.logits, self.mean, self.std = logits, mean, std
        self.components = distrax.MultivariateNormalDiag(mean, std)

    def sample(self, seed):
        actions = self.components.sample(seed=seed)  # (..., K, A): every expert, one draw of PPO's shape
        if self.logits.shape[-1] == 1:
            return actions[..., 0, :]
        k = jax.random.categorical(jax.random.fold_in(seed, 1), self.logits)
        return choose_expert(actions, k)

    def mode(self):
        """The deterministic action: the mean of the expert the router weighs most."""
        return choose_expert(self.mean, jnp.argmax(self.logits, axis=-1))

    def log_prob(self, x):
        component = self.components.log_prob(x[..., None, :])  # (..., K)
        return jax.nn.logsumexp(jax.nn.log_softmax(self.logits, axis=-1) + component, axis=-1)

    def entropy(self):
        return (jax.nn.softmax(self.logits, axis=-1) * self.components.entropy()).sum(-1)


class MixtureActorCritic(nn.Module):
    """K Gaussian experts as one head + router on the stop-gradient trunk, a value MLP and (optionally) an
    auxiliary Q. With K = 1 the parameters are exactly `purerl.nn.ActorCritic`'s (same names and init)."""

    action_dim: int
    num_experts: int
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    log_std_init: float = 0.0
    obs_ndim: int = 1
    q_hidden: Sequence[int] = ()  # empty: no auxiliary Q

    def setup(self):
        K, A = self.num_experts, self.action_dim
        self.actor = MLP(
            self.hidden, K * A, self.activation, out_scale=0.01, obs_ndim=self.obs_ndim, return_hidden=True
        )
        self.critic = MLP(self.hidden, 1, self.activation, out_scale=1.0, obs_ndim=self.obs_ndim)
        self.log_std = self.param("log_std", nn.initializers.constant(self.log_std_init), (K * A,))
        if K > 1:
            self.router = dense(K, 0.01)
        if self.q_hidden:
            self.q_net = MLP(self.q_hidden, 1, "relu")

    def experts(self, obs):
        """(router logits (..., K), means (..., K, A), log-std (K, A)); logits are 0 when K = 1."""
        K, A = self.num_experts, self.action_dim
        head, h = self.actor(obs)
        mean = head.reshape(head.shape[:-1] + (K, A))
        logits = self.router(jax.lax.stop_gradient(h)) if K > 1 else jnp.zeros(head.shape[:-1] + (1,))
        return logits, mean, self.log_std.reshape(K, A)

    def policy(self, obs) -> GaussianMixture | distrax.MultivariateNormalDiag:
        if self.num_experts == 1:  # the one-component mixture IS this Gaussian; PPO's exact ops and shapes
            head, _ = self.actor(obs)
            return distrax.MultivariateNormalDiag(head, jnp.exp(self.log_std) * jnp.ones_like(head))
        logits, mean, log_std = self.experts(obs)
        return GaussianMixture(logits, mean, jnp.exp(log_std) * jnp.ones_like(mean))

    def value(self, obs) -> jax.Array:
        return self.critic(obs)[..., 0]

    def q(self, obs, action) -> jax.Array:
        return self.q_net(jnp.concatenate([obs, action], axis=-1))[..., 0]

    def __call__(self, obs):
        pi, value = self.policy(obs), self.value(obs)
        if self.q_hidden and self.is_initializing():
            self.q(obs, jnp.zeros(obs.shape[:-1] + (self.action_dim,)))
        return pi, value


def validate(config: Config, env, env_params) -> None:
    if concrete(config.num_experts) and config.num_experts < 1:
        raise ValueError(f"num_experts must be >= 1, got {config.num_experts}")
    if concrete(config.router_coef, config.q_coef) and (config.router_coef < 0 or config.q_coef < 0):
        raise ValueError(f"router_coef and q_coef must be >= 0, got {config.router_coef}, {config.q_coef}")
    if envs.is_discrete(env, env_params):
        raise ValueError(f"pmoe_ppo needs a continuous (Box) action space; {config.env} is discrete")


def make_network(config: Config, env, env_params) -> MixtureActorCritic:
    use_q = config.num_experts > 1 and config.router_coef > 0
    return MixtureActorCritic(
        action_dim=envs.action_dim(env, env_params),
        num_experts=config.num_experts,
        hidden=config.hidden,
        activation=config.activation,
        log_std_init=config.log_std_init,
        obs_ndim=len(env.observation_space(env_params).shape),
        q_hidden=config.q_hidden if use_q else (),
    )


def make_extra_loss(config: Config, network: MixtureActorCritic):
    """Router MSE to the one-hot best expert by the auxiliary Q, Q regression, and the primitive metrics."""
    K = config.num_experts
    use_q = K > 1 and config.router_coef > 0

    def extra_loss(params, minibatch, pi: GaussianMixture):
        obs, action, _, _, _, targets = minibatch
        log_std = jnp.log(pi.std)
        stats = primitive_metrics((pi.mean, log_std, pi.logits))
        if not use_q:
            return jnp.zeros(()), stats
        q_loss = ((network.apply(params, obs, action, method="q") - targets) ** 2).mean()
        obs_k = jnp.broadcast_to(obs[..., None, :], obs.shape[:-1] + (K,) + obs.shape[-1:])
        q_k = network.apply(jax.lax.stop_gradient(params), obs_k, jax.lax.stop_gradient(pi.mean), method="q")
        k_star = jnp.argmax(q_k, axis=-1)
        router_loss = ((jax.nn.softmax(pi.logits) - jax.nn.one_hot(k_star, K)) ** 2).mean()
        stats = {**stats, "q_loss": q_loss, "router_loss": router_loss}
        return config.q_coef * q_loss + config.router_coef * router_loss, stats

    return extra_loss


def make_agent(config: Config) -> Agent:
    ppo.validate(config)
    env, env_params = make_env(config)
    validate(config, env, env_params)
    network = make_network(config, env, env_params)
    # K = 1: no extra loss at all, so the program is PPO's.
    extra_loss = make_extra_loss(config, network) if config.num_experts > 1 else None
    return ppo.make_agent(config, network=network, extra_loss=extra_loss)


def make_train(config: Config):
    """`train(key) -> (final TrainState, metrics stacked per iteration)`, fully jittable."""
    return train_fn(make_agent(config))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("pmoe_ppo")
