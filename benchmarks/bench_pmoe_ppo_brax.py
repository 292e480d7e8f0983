"""PMOE-PPO (K=5) vs PPO on a brax task (default hopper, spring backend) at a CPU budget.

  python -m benchmarks.bench_pmoe_ppo_brax --iterations 2 --chunk 1 --name probe   # a short probe
  python -m benchmarks.bench_pmoe_ppo_brax --iterations 96                          # the recorded run

Both agents get the same PPO settings (spec pmoe.md section 4 where they fit a CPU: 2048 env steps per
iteration, 10 epochs x 32 minibatches of 64, lr 3e-4 constant, clip 0.2, clipped value loss, no entropy bonus,
grad-norm clip 0.5, obs normalisation, 64x64 tanh nets; reward normalisation is not in purerl's PPO).
Each agent trains through `purerl.runner.train_and_evaluate` (the CLI's numbers): the seeds vmapped (seed s =
PRNGKey(s)), `--chunk` iterations per compiled chunk (compiled ahead of time and timed apart from the run, so
the compile does not depend on the budget), progress printed from the runner's per-chunk callback, then the
final evaluation with the runner's keys (stochastic policy, `eval_episodes` full episodes per seed, up to 1000
steps).

Writes `<out>/<name>.json` (harness schema, `harness.several_runs`): a COMPARISON of PMOE-PPO against PPO,
AUC of the training return (headline) and final eval return, each `stats.compare` (difference and ratio - 1
with 95% bootstrap CIs over seeds); each agent's TRAIN result (per-seed final returns and AUCs, the training
curve, per-seed training return per iteration with None where no episode ended, PMOE's router metrics)
under `extra.runs`; load average, note.
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import dataclasses
import os
import time

import numpy as np

from benchmarks.harness import Entry
from purerl.agents import pmoe_ppo, ppo

PMOE_METRICS = ("router_entropy", "effective_experts", "distinguishable_modes", "router_loss")


def base_config(env: str, iterations: int, num_envs: int, num_steps: int, eval_episodes: int) -> ppo.Config:
    return ppo.Config(
        env=env,
        brax_backend="spring",
        num_envs=num_envs,
        num_steps=num_steps,
        total_timesteps=iterations * num_envs * num_steps,
        update_epochs=10,
        num_minibatches=32,
        lr=3e-4,
        anneal_lr=False,
        gamma=0.99,
        gae_lambda=0.95,
        clip_eps=0.2,
        clip_value=True,
        ent_coef=0.0,
        vf_coef=0.5,
        max_grad_norm=0.5,
        normalize_advantages=True,
        hidden=(64, 64),
        activation="tanh",
        log_std_init=0.0,
        normalize_obs=True,
        eval_episodes=eval_episodes,
    )


def run_algo(algo: str, config, seeds: int, chunk: int) -> dict:
    """Train and evaluate one agent through the runner: its TRAIN result, with the per-seed training curve and
    PMOE's router metrics under `extra`."""
    chunks_done, start = [], time.perf_counter()

    def report_progress(env_steps: int, metrics: dict) -> None:  # the runner calls it between chunks
        chunks_done.append(env_steps)
        if len(chunks_done) % 8 == 0:
            last = np.asarray(metrics["episode_return"])[:, -1]
            print(f"  {env_steps} env steps, {time.perf_counter() - start:.0f}s, mean episode return "
                  f"{np.nanmean(last):.1f}", flush=True)

    entry = Entry(f"{algo}_{config.env}", algo=algo, config=dataclasses.asdict(config), num_seeds=seeds,
                  chunk_iterations=chunk, what=f"{algo} on brax {config.env} (spring backend)")
    res, run = harness.trained(entry, callback=report_progress)
    curve = run.metrics["episode_return"]  # (seeds, iterations)
    extra = res["extra"]
    extra["train_episode_return_per_seed"] = [[None if np.isnan(v) else float(v) for v in c] for c in curve]
    for name in PMOE_METRICS:
        if name in run.metrics:
            values = np.asarray(run.metrics[name])
            extra[f"{name}_per_iteration_mean_over_seeds"] = values.mean(0).tolist()
            extra[f"final_{name}_per_seed"] = values[:, -1].tolist()
    print(f"{algo}: {harness.one_line(res)}, eval {extra['eval_s']:.0f}s, load {os.getloadavg()[0]:.1f}",
          flush=True)
    return res


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_pmoe_ppo_brax", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="hopper")
    p.add_argument(
        "--iterations", type=int, default=96, help="PPO iterations of num_envs x num_steps env steps"
    )
    p.add_argument("--chunk", type=int, default=4, help="iterations per compiled call")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--num-steps", type=int, default=128)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--num-experts", type=int, default=5)
    p.add_argument("--eval-episodes", type=int, default=8)
    p.add_argument(
        "--note",
        default="2-core CPU shared with other jobs: timings are noisy lower bounds of this machine's speed",
        help="what else ran on the machine (recorded in the result file)",
    )
    p.add_argument("--name", default="", help="result file name (default pmoe_ppo_vs_ppo_<env>_<k>k)")
    p.add_argument("--out", default=str(harness.RESULTS), help="results directory")
    args = p.parse_args(argv)

    cfg = base_config(args.env, args.iterations, args.num_envs, args.num_steps, args.eval_episodes)
    pmoe_cfg = pmoe_ppo.Config(**dataclasses.asdict(cfg), num_experts=args.num_experts, q_hidden=(64, 64, 64))
    load_before, start = os.getloadavg(), time.perf_counter()
    base = run_algo("ppo", cfg, args.seeds, args.chunk)
    pmoe = run_algo("pmoe_ppo", pmoe_cfg, args.seeds, args.chunk)
    runs, wall_s = [base, pmoe], time.perf_counter() - start
    comparisons = [harness.compared(pmoe, base, f"AUC, {args.env}", "auc"),
                   harness.compared(pmoe, base, f"final return, {args.env}")]
    steps = cfg.total_timesteps
    extra = {
        "budget": f"{steps} env steps per seed ({args.iterations} iterations x {cfg.batch_size}); the paper "
        "trains 1M+ env steps per MuJoCo (gym) task: this is a small fraction of that budget, on brax "
        "(spring physics) whose returns are not comparable with the paper's gym returns",
        "auc_definition": "per seed: mean over iterations of the training episode return (mean return of the "
        "episodes that ended in that iteration, carried forward over iterations where none ended); equally "
        "spaced in env steps, so this is the normalised area under the training curve",
        "eval_note": "final eval: stochastic policy (PPO samples its Gaussian; PMOE samples an expert from "
        "the router, then its Gaussian), eval_episodes full episodes per seed on the unwrapped env (obs "
        "normalised with the training statistics)",
        "wall_s": round(wall_s, 1),
        "load_average_before_after": [list(load_before), list(os.getloadavg())],
        "note": args.note,
    }
    name = args.name or f"pmoe_ppo_vs_ppo_{args.env}_{steps // 1000}k"
    what = f"PMOE-PPO (K={args.num_experts}) vs PPO on brax {args.env} (spring backend)"
    res = harness.several_runs(name, what, runs, comparisons, extra, env=args.env, budget=steps,
                               budget_unit="env steps", seeds=list(range(args.seeds)))
    auc = comparisons[0]
    print(f"AUC PMOE/PPO - 1 = {auc['ratio_minus_1']} CI {auc['ratio_minus_1_ci']}; difference "
          f"{auc['difference']:.1f} CI {np.round(auc['difference_ci'], 1)}; wall {wall_s:.0f}s", flush=True)
    print(f"{name}: {harness.one_line(res)} -> {harness.write(res, args.out)}")


if __name__ == "__main__":
    main()
