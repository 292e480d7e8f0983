# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # purerl quickstart: PPO on CartPole-v1 with vmapped seeds
#
# Train PPO (purejaxrl's CartPole setting) for several seeds in **one** jitted program, then plot the mean
# episode return over seeds with a 95% bootstrap confidence interval.
#
# Budget: 500k env steps per seed and 8 seeds, about a minute on a 2-core CPU.
# With `PURERL_NOTEBOOK_SMOKE=1` (the test suite) the budget is 20k steps and 2 seeds.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from purerl import runner
from purerl.agents import ppo
from purerl.plotting import plot_curve

SMOKE = os.environ.get("PURERL_NOTEBOOK_SMOKE", "0") == "1"
TOTAL_TIMESTEPS = 20_000 if SMOKE else 500_000
NUM_SEEDS = 2 if SMOKE else 8

# %%
config = ppo.Config(env="CartPole-v1", total_timesteps=TOTAL_TIMESTEPS, eval_episodes=16 if SMOKE else 128)
agent = ppo.make_agent(config)
result = runner.run("ppo", agent, runner.RunOptions(num_seeds=NUM_SEEDS, progress=False))
s = result.summary
print(f"compile {s['compile_s']:.1f} s, run {s['run_s']:.1f} s, {s['env_steps_per_s']:,.0f} env steps/s")
print("final return per seed:", np.round(s["final_return_per_seed"], 1))

# %%
returns = result.metrics["episode_return"]  # (num_seeds, iterations); NaN where no episode ended
env_steps = np.arange(1, returns.shape[1] + 1) * agent.steps_per_iteration
fig, ax = plt.subplots(figsize=(6, 3.5))
plot_curve(ax, env_steps, returns, label=f"PPO, {NUM_SEEDS} seeds")
ax.set_xlabel("env steps")
ax.set_ylabel("episode return")
ax.set_title("CartPole-v1")
ax.legend()
plt.show()
assert np.isfinite(s["final_return_mean"])
