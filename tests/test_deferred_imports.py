"""gymnax's plotting imports wait until used (purerl.deferred_imports): a fresh interpreter that imports an
agent and the CLI has not loaded seaborn, scipy.stats, pandas or matplotlib.pyplot; gymnax's renderers still
reach the real modules through their placeholders; and the user's own imports afterwards are the real ones."""

import subprocess
import sys

FRESH_PROCESS = """
import sys, types
from purerl.agents import ppo
import purerl.cli

heavy = ("seaborn", "scipy.stats", "pandas", "matplotlib.pyplot")
print("loaded:", [m for m in heavy if type(sys.modules.get(m)) is types.ModuleType])

import gymnax.environments.misc.pong as pong  # holds `sns`: a placeholder until used
palette = pong.sns.color_palette("cubehelix", 3)
print("palette:", len(palette), type(sys.modules["seaborn"]) is types.ModuleType)

import matplotlib.pyplot as plt
print("pyplot:", type(plt) is types.ModuleType, callable(plt.figure))
"""


def test_an_agent_and_the_cli_import_without_the_plotting_libraries():
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "loaded: []" in lines, done.stdout
    assert "palette: 3 True" in lines, done.stdout  # seaborn itself in sys.modules once the renderer used it
    assert "pyplot: True True" in lines, done.stdout  # released: a user's import is the real module


BEFORE_JOINING = """
import purerl.cli, purerl.runner, purerl.evaluation  # what a worker imports before it joins jax.distributed
from jax._src import xla_bridge

print("backend started:", bool(xla_bridge._backends))
"""


def test_a_worker_joins_jax_distributed_before_anything_starts_the_backend():
    """A worker process reads its flags with `purerl.runner` loaded, then joins jax.distributed, which must
    come before XLA's backend starts. gymnax starts it on import, so the runner and the evaluation it
    imports must not import gymnax."""
    done = subprocess.run([sys.executable, "-c", BEFORE_JOINING], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "backend started: False" in done.stdout.splitlines(), done.stdout
