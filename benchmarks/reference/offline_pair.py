"""What the paired checks of the offline agents (`odice.py`, `iql.py` here) share: the synthetic dataset, the
purerl agent's own first minibatch (replayed from its key), its state in float64, and its speed timer.

Imports only numpy at import time (the authors' side of a check, in the reference venv, uses
`synthetic_dataset`); the rest imports jax and purerl when called.
"""

from __future__ import annotations

import time

import numpy as np

OBS_DIM, ACT_DIM = 11, 3  # hopper's shapes


def synthetic_dataset(rows: int, seed: int, dtype) -> dict[str, np.ndarray]:
    """Random transitions with hopper's shapes; ~5% terminals; actions inside (-1, 1)."""
    rng = np.random.default_rng(seed)
    return {"observations": rng.normal(size=(rows, OBS_DIM)).astype(dtype),
            "actions": rng.uniform(-0.99, 0.99, size=(rows, ACT_DIM)).astype(dtype),
            "rewards": rng.normal(size=rows).astype(dtype),
            "next_observations": rng.normal(size=(rows, OBS_DIM)).astype(dtype),
            "terminals": (rng.uniform(size=rows) < 0.05).astype(dtype)}


def offline_data(arrays: dict[str, np.ndarray]):
    """`purerl.offline.OfflineData` around in-memory arrays (no evaluation env: the checks never evaluate)."""
    import jax.numpy as jnp

    from purerl import offline

    return offline.OfflineData({k: jnp.asarray(v) for k, v in arrays.items()}, np.zeros(OBS_DIM),
                               np.ones(OBS_DIM), "synthetic", None, None, {}, "")


def first_batch(state, arrays: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
    """The minibatch an offline agent's first `update` of `state` draws: `update` splits `state.key`, then
    takes one key per scanned step, and the step calls `offline.sample` with it."""
    import jax
    import jax.numpy as jnp

    from purerl import offline

    _, run_key = jax.random.split(state.key)
    batch = offline.sample({k: jnp.asarray(v) for k, v in arrays.items()}, jax.random.split(run_key, 1)[0],
                           batch_size)
    return {k: np.asarray(v) for k, v in batch.items()}


def float64_state(state):
    """Every floating leaf of a train state in float64 (call under x64; optimiser moments are zeros at the
    start, so the cast is exact)."""
    import jax
    import jax.numpy as jnp

    def cast(x):
        return x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x

    return jax.tree.map(cast, state)


def update_timer(agent, seed: int, calls: int):
    """(timer, compile seconds): the agent's `update` compiled once ahead of time (the harness's timer); each
    timer call runs it `calls` times on the carried state and returns updates/s."""
    import jax

    from benchmarks import harness

    state = agent.init(jax.random.key(seed))
    program, compile_s = harness.compile_timed(agent.update, state)
    holder = {"state": harness.run_timed(program, state)[0][0]}

    def timer() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            holder["state"] = jax.block_until_ready(program(holder["state"])[0])
        return calls * agent.steps_per_iteration / (time.perf_counter() - start)
    return timer, compile_s
