"""The XLA CPU flags of every `purerl` command (no jax import here: they must be set before jax starts).

- `--xla_cpu_multi_thread_eigen=false`: one core per program. XLA runs the small matrix products of RL
  programs on one core at a time anyway (several cores come from worker processes, `purerl.workers`), and
  the multi-threaded Eigen kernels sum in another order: with them a one-process run and a worker run of the
  same seeds would differ in the last bits, and then chaotically.
- `--xla_cpu_enable_concurrency_optimized_scheduler=false`: XLA's concurrency-optimised CPU scheduler can
  wedge big vmapped programs on small CPUs (a PPO run hung for 10 minutes at 0% CPU on 2 cores).

A flag the user sets in XLA_FLAGS wins. They configure only the CPU client (GPU and TPU runs are unaffected).

Besides the flags, `limit_threads` caps the threads of XLA's CPU client (`purerl train --cpu-threads`; each
worker process takes 1). That client runs a program's operations on a pool with one thread per core, and a
program of many tiny operations (PPO on CartPole: thousands per iteration, a few microseconds each) has them
handed from thread to thread, which costs more than it gains: one thread ran an iteration of PPO CartPole
(8 seeds) in 23 ms where the pool of two took 30 ms using 1.5 cores, and two worker processes with a pool of
two each got in each other's way. A program of big operations gains from the pool (brax hopper PPO, one seed:
6.2k env steps/s with two threads, 4.1k with one), so one process keeps it unless told otherwise.
"""

from __future__ import annotations

import os

CPU_XLA_FLAGS = (
    "--xla_cpu_multi_thread_eigen=false",
    "--xla_cpu_enable_concurrency_optimized_scheduler=false",
)


def with_cpu_flags(xla_flags: str) -> str:
    """`xla_flags` plus each of CPU_XLA_FLAGS that it does not set itself."""
    flags = xla_flags.split()
    flags += [f for f in CPU_XLA_FLAGS if not any(g.startswith(f.split("=")[0] + "=") for g in flags)]
    return " ".join(flags)


THREADS_ENV = "NPROC"
"""Read by XLA when it creates its CPU client: the size of the client's thread pool (XLA's
`DefaultThreadPoolSize`; unset, one thread per core the process may run on)."""


def limit_threads(threads: int) -> None:
    """Run each program on at most `threads` threads of XLA's CPU client (0: XLA's default, one per core).
    Takes effect only if called before JAX creates its CPU client."""
    if threads < 0:
        raise ValueError(f"cpu_threads must be >= 0 (0: one per core), got {threads}")
    if threads:
        os.environ[THREADS_ENV] = str(threads)
