"""purerl.shuffle: the same permutations as jax.random.permutation, bit for bit, without XLA's sort."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import shuffle


@pytest.mark.parametrize("n", [1, 2, 3, 100, 512, 1625, 1626])
def test_permutation_is_jaxs_for_many_keys(n):
    keys = jax.random.split(jax.random.PRNGKey(n), 16)
    ours = jax.jit(jax.vmap(lambda k: shuffle.permutation(k, n)))(keys)
    jaxs = jax.jit(jax.vmap(lambda k: jax.random.permutation(k, n)))(keys)
    assert ours.dtype == jaxs.dtype and ours.shape == (16, n)
    np.testing.assert_array_equal(ours, jaxs)
    assert shuffle.rounds(n) == (2 if n > 1625 else 1 if n > 1 else 0)  # 1626 takes two sorts


def test_equal_keys_keep_their_order_as_a_stable_sort_does():
    keys = jnp.asarray(np.random.default_rng(0).integers(0, 4, 300), jnp.uint32)  # many ties
    values = jnp.arange(300) * 7
    np.testing.assert_array_equal(shuffle.sort_by_keys(keys, values), jax.lax.sort_key_val(keys, values)[1])
    np.testing.assert_array_equal(shuffle.sort_by_keys(keys), jnp.argsort(keys, stable=True))


def test_largest_keys_sort_before_the_padding():
    keys = jnp.asarray([shuffle.UINT32_MAX, 0, shuffle.UINT32_MAX, 5, 5], jnp.uint32)  # 5 -> padded to 8
    np.testing.assert_array_equal(shuffle.sort_by_keys(keys), [1, 3, 4, 0, 2])
