"""Test session set-up: CPU only, two fake CPU devices (for the sharding tests) and the XLA CPU flags that
prevent a known thread-pool deadlock of big vmapped programs on small CPUs (README, "Known issues"):
with 2 host devices a sharded PPO program still hung once with only the scheduler flag, so Eigen's
intra-op thread pool is switched off too. All must be set before jax is imported, hence here."""

import os

_FLAGS = (
    "--xla_force_host_platform_device_count=2",
    "--xla_cpu_enable_concurrency_optimized_scheduler=false",
    "--xla_cpu_multi_thread_eigen=false",
)
_existing = os.environ.get("XLA_FLAGS", "")
os.environ["XLA_FLAGS"] = " ".join([_existing] + [f for f in _FLAGS if f.split("=")[0] not in _existing]).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
