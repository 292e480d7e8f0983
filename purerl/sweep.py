"""Sweeps: one program over many seeds (vmap), split over devices (shard_map).

Seed `s` always means the key `jax.random.PRNGKey(s)`, so seed i of a vmapped batch is the same run as
a single run with seed i (bit for bit inside any batch of two or more seeds; docs/running.md). With
several devices, the seed axis is sharded over a 1-D mesh named "seeds" and each device runs `vmap` over
its share; nothing is communicated between seeds. A mesh of at most this process's devices is local; a
larger one spans every process (after `jax.distributed.initialize`), for programs that need all members
at once, such as an ES generation. Training runs use local programs: each process trains its share of the
seeds (`process_seeds`), and `to_host`, `to_global` and `to_local` move the results between processes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

SEED_AXIS = "seeds"


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    """Stacked `PRNGKey(seed)` for each seed (raw uint32 keys, shape (n, 2))."""
    return jax.vmap(jax.random.PRNGKey)(jnp.asarray(np.asarray(seeds, dtype=np.uint32)))


def check_devices(num_seeds: int, num_devices: int) -> None:
    """Clear errors for impossible device layouts (raised before anything is compiled)."""
    if num_seeds < 1:
        raise ValueError(f"num_seeds must be positive, got {num_seeds}")
    if num_devices < 1:
        raise ValueError(f"num_devices must be positive, got {num_devices}")
    available = len(jax.devices())
    if num_devices > available:
        hint = ""
        if jax.default_backend() == "cpu":
            hint = (
                f" (on CPU, set XLA_FLAGS=--xla_force_host_platform_device_count={num_devices} before "
                "starting Python to split the CPU into several devices)"
            )
        raise ValueError(f"num_devices = {num_devices} but only {available} device(s) are available{hint}")
    if num_seeds % num_devices:
        raise ValueError(f"num_seeds = {num_seeds} is not divisible by num_devices = {num_devices}")


def seed_mesh(num_devices: int) -> Mesh:
    """A 1-D mesh of this process's first `num_devices` devices; more than this process has: the devices of
    every process in process order, so that process p holds the p-th contiguous block of the seed axis."""
    local = jax.local_devices()
    if num_devices <= len(local):
        return Mesh(np.asarray(local[:num_devices]), (SEED_AXIS,))
    ordered = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    return Mesh(np.asarray(ordered[:num_devices]), (SEED_AXIS,))


def over_seeds(fn: Callable, num_devices: int = 1) -> Callable:
    """`fn` mapped over the leading (seed) axis of all its arguments and outputs.

    One device: `jax.vmap(fn)`. Several: `shard_map` of `vmap(fn)` with the seed axis split evenly.
    """
    batched = jax.vmap(fn)
    if num_devices == 1:
        return batched
    spec = P(SEED_AXIS)
    # check_vma=False: the per-seed program never communicates, so replication checks add nothing.
    return jax.shard_map(batched, mesh=seed_mesh(num_devices), in_specs=spec, out_specs=spec, check_vma=False)


def seed_sharding(num_devices: int) -> NamedSharding:
    return NamedSharding(seed_mesh(num_devices), P(SEED_AXIS))


def shares_cpu_thread_pool(num_devices: int) -> bool:
    """Whether several devices of the seed mesh are CPU devices of this process.

    Such devices share the process's one intra-op thread pool (one thread per core). jaxlib's LAPACK
    kernels (QR, LU, Cholesky, eigh, ...) split a batch of large enough matrices into tasks on that pool and
    block their own pool thread until the tasks are done; once a kernel is blocked on every pool thread, the
    tasks never run and the program deadlocks at 0% CPU (jaxlib 0.10.2, with or without the purerl.cpu
    flags). flax's orthogonal init under vmap is such a kernel (a batched QR per 64x64 layer): two CPU
    devices on a 2-core machine, each initialising its seeds, hang every time. GPUs use cuSOLVER instead.
    """
    if num_devices == 1 or jax.default_backend() != "cpu":
        return False
    here = jax.process_index()
    return sum(d.process_index == here for d in seed_mesh(num_devices).devices.flat) > 1


def init_over_seeds(init: Callable, keys, num_devices: int = 1,
                    compiling: contextlib.AbstractContextManager | None = None):
    """`init(key)` for every row of the host `keys`, placed for `over_seeds(..., num_devices)` programs.

    Where `shares_cpu_thread_pool`, the states come from the one-device program (`jit(vmap(init))` on the
    default device) and are then split over the devices: initialisation holds the agents' batched LAPACK
    kernels, and a single device's program never blocks every pool thread. The initial states are then bit
    for bit those of a one-device run.

    The program is traced and lowered first, then compiled and run inside `compiling` (a worker process's
    `compile_once.process_0_first` block: the other workers trace while process 0 compiles).
    """
    one_device = shares_cpu_thread_pool(num_devices)
    args = keys if one_device else place(keys, num_devices)
    lowered = jax.jit(over_seeds(init, 1 if one_device else num_devices)).lower(args)
    with compiling or contextlib.nullcontext():
        states = lowered.compile()(args)
    return place(states, num_devices) if one_device else states


def place(tree, num_devices: int = 1):
    """Put a seed-batched pytree where `over_seeds(..., num_devices)` programs expect it.

    Host values must be the same on every process (they are: seeds, restored checkpoints); each
    process keeps only the shards of its own devices.
    """
    if num_devices == 1:
        return tree
    sharding = seed_sharding(num_devices)
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    def to_global(x):
        if isinstance(x, jax.Array) and x.sharding == sharding:  # already placed (e.g. restored in place)
            return x
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(to_global, tree)


def uncommitted(tree):
    """A restored (committed) seed-batched pytree as uncommitted arrays on the default device, as a fresh
    run's state is. A committed argument adds sharding annotations to a one-device program, so a resumed run
    or a saved run's evaluation would otherwise compile programs of their own instead of the uninterrupted
    run's (which JAX's persistent compilation cache, where set, then gives back without compiling)."""
    return jax.device_put(jax.device_get(tree))


def process_seeds(seeds: Sequence[int]) -> list[int]:
    """This process's contiguous share of `seeds` (all of them in a single-process run)."""
    share = len(seeds) // jax.process_count()
    return list(seeds)[jax.process_index() * share:(jax.process_index() + 1) * share]


def to_global(tree, num_devices: int):
    """Process-local seed-batched arrays (this process's share) as global arrays over `num_devices` devices
    of every process, without computing anything (for checkpoints, which each process writes its part of)."""
    if jax.process_count() == 1:
        return tree
    sharding = seed_sharding(num_devices)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), tree)


def to_local(tree, num_local_devices: int):
    """The inverse of `to_global`: this process's rows of global seed-batched arrays, on its own devices."""
    if jax.process_count() == 1:
        return tree

    def local(x):
        shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
        if len(shards) == 1:
            return shards[0].data
        shape = (sum(s.data.shape[0] for s in shards),) + x.shape[1:]
        return jax.make_array_from_single_device_arrays(shape, seed_sharding(num_local_devices),
                                                        [s.data for s in shards])

    return jax.tree.map(local, tree)


def to_host(tree):
    """Fetch a seed-batched pytree to host numpy arrays: process-local arrays are concatenated over the
    processes in process order; global arrays are gathered whole."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    wait_for_all_processes("to_host")
    return multihost_utils.process_allgather(tree, tiled=True)


_barriers = iter(range(1 << 62))


def wait_for_all_processes(name: str, timeout_s: int = 3600) -> None:
    """Block until every process gets here (a no-op with one process).

    Processes reach a gather at different times (their compile times differ, more so on a loaded machine),
    and gloo gives up on a collective after 30 s. The coordination service's barrier waits longer; a process
    that dies is still detected by the heartbeat timeout of `init_distributed`.
    """
    if jax.process_count() == 1:
        return
    from jax._src import distributed  # the barrier is not re-exported publicly

    distributed.global_state.client.wait_at_barrier(f"purerl_{name}_{next(_barriers)}", timeout_s * 1000)


def init_distributed(coordinator: str | None, num_processes: int | None, process_id: int | None,
                     timeout_s: int = 60) -> None:
    """Join a multi-process run with JAX's own distributed runtime (no home-made protocol).

    With `coordinator=None` JAX auto-detects the cluster (SLURM, Open MPI, TPU pods, or the
    JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID environment variables). CPU
    collectives go through gloo. A process that stops sending heartbeats for `timeout_s` seconds makes
    the others fail instead of waiting forever. Must run before anything touches a device.
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=timeout_s,
        heartbeat_timeout_seconds=timeout_s,
    )


def vmap_seeds(train: Callable, seeds: Sequence[int], num_devices: int = 1):
    """Run `train(key)` for every seed in one jitted program; host outputs with a leading seed axis."""
    check_devices(len(seeds), num_devices)
    return to_host(jax.jit(over_seeds(train, num_devices))(place(seed_keys(seeds), num_devices)))
