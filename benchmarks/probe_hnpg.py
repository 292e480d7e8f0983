"""Why HNPG stalls on long locks: train one seed, then look at the late timesteps' critics and policies.

After `--iters` iterations on the H-step lock (spec defaults otherwise), for a few timesteps h and each latent
state z (0 = A, 1 = B, 2 = dead) it records, over 64 fresh observations: the good action of that (z, h), where
π_h's mean action points (argmax counts), π_h's mean std, and Q_h(s, e_k) for every one-hot action e_k (the
actions the offline expert takes). It also records the per-timestep good-action probability every 100
iterations (`hnpg.good_action_probability`).

Usage: `python -m benchmarks.probe_hnpg --horizon 30 --iters 400` -> benchmarks/results/hnpg_probe_h30.json
(a harness SPEED result, iterations/s; the history and probes under `extra`). `bench_hnpg` measures speed
and samples to solve; this probe is the only source of the critics' values (docs/algorithms/hnpg.md).
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.harness import SPEED
from purerl.agents import hnpg

CHUNK = 100  # iterations per compiled call; the history is recorded after each


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.probe_hnpg", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--horizon", type=int, default=30)
    parser.add_argument("--iters", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(harness.RESULTS), help="results folder")
    args = parser.parse_args(argv)
    if args.iters < CHUNK:
        parser.error(f"--iters must be at least {CHUNK} (one compiled chunk), got {args.iters}")
    config = hnpg.Config(horizon=args.horizon)
    agent, parts = hnpg.make_agent_and_parts(config)
    env, policy_net, q_net = parts["env"], parts["policy_net"], parts["q_net"]
    p_good_fn = hnpg.good_action_probability(parts)
    add_seed_axis = lambda tree: jax.tree.map(lambda x: x[None], tree)  # noqa: E731

    state = jax.jit(agent.init)(jax.random.key(args.seed))
    run, compile_s = harness.compile_timed(
        lambda s: jax.lax.scan(lambda s, _: agent.update(s), s, None, length=CHUNK), state)
    history, run_s = [], []
    for i in range(args.iters // CHUNK):
        (state, metrics), seconds = harness.run_timed(run, state)
        run_s.append(seconds)
        p = np.asarray(
            p_good_fn(add_seed_axis(state.policy), add_seed_axis(state.env_params), jax.random.key(i))
        )
        history.append(
            {
                "iteration": (i + 1) * CHUNK,
                "batch_success_last_10": float(metrics["success"][-10:].mean()),
                "mean_reach_last_10 (steps on the lock)": float(metrics["mean_reach"][-10:].mean()),
                "p_good_action_per_h": p[0].round(3).tolist(),
            }
        )
        print(json.dumps(history[-1]), flush=True)

    lock = np.asarray(env.lock(state.env_params))
    one_hots = jnp.eye(env.num_actions)
    probes = []
    for h in sorted({0, args.horizon // 2, args.horizon - 2, args.horizon - 1}):
        pi_h = jax.tree.map(lambda x, h=h: x[h], state.policy)
        q_h = jax.tree.map(lambda x, h=h: x[h], state.q)
        for z in (0, 1, 2):
            keys = jax.random.split(jax.random.key(100 * h + z), 64)
            obs = jax.vmap(lambda k, z=z, h=h: env.observe(k, z, h, state.env_params))(keys)
            mean, log_std = policy_net.apply(pi_h, obs)
            q = jax.vmap(
                lambda a, obs=obs, q_h=q_h: q_net.apply(q_h, obs, jnp.broadcast_to(a, (64, env.num_actions)))
            )(one_hots)
            probes.append(
                {
                    "h": h,
                    "z": ["A", "B", "dead"][z],
                    "good_action": int(lock[min(z, 1), h]),
                    "policy_mean_argmax_counts": np.bincount(
                        np.asarray(mean.argmax(-1)), minlength=env.num_actions
                    ).tolist(),
                    "policy_std": round(float(jnp.exp(log_std).mean()), 3),
                    "Q(s, e_k) for k = 0..A-1": np.asarray(q.mean(1)).round(3).tolist(),
                }
            )
            print(json.dumps(probes[-1]), flush=True)
    what = f"HNPG probe, H={args.horizon} lock: late-timestep critics Q_h(s, e_k) and policies"
    extra = {"horizon": args.horizon, "seed": args.seed, "iterations": args.iters,
             "offline_eps": config.offline_eps if config.offline_eps is not None else 1 / args.horizon,
             "history": history, "probes": probes, "chunk_run_s": run_s}
    best = min(run_s)
    result = harness.result(SPEED, f"hnpg_probe_h{args.horizon}", what, algo="hnpg",
                            env=f"combination lock H={args.horizon}", seeds=[args.seed],
                            compile_s=round(compile_s, 3), run_s=round(best, 4), throughput=CHUNK / best,
                            throughput_unit="iterations/s (one seed)", extra=extra)
    print(f"{result['name']}: {harness.one_line(result)} -> {harness.write(result, args.out)}")


if __name__ == "__main__":
    main()
