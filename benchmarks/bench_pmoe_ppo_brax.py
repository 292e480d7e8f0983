"""PMOE-PPO (K=5) vs PPO on a brax task (default hopper, spring backend) at a CPU budget.

  python -m benchmarks.bench_pmoe_ppo_brax --iterations 2 --chunk 1 --name probe   # a short probe
  python -m benchmarks.bench_pmoe_ppo_brax --iterations 96                          # the recorded run

Both agents get the same PPO settings (spec pmoe.md section 4 where they fit a CPU: 2048 env steps per
iteration, 10 epochs x 32 minibatches of 64, lr 3e-4 constant, clip 0.2, clipped value loss, no entropy bonus,
grad-norm clip 0.5, obs normalisation, 64x64 tanh nets; reward normalisation is not in purerl's PPO).
Seeds are vmapped (`purerl.sweep.seed_keys`, seed s = PRNGKey(s)). Training runs as a compiled chunk of
`--chunk` iterations called repeatedly from Python, so the compile (`jax.jit(f).lower(args).compile()`, timed
separately) does not depend on the budget. The eval program (stochastic policy, `eval_episodes` full
episodes per seed, up to 1000 steps) is compiled and timed separately too.

Writes benchmarks/results/<name>.json: per-iteration training episode return per seed (NaN/None where no
episode ended), final eval returns, AUC ratio PMOE/PPO - 1 with a 95% bootstrap CI over seeds
(`purerl.plotting.auc_ratio_ci`), compile/run/eval seconds, env steps/s, load average, versions, machine.
"""

from __future__ import annotations

from benchmarks import harness  # noqa: F401 # isort: skip  (first: sets the XLA CPU flags before jax loads)

import argparse
import dataclasses
import os
import sys
import time

import jax  # noqa: E402
import numpy as np  # noqa: E402

from purerl.agents import pmoe_ppo, ppo  # noqa: E402
from purerl.logging import machine, versions, write_json  # noqa: E402
from purerl.plotting import auc_per_seed, auc_ratio_ci, bootstrap_ci  # noqa: E402
from purerl.sweep import seed_keys  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results")
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


def run_algo(module, config, seeds: list[int], chunk: int) -> dict:
    agent = module.make_agent(config)
    if agent.num_iterations % chunk:
        raise ValueError(f"iterations ({agent.num_iterations}) must be a multiple of --chunk ({chunk})")
    keys = seed_keys(seeds)

    def train_chunk(state):
        return jax.lax.scan(lambda s, _: agent.update(s), state, None, length=chunk)

    def evaluate(state, key):
        return agent.evaluate(state, jax.random.fold_in(key, 0x5EED))

    t0 = time.perf_counter()
    state = jax.block_until_ready(jax.jit(jax.vmap(agent.init))(keys))
    init_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    train_c = jax.jit(jax.vmap(train_chunk)).lower(state).compile()
    compile_s = time.perf_counter() - t0
    metrics = []
    t0 = time.perf_counter()
    for c in range(agent.num_iterations // chunk):
        state, m = train_c(state)
        metrics.append(jax.device_get(m))  # blocks: the chunk has finished
        if c % 8 == 7:
            print(
                f"  {(c + 1) * chunk} iterations, {time.perf_counter() - t0:.0f}s, mean episode return "
                f"{np.nanmean(np.asarray(m['episode_return'])[:, -1]):.1f}",
                flush=True,
            )
    run_s = time.perf_counter() - t0
    metrics = {k: np.concatenate([np.asarray(m[k]) for m in metrics], axis=1) for k in metrics[0]}
    t0 = time.perf_counter()
    eval_c = jax.jit(jax.vmap(evaluate)).lower(state, keys).compile()
    eval_compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    returns = np.asarray(jax.block_until_ready(eval_c(state, keys)))  # (seeds, eval_episodes)
    eval_s = time.perf_counter() - t0
    env_steps = agent.num_iterations * agent.steps_per_iteration * len(seeds)
    curve = metrics["episode_return"]  # (seeds, iterations)
    out = {
        "algo": module.__name__.split(".")[-1],
        "config": dataclasses.asdict(config),
        "iterations": agent.num_iterations,
        "env_steps_per_seed": agent.num_iterations * agent.steps_per_iteration,
        "init_s": init_s,
        "compile_s": compile_s,
        "run_s": run_s,
        "env_steps_per_s": env_steps / run_s,
        "eval_compile_s": eval_compile_s,
        "eval_s": eval_s,
        "eval_return_per_seed": returns.mean(1).tolist(),
        "eval_return_mean_ci95": [float(v) for v in bootstrap_ci(returns.mean(1))],
        "train_episode_return_per_seed": [[None if np.isnan(v) else float(v) for v in c] for c in curve],
        "auc_per_seed": auc_per_seed(curve).tolist(),
    }
    for name in PMOE_METRICS:
        if name in metrics:
            out[f"{name}_per_iteration_mean_over_seeds"] = np.asarray(metrics[name]).mean(0).tolist()
            out[f"final_{name}_per_seed"] = np.asarray(metrics[name])[:, -1].tolist()
    print(
        f"{out['algo']}: compile {compile_s:.0f}s, run {run_s:.0f}s "
        f"({out['env_steps_per_s']:.0f} env steps/s), "
        f"eval compile {eval_compile_s:.0f}s + {eval_s:.0f}s, eval return per seed "
        f"{np.round(returns.mean(1), 1)}, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser()
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
    args = p.parse_args()

    seeds = list(range(args.seeds))
    cfg = base_config(args.env, args.iterations, args.num_envs, args.num_steps, args.eval_episodes)
    pmoe_cfg = pmoe_ppo.Config(**dataclasses.asdict(cfg), num_experts=args.num_experts, q_hidden=(64, 64, 64))
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    results = {
        "ppo": run_algo(ppo, cfg, seeds, args.chunk),
        "pmoe_ppo": run_algo(pmoe_ppo, pmoe_cfg, seeds, args.chunk),
    }
    wall_s = time.perf_counter() - t_start
    auc = auc_ratio_ci(results["pmoe_ppo"]["auc_per_seed"], results["ppo"]["auc_per_seed"])
    eval_cmp = auc_ratio_ci(
        results["pmoe_ppo"]["eval_return_per_seed"], results["ppo"]["eval_return_per_seed"]
    )
    steps = cfg.total_timesteps
    out = {
        "benchmark": f"PMOE-PPO (K={args.num_experts}) vs PPO on brax {args.env} (spring backend), "
        f"{steps} env steps per seed, {len(seeds)} vmapped seeds each",
        "budget": f"{steps} env steps per seed ({args.iterations} iterations x {cfg.batch_size}); the paper "
        "trains 1M+ env steps per MuJoCo (gym) task: this is a small fraction of that budget, on brax "
        "(spring "
        "physics) whose returns are not comparable with the paper's gym returns",
        "env": args.env,
        "seeds": seeds,
        "env_steps": (np.arange(1, args.iterations + 1) * cfg.batch_size).tolist(),
        "auc_definition": "per seed: mean over iterations of the training episode return (mean return of the "
        "episodes that ended in that iteration, carried forward over iterations where none ended); equally "
        "spaced in env steps, so this is the normalised area under the training curve",
        "auc_pmoe_vs_ppo": auc,
        "final_eval_pmoe_vs_ppo": eval_cmp,
        "eval_note": "final eval: stochastic policy (PPO samples its Gaussian; PMOE samples an expert from "
        "the router, then its Gaussian), eval_episodes full episodes per seed on the unwrapped env (obs "
        "normalised "
        "with the training statistics)",
        "results": results,
        "wall_s": wall_s,
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "note": args.note,
        "versions": versions(),
        "machine": machine(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "command": "python " + " ".join(sys.argv),
    }
    print(
        f"AUC PMOE/PPO - 1 = {auc['ratio_minus_1']} CI {auc['ratio_minus_1_ci']}; "
        f"difference {auc['difference']:.1f} "
        f"CI {np.round(auc['difference_ci'], 1)}; wall {wall_s:.0f}s",
        flush=True,
    )
    name = args.name or f"pmoe_ppo_vs_ppo_{args.env}_{steps // 1000}k"
    write_json(os.path.join(RESULTS, f"{name}.json"), out)


if __name__ == "__main__":
    main()
