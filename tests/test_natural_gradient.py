"""Natural-gradient maths: CG vs a direct solve, FVP vs an explicit Fisher matrix, the KL-scaled TRPO step."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from purerl.natural_gradient import conjugate_gradient, fisher_vector_product, trpo_step


def test_cg_matches_solve_condition_10():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        q, _ = np.linalg.qr(rng.normal(size=(30, 30)))
        a = jnp.asarray(q @ np.diag(np.logspace(0, 1, 30)) @ q.T)
        b = jnp.asarray(rng.normal(size=30))
        x, _ = jax.jit(lambda b: conjugate_gradient(lambda v: a @ v, b, iters=30, tol=0.0))(b)
        exact = jnp.linalg.solve(a, b)
        assert float(jnp.linalg.norm(x - exact) / jnp.linalg.norm(exact)) < 1e-9


def test_cg_low_rank_plus_identity_converges_and_freezes():
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        u = rng.normal(size=(30, 3))
        a = jnp.asarray(np.eye(30) + u @ u.T)  # 4 distinct eigenvalues: exact in <= 4 iterations
        b = jnp.asarray(rng.normal(size=30))
        # both iteration counts as one jitted function of (a, b), so that the compiler builds the loop body
        # alike (a program that folds `a` in as a constant may sum the matvec in another order)
        solve = jax.jit(lambda a, b, iters: conjugate_gradient(lambda v: a @ v, b, iters=iters, tol=1e-10),
                        static_argnums=2)
        x, rr = solve(a, b, 10)
        exact = jnp.linalg.solve(a, b)
        assert float(jnp.max(jnp.abs(x - exact))) < 1e-10
        assert float(rr) < 1e-10
        # the early stop freezes the iterate: 10 and 50 iterations give the same x bit for bit
        x50, _ = solve(a, b, 50)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(x50))


def _tiny_policy(params, obs):
    hidden = jnp.tanh(obs @ params["w1"] + params["b1"])
    return hidden @ params["w2"] + params["b2"], params["log_std"]


def _gauss_kl(mu0, ls0, mu1, ls1):
    return jnp.sum(ls1 - ls0 + (jnp.exp(2 * ls0) + (mu0 - mu1) ** 2) / (2 * jnp.exp(2 * ls1)) - 0.5, -1)


def _tiny_problem(key):
    k1, k2, k3, k4, k5, k6 = jax.random.split(key, 6)
    params = {
        "w1": jax.random.normal(k1, (4, 3)),
        "b1": 0.1 * jax.random.normal(k2, (3,)),
        "w2": jax.random.normal(k3, (3, 2)),
        "b2": 0.1 * jax.random.normal(k4, (2,)),
        "log_std": 0.3 * jax.random.normal(k5, (2,)),
    }
    obs = jax.random.normal(k6, (16, 4))
    return params, obs


def _kl_fn(old_params, obs):
    mu0, ls0 = jax.lax.stop_gradient(_tiny_policy(old_params, obs))

    def kl(params):
        mu1, ls1 = _tiny_policy(params, obs)
        return _gauss_kl(mu0, ls0, mu1, jnp.broadcast_to(ls1, mu1.shape)).mean()

    return kl


def test_fvp_matches_explicit_fisher():
    with jax.enable_x64(True):
        params, obs = _tiny_problem(jax.random.PRNGKey(0))
        params = jax.tree.map(lambda x: x.astype(jnp.float64), params)
        obs = obs.astype(jnp.float64)
        flat, unravel = ravel_pytree(params)
        damping = 0.1
        fvp = fisher_vector_product(_kl_fn(params, obs), params, damping)

        def outputs(x, s):  # (mean, log_std) of one state, the sufficient statistics of the Gaussian
            mu, ls = _tiny_policy(unravel(x), s)
            return jnp.concatenate([mu, ls])

        jac = jax.vmap(lambda s: jax.jacobian(outputs)(flat, s))(obs)  # (S, 4, P)
        sigma2 = jnp.exp(2 * params["log_std"])
        weights = jnp.concatenate([1.0 / sigma2, 2.0 * jnp.ones(2)])
        fisher = jnp.einsum("sip,i,siq->pq", jac, weights, jac) / obs.shape[0]
        for seed in range(3):
            v = jax.random.normal(jax.random.PRNGKey(seed + 10), flat.shape, jnp.float64)
            np.testing.assert_allclose(np.asarray(fvp(v) - damping * v), np.asarray(fisher @ v), atol=1e-8)


def _trpo_problem(advantage_scale):
    params, obs = _tiny_problem(jax.random.PRNGKey(3))
    key_a, key_adv = jax.random.split(jax.random.PRNGKey(4))
    mu, ls = _tiny_policy(params, obs)
    actions = mu + jnp.exp(ls) * jax.random.normal(key_a, mu.shape)
    advantages = advantage_scale * jax.random.normal(key_adv, (obs.shape[0],))

    def log_prob(p):
        m, s = _tiny_policy(p, obs)
        return jnp.sum(-0.5 * ((actions - m) / jnp.exp(s)) ** 2 - s, -1)

    old_lp = jax.lax.stop_gradient(log_prob(params))

    def loss(p):
        return -jnp.mean(advantages * jnp.exp(log_prob(p) - old_lp))

    return params, obs, loss, _kl_fn(params, obs)


def test_trpo_step_kl_scaling():
    with jax.enable_x64(True):
        params, obs, loss, kl = _trpo_problem(1.0)
        params = jax.tree.map(lambda x: x.astype(jnp.float64), params)
        max_kl, damping = 0.01, 0.1
        new_params, stats = trpo_step(
            loss, kl, params, max_kl=max_kl, damping=damping, cg_iters=50, cg_tol=1e-20
        )
        assert float(stats["step_accepted"]) == 1.0
        f = float(stats["step_fraction"])
        step = ravel_pytree(new_params)[0] - ravel_pytree(params)[0]
        fvp = fisher_vector_product(kl, params, damping)
        # the accepted step is f times the full step, whose quadratic KL model equals max_kl exactly
        np.testing.assert_allclose(0.5 * float(step @ fvp(step)) / f**2, max_kl, rtol=1e-6)
        # the measured KL is close to its quadratic model on this smooth problem (50% slack for curvature)
        assert float(kl(new_params)) <= 1.5 * max_kl * f**2
        assert float(stats["surrogate_after"]) < float(stats["surrogate_before"])


def test_trpo_step_zero_advantages_keeps_params_bitwise():
    params, obs, loss, kl = _trpo_problem(0.0)
    new_params, stats = jax.jit(lambda p: trpo_step(loss, kl, p))(params)
    assert float(stats["step_accepted"]) == 0.0
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(new_params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
