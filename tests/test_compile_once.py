"""Worker processes compile each program once (purerl.compile_once): process 0 compiles, the others load its
executable from the run's compilation cache and compute the same numbers on their own device."""

import json
import sys

import loopback

from purerl.workers import worker_env

# Each process joins the run, compiles one program inside `process_0_first` and reports whether JAX's
# persistent cache served it, with what the program computed.
PROCESS = """
import json, sys
import jax, jax.numpy as jnp
from purerl import compile_once, sweep

sweep.init_distributed(sys.argv[1], 2, int(sys.argv[2]))
shared = compile_once.enable()
hits = []
jax.monitoring.register_event_listener(
    lambda event, **_: hits.append(event) if event == "/jax/compilation_cache/cache_hits" else None)

def program(x):
    def step(carry, _):
        carry = jnp.tanh(carry @ carry.T) + 0.1 * jnp.sin(carry)
        return carry, carry.sum()
    return jax.lax.scan(step, x, None, length=20)

x = jnp.arange(256.0).reshape(16, 16) / 256
with compile_once.process_0_first("program"):
    compiled = jax.jit(program).lower(x).compile()
final, sums = compiled(x)
print(json.dumps({"shared": shared, "hits": len(hits), "device": str(next(iter(final.devices()))),
                  "sums": [float(v) for v in sums]}))
"""


def run_two_processes(cache: str | None) -> list[dict]:
    """Both processes' reports; `cache`: the run's cache directory (None: no shared cache)."""
    env = worker_env(cache)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # not the test session's cache: this test starts empty
    port = loopback.free_port()
    outputs = loopback.wait_all(loopback.launch(
        [[sys.executable, "-c", PROCESS, f"127.0.0.1:{port}", str(i)] for i in range(2)], env), timeout=240)
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


def test_process_1_loads_process_0s_program_and_computes_the_same(tmp_path):
    first, second = run_two_processes(str(tmp_path / "cache"))
    assert first["shared"] and second["shared"]
    assert first["hits"] == 0  # process 0 compiled (into an empty cache)
    assert second["hits"] >= 1  # process 1 loaded it, although its device differs
    assert first["device"] != second["device"]
    assert first["sums"] == second["sums"]


def test_without_the_run_cache_each_process_compiles_for_itself():
    first, second = run_two_processes(None)
    assert not first["shared"] and not second["shared"]
    assert first["hits"] == second["hits"] == 0
    assert first["sums"] == second["sums"]
