"""Helpers for tests that start several CPU processes joined by jax.distributed on 127.0.0.1.

Sharding tests use processes (one CPU device each) rather than fake devices in one process: on a 2-core
machine XLA's CPU client can deadlock when one process runs a big program on two host devices at once
(README, "Known issues"), while separate processes each get their own thread pool.
"""

import os
import socket
import subprocess
import sys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env() -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    # One CPU device per process: the devices of the run are the processes'.
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "force_host_platform_device_count" not in f]
    env["XLA_FLAGS"] = " ".join(flags)
    return env


def launch(commands: list[list[str]]) -> list[subprocess.Popen]:
    return [subprocess.Popen(cmd, env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for cmd in commands]


def wait_all(procs: list[subprocess.Popen], timeout: float) -> None:
    """Wait for every process; kill them all if one fails or time runs out, and show its stderr."""
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]


def python(*args: str) -> list[str]:
    return [sys.executable, *args]
