"""Vanilla-PG, N-PG, N-PG-IGT, HARPG and N-HARPG at equal sample budgets (Fatkhullin et al., ICML 2023).

For each env and method: 5 vmapped seeds, `iters` iterations of `batch` env steps each. (N)-HARPG's Hessian
rollout (hessian_batch_episodes = 1 episode of H steps) is paid out of the same budget: its main batch is
`batch - H`, so every method uses exactly `batch` env steps per iteration. Reported per method: final
return of the deterministic policy (32 episodes per seed), mean ± 95% bootstrap CI over seeds; training
curve (mean undiscounted return of the sampled episodes per iteration); compile time and run time
measured separately; env steps/s. Separately: the cost of one update iteration at the same main batch
(N-HARPG / Vanilla-PG ratio; target <= 2.5).

    python -m benchmarks.bench_pg --env CartPole-v1 --iters 100 --batch 5000
    python -m benchmarks.bench_pg --env walker2d --iters 12 --batch 5000 --no-cost   # brax, spring backend

brax envs (walker2d, reacher, ...) run with the paper code's MuJoCo policy (hidden 64,64) on the brax
backend `--brax-backend` (default spring: much faster on CPU than generalized). `--gamma0 pg=1e-4,harpg=3e-5`
overrides the per-method γ0 (the CartPole-tuned defaults below are kept otherwise).
"""

from __future__ import annotations

from benchmarks import harness  # noqa: F401 # isort: skip  (first: sets the XLA CPU flags before jax loads)

import argparse
import importlib
import json
import os
import time

# persistent compilation cache (as tests/conftest.py): the deterministic-evaluation program is identical
# for all methods of one env, so it compiles once per env, not once per method (brax compiles take minutes)
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), ".jax_cache"))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.convert_legacy import convert  # noqa: E402  (the file in the harness schema, fields under legacy)
from purerl import runner, stats  # noqa: E402
from purerl.logging import machine, versions, write_json  # noqa: E402
from purerl.sweep import seed_keys  # noqa: E402

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
PAPER_BUDGET = ("paper code defaults: 1000 iterations x 1000 env steps (README example: 5000) per run, "
                "i.e. 1-5 M env steps per seed (MuJoCo envs: mujoco-py v2); per-figure settings unverified")


def env_kwargs(env, brax_backend="spring"):
    """Config fields for brax envs: the paper code's MuJoCo policy (64,64) and the chosen physics backend."""
    from purerl import envs

    if env in envs.BRAX_ENVS:
        return {"hidden": (64, 64), "brax_backend": brax_backend}
    return {}


def make_config(method, env, iters, batch, gamma_0=None, brax_backend="spring"):
    module_name, g0 = METHODS[method]
    mod = importlib.import_module(f"purerl.agents.{module_name}")
    extra = {"hvp_form": "garage_code"} if method == "nharpg_code" else {}
    extra.update(env_kwargs(env, brax_backend))
    name = "nharpg" if method == "nharpg_code" else method
    cfg = mod.Config(env=env, method=name, num_iters=iters, batch_steps=batch, gamma_0=gamma_0 or g0, **extra)
    if module_name == "harpg":  # pay the Hessian rollout out of the same budget
        cfg = mod.Config(env=env, method=name, num_iters=iters, gamma_0=gamma_0 or g0,
                         batch_steps=batch - cfg.horizon * cfg.hessian_batch_episodes, **extra)
    return mod, cfg


def run_method(method, env, iters, batch, seeds, gamma_0=None, brax_backend="spring"):
    mod, cfg = make_config(method, env, iters, batch, gamma_0, brax_backend)
    agent = mod.make_agent(cfg)
    # the CLI's training (jitted chunks) and evaluation keys: a seed's final return is `purerl train`'s
    run = runner.train_and_evaluate(agent, len(seeds), seeds[0], algo=mod.__name__.rsplit(".", 1)[-1])
    compile_s, run_s, eval_s = run.compile_s, run.run_s, run.summary["eval_s"]
    final, metrics = run.per_seed_returns, run.metrics
    curve = np.asarray(metrics["episode_return"])  # [seeds, iters]
    steps = agent.steps_per_iteration * iters * len(seeds)
    _, lo, hi = stats.bootstrap_ci(final, num_resamples=10_000)
    _, curve_lo, curve_hi = stats.bootstrap_ci(curve[:, :: max(1, iters // 50)], num_resamples=10_000)
    return {
        "method": LABELS[method],
        "hvp_form": getattr(cfg, "hvp_form", None),
        "gamma_0": cfg.gamma_0,
        "eta_0": cfg.eta_0,
        "batch_steps_main": cfg.num_envs * cfg.horizon,
        "steps_per_iteration": agent.steps_per_iteration,
        "final_return_per_seed": final.tolist(),
        "final_return_mean": float(final.mean()),
        "final_return_ci95": [float(lo), float(hi)],
        "train_return_curve_mean": curve.mean(axis=0).tolist(),
        "train_return_curve_ci95": [[float(a), float(b)] for a, b in zip(curve_lo, curve_hi, strict=True)],
        "grad_norm_first_iters": np.asarray(metrics["grad_norm"]).mean(axis=0)[:3].tolist(),
        "compile_s": compile_s,
        "run_s": run_s,
        "seconds_per_iteration": run_s / iters,
        "eval_s": eval_s,
        "env_steps_per_s": steps / run_s,
        "loadavg_after": list(os.getloadavg()),
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
        agent = mod.make_agent(mod.Config(env=env, method=method, num_iters=1, batch_steps=batch, gamma_0=g0,
                                                **env_kwargs(env)))
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
    best = {m: out[m]["seconds_per_iteration_min"] for m in ("pg", "nharpg")}
    out["ratio_nharpg_over_pg"] = best["nharpg"] / best["pg"]
    out["ratio_nharpg_over_pg_median"] = (
        out["nharpg"]["seconds_per_iteration_median"] / out["pg"]["seconds_per_iteration_median"]
    )
    out["note"] = (f"{len(seeds)} vmapped seeds, main batch {batch} steps for both "
                   "(N-HARPG adds one Hessian episode)")
    return out


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in result["methods"].values():
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
    p.add_argument("--cost-only", action="store_true",
                   help="only (re)measure the iteration cost into the JSON")
    p.add_argument("--brax-backend", default="spring", help="physics backend for brax envs")
    p.add_argument("--gamma0", default="", help="per-method γ0 overrides, e.g. pg=1e-4,harpg=3e-5")
    p.add_argument("--budget-note", default="", help="free text for the JSON (how the budget was chosen)")
    args = p.parse_args()
    seeds = list(range(args.seeds))
    gamma0 = {k: float(v) for k, v in (kv.split("=") for kv in args.gamma0.split(",") if kv)}
    result = {
        "benchmark": "bench_pg",
        "env": args.env, "iters": args.iters, "batch": args.batch, "seeds": args.seeds,
        "protocol": "equal sample budget: every method uses `batch` env steps per iteration; (N)-HARPG's "
                    "Hessian episode (H steps) is taken out of its main batch. Final return = deterministic "
                    "policy (argmax / mean action), 32 episodes per seed; CI = 95% bootstrap over seeds.",
        "note": "2-core CPU shared with other jobs: timings are noisy.",
        "paper_budget": PAPER_BUDGET,
        "versions": versions(), "machine": machine(), "loadavg_start": list(os.getloadavg()), "methods": {},
    }
    if env_kwargs(args.env):
        result["brax_backend"] = args.brax_backend
        result["policy_hidden"] = [64, 64]
        result["dynamics_note"] = ("brax 0.14 re-implementation (backend above), not mujoco-py v2: "
                                   "different physics engine, contact model, observation layout and reward "
                                   "details; returns are not comparable to the paper's MuJoCo numbers.")
    if args.budget_note:
        result["budget_note"] = args.budget_note
    name = f"pg_{args.env}"
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, name + ".json")
    if args.cost_only:
        result = json.load(open(path))["legacy"]
        result["iteration_cost"] = iteration_cost(args.env, args.batch, seeds)
        print("iteration cost", json.dumps(result["iteration_cost"]), flush=True)
        write_json(path, convert(name, result))
        return
    if os.path.exists(path):  # add to / overwrite methods of an earlier run with the same protocol
        old = json.load(open(path))["legacy"]  # this script's own fields of the earlier run
        if (old["iters"], old["batch"], old["seeds"]) == (args.iters, args.batch, args.seeds):
            result["methods"] = old["methods"]
            if "iteration_cost" in old:
                result["iteration_cost"] = old["iteration_cost"]
    for method in args.methods.split(","):
        r = run_method(method, args.env, args.iters, args.batch, seeds, gamma0.get(method), args.brax_backend)
        result["methods"][method] = r
        ci = np.round(r["final_return_ci95"], 1)
        print(f"{r['method']:>10}: final {r['final_return_mean']:.1f} CI {ci} "
              f"compile {r['compile_s']:.1f}s run {r['run_s']:.1f}s ({r['seconds_per_iteration']:.2f} s/it) "
              f"eval {r['eval_s']:.1f}s {r['env_steps_per_s']:.0f} steps/s |g0| {r['grad_norm_first_iters']}",
              flush=True)
        write_json(os.path.join(args.out, name + ".json"), convert(name, result))
    if not args.no_cost:
        result["iteration_cost"] = iteration_cost(args.env, args.batch, seeds)
        print("iteration cost", json.dumps(result["iteration_cost"]), flush=True)
    result["loadavg_end"] = list(os.getloadavg())
    write_json(os.path.join(args.out, name + ".json"), convert(name, result))
    plot(result, os.path.join(args.out, name + ".png"))


if __name__ == "__main__":
    main()
