"""Networks shared by the agents: MLPs and policy heads.

Initialisation follows the PPO implementation-details convention (orthogonal weights, gain sqrt(2) in
hidden layers, 0.01 for the policy output, 1.0 for values, zero biases).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": nn.tanh,
    "relu": nn.relu,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
}


Activation = Literal["tanh", "relu", "elu", "gelu", "silu"]  # the keys of ACTIVATIONS


Activation = Literal["tanh", "relu", "elu", "gelu", "silu"]  # the keys of ACTIVATIONS


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def as_float(x) -> jax.Array:
    """`x` as a floating array: integer and boolean observations (MinAtar) become float32, float32 stays
    float32 and float64 (x64 runs, e.g. the float64 checks against the authors' code) keeps its precision."""
    x = jnp.asarray(x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def dense(features: int, scale: float = np.sqrt(2)) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(scale), bias_init=nn.initializers.zeros)


class MLP(nn.Module):
    """Flattens the input's trailing observation axes, then hidden layers, then an output layer."""

    hidden: Sequence[int]
    out: int
    activation: str = "tanh"
    out_scale: float = 1.0
    layer_norm: bool = False
    obs_ndim: int = 1  # number of trailing axes that form one observation (3 for MinAtar images)
    return_hidden: bool = False  # also return the last hidden layer (a router's input in PMOE)

    @nn.compact
    def __call__(self, x):
        x = as_float(x)
        if self.obs_ndim > 1:
            x = x.reshape(x.shape[: x.ndim - self.obs_ndim] + (-1,))
        act = activation_fn(self.activation)
        for width in self.hidden:
            x = dense(width)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        out = dense(self.out, self.out_scale)(x)
        return (out, x) if self.return_hidden else out


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs. Discrete: categorical logits. Continuous: diagonal Gaussian
    with a state-independent log standard deviation (initialised at `log_std_init`), or with
    `state_dependent_std` one the actor outputs beside the mean, softplus(x) + MIN_STD (brax's PPO policy;
    about 0.69 at the start, as the actor's last layer starts near 0). The critic has the actor's hidden
    widths unless `value_hidden` names its own (brax's PPO: a small policy, a large critic).

    `apply(params, obs)` gives `(policy, value)`; `apply(params, obs, method="value")` runs the critic
    alone (e.g. to bootstrap from final observations without paying for the actor)."""

    action_dim: int
    discrete: bool
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    log_std_init: float = 0.0
    obs_ndim: int = 1
    value_hidden: Sequence[int] = ()  # () = the actor's `hidden`
    state_dependent_std: bool = False

    MIN_STD = 0.001  # brax's floor under a state-dependent std

    def setup(self):
        std_outputs = self.action_dim if self.state_dependent_std and not self.discrete else 0
        self.actor = MLP(self.hidden, self.action_dim + std_outputs, self.activation, out_scale=0.01,
                         obs_ndim=self.obs_ndim)
        critic_hidden = self.value_hidden or self.hidden
        self.critic = MLP(critic_hidden, 1, self.activation, out_scale=1.0, obs_ndim=self.obs_ndim)
        if not self.discrete and not self.state_dependent_std:
            self.log_std = self.param("log_std", nn.initializers.constant(self.log_std_init),
                                      (self.action_dim,))

    def policy(self, obs) -> distrax.Distribution:
        head = self.actor(obs)
        if self.discrete:
            return distrax.Categorical(logits=head)
        if self.state_dependent_std:
            mean, std = jnp.split(head, 2, axis=-1)
            return distrax.MultivariateNormalDiag(mean, jax.nn.softplus(std) + self.MIN_STD)
        return distrax.MultivariateNormalDiag(head, jnp.exp(self.log_std) * jnp.ones_like(head))

    def value(self, obs) -> jax.Array:
        return self.critic(obs)[..., 0]

    def __call__(self, obs) -> tuple[distrax.Distribution, jax.Array]:
        return self.policy(obs), self.value(obs)


# ---------------------------------------------------------------------------------------------------
# Off-policy actor-critic pieces (SAC, PMOE-SAC, TD3+BC, IQL): tanh-Gaussian policies and Q ensembles.
# ---------------------------------------------------------------------------------------------------

LOG_2PI = float(np.log(2.0 * np.pi))


def uniform_init(scale: float):
    """U(-scale, scale) initialiser (the small output-layer init of SAC-style actors and critics)."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


def tanh_log_det_jacobian(u: jax.Array) -> jax.Array:
    """log(1 - tanh(u)^2), elementwise, computed stably as 2 (log 2 - u - softplus(-2u)).

    The naive form log(1 - tanh(u)^2) is -inf in float32 once |u| > ~9; this one is exact for all u.
    """
    return 2.0 * (np.log(2.0) - u - jax.nn.softplus(-2.0 * u))


def gaussian_log_prob(x: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Diagonal Gaussian log-density, summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * LOG_2PI, axis=-1)


def tanh_gaussian_log_prob(u: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """log-density of a = tanh(u), u ~ N(mean, diag exp(log_std)^2), given the PRE-tanh sample u.

    Change of variables: log pi(a) = log N(u) - sum_j log(1 - tanh(u_j)^2); summed over the last axis.
    Taking u (not a) avoids atanh of a saturated action, so it stays finite for |u| up to ~1e30.
    """
    return gaussian_log_prob(u, mean, log_std) - jnp.sum(tanh_log_det_jacobian(u), axis=-1)


def sample_tanh_gaussian(key: jax.Array, mean: jax.Array, log_std: jax.Array):
    """Reparameterised sample: returns (action = tanh(u), log_prob, u) with u = mean + std * eps."""
    u = mean + jnp.exp(log_std) * jax.random.normal(key, jnp.shape(mean), jnp.result_type(mean))
    return jnp.tanh(u), tanh_gaussian_log_prob(u, mean, log_std), u


class TanhActor(nn.Module):
    """obs -> MLP -> tanh: a deterministic policy, actions in [-1, 1] (max_action 1; the env rescales);
    TD3+BC's and BC's actor."""

    action_dim: int
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs):
        x = as_float(obs)
        act = activation_fn(self.activation)
        for width in self.hidden:
            x = act(nn.Dense(width)(x))
        return jnp.tanh(nn.Dense(self.action_dim)(x))


class TanhGaussianActor(nn.Module):
    """SAC-style actor: obs -> MLP trunk -> per-expert mean and log-std, each shaped (..., K, A).

    `num_experts = 1` is the ordinary SAC actor (take `[..., 0, :]`). With `router=True` it also returns
    router logits (..., K) computed from `stop_gradient(trunk)`: the router's loss never trains the trunk
    (PMOE). The expert heads are ONE Dense layer with K*A outputs, reshaped. Output heads are initialised
    U(-1e-3, 1e-3); log-std is clipped to [log_std_min, log_std_max].
    """

    action_dim: int
    num_experts: int = 1
    hidden: Sequence[int] = (256, 256)
    activation: str = "relu"
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    router: bool = False

    @nn.compact
    def __call__(self, obs):
        x = as_float(obs)
        act = activation_fn(self.activation)
        for i, width in enumerate(self.hidden):
            x = act(nn.Dense(width, name=f"trunk_{i}")(x))
        shape = x.shape[:-1] + (self.num_experts, self.action_dim)
        size = self.num_experts * self.action_dim
        small = uniform_init(1e-3)
        mean = nn.Dense(size, kernel_init=small, bias_init=small, name="mean")(x).reshape(shape)
        log_std = nn.Dense(size, kernel_init=small, bias_init=small, name="log_std")(x).reshape(shape)
        log_std = jnp.clip(log_std, self.log_std_min, self.log_std_max)
        if not self.router:
            return mean, log_std
        logits = nn.Dense(self.num_experts, name="router")(jax.lax.stop_gradient(x))
        return mean, log_std, logits


class QNetwork(nn.Module):
    """Q(s, a): concat(obs, action) -> MLP -> scalar (last layer U(-3e-3, 3e-3))."""

    hidden: Sequence[int] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs, action):
        x = jnp.concatenate([as_float(obs), as_float(action)], axis=-1)
        act = activation_fn(self.activation)
        for width in self.hidden:
            x = act(nn.Dense(width)(x))
        small = uniform_init(3e-3)
        return nn.Dense(1, kernel_init=small, bias_init=small)(x)[..., 0]


class EnsembleQ(nn.Module):
    """`num_critics` independent Q networks evaluated in one batched call; output (num_critics, ...)."""

    num_critics: int = 2
    hidden: Sequence[int] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs, action):
        ensemble = nn.vmap(
            QNetwork,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_critics,
        )
        return ensemble(self.hidden, self.activation, name="critics")(obs, action)


class PGPolicy(nn.Module):
    """Policy-only MLP for the stochastic policy-gradient agents (pg, npg_igt, harpg).

    Xavier-uniform weights and zero biases (garage's `GaussianMLPPolicy` convention). Discrete:
    categorical over softmax logits. Continuous: diagonal Gaussian with a learned state-independent
    log standard deviation initialised at log(init_std); no squashing.
    """

    action_dim: int
    discrete: bool
    hidden: Sequence[int] = (32, 32)
    activation: str = "tanh"
    init_std: float = 1.0
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs) -> distrax.Distribution:
        x = as_float(obs)
        if self.obs_ndim > 1:
            x = x.reshape(x.shape[: x.ndim - self.obs_ndim] + (-1,))
        act = activation_fn(self.activation)
        for width in self.hidden:
            x = act(nn.Dense(width, kernel_init=nn.initializers.xavier_uniform())(x))
        out = nn.Dense(self.action_dim, kernel_init=nn.initializers.xavier_uniform())(x)
        if self.discrete:
            return distrax.Categorical(logits=out)
        log_std = self.param("log_std", nn.initializers.constant(np.log(self.init_std)), (self.action_dim,))
        return distrax.MultivariateNormalDiag(out, jnp.exp(log_std) * jnp.ones_like(out))


def mixture_log_prob(x: jax.Array, logits: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """log sum_k w_k N(x; mean_k, diag std_k^2) with w = softmax(logits), by logsumexp (stable).

    x: (..., A); logits: (..., K); mean, log_std: (..., K, A). Stays finite for tiny weights and for
    actions far from every component, where log(sum_k w_k exp(log N_k)) underflows to -inf.
    """
    component = gaussian_log_prob(x[..., None, :], mean, log_std)  # (..., K)
    return jax.nn.logsumexp(jax.nn.log_softmax(logits, axis=-1) + component, axis=-1)


class TanhMeanActorCritic(ActorCritic):
    """`ActorCritic` whose Gaussian mean is squashed into (-1, 1) by tanh (the SubPO ant A2C's actor:
    MLP -> tanh mean, state-independent log-std). Discrete action spaces are unchanged (categorical)."""

    def policy(self, obs) -> distrax.Distribution:
        if self.discrete:
            return super().policy(obs)
        mean = jnp.tanh(self.actor(obs))
        return distrax.MultivariateNormalDiag(mean, jnp.exp(self.log_std) * jnp.ones_like(mean))
