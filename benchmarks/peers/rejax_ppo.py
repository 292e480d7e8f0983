"""rejax's PPO (rejax 0.1.3 from PyPI) on a gymnax env, timed the way purerl's runner times itself.

Runs in an interpreter that has rejax (it is not a purerl dependency); `benchmarks/bench_vs_rejax.py` starts
it as a subprocess. Settings: purejaxrl's CartPole-v1 PPO, the same as `purerl train ppo`'s defaults (4 envs
x 128 steps per iteration, 4 epochs of 4 minibatches, lr 2.5e-4 annealed linearly per iteration, 64x64 tanh,
gamma 0.99, GAE lambda 0.95, clip 0.2, entropy 0.01, value 0.5, gradient clip 0.5).

    python benchmarks/peers/rejax_ppo.py --num-seeds 8

Its interpreter: a venv of its own, e.g. `python -m venv /tmp/peers-venv && /tmp/peers-venv/bin/pip install
rejax==0.1.3 gymnax==0.0.9 jax==0.10.2 jaxlib==0.10.2 flax==0.12.8 optax==0.2.8` (rejax 0.1.3 calls the
step API of gymnax 0.0.x, which gymnax 1.x changed).

Timed: the seeds' `jax.vmap(train)` compiled ahead of time (compile_s), then run to completion (run_s), with
rejax's evaluation inside training switched off. Afterwards, untimed, rejax's own evaluator scores each
seed's final policy (128 episodes, stochastic). The last line on stdout is one JSON object.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import rejax  # noqa: E402


def make_algo(env: str, total_timesteps: int, num_envs: int, num_steps: int, epochs: int, minibatches: int,
              lr: float):
    """(algo to train, algo to evaluate with, iterations): a whole number of iterations in one training block,
    so that rejax never stops training to evaluate."""
    steps_per_iteration = num_envs * num_steps
    iterations = total_timesteps // steps_per_iteration
    if iterations < 1:
        raise SystemExit(f"rejax_ppo: total timesteps {total_timesteps} < one iteration "
                         f"({steps_per_iteration})")
    budget = iterations * steps_per_iteration
    updates_per_iteration = epochs * minibatches

    def annealed(count):  # rejax steps each of its two Adams once per minibatch
        return lr * (1.0 - (count // updates_per_iteration) / iterations)

    algo = rejax.get_algo("ppo").create(
        env=env, total_timesteps=budget, eval_freq=budget, skip_initial_evaluation=True, num_envs=num_envs,
        num_steps=num_steps, num_epochs=epochs, num_minibatches=minibatches, learning_rate=annealed,
        gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5,
        agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)},
        normalize_observations=False, normalize_rewards=False)
    # the block's closing evaluation costs nothing in the timed program; the default evaluator scores later
    silent = algo.replace(eval_callback=lambda algo, train_state, key: jnp.zeros(()))
    return silent, algo, iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    parser.add_argument("--num-seeds", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--num-steps", type=int, default=128)
    parser.add_argument("--update-epochs", type=int, default=4)
    parser.add_argument("--num-minibatches", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2.5e-4)
    args = parser.parse_args()

    algo, scorer, iterations = make_algo(args.env, args.total_timesteps, args.num_envs, args.num_steps,
                                         args.update_epochs, args.num_minibatches, args.lr)
    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.num_seeds)
    start = time.perf_counter()
    program = jax.jit(jax.vmap(algo.train)).lower(keys).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    train_state, _ = jax.block_until_ready(program(keys))
    run_s = time.perf_counter() - start
    print(f"rejax_ppo: {iterations} iterations x {args.num_seeds} seeds: compile {compile_s:.1f} s, "
          f"run {run_s:.1f} s", file=sys.stderr, flush=True)

    steps_per_seed = int(np.asarray(train_state.global_step).reshape(-1)[0])
    score_keys = jax.random.split(jax.random.PRNGKey(args.seed + 1), args.num_seeds)
    score = jax.jit(jax.vmap(lambda ts, key: scorer.eval_callback(scorer, ts, key)))
    _, returns = score(train_state, score_keys)
    per_seed = np.asarray(returns, np.float64).reshape(args.num_seeds, -1).mean(axis=1)
    print(json.dumps({
        "peer": "rejax", "env": args.env, "num_seeds": args.num_seeds, "total_timesteps": steps_per_seed,
        "compile_s": round(compile_s, 3), "run_s": round(run_s, 3),
        "env_steps_per_s": round(args.num_seeds * steps_per_seed / run_s, 1),
        "final_return_per_seed": [round(float(x), 2) for x in per_seed],
        "final_return_mean": round(float(per_seed.mean()), 2),
        "final_return_min": round(float(per_seed.min()), 2),
        "versions": {"rejax": _version("rejax"), "gymnax": _version("gymnax"), "jax": jax.__version__},
    }), flush=True)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    main()
