"""Multi-process runs on jax.distributed: 2 CPU processes on 127.0.0.1 (gloo collectives)."""

import dataclasses
import signal
import sys
import time

import pytest
from loopback import free_port, launch

from purerl import runner


def launch_ppo(out, extra, port):
    return launch([
        [sys.executable, "-m", "purerl.cli", "train", "ppo", *extra, "--num-seeds", "4",
         "--num-processes", "2", "--process-id", str(pid), "--coordinator", f"127.0.0.1:{port}",
         "--out", str(out)]
        for pid in range(2)
    ])


def test_killing_one_process_ends_the_other_with_a_clear_error(tmp_path):
    flags = ["--total-timesteps", "10000000", "--num-steps", "32", "--chunk-iterations", "20",
             "--checkpoint-every", "20", "--distributed-timeout", "20"]
    procs = launch_ppo(tmp_path / "killed", flags, free_port())
    survivor, victim = procs
    try:
        deadline = time.time() + 180
        # Both processes are training once the first checkpoint exists: they have gathered a chunk together.
        while not (tmp_path / "killed" / "checkpoints").is_dir():
            assert survivor.poll() is None and victim.poll() is None, "a process ended before the kill"
            assert time.time() < deadline, "no checkpoint within 180 s"
            time.sleep(0.5)
        time.sleep(2)  # both are inside later chunks and their gathers now
        victim.send_signal(signal.SIGKILL)
        killed_at = time.time()
        _, err = survivor.communicate(timeout=90)
        elapsed = time.time() - killed_at
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert survivor.returncode != 0
    assert elapsed < 60, elapsed
    words = ("heartbeat", "unavailable", "disconnect", "timed out", "failed")
    assert any(word in err.lower() for word in words), err[-3000:]


@pytest.mark.parametrize("pid", ["2", "-1"])
def test_bad_process_id_is_refused(pid, capsys):
    from purerl.cli import main

    with pytest.raises(SystemExit):
        main(["train", "ppo", "--num-processes", "2", "--process-id", pid, "--coordinator", "127.0.0.1:1"])
    assert "process_id must lie in [0, num_processes)" in capsys.readouterr().err


# --- local worker processes (purerl.workers): the CLI's default way of using several CPU cores ---
# A `--workers 2` run and its resume are compared bitwise with the one-process run in test_determinism.py;
# the default worker count (no --workers) runs in test_workers.py.

def test_worker_count(monkeypatch):
    from purerl import workers

    options = runner.RunOptions(num_seeds=8)
    monkeypatch.delenv("PURERL_WORKERS", raising=False)
    assert workers.count(dataclasses.replace(options, workers=4)) == 4
    # devices split the seeds
    assert workers.count(dataclasses.replace(options, workers=2, num_devices=2)) == 1
    with pytest.raises(ValueError, match="num_seeds = 8 is not divisible by workers = 3"):
        workers.count(dataclasses.replace(options, workers=3))
    # Auto: one per core on a single-device CPU backend (this session has 2 fake devices: stay in-process).
    assert workers.count(options) == 1
    monkeypatch.setattr(workers.jax, "device_count", lambda: 1, raising=False)
    monkeypatch.setattr(workers.os, "sched_getaffinity", lambda _: set(range(3)))
    assert workers.count(options) == 2  # largest divisor of 8 seeds not above 3 cores
    assert workers.count(dataclasses.replace(options, num_seeds=1)) == 1
    monkeypatch.setenv("PURERL_WORKERS", "1")
    assert workers.count(options) == 1
