"""Helpers for tests that start several CPU processes joined by jax.distributed on 127.0.0.1.

Sharding tests use processes (one CPU device each) rather than fake devices in one process: on a 2-core
machine XLA's CPU client can deadlock when one process runs a big program on two host devices at once
(README, "Known limitations"), while separate processes each get their own thread pool.
"""

import os
import subprocess
import sys

# The processes get the environment of purerl's own CPU workers: one CPU device each, single-threaded ops
# (the test session already sets those XLA flags, so they are unchanged).
from purerl.workers import free_port, worker_env  # noqa: F401  (free_port is re-exported to the tests)


def launch(commands: list[list[str]], env: dict[str, str] | None = None) -> list[subprocess.Popen]:
    """Start the processes, by default in the workers' environment with the test session's compilation
    cache as the run's cache (so process 0 compiles for all, purerl.compile_once)."""
    env = env or worker_env(os.environ.get("JAX_COMPILATION_CACHE_DIR"))
    return [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for cmd in commands]


def wait_all(procs: list[subprocess.Popen], timeout: float) -> list[str]:
    """Wait for every process; kill them all if one fails or time runs out, and show its stderr. Returns
    their standard outputs."""
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    return [out for out, _ in outputs]


def python(*args: str) -> list[str]:
    return [sys.executable, *args]
