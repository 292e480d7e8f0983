"""Vanilla-PG, N-PG, N-PG-IGT, HARPG and N-HARPG at equal sample budgets (Fatkhullin et al., ICML 2023).

For each env and method: 5 vmapped seeds, `iters` iterations of `batch` env steps each. (N)-HARPG's Hessian
rollout (hessian_batch_episodes = 1 episode of H steps) is paid out of the same budget: its main batch is
`batch - H`, so every method uses exactly `batch` env steps per iteration. Reported per method: final
return of the deterministic policy (32 episodes per seed), mean ± 95% bootstrap CI over seeds; training
curve (mean undiscounted return of the sampled episodes per iteration); compile time and run time
measured separately; env steps/s. Separately: the cost of one update iteration at the same main batch
(N-HARPG / Vanilla-PG ratio; issue bar <= 2.5).

    python benchmarks/bench_pg.py --env CartPole-v1 --iters 100 --batch 5000
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from purerl.logging import machine, versions, write_json
from purerl.sweep import seed_keys

# method -> (agent module, gamma_0). Normalized methods: the code's default γ0 = 0.1. The non-normalized
# ones take raw per-trajectory GPOMDP steps (‖ĝ‖ ~ 20-200 on CartPole), so γ0 = 0.1 diverges. A 20-iteration
# x 2000-step, 5-seed CartPole probe: Vanilla-PG γ0 = 0.003 -> 180, 0.01 -> 139; HARPG γ0 = 0.003 -> 47
# (2/5 seeds learn), 0.01 -> 14 (diverged); so HARPG runs at 0.001 (not probed; one step below).
METHODS = {
    "pg": ("pg", 0.003),
    "npg": ("pg", 0.1),
    "npg_igt": ("npg_igt", 0.1),
    "harpg": ("harpg", 0.001),
    "nharpg": ("harpg", 0.1),
    # ablation (not one of the five): N-HARPG with the published code's B̂v (score term sign-flipped,
    # product of batch means); run with --methods nharpg_code
    "nharpg_code": ("harpg", 0.1),
}
LABELS = {"pg": "Vanilla-PG", "npg": "N-PG", "npg_igt": "N-PG-IGT", "harpg": "HARPG", "nharpg": "N-HARPG",
          "nharpg_code": "N-HARPG (code-form B̂v)"}
FIVE = ("pg", "npg", "npg_igt", "harpg", "nharpg")


def bootstrap_ci(x, n=10_000, seed=0):
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float64)
    means = rng.choice(x, size=(n, x.size), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def make_config(method, env, iters, batch, gamma_0=None):
    module_name, g0 = METHODS[method]
    mod = importlib.import_module(f"purerl.agents.{module_name}")
    extra = {"hvp_form": "garage_code"} if method == "nharpg_code" else {}
    name = "nharpg" if method == "nharpg_code" else method
    cfg = mod.Config(env=env, method=name, num_iters=iters, batch_steps=batch, gamma_0=gamma_0 or g0, **extra)
    if module_name == "harpg":  # pay the Hessian rollout out of the same budget
        cfg = mod.Config(env=env, method=name, num_iters=iters, gamma_0=gamma_0 or g0,
                         batch_steps=batch - cfg.horizon * cfg.hessian_batch_episodes, **extra)
    return mod, cfg


def run_method(method, env, iters, batch, seeds):
    mod, cfg = make_config(method, env, iters, batch)
    agent = mod.make_agent(cfg)
    train = jax.vmap(mod.make_train(cfg))
    keys = seed_keys(seeds)
    t0 = time.perf_counter()
    compiled = jax.jit(train).lower(keys).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    state, metrics = jax.block_until_ready(compiled(keys))
    run_s = time.perf_counter() - t0
    eval_keys = jax.vmap(lambda k: jax.random.fold_in(k, 12345))(keys)
    final = np.asarray(jax.jit(jax.vmap(agent.evaluate))(state, eval_keys)).mean(axis=1)
    curve = np.asarray(metrics["episode_return"])  # [seeds, iters]
    steps = agent.steps_per_iteration * iters * len(seeds)
    lo, hi = bootstrap_ci(final)
    return {
        "method": LABELS[method],
        "hvp_form": getattr(cfg, "hvp_form", None),
        "gamma_0": cfg.gamma_0,
        "eta_0": cfg.eta_0,
        "batch_steps_main": cfg.num_envs * cfg.horizon,
        "steps_per_iteration": agent.steps_per_iteration,
        "final_return_per_seed": final.tolist(),
        "final_return_mean": float(final.mean()),
        "final_return_ci95": [lo, hi],
        "train_return_curve_mean": curve.mean(axis=0).tolist(),
        "train_return_curve_ci95": [bootstrap_ci(c) for c in curve.T[:: max(1, iters // 50)]],
        "compile_s": compile_s,
        "run_s": run_s,
        "env_steps_per_s": steps / run_s,
    }


def iteration_cost(env, batch, seeds, repeats=20):
    """Seconds per update iteration (vmapped seeds, compiled) at the same main batch for pg and nharpg.

    The two compiled updates are timed alternately (the CPU is shared: interleaving exposes both to the
    same load); the ratio uses the minimum (least disturbed) and the median time of each.
    """
    updates, states, out = {}, {}, {}
    for method in ("pg", "nharpg"):
        module_name, g0 = METHODS[method]
        mod = importlib.import_module(f"purerl.agents.{module_name}")
        agent = mod.make_agent(mod.Config(env=env, method=method, num_iters=1, batch_steps=batch, gamma_0=g0))
        state = jax.jit(jax.vmap(agent.init))(seed_keys(seeds))
        updates[method] = jax.jit(jax.vmap(agent.update)).lower(state).compile()
        states[method], _ = jax.block_until_ready(updates[method](state))  # warm-up
        out[method] = {"times": [], "steps_per_iteration": agent.steps_per_iteration}
    for _ in range(repeats):
        for method in ("pg", "nharpg"):
            t0 = time.perf_counter()
            states[method], _ = jax.block_until_ready(updates[method](states[method]))
            out[method]["times"].append(time.perf_counter() - t0)
    for method in ("pg", "nharpg"):
        out[method]["seconds_per_iteration_min"] = float(np.min(out[method]["times"]))
        out[method]["seconds_per_iteration_median"] = float(np.median(out[method]["times"]))
    out["ratio_nharpg_over_pg"] = out["nharpg"]["seconds_per_iteration_min"] / out["pg"]["seconds_per_iteration_min"]
    out["ratio_nharpg_over_pg_median"] = (
        out["nharpg"]["seconds_per_iteration_median"] / out["pg"]["seconds_per_iteration_median"]
    )
    out["note"] = f"{len(seeds)} vmapped seeds, main batch {batch} steps for both (N-HARPG adds one Hessian episode)"
    return out


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in result["methods"].items():
        curve = np.asarray(r["train_return_curve_mean"])
        x = np.arange(1, curve.size + 1) * r["steps_per_iteration"]
        ax.plot(x, curve, label=f"{r['method']} (final det. {r['final_return_mean']:.0f})")
    ax.set_xlabel("env steps (per seed)")
    ax.set_ylabel("mean training episode return")
    ax.set_title(f"{result['env']}: {result['seeds']} seeds, {result['iters']} x {result['batch']} steps")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--batch", type=int, default=5000)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--methods", default=",".join(FIVE))
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--no-cost", action="store_true")
    p.add_argument("--cost-only", action="store_true", help="only (re)measure the iteration cost into the JSON")
    args = p.parse_args()
    seeds = list(range(args.seeds))
    result = {
        "benchmark": "bench_pg",
        "env": args.env, "iters": args.iters, "batch": args.batch, "seeds": args.seeds,
        "protocol": "equal sample budget: every method uses `batch` env steps per iteration; (N)-HARPG's "
                    "Hessian episode (H steps) is taken out of its main batch. Final return = deterministic "
                    "policy (argmax / mean action), 32 episodes per seed; CI = 95% bootstrap over seeds.",
        "note": "2-core CPU shared with other jobs: timings are noisy.",
        "versions": versions(), "machine": machine(), "methods": {},
    }
    name = f"pg_{args.env}"
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, name + ".json")
    if args.cost_only:
        result = json.load(open(path))
        result["iteration_cost"] = iteration_cost(args.env, args.batch, seeds)
        print("iteration cost", json.dumps(result["iteration_cost"]), flush=True)
        write_json(path, result)
        return
    if os.path.exists(path):  # add to / overwrite methods of an earlier run with the same protocol
        old = json.load(open(path))
        if (old["iters"], old["batch"], old["seeds"]) == (args.iters, args.batch, args.seeds):
            result["methods"] = old["methods"]
            if "iteration_cost" in old:
                result["iteration_cost"] = old["iteration_cost"]
    for method in args.methods.split(","):
        r = run_method(method, args.env, args.iters, args.batch, seeds)
        result["methods"][method] = r
        print(f"{r['method']:>10}: final {r['final_return_mean']:.1f} CI {np.round(r['final_return_ci95'], 1)} "
              f"compile {r['compile_s']:.1f}s run {r['run_s']:.1f}s {r['env_steps_per_s']:.0f} steps/s", flush=True)
        write_json(os.path.join(args.out, name + ".json"), result)
    if not args.no_cost:
        result["iteration_cost"] = iteration_cost(args.env, args.batch, seeds)
        print("iteration cost", json.dumps(result["iteration_cost"]), flush=True)
    write_json(os.path.join(args.out, name + ".json"), result)
    plot(result, os.path.join(args.out, name + ".png"))


if __name__ == "__main__":
    main()
