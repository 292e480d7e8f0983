"""`permutation(key, n)`: exactly the permutation `jax.random.permutation(key, n)` draws, without XLA's sort.

jax shuffles by sorting: each round draws fresh 32-bit random keys and stably sorts the current order by
them (one round up to n = 1625, more above). On the CPU, XLA's sort calls a compiled comparator for every
comparison (about 200 ns per element): the minibatch shuffles took 3-4 ms of a 26 ms PPO iteration on
CartPole-v1 with 8 vmapped seeds. A stable sort by key is a sort by the pairs (key, position), which are
distinct, so every correct sorting algorithm puts them in the same order: here a bitonic network,
log2(n) (log2(n) + 1) / 2 stages of elementwise compare-and-swap, scanned (one compiled stage; unrolled, a
512-element network took a second of PPO's compile, and ran no faster). Same keys, same order, so the same
permutation bit for bit (`tests/test_shuffle.py`). 32 shuffles of 512 (one PPO iteration of 8 seeds): 0.9 ms.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

UINT32_MAX = np.iinfo(np.uint32).max


def rounds(n: int) -> int:
    """How many sorts jax's shuffle does for n elements (its static rule: keys collide rarely enough)."""
    return int(np.ceil(3 * np.log(max(1, n)) / np.log(UINT32_MAX)))


NETWORK_MAX = 1 << 13  # above, the network's n log2(n)^2 work may outgrow the sort (measured at n = 512 only)


def permutation(key: jax.Array, n: int) -> jax.Array:
    """A random permutation of `range(n)` (int32), equal to `jax.random.permutation(key, n)`."""
    if n > NETWORK_MAX:
        return jax.random.permutation(key, n)
    order = None  # the first round sorts the positions themselves
    for _ in range(rounds(n)):
        key, subkey = jax.random.split(key)
        order = sort_by_keys(jax.random.bits(subkey, (n,), jnp.uint32), order)
    return jnp.arange(n) if order is None else order


def sort_by_keys(keys: jax.Array, values: jax.Array | None = None) -> jax.Array:
    """`values` (1-D; default the positions 0..n-1) stably sorted by the uint32 `keys`, as
    `jax.lax.sort_key_val(keys, values)[1]`."""
    n = keys.shape[0]
    size = 1 << max(0, math.ceil(math.log2(max(n, 1))))
    # padding sorts last: the largest key, and positions after every real element's
    columns = [jnp.concatenate([keys, jnp.full((size - n,), UINT32_MAX, jnp.uint32)]),
               jnp.arange(size, dtype=jnp.int32)]
    if values is not None:
        columns.append(jnp.concatenate([values, jnp.zeros((size - n,), values.dtype)]))
    # The network's stages: merge pairs of sorted runs of block/2 into runs of block (alternately up and
    # down), comparing elements `distance` apart; scanned, so that one stage is compiled (module docstring).
    bits = size.bit_length() - 1  # size = 2 ** bits
    stages = np.array([(1 << b, 1 << d) for b in range(1, bits + 1) for d in reversed(range(b))], np.int32)
    columns, _ = jax.lax.scan(_compare_swap, tuple(columns), stages.reshape(-1, 2))
    return columns[-1][:n]


def _compare_swap(columns: tuple[jax.Array, ...], stage: jax.Array) -> tuple[tuple[jax.Array, ...], None]:
    """Order each element with its partner `distance` away (position XOR distance): the smaller (key,
    position) first inside runs of `block` that sort upwards, last in those that sort downwards (every
    other run). Both elements of a pair see the same decision: each takes its partner's values on a swap."""
    block, distance = stage[0], stage[1]
    size = columns[0].shape[0]
    position = jnp.arange(size, dtype=jnp.int32)
    first = (position & distance) == 0  # the lower position of its pair: its partner is `distance` after it

    def partner_values(column):
        # two contiguous slices of the column repeated twice instead of a gather: 3-4x faster on the CPU
        twice = jnp.concatenate([column, column])
        after = jax.lax.dynamic_slice_in_dim(twice, distance, size)
        before = jax.lax.dynamic_slice_in_dim(twice, size - distance, size)
        return jnp.where(first, after, before)

    other = [partner_values(c) for c in columns]
    low = [jnp.where(first, c, o) for c, o in zip(columns, other, strict=True)]
    high = [jnp.where(first, o, c) for c, o in zip(columns, other, strict=True)]
    high_first = (high[0] < low[0]) | ((high[0] == low[0]) & (high[1] < low[1]))
    swap = high_first == ((position & block) == 0)  # a pair out of its run's order
    return tuple(jnp.where(swap, o, c) for c, o in zip(columns, other, strict=True)), None
