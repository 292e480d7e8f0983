"""Networks and O-DICE's residuals keep float64 inputs at float64 precision (x64 runs: the float64 checks
against the authors' code in benchmarks/reference), and integer observations still become float32.

The networks used to cast every input to float32 first, and the residuals built gamma (1 - d) in float32: with
float64 parameters that silently rounded observations and the discount, so a float64 run agreed with a float64
reference only to about 1e-7. x64 is switched on inside a context manager only (`jax.enable_x64(True)`).
"""

import jax
import jax.numpy as jnp
import numpy as np

from purerl.agents import odice
from purerl.nn import MLP, QNetwork, TanhActor, TanhGaussianActor


def to_float64(tree):
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), tree)


def numpy_relu_mlp(layers, x):
    """Dense layers ({'kernel', 'bias'}, in order) with ReLU between them, in numpy float64."""
    for i, layer in enumerate(layers):
        x = x @ np.asarray(layer["kernel"]) + np.asarray(layer["bias"])
        if i + 1 < len(layers):
            x = np.maximum(x, 0.0)
    return x


def test_networks_keep_float64_inputs():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        # 1/3 + 1e-9 is not a float32 number: rounding it to float32 moves it by ~1e-8
        obs = rng.normal(size=(5, 4)) / 3.0 + 1e-9
        act = rng.uniform(-1, 1, size=(5, 2)) / 3.0
        key = jax.random.key(0)

        mlp = MLP((8, 8), 3, "relu")
        params = to_float64(mlp.init(key, jnp.zeros(4)))
        out = mlp.apply(params, jnp.asarray(obs))
        layers = [params["params"][f"Dense_{i}"] for i in range(3)]
        assert out.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(out), numpy_relu_mlp(layers, obs), rtol=0, atol=1e-13)

        q = QNetwork((8, 8))
        q_params = to_float64(q.init(key, jnp.zeros(4), jnp.zeros(2)))
        q_out = q.apply(q_params, jnp.asarray(obs), jnp.asarray(act))
        q_layers = [q_params["params"][f"Dense_{i}"] for i in range(3)]
        expected = numpy_relu_mlp(q_layers, np.concatenate([obs, act], -1))[:, 0]
        np.testing.assert_allclose(np.asarray(q_out), expected, rtol=0, atol=1e-13)

        for actor in (TanhActor(2, (8, 8)), TanhGaussianActor(2, hidden=(8, 8))):
            actor_params = to_float64(actor.init(key, jnp.zeros(4)))
            full = jax.tree.leaves(actor.apply(actor_params, jnp.asarray(obs)))
            obs_rounded = jnp.asarray(obs.astype(np.float32), jnp.float64)
            rounded = jax.tree.leaves(actor.apply(actor_params, obs_rounded))
            assert all(x.dtype == jnp.float64 for x in full)
            # the input's last digits reach the output (a float32 cast would make these equal)
            assert any(np.any(np.asarray(a) != np.asarray(b)) for a, b in zip(full, rounded, strict=True))


def test_integer_observations_become_float32():
    mlp = MLP((8,), 2, "relu")
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    params = mlp.init(jax.random.key(1), jnp.zeros(4))
    out = mlp.apply(params, jnp.asarray(pixels))
    assert out.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(out), np.asarray(mlp.apply(params, pixels.astype(np.float32))))


def test_odice_residuals_discount_in_float64():
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        v_s, v_next = rng.normal(size=(2, 2, 6))
        vbar_s, vbar_next = rng.normal(size=(2, 6))
        reward = rng.normal(size=6)
        terminal = np.array([0, 1, 0, 0, 1, 0], np.float32)
        arrays = map(jnp.asarray, (v_s, v_next, vbar_s, vbar_next, reward, terminal))
        delta_f, delta_b = odice.residuals(*arrays, 0.99)
        mask = 0.99 * (1.0 - terminal.astype(np.float64))
        np.testing.assert_allclose(np.asarray(delta_f), reward + mask * vbar_next - v_s, rtol=0, atol=1e-14)
        np.testing.assert_allclose(np.asarray(delta_b), reward + mask * v_next - vbar_s, rtol=0, atol=1e-14)
