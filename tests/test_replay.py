"""Replay buffer (ring semantics, sampling) and the shared tanh-Gaussian / Q-network pieces of purerl.nn."""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import nn as pnn
from purerl import replay


def _batch(start, n):
    x = jnp.arange(start, start + n, dtype=jnp.float32)
    return replay.Transition(
        obs=jnp.stack([x, -x], 1),
        action=x[:, None],
        reward=x,
        next_obs=jnp.stack([x + 1, -x - 1], 1),
        terminated=(x % 2 == 0),
        truncated=(x % 3 == 0),
    )


def _example():
    return jax.tree.map(lambda x: x[0], _batch(0, 1))


def test_add_wraps_like_a_ring():
    buf = replay.init(_example(), capacity=5)
    assert buf.capacity == 5 and int(buf.size) == 0
    buf = replay.add(buf, _batch(0, 3))
    assert int(buf.size) == 3 and int(buf.position) == 3
    buf = replay.add(buf, _batch(3, 4))  # items 3..6: 5 and 6 overwrite slots 0 and 1
    assert int(buf.size) == 5 and int(buf.position) == 2
    np.testing.assert_array_equal(buf.data.reward, [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buf.data.obs[:, 1], -np.array([5, 6, 2, 3, 4]))
    np.testing.assert_array_equal(buf.data.terminated, np.array([5, 6, 2, 3, 4]) % 2 == 0)
    np.testing.assert_array_equal(buf.data.truncated, np.array([5, 6, 2, 3, 4]) % 3 == 0)
    assert buf.data.terminated.dtype == jnp.bool_


def test_add_and_sample_jit_and_only_valid_entries():
    buf = replay.init(_example(), capacity=100)
    buf = jax.jit(replay.add)(buf, _batch(10, 7))
    sample = jax.jit(replay.sample, static_argnums=2)(buf, jax.random.PRNGKey(0), 4096)
    values = np.asarray(sample.reward)
    assert set(values.tolist()) == set(range(10, 17))  # never an empty slot; all valid ones reached
    # fields of one sampled item stay aligned
    np.testing.assert_array_equal(sample.obs[:, 0], sample.reward)
    np.testing.assert_array_equal(sample.next_obs[:, 0], sample.reward + 1)
    counts = np.bincount(values.astype(int) - 10, minlength=7)
    assert counts.min() > 4096 / 7 * 0.8  # roughly uniform


def test_bad_capacity_and_oversized_add():
    with pytest.raises(ValueError, match="capacity"):
        replay.init(_example(), 0)
    with pytest.raises(ValueError, match="capacity"):
        replay.add(replay.init(_example(), 2), _batch(0, 3))


def test_tanh_gaussian_log_prob_brute_force_change_of_variables():
    """log pi(a) via the stable formula == log N(u) - log|d tanh/du| computed naively in float64."""
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(50, 3))
    log_std = rng.uniform(-2, 1, size=(50, 3))
    u = mean + np.exp(log_std) * rng.normal(size=(50, 3))
    normal = -0.5 * ((u - mean) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)
    # derivative of tanh by central finite differences (float64), the brute-force Jacobian
    h = 1e-6
    jac = (np.tanh(u + h) - np.tanh(u - h)) / (2 * h)
    expected = (normal - np.log(jac)).sum(-1)
    got = pnn.tanh_gaussian_log_prob(
        jnp.asarray(u, jnp.float32), jnp.asarray(mean, jnp.float32), jnp.asarray(log_std, jnp.float32)
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_tanh_log_prob_matches_distrax_and_is_finite_far_out():
    """Spec test 5: agrees with distrax Transformed(Normal, Tanh) to 1e-5 (float64), finite for |u| <= 20."""
    u = np.linspace(-20.0, 20.0, 81)
    mean = np.full_like(u, 0.3)
    log_std = np.full_like(u, 0.5)
    with jax.enable_x64(True):
        dist = distrax.Transformed(
            distrax.MultivariateNormalDiag(
                jnp.asarray(mean[:, None]), jnp.exp(jnp.asarray(log_std[:, None]))
            ),
            distrax.Block(distrax.Tanh(), 1),
        )
        # distrax's log_prob takes the action; give it the exact pre-tanh u through the bijector's
        # forward_and_log_det so that saturated actions (tanh(20) == 1.0) stay comparable.
        base = dist.distribution.log_prob(jnp.asarray(u[:, None]))
        _, log_det = dist.bijector.forward_and_log_det(jnp.asarray(u[:, None]))
        reference = np.asarray(base - log_det)
        ours64 = np.asarray(
            pnn.tanh_gaussian_log_prob(
                jnp.asarray(u[:, None]), jnp.asarray(mean[:, None]), jnp.asarray(log_std[:, None])
            )
        )
    np.testing.assert_allclose(ours64, reference, rtol=1e-5, atol=1e-5)
    ours32 = pnn.tanh_gaussian_log_prob(
        jnp.asarray(u[:, None], jnp.float32),
        jnp.asarray(mean[:, None], jnp.float32),
        jnp.asarray(log_std[:, None], jnp.float32),
    )
    assert np.all(np.isfinite(ours32))
    np.testing.assert_allclose(ours32, reference, rtol=1e-5, atol=1e-4)
    with np.errstate(divide="ignore"):
        naive = np.log1p(-(np.tanh(np.float32(u)) ** 2))  # what the naive form gives in float32
    assert np.isneginf(naive).any()


def test_sample_tanh_gaussian_reparameterised():
    key = jax.random.PRNGKey(1)
    mean, log_std = jnp.array([[0.5, -1.0]]), jnp.array([[-0.5, 0.2]])
    a, lp, u = pnn.sample_tanh_gaussian(key, mean, log_std)
    np.testing.assert_allclose(a, jnp.tanh(u))
    np.testing.assert_allclose(lp, pnn.tanh_gaussian_log_prob(u, mean, log_std))
    eps = jax.random.normal(key, mean.shape)
    np.testing.assert_allclose(u, mean + jnp.exp(log_std) * eps, rtol=1e-6)
    g = jax.grad(lambda m: pnn.sample_tanh_gaussian(key, m, log_std)[0].sum())(mean)
    assert np.all(np.asarray(g) > 0)  # gradient flows through the sample


def test_actor_and_ensemble_shapes_and_router_stop_gradient():
    actor = pnn.TanhGaussianActor(action_dim=2, num_experts=3, hidden=(8, 8), router=True)
    params = actor.init(jax.random.PRNGKey(0), jnp.zeros(4))
    obs = jnp.ones((5, 4))
    mean, log_std, logits = actor.apply(params, obs)
    assert mean.shape == (5, 3, 2) and log_std.shape == (5, 3, 2) and logits.shape == (5, 3)
    g = jax.grad(lambda p: actor.apply(p, obs)[2].sum())(params)["params"]
    assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree.leaves(g["trunk_0"]))
    critic = pnn.EnsembleQ(num_critics=2, hidden=(8,))
    qp = critic.init(jax.random.PRNGKey(0), obs, jnp.zeros((5, 2)))
    q = critic.apply(qp, obs, jnp.zeros((5, 2)))
    assert q.shape == (2, 5) and not np.allclose(q[0], q[1])
