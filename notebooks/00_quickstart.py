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
# The live run below is short: 100k env steps per seed and 4 seeds, about half a minute on a 2-core CPU
# (most of it compilation). With `PURERL_NOTEBOOK_SMOKE=1` (the test suite) it is 5,120 steps and 2 seeds.
# The full 500k-step runs, on the CPU and on an H200, are read from `benchmarks/results/` further down.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from purerl import recorded, runner, stats
from purerl.agents import ppo
from purerl.plotting import plot_curve

SMOKE = os.environ.get("PURERL_NOTEBOOK_SMOKE", "0") == "1"
TOTAL_TIMESTEPS = 5_120 if SMOKE else 100_000
NUM_SEEDS = 2 if SMOKE else 4

# %%
config = ppo.Config(env="CartPole-v1", total_timesteps=TOTAL_TIMESTEPS, eval_episodes=16 if SMOKE else 128)
agent = ppo.make_agent(config)
result = runner.train_and_evaluate(agent, num_seeds=NUM_SEEDS)
s = result.summary
print(f"compile {result.compile_s:.1f} s, run {result.run_s:.1f} s, {s['env_steps_per_s']:,.0f} env steps/s")
print("final return per seed:", np.round(result.per_seed_returns, 1))

# %%
returns = result.metrics["episode_return"]  # (num_seeds, iterations); NaN where no episode ended
env_steps = np.arange(1, returns.shape[1] + 1) * agent.steps_per_iteration
fig, ax = plt.subplots(figsize=(6, 3.5))
plot_curve(ax, env_steps, returns, label=f"PPO, {NUM_SEEDS} seeds")
ax.set_xlabel("env steps")
ax.set_ylabel("episode return")
ax.set_title(f"CartPole-v1, live run ({TOTAL_TIMESTEPS:,} steps)")
ax.legend()
plt.show()
assert np.isfinite(s["final_return_mean"])

# %% [markdown]
# ## The recorded 500k-step runs
#
# `purerl train ppo --env CartPole-v1 --num-seeds 8` (the default budget, 500k env steps per seed) on the
# shared 2-core CPU, and the same command with `--num-seeds 1024` on one NVIDIA H200. The files hold the
# training curve's mean over seeds and each seed's final return (the mean of 128 evaluation episodes).

# %%
runs = {
    "CPU (2 cores), 8 seeds": "ppo_cartpole_500k_8seeds",
    "NVIDIA H200, 1024 seeds": "NVIDIA_H200/ppo_cartpole_500k_1024seeds",
}
fig, ax = plt.subplots(figsize=(6, 3.5))
for label, name in runs.items():
    record = recorded.load(name)
    print(f"{name}: {recorded.provenance(record)}")
    finals = record["scores"]["final_return"]["per_seed"]
    mean, low, high = stats.bootstrap_ci(finals)
    solved = sum(r == 500.0 for r in finals)
    print(
        f"{label}: final return {mean:.1f} [95% CI {low:.1f}, {high:.1f}], {solved}/{len(record['seeds'])} "
        f"seeds at 500; compile {record['compile_s']:.0f} s, run {record['run_s']:.0f} s, "
        f"{record['throughput']['value']:,.0f} env steps/s"
    )
    curve = record["legacy"]  # recorded before the harness schema: its curve as the runner logged it
    ax.plot(curve["curve_env_steps"], curve["curve_episode_return"], label=label)
ax.set_xlabel("env steps per seed")
ax.set_ylabel("episode return (mean over seeds)")
ax.set_title("CartPole-v1, recorded runs (500k steps)")
ax.legend()
plt.show()
