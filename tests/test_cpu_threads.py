"""The threads of XLA's CPU client (purerl.cpu.limit_threads): one per worker process, and `--cpu-threads` for
a single process. Threads are counted in fresh processes, right after JAX has created its CPU client."""

import os
import subprocess
import sys

import jax
import pytest
from one_line_error import assert_one_line_error

from purerl.cli import main as cli_main
from purerl.cpu import THREADS_ENV
from purerl.workers import worker_env

COUNT_THREADS = """
import os, sys
from purerl.cpu import limit_threads
limit_threads(int(sys.argv[1]))
import jax
jax.devices()
print(len(os.listdir("/proc/self/task")))
"""

pytestmark = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2 or not os.path.isdir("/proc/self/task"),
    reason="XLA's default pool has one thread on a one-core machine; threads are counted in Linux's /proc",
)


def threads_after_start(env: dict[str, str], limit: int = 0) -> int:
    done = subprocess.run([sys.executable, "-c", COUNT_THREADS, str(limit)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1])


def without_limit(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != THREADS_ENV}


def test_worker_processes_and_cpu_threads_1_start_xla_with_fewer_threads():
    workers = worker_env()
    assert workers[THREADS_ENV] == "1" and worker_env(cpu_threads=2)[THREADS_ENV] == "2"  # --cpu-threads 2
    default = threads_after_start(without_limit(workers))
    # XLA honours the variable: the client's pools shrink to one thread each
    assert threads_after_start(workers) < default
    # --cpu-threads 1 (limit_threads) sets it for a single process, as a worker gets it
    assert threads_after_start(without_limit(workers), limit=1) == threads_after_start(workers)


def test_cpu_threads_is_refused_once_jax_has_started(tmp_path, capsys, monkeypatch):
    """This test process has started JAX: its client keeps the pool it has, so the flag is refused (the
    negative and malformed values are refused with the other bad input, tests/test_bad_input.py)."""
    monkeypatch.delenv(THREADS_ENV, raising=False)
    jax.devices()
    out = tmp_path / "never"
    assert_one_line_error(cli_main, ["train", "ppo", "--cpu-threads", "1", "--out", str(out)],
                          "--cpu-threads takes effect when JAX starts", capsys)
    assert not out.exists() and THREADS_ENV not in os.environ
