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
