"""Mixtures of experts (primitives): per-example expert selection and the diagnostics of a mixture policy.

Shared by the PMOE agents (`purerl.agents.pmoe_sac`, `purerl.agents.pmoe_ppo`).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np


def choose_expert(x, k):
    """Per-example expert selection: x (B..., K, *rest), k (B...) integer -> x[..., k, *rest]."""
    idx = jnp.expand_dims(k, tuple(range(k.ndim, x.ndim)))
    return jnp.squeeze(jnp.take_along_axis(x, idx, axis=k.ndim), axis=k.ndim)


def _subsets(K: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=K)), np.float32)  # (2^K, K)


def distinguishable_modes(mean, log_std, w, threshold: float = 2.0, min_weight: float = 0.05):
    """Largest set of pairwise-distinguishable experts among those with mean router weight > min_weight.

    d_ij(s) = ||mu_i - mu_j|| / sqrt(0.5 (mean_a sigma_i^2 + mean_a sigma_j^2)) in pre-tanh space; i and j
    are distinguishable if median_s d_ij(s) > threshold. Brute force over all 2^K subsets (K <= 10).
    mean, log_std: (B, K, A); w: (B, K).
    """
    K = mean.shape[-2]
    if K > 10:
        return jnp.asarray(jnp.nan)
    var = jnp.exp(2.0 * log_std).mean(-1)  # (B, K)
    dist = jnp.linalg.norm(mean[:, :, None, :] - mean[:, None, :, :], axis=-1)
    d = dist / jnp.sqrt(0.5 * (var[:, :, None] + var[:, None, :]))
    apart = (jnp.median(d, axis=0) > threshold) | jnp.eye(K, dtype=bool)  # (K, K)
    active = w.mean(0) > min_weight
    subsets = jnp.asarray(_subsets(K))
    clashes = jnp.einsum("si,ij,sj->s", subsets, 1.0 - apart.astype(jnp.float32), subsets)
    inactive = subsets @ (1.0 - active.astype(jnp.float32))
    valid = (clashes == 0) & (inactive == 0)
    return jnp.max(jnp.where(valid, subsets.sum(-1), 0.0))


def primitive_metrics(outputs):
    """Router entropy mean_s H(w(s)), effective experts exp(H(mean_s w)) and distinguishable modes on a
    batch of states, from the actor's outputs (mean, log_std, logits)."""
    mean, log_std, logits = jax.lax.stop_gradient(outputs)
    w = jax.nn.softmax(logits)
    log_w = jax.nn.log_softmax(logits)
    w_bar = w.mean(0)
    return {
        "router_entropy": -(w * log_w).sum(-1).mean(),
        "effective_experts": jnp.exp(-(w_bar * jnp.log(jnp.maximum(w_bar, 1e-30))).sum()),
        "distinguishable_modes": distinguishable_modes(mean, log_std, w),
    }
