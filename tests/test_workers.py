"""The CLI's default path on a CPU-only machine: `purerl train` splits the seeds over one worker process per
core (purerl.workers). These tests run the real command, as a user does, with the default worker count.

The rest of the suite keeps CLI runs in the test process (PURERL_WORKERS=1, set by conftest.py); here the
variable is removed and the fake-device flag is dropped (as `worker_env` does), so the command sees one CPU
device and the machine's cores, and starts its workers itself (2 on a machine with 2 or more cores).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from purerl.workers import worker_env

PPO_TINY = ["--total-timesteps", "512", "--num-envs", "4", "--num-steps", "32", "--eval-episodes", "4"]
NOISE = ("Failed to import", "[Gloo]", "Traceback")


def default_cli_env(tmp_path, **extra) -> dict[str, str]:
    env = worker_env()
    env.pop("PURERL_WORKERS", None)
    env.update(extra)
    return env


def purerl(*args: str) -> list[str]:
    return [sys.executable, "-m", "purerl.cli", *args]


pytestmark = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="the default worker count is 1 on a one-core machine"
)


@pytest.mark.parametrize(
    "name,args",
    [
        # brax: the env's model arrays are built at construction (mjx.put_model), after jax.distributed is up.
        # (comblock, whose lock tables are jnp constants of the env object, runs in the two long runs below.)
        ("brax", ["ppo", "--env", "inverted_pendulum", *PPO_TINY]),
        # submodular grid: the objective's tables and feature matrices are env constants
        ("submodular", ["subpo", "--env", "items", "--policy-input", "history", "--epochs", "3",
                        "--batch-trajectories", "16", "--horizon", "10", "--eval-episodes", "8"]),
    ],
)
def test_default_cli_trains_with_worker_processes(tmp_path, name, args):
    out = tmp_path / name
    done = subprocess.run(purerl("train", *args, "--num-seeds", "2", "--out", str(out)),
                          env=default_cli_env(tmp_path), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_processes"] == 2, "the default path should have started 2 workers"
    assert len(summary["final_return_per_seed"]) == 2
    assert "final return" in done.stdout
    for noise in NOISE:  # a newcomer's terminal shows purerl's output only
        assert noise not in done.stdout + done.stderr, (noise, done.stdout[-2000:], done.stderr[-2000:])


FAILING_WORKER = """
import sys
if "--process-id" in sys.argv and sys.argv[sys.argv.index("--process-id") + 1] == "1":
    from purerl import sweep

    def to_host(tree):  # worker 1 fails after its first chunk, while worker 0 waits to gather the metrics
        raise RuntimeError("injected failure in worker 1")

    sweep.to_host = to_host
"""

# On comblock: the lock's tables are jnp constants of the env object, built under the workers (any agent on
# comblock builds them; PPO compiles in half the time of HNPG, the env's own algorithm). The killed-worker run
# gathers metrics and checkpoints over several chunks before it is killed.
LONG_RUN = ["ppo", "--env", "comblock", "--total-timesteps", "50000000", "--num-envs", "4",
            "--num-steps", "32", "--chunk-iterations", "2", "--checkpoint-every", "2",
            "--distributed-timeout", "20", "--num-seeds", "2"]


def test_a_worker_that_raises_ends_the_run_with_its_error(tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(FAILING_WORKER)  # imported by every Python process at start-up
    python_path = os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")])
    env = default_cli_env(tmp_path, PYTHONPATH=python_path)
    start = time.time()
    done = subprocess.run(purerl("train", *LONG_RUN, "--out", str(tmp_path / "run")), env=env,
                          capture_output=True, text=True, timeout=300)
    elapsed = time.time() - start
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last == "purerl: error: process 1: RuntimeError: injected failure in worker 1", done.stderr[-3000:]
    assert elapsed < 200, elapsed  # compile + one chunk; the budget alone would take hours


def _worker_pid(out, process_id: int) -> int | None:
    """The pid of the worker process of the run writing to `out` with --process-id `process_id`."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode().split("\0")
        except OSError:
            continue
        if (str(out) in argv and "--process-id" in argv
                and argv[argv.index("--process-id") + 1] == str(process_id)):
            return int(pid)
    return None


def test_a_killed_worker_ends_the_run(tmp_path):
    out = tmp_path / "run"
    parent = subprocess.Popen(purerl("train", *LONG_RUN, "--out", str(out)), env=default_cli_env(tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not (out / "checkpoints").is_dir():  # the workers have gathered metrics together at least once
            assert parent.poll() is None, parent.communicate()[1][-3000:]
            assert time.time() < deadline, "no checkpoint within 240 s"
            time.sleep(0.5)
        time.sleep(2)  # both workers are inside later chunks and their gathers now
        victim = _worker_pid(out, 1)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        killed_at = time.time()
        _, err = parent.communicate(timeout=60)
        elapsed = time.time() - killed_at
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode != 0
    assert elapsed < 20, elapsed  # within --distributed-timeout
    last = err.strip().splitlines()[-1]
    assert last.startswith("purerl: error: worker process 1 was killed by SIGKILL"), err[-3000:]
    assert _worker_pid(out, 0) is None, "worker 0 was left running"
