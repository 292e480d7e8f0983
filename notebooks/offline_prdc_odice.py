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
# # PRDC and O-DICE vs TD3+BC, IQL and BC on purerl offline datasets
#
# - **PRDC** (Ran et al., ICML 2023): TD3+BC whose BC target is the nearest dataset neighbour of the actor's
#   action in $(\beta s, a)$ space, found by an exact search inside jit (`purerl/agents/prdc.py`: on the CPU
#   the kd-tree-leaf search, elsewhere the blocked brute force; both return the same rows).
# - **O-DICE** (Mao et al., ICLR 2024): a DICE value objective with the Pearson $\chi^2$ conjugate whose
#   forward and backward gradients are combined by an orthogonal projection (strength $\eta$), then weighted
#   BC (`purerl/agents/odice.py`).
# - Baselines: TD3+BC, IQL, BC (`purerl/agents/{td3_bc,iql,bc}.py`).
#
# Every (algorithm, dataset) pair is ONE jitted program: training and the final evaluation of all seeds are
# `jax.vmap`-ed over the seed keys (the dataset is closed over, not copied per seed). Score: the D4RL
# normalised score $100\,(R - R_\text{random}) / (R_\text{expert} - R_\text{random})$ with the dataset's own
# reference returns; mean over seeds with a 95 % percentile-bootstrap CI over seeds
# (`purerl.plotting.bootstrap_ci`).
#
# **What this is NOT.** The papers train for **1M gradient updates** on the **D4RL MuJoCo** datasets (hopper,
# halfcheetah, walker2d; 256x256 networks, O-DICE's policy 1024x1024), 5-10 seeds. This notebook trains on
# **gymnax Pendulum-v1** datasets made by `purerl collect` (a SAC expert; *medium* = rollouts of the first
# checkpoint reaching 1/3 of the random-to-expert range, *medium-replay* = that checkpoint's replay buffer),
# with **small networks and a few thousand updates** (the budget cell below prints the exact numbers). The
# last section shows the runs on purerl's **brax hopper / walker2d / halfcheetah** datasets (PPO experts, CPU
# budget), recorded by `benchmarks/bench_offline_brax.py`. The results say how the implementations behave at
# these budgets; they are **not** a reproduction of the papers' D4RL tables.

# %%
import json
import os
import tempfile
import time
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

import purerl
from purerl import data as pdata
from purerl.agent import train_fn
from purerl.agents import bc, iql, odice, prdc, td3_bc
from purerl.collect import CollectConfig, collect
from purerl.data.cache import default_cache_dir
from purerl.data.score import normalized_score, reference_returns
from purerl.stats import bootstrap_ci
from purerl.sweep import vmap_seeds

SMOKE = os.environ.get("PURERL_NOTEBOOK_SMOKE", "0") == "1"
T0 = time.time()
ENV = "Pendulum-v1"
KINDS = ("medium-replay",) if SMOKE else ("medium", "medium-replay")
SEEDS = [0, 1] if SMOKE else [0, 1, 2, 3, 4]
NUM_UPDATES = 50 if SMOKE else int(os.environ.get("OFFLINE_NB_UPDATES", "5000"))
HIDDEN = (16, 16) if SMOKE else (64, 64)
BATCH = 64 if SMOKE else 256
EVAL_EPISODES = 2 if SMOKE else 10
# SMOKE (CI): three programs only, to keep the suite short; IQL and BC have their own tests
ALGOS = ["PRDC", "O-DICE", "TD3+BC"] if SMOKE else ["PRDC", "O-DICE", "TD3+BC", "IQL", "BC"]
print(
    f"budget: {NUM_UPDATES} gradient updates per seed, batch {BATCH}, networks {HIDDEN}, {len(SEEDS)} seeds, "
    f"{EVAL_EPISODES} evaluation episodes per seed (papers: 1M updates, 256x256 nets, D4RL MuJoCo)"
)

# %% [markdown]
# ## Datasets
#
# Collected with `purerl.data.collect` into `$PURERL_DATA` (default `~/.cache/purerl/datasets`); files that
# already exist are reused (`collect` keeps them), so the CDSA notebook and this one share them. The full-mode
# config below is the one of `benchmarks/results/offline_collect_Pendulum-v1.json` (20k rows per kind,
# 12k-step SAC expert; about 6 minutes on this CPU when nothing is cached). SMOKE collects a tiny set (tiny
# expert) in a temporary directory of its own.

# %%
if SMOKE:
    DATA_DIR = os.path.join(
        tempfile.gettempdir(), "purerl_notebook_smoke_data_prdc_odice"
    )  # per notebook: no race between parallel test workers
    COLLECT = CollectConfig(
        env=ENV,
        kinds=KINDS,
        size=2000,
        expert_steps=1000,
        checkpoint_every=500,
        sac_learning_starts=500,
        sac_hidden=(16, 16),
        ref_episodes=4,
        eval_episodes=2,
        num_envs=4,
        out=DATA_DIR,
        progress=False,
    )
else:
    DATA_DIR = default_cache_dir()
    COLLECT = CollectConfig(
        env=ENV,
        kinds=KINDS,
        size=20_000,
        expert_steps=12_000,
        checkpoint_every=1000,
        sac_learning_starts=1000,
        ref_episodes=50,
        out=DATA_DIR,
    )
t = time.time()
PATHS = collect(COLLECT)
print(f"datasets ready in {time.time() - t:.1f} s")
META = {}
for kind, path in PATHS.items():
    META[kind] = pdata.metadata(path)
    m = META[kind]
    rows = len(pdata.load(path)["observations"])
    print(
        f"{kind:14s} {rows:6d} rows  expert_steps {m['expert_steps']}  medium checkpoint "
        f"{m['medium_checkpoint']}  "
        f"ref returns [{m['ref_min_score']:.0f}, {m['ref_max_score']:.0f}]  git {m['git_hash'][:8]}  {path}"
    )


# %% [markdown]
# ## Training: one vmapped program per (algorithm, dataset)
#
# Hyperparameters are the agents' defaults (the papers' MuJoCo values: TD3+BC alpha 2.5; PRDC's locomotion
# preset alpha 2.5, beta 2; O-DICE lambda 0.6, eta 1, chi-square conjugate; IQL expectile 0.7, beta 3) except
# the network widths, batch size and number of updates of the budget cell.


# %%
def config(algo, path):
    common = dict(
        dataset=path,
        num_updates=NUM_UPDATES,
        updates_per_iteration=NUM_UPDATES,
        batch_size=BATCH,
        eval_episodes=EVAL_EPISODES,
    )
    if algo == "PRDC":
        return prdc, prdc.Config(**{**prdc.PRESETS[prdc.preset_name(path)], **common}, hidden=HIDDEN)
    if algo == "O-DICE":
        return odice, odice.Config(value_hidden=HIDDEN, policy_hidden=HIDDEN, **common)
    mod = {"TD3+BC": td3_bc, "IQL": iql, "BC": bc}[algo]
    return mod, mod.Config(hidden=HIDDEN, **common)


def train_and_score(algo, kind):
    mod, cfg = config(algo, PATHS[kind])
    agent = mod.make_agent(cfg)

    def program(key):
        state, _ = train_fn(agent)(key)
        return agent.evaluate(state, jax.random.fold_in(key, 12345))

    returns = vmap_seeds(program, SEEDS)  # (seeds, episodes), one jitted program
    lo, hi = reference_returns(META[kind])
    return normalized_score(np.asarray(returns), lo, hi).mean(axis=1)  # per-seed mean normalised score


SCORES, SECONDS = {}, {}
for kind in KINDS:
    for algo in ALGOS:
        t = time.time()
        SCORES[algo, kind] = train_and_score(algo, kind)
        SECONDS[algo, kind] = time.time() - t
        print(
            f"{kind:14s} {algo:7s} per-seed scores {np.round(SCORES[algo, kind], 1)}  "
            f"({SECONDS[algo, kind]:.0f} s incl. compile)"
        )

# %% [markdown]
# ## Results: normalised score, mean over seeds with 95 % bootstrap CI

# %%
CI = {key: bootstrap_ci(v) for key, v in SCORES.items()}
header = "| algorithm | " + " | ".join(f"Pendulum-v1 {k}" for k in KINDS) + " |"
lines = [header, "|" + "---|" * (len(KINDS) + 1)]
for algo in ALGOS:
    cells = [f"{CI[algo, k][0]:.1f} [{CI[algo, k][1]:.1f}, {CI[algo, k][2]:.1f}]" for k in KINDS]
    lines.append(f"| {algo} | " + " | ".join(cells) + " |")
print("\n".join(lines))

fig, ax = plt.subplots(figsize=(7, 3.5))
width = 0.8 / len(ALGOS)
for i, algo in enumerate(ALGOS):
    mean = np.array([CI[algo, k][0] for k in KINDS])
    err = np.array(
        [[CI[algo, k][0] - CI[algo, k][1] for k in KINDS], [CI[algo, k][2] - CI[algo, k][0] for k in KINDS]]
    )
    ax.bar(
        np.arange(len(KINDS)) + (i - (len(ALGOS) - 1) / 2) * width,
        mean,
        width,
        yerr=err,
        capsize=3,
        label=algo,
    )
ax.set_xticks(np.arange(len(KINDS)), [f"Pendulum-v1 {k}" for k in KINDS])
ax.set_ylabel("normalised score")
ax.set_title(f"{NUM_UPDATES} updates, {len(SEEDS)} seeds, 95% bootstrap CI")
ax.axhline(0, color="k", lw=0.5)
ax.legend(fontsize=8, ncol=len(ALGOS))
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Verdict: do PRDC and O-DICE beat TD3+BC or IQL (non-overlapping CIs)?
#
# The papers report this on 3 MuJoCo medium-replay datasets; here there is one environment (Pendulum-v1), so
# the check below is printed per dataset for what it is worth.

# %%
for kind in KINDS:
    for algo in ("PRDC", "O-DICE"):
        bases = [b for b in ("TD3+BC", "IQL") if b in ALGOS]
        beats = [b for b in bases if CI[algo, kind][1] > CI[b, kind][2]]
        loses = [b for b in bases if CI[algo, kind][2] < CI[b, kind][1]]
        verdict = (f"beats {', '.join(beats)}" if beats else "beats neither TD3+BC nor IQL") + (
            f"; worse than {', '.join(loses)}" if loses else ""
        )
        print(f"{kind:14s} {algo:7s} {verdict} (non-overlapping 95% CIs)")
print(
    f"\nnotebook wall time {time.time() - T0:.0f} s (shared 2-core CPU; includes XLA compilation of "
    f"{len(SCORES)} programs)"
)

# %% [markdown]
# ## Brax hopper / walker2d / halfcheetah datasets
#
# Recorded by `benchmarks/bench_offline_brax.py`, not re-run here.
#
# Datasets made by `purerl collect --expert-algo ppo --expert-steps 3000000 --size 200000 --brax-backend
# spring` (a PPO expert: SAC, D4RL's learner, runs at ~25-70 updates/s on this CPU, i.e. hours per expert; see
# `benchmarks/results/offline_collect_brax.json`). *medium* = rollouts of the first checkpoint reaching 1/3 of
# the random-to-expert range, *medium-replay* = PPO's on-policy data up to that checkpoint (regenerated). The
# PPO experts are much weaker than D4RL's SAC experts, and brax is not gym-MuJoCo: **scores are normalised
# with each file's own reference returns and are not comparable with the papers' D4RL tables.** The budget
# (updates, networks, seeds) is printed below; the papers train 1M updates.

# %%


results = Path(purerl.__file__).resolve().parent.parent / "benchmarks" / "results"


def verdicts(by_algo):
    """PRDC / O-DICE against TD3+BC / IQL from the recorded 95% CIs: 'beats' (entirely above), 'worse than'
    (entirely below), else 'overlaps'."""
    out = {}
    for algo in ("PRDC", "O-DICE"):
        if algo not in by_algo:
            continue
        lo, hi = by_algo[algo]["score_ci95"]
        parts = []
        for base in ("TD3+BC", "IQL"):
            if base in by_algo:
                base_lo, base_hi = by_algo[base]["score_ci95"]
                relation = "beats" if lo > base_hi else "worse than" if hi < base_lo else "overlaps"
                parts.append(f"{relation} {base}")
        out[algo] = ", ".join(parts)
    return out


# Each file is listed as recorded, and its runs are pooled by dataset and budget for the summary below
# (algorithms recorded in separate files meet there).
pooled = {}
for path in sorted(results.glob("offline_brax_*.json")):
    record = json.loads(path.read_text())
    print(f"=== {path.name}: {record['budget']}\n    {record['command']}")
    if "note" in record:
        print("    note:", record["note"])
    for name, entry in record["datasets"].items():
        m = entry["metadata"]
        print(
            f"{name}: {entry['rows']} rows, {m['algorithm']} expert ({m['expert_steps']} env steps), "
            "reference "
            f"returns [{m['ref_min_score']:.0f}, {m['ref_max_score']:.0f}], brax backend {m['brax_backend']}"
        )
        for r in entry["results"]:
            algo = r["algo"]
            if algo == "PRDC" and r["config"]["alpha"] != prdc.config_for(name).alpha:
                algo = f"PRDC alpha={r['config']['alpha']:g}"  # not the paper's preset
            pooled.setdefault((name, record["budget"].split(";")[0]), {})[algo] = {**r, "algo": algo}
            lo, hi = r["score_ci95"]
            print(
                f"  {r['algo']:7s} {r['score_mean']:6.1f} [{lo:6.1f}, {hi:6.1f}]  per seed "
                f"{np.round(r['score_per_seed'], 1)}"
                f"  ({r['updates_per_s']:.0f} updates/s, {len(r['score_per_seed'])} vmapped seeds, compile "
                f"{r['compile_s']:.0f} s)"
            )
        print("  verdict (non-overlapping 95% CIs):", entry.get("verdict"), "\n")

# Pooled by dataset and budget, with the verdict: does PRDC / O-DICE beat TD3+BC or IQL with
# non-overlapping 95% CIs at the same budget?
for (name, budget), by_algo in pooled.items():
    print(f"{name}, {budget}")
    for algo, r in sorted(by_algo.items(), key=lambda kv: -kv[1]["score_mean"]):
        lo, hi = r["score_ci95"]
        print(f"  {algo:14s} {r['score_mean']:6.1f} [{lo:6.1f}, {hi:6.1f}]")
    print("  verdict:", verdicts(by_algo) or "-", "\n")
