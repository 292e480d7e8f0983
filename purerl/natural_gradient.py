"""Natural-gradient machinery shared by TRPO, NPG and HNPG.

The pieces of one TRPO step (Schulman et al., 2015), each usable on its own:

- `fisher_vector_product`: F v = d/dθ (∇KL̄(θ) · v) + δ v, the Hessian of the mean KL divergence between
  the old and the new policy at θ = θ_old (which equals the Fisher information there), plus damping δ;
- `conjugate_gradient`: solves F x = b with a fixed number of iterations and freezes once rᵀr < tol, so it
  jits, vmaps and gives the same answer as a loop that stops early;
- `trpo_step`: the KL-scaled step x / sqrt(½ xᵀFx / max_kl) followed by a backtracking line search on the
  surrogate loss (fractions 0.5^k; accept the first with positive improvement whose ratio to the expected
  improvement exceeds `accept_ratio`; otherwise keep θ_old bit-for-bit).

All functions take pytrees of parameters and work on their flattened form (`ravel_pytree`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


def fisher_vector_product(kl_fn: Callable[[Any], jax.Array], params: Any, damping: float):
    """`v -> (∇²KL̄)(params) v + damping·v` on flat vectors; `kl_fn(params)` is the mean KL(π_old ‖ π_params)
    with π_old held fixed (its Hessian at params = θ_old is the Fisher matrix)."""
    flat, unravel = ravel_pytree(params)
    grad_kl = jax.grad(lambda x: kl_fn(unravel(x)))

    def fvp(v):
        return jax.jvp(grad_kl, (flat,), (v,))[1] + damping * v

    return fvp


def conjugate_gradient(
    matvec: Callable[[jax.Array], jax.Array], b: jax.Array, iters: int = 10, tol: float = 1e-10
):
    """Conjugate gradient for A x = b from x₀ = 0 (A symmetric positive definite, given as `matvec`).

    Runs exactly `iters` iterations; once the squared residual rᵀr drops below `tol` the iterate is frozen
    (the same result as the usual loop that stops early). Returns `(x, rᵀr)`.
    """

    def body(_, carry):
        x, r, p, rr = carry
        active = rr >= tol
        ap = matvec(p)
        alpha = rr / jnp.where(active, jnp.vdot(p, ap), 1.0)
        x_new = x + alpha * p
        r_new = r - alpha * ap
        rr_new = jnp.vdot(r_new, r_new)
        p_new = r_new + (rr_new / jnp.where(active, rr, 1.0)) * p
        keep = lambda new, old: jnp.where(active, new, old)  # noqa: E731
        return keep(x_new, x), keep(r_new, r), keep(p_new, p), keep(rr_new, rr)

    init = (jnp.zeros_like(b), b, b, jnp.vdot(b, b))
    x, _, _, rr = jax.lax.fori_loop(0, iters, body, init)
    return x, rr


def trpo_step(
    loss_fn: Callable[[Any], jax.Array],
    kl_fn: Callable[[Any], jax.Array],
    params: Any,
    max_kl: float = 0.01,
    damping: float = 0.1,
    cg_iters: int = 10,
    cg_tol: float = 1e-10,
    backtracks: int = 10,
    accept_ratio: float = 0.1,
):
    """One TRPO step minimising the surrogate `loss_fn` (= −mean A·ratio) under the KL constraint.

    x solves (F + δI) x = −g by CG; the full step s = x / β with β = sqrt(½ xᵀ(F+δI)x / max_kl); the line
    search tries θ_old + 0.5^k s for k = 0..backtracks−1 (all candidates evaluated at
    once, the first accepted wins).
    Returns `(new_params, stats)`.
    """
    flat, unravel = ravel_pytree(params)
    flat_loss = lambda x: loss_fn(unravel(x))  # noqa: E731
    loss_old, grad = jax.value_and_grad(flat_loss)(flat)
    fvp = fisher_vector_product(kl_fn, params, damping)
    x, residual = conjugate_gradient(fvp, -grad, cg_iters, cg_tol)
    shs = 0.5 * jnp.vdot(x, fvp(x))
    beta = jnp.sqrt(jnp.maximum(shs, 1e-30) / max_kl)
    full_step = x / beta
    expected_rate = -jnp.vdot(grad, x) / beta
    fractions = 0.5 ** jnp.arange(backtracks, dtype=flat.dtype)
    new_losses = jax.vmap(lambda f: flat_loss(flat + f * full_step))(fractions)
    improvement = loss_old - new_losses
    ratio = improvement / (expected_rate * fractions)
    accepted = (improvement > 0) & (ratio > accept_ratio) & jnp.isfinite(new_losses)
    any_accepted = accepted.any()
    first = jnp.argmax(accepted)
    fraction = jnp.where(any_accepted, fractions[first], 0.0)
    new_flat = jnp.where(any_accepted, flat + fraction * full_step, flat)
    new_params = unravel(new_flat)
    stats = {
        "surrogate_before": loss_old,
        "surrogate_after": jnp.where(any_accepted, new_losses[first], loss_old),
        "step_fraction": fraction,
        "step_accepted": any_accepted.astype(flat.dtype),
        "kl": kl_fn(new_params),
        "cg_residual": residual,
        "grad_norm": jnp.linalg.norm(grad),
    }
    return new_params, stats


def policy_step(
    dist_fn: Callable[[Any, jax.Array], Any], params: Any, obs, actions, advantages, **trpo_kwargs
):
    """The TRPO/NPG actor update: one `trpo_step` on the importance-weighted surrogate
    L(θ) = −mean[A · π_θ(a|s) / π_old(a|s)] with KL̄ = mean KL(π_old ‖ π_θ) over the given states.

    `dist_fn(params, obs)` returns a distrax distribution (Gaussian or categorical); `trpo_kwargs` are
    `trpo_step`'s (max_kl, damping, cg_iters, cg_tol, backtracks, accept_ratio).
    """
    old = dist_fn(jax.lax.stop_gradient(params), obs)
    log_prob_old = jax.lax.stop_gradient(old.log_prob(actions))
    advantages = jax.lax.stop_gradient(advantages)

    def surrogate(p):
        return -jnp.mean(advantages * jnp.exp(dist_fn(p, obs).log_prob(actions) - log_prob_old))

    def kl(p):
        return jnp.mean(old.kl_divergence(dist_fn(p, obs)))

    return trpo_step(surrogate, kl, params, **trpo_kwargs)


def trpo_kwargs(config: Any) -> dict[str, Any]:
    """`trpo_step` settings read from an agent config with fields max_kl, damping, cg_iters, cg_tol,
    ls_backtracks and ls_accept_ratio (TRPO and HNPG share these names)."""
    return dict(
        max_kl=config.max_kl,
        damping=config.damping,
        cg_iters=config.cg_iters,
        cg_tol=config.cg_tol,
        backtracks=config.ls_backtracks,
        accept_ratio=config.ls_accept_ratio,
    )
