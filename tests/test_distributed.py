"""Multi-process runs on jax.distributed: 2 CPU processes on 127.0.0.1 (gloo collectives)."""

import dataclasses
import json
import shutil
import signal
import sys
import time

import numpy as np
import pytest
from loopback import free_port, launch, wait_all

from purerl import runner
from purerl.agents import ppo
from purerl.logging import read_metrics_csv

TINY_FLAGS = ["--total-timesteps", "768", "--num-steps", "32", "--eval-episodes", "8", "--chunk-iterations", "3"]
TINY = ppo.Config(total_timesteps=768, num_steps=32, eval_episodes=8)


def launch_ppo(out, extra, port):
    return launch([
        [sys.executable, "-m", "purerl.cli", "train", "ppo", *extra, "--num-seeds", "4", "--num-processes", "2",
         "--process-id", str(pid), "--coordinator", f"127.0.0.1:{port}", "--out", str(out)]
        for pid in range(2)
    ])


def test_killing_one_process_ends_the_other_with_a_clear_error(tmp_path):
    flags = ["--total-timesteps", "10000000", "--num-steps", "32", "--chunk-iterations", "20",
             "--distributed-timeout", "20"]
    procs = launch_ppo(tmp_path / "killed", flags, free_port())
    survivor, victim = procs
    try:
        deadline = time.time() + 180
        while time.time() < deadline:  # wait until both processes are training (first chunk done)
            time.sleep(2)
            assert survivor.poll() is None and victim.poll() is None, "a process ended before the kill"
            if (tmp_path / "killed" / "config.json").exists():
                time.sleep(15)
                break
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
    assert any(word in err.lower() for word in ("heartbeat", "unavailable", "disconnect", "timed out", "failed")), err[-3000:]


@pytest.mark.parametrize("pid", ["2", "-1"])
def test_bad_process_id_is_refused(pid, capsys):
    from purerl.cli import main

    with pytest.raises(SystemExit):
        main(["train", "ppo", "--num-processes", "2", "--process-id", pid, "--coordinator", "127.0.0.1:1"])
    assert "process_id must lie in [0, num_processes)" in capsys.readouterr().err


# --- local worker processes (purerl.workers): the CLI's default way of using several CPU cores ---

@pytest.fixture(scope="module")
def single_process_run():
    return runner.run("ppo", ppo.make_agent(TINY), runner.RunOptions(num_seeds=4, chunk_iterations=3, progress=False))


def test_workers_split_the_seeds_and_resume(tmp_path, single_process_run):
    """`--workers 2` runs `purerl train --num-processes 2 --process-id i --coordinator ...` in 2 local processes
    (jax.distributed over gloo), so this also covers the multi-process path: results equal the 1-process vmap."""
    out = tmp_path / "workers"
    cli = [sys.executable, "-m", "purerl.cli", "train"]
    flags = TINY_FLAGS + ["--num-seeds", "4", "--checkpoint-every", "3", "--no-progress"]
    wait_all(launch([cli + ["ppo", *flags, "--workers", "2", "--out", str(out)]]), timeout=240)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["num_devices"] == 2
    np.testing.assert_allclose(summary["final_return_per_seed"],
                               single_process_run.summary["final_return_per_seed"], rtol=1e-5)
    assert json.loads((out / "config.json").read_text())["run"]["workers"] == 2
    curves = read_metrics_csv(str(out / "metrics.csv"))
    for name in ("episode_return", "value_loss", "approx_kl"):
        multi = np.array([[v for _, v in curves[name][seed]] for seed in range(4)])
        np.testing.assert_allclose(multi, single_process_run.metrics[name], rtol=1e-4, atol=1e-6, err_msg=name)

    # A crash after iteration 3: the resumed run starts the workers again and ends where the full run did.
    crashed = tmp_path / "crashed"
    shutil.copytree(out, crashed)
    shutil.rmtree(crashed / "checkpoints" / "6")
    (crashed / "summary.json").unlink()
    wait_all(launch([cli + ["--resume", str(crashed)]]), timeout=240)
    resumed = json.loads((crashed / "summary.json").read_text())
    assert resumed["resumed_from"] == 3 and resumed["num_processes"] == 2
    assert resumed["final_return_per_seed"] == summary["final_return_per_seed"]
    full_curves, resumed_curves = (read_metrics_csv(str(d / "metrics.csv")) for d in (out, crashed))
    assert full_curves == resumed_curves


def test_worker_count(monkeypatch):
    from purerl import workers

    options = runner.RunOptions(num_seeds=8)
    monkeypatch.delenv("PURERL_WORKERS", raising=False)
    assert workers.count(dataclasses.replace(options, workers=4)) == 4
    assert workers.count(dataclasses.replace(options, workers=2, num_devices=2)) == 1  # devices split the seeds
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
