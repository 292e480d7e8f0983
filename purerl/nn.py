"""Networks shared by the agents: MLPs and policy heads.

Initialisation follows the PPO implementation-details convention (orthogonal weights, gain sqrt(2) in
hidden layers, 0.01 for the policy output, 1.0 for values, zero biases).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


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

    @nn.compact
    def __call__(self, x):
        x = jnp.asarray(x, jnp.float32)
        if self.obs_ndim > 1:
            x = x.reshape(x.shape[: x.ndim - self.obs_ndim] + (-1,))
        act = activation_fn(self.activation)
        for width in self.hidden:
            x = dense(width)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        return dense(self.out, self.out_scale)(x)


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs. Discrete: categorical logits. Continuous: diagonal Gaussian
    with a state-independent log standard deviation (initialised at `log_std_init`)."""

    action_dim: int
    discrete: bool
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    log_std_init: float = 0.0
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs) -> tuple[distrax.Distribution, jax.Array]:
        head = MLP(self.hidden, self.action_dim, self.activation, out_scale=0.01, obs_ndim=self.obs_ndim)(obs)
        value = MLP(self.hidden, 1, self.activation, out_scale=1.0, obs_ndim=self.obs_ndim)(obs)[..., 0]
        if self.discrete:
            return distrax.Categorical(logits=head), value
        log_std = self.param("log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,))
        return distrax.MultivariateNormalDiag(head, jnp.exp(log_std) * jnp.ones_like(head)), value
