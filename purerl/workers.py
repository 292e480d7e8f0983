"""Local worker processes: split a run's seeds over the CPU cores.

XLA's CPU client runs the small matrix products of RL programs on one core at a time (2 cores gave PPO
with 8 seeds no speed-up in one process), and several host devices in one process can deadlock its
thread pool (README, "Known limitations"). So on a CPU-only machine `purerl train` starts one process per core
instead, joined by `jax.distributed` on 127.0.0.1: each owns one CPU device, runs its share of the seeds
single-threaded in a program of its own, and process 0 gathers the metrics and writes every output. The
seeds, their results and the files are those of a single-process run, bit for bit when each worker holds
two or more seeds (docs/running.md).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import jax

from purerl import compile_once
from purerl.cpu import THREADS_ENV, with_cpu_flags


def count(options) -> int:
    """How many local processes should run `options` (1: run in this process).

    Explicit `--workers N` (or env PURERL_WORKERS) wins; the default is one per core when JAX's backend is
    the CPU with a single device and nothing else splits the seeds (no --num-devices / --num-processes)."""
    if options.num_seeds < 1:
        raise ValueError(f"num_seeds must be positive, got {options.num_seeds}")
    if options.num_processes > 1 or options.num_devices > 1:
        return 1
    requested = options.workers or int(os.environ.get("PURERL_WORKERS", "0") or 0)
    if requested < 0:
        raise ValueError(f"workers must be >= 0 (0 = one per CPU core), got {requested}")
    if requested:
        if options.num_seeds % requested:
            raise ValueError(f"num_seeds = {options.num_seeds} is not divisible by workers = {requested}")
        return requested
    if jax.default_backend() != "cpu" or jax.device_count() > 1:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(d for d in range(1, min(cores, options.num_seeds) + 1) if options.num_seeds % d == 0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (for the coordinator)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_env(compile_cache: str | None = None, cpu_threads: int = 0) -> dict[str, str]:
    """The workers' environment: CPU only, one device each, single-threaded XLA ops (unless the user's
    XLA_FLAGS already set those flags) on `cpu_threads` threads of XLA's CPU client (0: one), and the
    compilation cache through which process 0 hands its compiled programs to the others
    (purerl.compile_once)."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "force_host_platform_device_count" not in f]
    env["XLA_FLAGS"] = with_cpu_flags(" ".join(flags))
    # by default one thread in XLA's CPU client too (purerl.cpu: a pool of one thread per core made each
    # worker's small operations hop between cores, in the other workers' way)
    env[THREADS_ENV] = str(cpu_threads or 1)
    if compile_cache:
        env[compile_once.ENV] = compile_cache
    return env


def run(argv: list[str], workers: int, cpu_threads: int = 0) -> int:
    """Run `purerl <argv> --num-processes W --process-id i --coordinator ...` in W local processes, each
    on `cpu_threads` threads of XLA's CPU client (0: one; `worker_env`).

    Process 0 keeps this terminal (progress and summary); the others are silent unless they fail. If one
    fails, the rest are stopped and its exit status is returned (with its error output)."""
    port = free_port()
    # The user's persistent cache if one is set (JAX_COMPILATION_CACHE_DIR), else one for this run only.
    user_cache = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    compile_cache = user_cache or tempfile.mkdtemp(prefix="purerl-compiled-")
    env = worker_env(compile_cache, cpu_threads)
    procs, logs = [], []
    # A terminated parent (e.g. by `timeout`) must not leave its workers running: SIGTERM unwinds to
    # `finally`.
    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if main_thread else None
    for i in range(workers):
        process = ["--num-processes", str(workers), "--process-id", str(i),
                   "--coordinator", f"127.0.0.1:{port}"]
        cmd = [sys.executable, "-m", "purerl.cli", *argv, *process]
        log = None if i == 0 else tempfile.TemporaryFile(mode="w+")
        logs.append(log)
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE if i == 0 else subprocess.DEVNULL,
                                      stderr=log, text=True if i == 0 else None))
    forward = threading.Thread(target=_forward_output, args=(procs[0].stdout,), daemon=True)
    forward.start()
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                # A worker killed by a signal is the cause when others fail with it (their collectives broke).
                i, code = min(failed, key=lambda f: (f[1] > 0, f[0]))
                _stop(procs)  # before reporting, so that nothing prints after the failing worker's error
                _report_failure(i, code, logs[i])
                return code if code > 0 else 128 - code
            if all(c == 0 for c in codes):
                forward.join(timeout=10)
                return 0
            time.sleep(0.1)
    finally:
        _stop(procs)
        for log in logs:
            if log is not None:
                log.close()
        if not user_cache:
            shutil.rmtree(compile_cache, ignore_errors=True)
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _forward_output(stream) -> None:
    """Worker 0's stdout, minus gloo's connection notices: gloo (the CPU collectives library, C++) prints
    "[Gloo] Rank 0 is connected to 1 peer ranks ..." to stdout when the workers first communicate."""
    for line in stream:
        if not line.startswith("[Gloo] "):
            sys.stdout.write(line)
            sys.stdout.flush()


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def _report_failure(index: int, code: int, log) -> None:
    """The failing worker's own error output (ending in its `purerl: error: ...` line), or for a worker that
    was killed and printed nothing, one line saying so. Worker 0 writes to this terminal itself."""
    output = ""
    if log is not None:
        log.flush()
        log.seek(0)
        output = log.read()[-4000:].rstrip()
    if output.splitlines() and output.splitlines()[-1].startswith("purerl: error:"):
        sys.stderr.write(f"purerl: worker process {index} failed (exit {code}); its output:\n{output}\n")
    elif index != 0 or code < 0:
        cause = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        if output:
            sys.stderr.write(output + "\n")
        sys.stderr.write(f"purerl: error: worker process {index} {cause}; the other workers were stopped\n")
    sys.stderr.flush()


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)
