"""Drift functions of PPO's mirror-learning objective, -E[r A - D(r, A)], with D >= 0 and D(1, A) = 0.

PPO-clip is the drift ReLU((r - clip(r)) A); DPO is a closed-form soft version of it; a learned drift is a
small bias-free MLP (`DriftNet`) on features that all vanish at r = 1, meta-trained by `purerl.agents.lpo`
and stored in a drift file (`save_drift` / `load_drift`). `purerl.agents.ppo` takes any of them through its
`objective` and `drift` options.
"""

from __future__ import annotations

import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization


def clip_drift(ratio, advantages, eps: float = 0.2):
    """PPO-clip as a drift: min(rA, clip(r)A) = rA - ReLU((r - clip(r, 1-eps, 1+eps)) A)."""
    return jax.nn.relu((ratio - jnp.clip(ratio, 1.0 - eps, 1.0 + eps)) * advantages)


def dpo_drift(ratio, advantages, log_ratio=None, alpha: float = 2.0, beta: float = 0.6):
    """DPO's closed-form drift (Lu et al. 2022): soft clips in ratio space (A >= 0) and log-ratio space
    (A < 0)."""
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
        raise ValueError(
            "objective 'learned' needs a drift file: pass --drift PATH (from purerl meta-train lpo)"
        )
    if not os.path.isfile(path):
        raise ValueError(f"drift file {path!r} does not exist")
    with open(path, "rb") as f:
        try:
            raw = serialization.msgpack_restore(f.read())
            meta = json.loads(raw["meta"])
            saved = raw["params"]
        except Exception as err:  # noqa: BLE001 - any parse failure is a bad file
            raise ValueError(f"drift file {path!r} is not a purerl drift file ({err})") from None
    net, template = drift_template(
        int(meta["hidden"]), bool(meta["temporal"]), bool(meta.get("ppo_init", True))
    )
    want = jax.tree.map(np.shape, serialization.to_state_dict(template))
    got = jax.tree.map(np.shape, saved)
    if want != got:
        raise ValueError(
            f"drift file {path!r} has parameter shapes {got}, expected {want} for its meta {meta}"
        )
    return net, serialization.from_state_dict(template, jax.tree.map(jnp.asarray, saved))


def objective_drift(config):
    """The drift function of a PPO config's `objective`: 'dpo', or 'learned' (loading `config.drift`).
    Objective 'clip' is PPO's own loss and has none."""
    if config.objective == "dpo":
        return lambda ratio, log_ratio, adv, progress: dpo_drift(ratio, adv, log_ratio)
    if config.objective == "learned":
        net, params = load_drift(config.drift)
        return as_ppo_drift(net, params)
    raise ValueError(f"objective {config.objective!r} has no drift function")
