"""The XLA CPU flags of every `purerl` command (no jax import here: they must be set before jax starts).

- `--xla_cpu_multi_thread_eigen=false`: one core per program. XLA runs the small matrix products of RL
  programs on one core at a time anyway (several cores come from worker processes, `purerl.workers`), and
  the multi-threaded Eigen kernels sum in another order: with them a one-process run and a worker run of the
  same seeds would differ in the last bits, and then chaotically.
- `--xla_cpu_enable_concurrency_optimized_scheduler=false`: XLA's concurrency-optimised CPU scheduler can
  wedge big vmapped programs on small CPUs (a PPO run hung for 10 minutes at 0% CPU on 2 cores).

A flag the user sets in XLA_FLAGS wins. They configure only the CPU client (GPU and TPU runs are unaffected).
"""

from __future__ import annotations

CPU_XLA_FLAGS = (
    "--xla_cpu_multi_thread_eigen=false",
    "--xla_cpu_enable_concurrency_optimized_scheduler=false",
)


def with_cpu_flags(xla_flags: str) -> str:
    """`xla_flags` plus each of CPU_XLA_FLAGS that it does not set itself."""
    flags = xla_flags.split()
    flags += [f for f in CPU_XLA_FLAGS if not any(g.startswith(f.split("=")[0] + "=") for g in flags)]
    return " ".join(flags)
