"""Compile each program once for all the local worker processes of a run.

The worker processes of `purerl train` (purerl.workers) run the same programs, each for its own share of the
seeds on its own CPU device. Compiled in every worker at the same time, a program costs the workers'
count times the CPU time, on a machine whose cores are the workers. Instead, process 0 compiles each program
first and writes it to JAX's persistent compilation cache, in a directory that the parent process made for
the run (`ENV`); the others wait for it at a barrier and load the executable from the cache.

JAX keys its cache by the program, the flags, the versions, the compile options and the devices' topology.
On a CPU the last two name the process's own device (JAX strips the device assignment for GPUs only, so
that their processes share entries), so process 1's key would differ from process 0's: `enable` makes the
key ignore which CPU device a program is for. The executable is then loaded for the process's own device,
and the runs stay bit for bit those of one process (tests/test_determinism.py). If this JAX's cache keys are
built differently, the workers simply compile for themselves.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import jax

from purerl import sweep

ENV = "PURERL_SHARED_COMPILE_CACHE"
"""The cache directory of a run's worker processes, set by the process that starts them (purerl.workers)."""

_shared = False


def enable() -> bool:
    """In a worker process: use the run's compilation cache, keyed without the device assignment. Call before
    anything compiles. Returns whether compiled programs are shared (False outside worker processes)."""
    global _shared
    directory = os.environ.get(ENV)
    if not directory or jax.process_count() == 1 or not _key_ignores_device_assignment():
        return False
    jax.config.update("jax_compilation_cache_dir", directory)
    # small programs too: none is compiled twice
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _shared = True
    return True


def _key_ignores_device_assignment() -> bool:
    """Make the persistent cache's key of a CPU program independent of the process's device: JAX hashes the
    compile options' device assignment (stripped for GPUs only) and the devices' topology fingerprint (on a
    CPU, one per process). What the compiled program depends on stays in the key: the program, the flags,
    the versions, the device kind and the number of devices."""
    try:
        from jax._src import cache_key  # private: the key's parts are not configurable publicly
        hash_options = cache_key._hash_serialized_compile_options
        hash_devices = cache_key._hash_devices
        cache_key._hash_accelerator_config  # noqa: B018  (the part replaced below must exist)
    except (ImportError, AttributeError):
        return False
    if getattr(hash_options, "purerl_ignores_devices", False):
        return True

    def options_without_device_assignment(hash_obj, compile_options, strip_device_assignment=False):
        return hash_options(hash_obj, compile_options, strip_device_assignment=True)

    def device_kinds(hash_obj, devices):
        hash_devices(hash_obj, devices)

    options_without_device_assignment.purerl_ignores_devices = True
    cache_key._hash_serialized_compile_options = options_without_device_assignment
    cache_key._hash_accelerator_config = device_kinds
    return True


@contextlib.contextmanager
def process_0_first(name: str) -> Iterator[None]:
    """Compile (or first run) a program inside this block: process 0 compiles it while the others wait, then
    they load it from the cache, and all leave the block together. Every process must enter the same blocks in
    the same order. A no-op unless `enable` shared the cache."""
    if not _shared:
        yield
        return
    if jax.process_index() != 0:
        sweep.wait_for_all_processes(f"compiled_{name}")
    yield
    if jax.process_index() == 0:
        sweep.wait_for_all_processes(f"compiled_{name}")
    # Every process leaves with its program, so what follows starts together: otherwise process 0 would
    # start its first chunk while the others still load theirs, and their loading would count as run time.
    sweep.wait_for_all_processes(f"loaded_{name}")
