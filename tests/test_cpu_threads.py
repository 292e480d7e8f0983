"""The threads of XLA's CPU client (purerl.cpu.limit_threads): one per worker process, and `--cpu-threads` for
a single process. Threads are counted in fresh processes, right after JAX has created its CPU client."""

import os
import subprocess
import sys

import jax
import pytest

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


@pytest.mark.parametrize("argv, message", [
    (["--cpu-threads", "-1"], "cpu_threads must be >= 0"),
    # this test process has started JAX already: the pool it has cannot change
    (["--cpu-threads", "1"], "--cpu-threads takes effect when JAX starts"),
])
def test_cpu_threads_refusals_are_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)  # restored after the test: limit_threads sets it
    jax.devices()
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as stop:
        cli_main(["train", "ppo", "--total-timesteps", "768", "--num-steps", "32", *argv, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and err[0].startswith("purerl: error: "), err
    assert message in err[0], err
    assert not out.exists()
