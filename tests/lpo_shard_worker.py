"""One of the 2 processes of test_lpo's sharded-population test: join jax.distributed, shard the test's
population of drift parameters over both processes' CPU devices, and (process 0) save the fitness.

    python tests/lpo_shard_worker.py PROCESS_ID PORT OUT.npy
"""

import sys

from purerl import compile_once
from purerl.sweep import init_distributed

process_id, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
init_distributed(f"127.0.0.1:{port}", 2, process_id, timeout_s=60)  # before anything touches a device
compile_once.enable()  # the test session's cache (tests/loopback.py): process 0 compiles for both

import jax  # noqa: E402
import numpy as np  # noqa: E402
from test_lpo import INNER, inner_keys, make_population  # noqa: E402

from purerl.agents import lpo  # noqa: E402
from purerl.sweep import over_seeds, place, to_host  # noqa: E402

assert len(jax.devices()) == 2 and jax.local_device_count() == 1
net, _ = lpo.drift_template(INNER.hidden, INNER.temporal)
fitness = jax.jit(over_seeds(lpo.make_member_fitness(INNER, net), 2))
population, keys = place(make_population(), 2), place(inner_keys(), 2)
with compile_once.process_0_first("fitness"):
    fitness = fitness.lower(population, keys).compile()
result = to_host(fitness(population, keys))
if process_id == 0:
    np.save(out, np.asarray(result))
