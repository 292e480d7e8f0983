"""A jittable uniform replay buffer (ring buffer of fixed capacity) for off-policy agents.

The buffer is a pytree: `data` holds one array per field with a leading `capacity` axis, plus the
write position and the number of valid entries. `add` and `sample` are pure functions, so the whole
off-policy loop (act, store, sample, update) stays inside one jitted `lax.scan`, and `jax.vmap` over
seeds gives every seed its own buffer.

flashbax was considered (DESIGN.md) but is not a dependency of purerl; this module is the small
subset the agents need: uniform sampling with replacement from a FIFO ring.

`Transition` is the layout SAC-style agents store. `next_obs` must be the TRUE next observation
(`info["final_observation"]`, i.e. the pre-reset one at episode ends), and `terminated` and
`truncated` are kept apart so that only `terminated` cuts the bootstrap.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array  # true next observation (pre-reset at episode ends)
    terminated: jax.Array
    truncated: jax.Array


@struct.dataclass
class ReplayBuffer:
    data: Any  # pytree, every leaf has leading axis `capacity`
    position: jax.Array  # next write index (int32)
    size: jax.Array  # number of valid entries (int32), <= capacity

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]


def init(example: Any, capacity: int) -> ReplayBuffer:
    """An empty buffer for items shaped like `example` (one item, no batch axis)."""
    if capacity < 1:
        raise ValueError(f"replay capacity must be positive, got {capacity}")
    data = jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example)
    return ReplayBuffer(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add(buffer: ReplayBuffer, batch: Any) -> ReplayBuffer:
    """Write a batch of items (leading axis n <= capacity) at the ring's position, overwriting the oldest."""
    capacity = buffer.capacity
    n = jax.tree.leaves(batch)[0].shape[0]
    if n > capacity:
        raise ValueError(f"cannot add {n} items to a replay buffer of capacity {capacity}")
    idx = (buffer.position + jnp.arange(n, dtype=jnp.int32)) % capacity
    data = jax.tree.map(lambda d, x: d.at[idx].set(jnp.asarray(x, d.dtype)), buffer.data, batch)
    return ReplayBuffer(
        data,
        (buffer.position + n) % capacity,
        jnp.minimum(buffer.size + n, capacity).astype(jnp.int32),
    )


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Any:
    """`batch_size` items drawn uniformly with replacement from the valid entries (size must be > 0)."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda d: d[idx], buffer.data)
