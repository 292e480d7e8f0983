"""SubPO vs ModPO on the continuous ant coverage task (A2C, spec `subpo.md` §4.6) at a small CPU budget.

Both variants train the same A2C (`purerl.agents.a2c`, 15 envs x 400 steps per update, one Adam step, lr
1e-2) on `ant_coverage` (reward = newly covered cells / 10: SubPO) or `ant_coverage_modular` (reward =
total covered cells / 10: ModPO), `--seeds` seeds vmapped in one program. Compile time is measured
separately (`jax.jit(f).lower(args).compile()`), then the compiled run of `--updates` updates is timed
once with block_until_ready. Both final policies (and the untrained initial policy) are then scored with
the *submodular* objective — cells covered in a 400-step episode (stochastic policy, `--eval-episodes`
per seed) — as the paper scores ModPO with F.

The paper trains 20,001 updates x 6,000 steps (120 M steps) per run; this budget is ~0.15 % of that, so
it measures the pipeline and early learning, not the paper's final coverage.

    python -m benchmarks.bench_subpo_ant [--updates 40] [--seeds 3] [--backend spring]
"""

from __future__ import annotations

from benchmarks import harness  # noqa: F401 # isort: skip  (first: sets the XLA CPU flags before jax loads)

import argparse
import os
import sys
import time

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from purerl import envs  # noqa: E402
from purerl.agents import a2c  # noqa: E402
from purerl.envs.ant_coverage import REWARD_SCALE  # noqa: E402
from purerl.evaluation import evaluate_policy  # noqa: E402
from purerl.logging import machine, versions, write_json  # noqa: E402
from purerl.sweep import seed_keys  # noqa: E402

VARIANTS = {"SubPO": "ant_coverage", "ModPO": "ant_coverage_modular"}
PAPER = {"updates": 20_001, "envs": 15, "steps_per_env": 400, "env_steps": 20_001 * 6_000}


def train_variant(config: a2c.Config, seeds: list[int]) -> dict:
    train = jax.vmap(a2c.make_train(config))
    keys = seed_keys(seeds)
    t0 = time.perf_counter()
    compiled = jax.jit(train).lower(keys).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    state, metrics = jax.block_until_ready(compiled(keys))
    run_s = time.perf_counter() - t0
    steps = len(seeds) * config.num_iterations * config.batch_size
    init_params = jax.jit(jax.vmap(a2c.make_agent(config).init))(keys).params
    return {
        "compile_s": compile_s,
        "run_s": run_s,
        "env_steps": steps,
        "env_steps_per_s": steps / run_s,
        "metrics": {k: np.asarray(v).tolist() for k, v in metrics.items()},  # [seed][update]
        "_params": state.params,
        "_init_params": init_params,
    }


def make_coverage_eval(config: a2c.Config, episodes: int):
    """`evaluate(params, key) -> covered cells per episode` on the submodular env (F of each episode)."""
    env, env_params = envs.make("ant_coverage", backend=config.brax_backend)
    network = a2c.make_network(config, env, env_params)
    env = envs.ClipAction(env)

    def evaluate(params, key):
        def act(k, obs):
            return network.apply(params, obs)[0].sample(seed=k)

        return evaluate_policy(env, env_params, act, key, episodes) * REWARD_SCALE

    return evaluate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--backend", default="spring", help="brax physics backend (spring: fastest on CPU)")
    parser.add_argument("--eval-episodes", type=int, default=8)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "subpo_ant.json"))
    parser.add_argument("--note", default="2-core CPU shared with 2 other engineers' jobs (load average ~4)")
    args = parser.parse_args(argv)
    seeds = list(range(args.seeds))
    results, params = {}, {}
    for name, env in VARIANTS.items():
        config = a2c.Config(env=env, total_timesteps=args.updates * 6000, brax_backend=args.backend)
        res = train_variant(config, seeds)
        params[name], params["untrained"] = res.pop("_params"), res.pop("_init_params")
        results[name] = res
        ret = np.asarray(res["metrics"]["episode_return"])
        print(name, f"compile {res['compile_s']:.1f} s, run {res['run_s']:.1f} s, "
              f"{res['env_steps_per_s']:.0f} env steps/s; train episode return first/last update "
              f"{np.nanmean(ret[:, 0]):.1f} / {np.nanmean(ret[:, -1]):.1f}", flush=True)

    # Score every policy with F (covered cells per 400-step episode) in ONE compiled program.
    evaluate = make_coverage_eval(config, args.eval_episodes)
    names = ["untrained", *VARIANTS]
    stacked = jax.tree.map(lambda *p: jnp.stack(p), *(params[n] for n in names))  # [policy, seed, ...]
    eval_keys = jax.random.split(jax.random.PRNGKey(12345), (len(names), len(seeds)))
    t0 = time.perf_counter()
    fn = jax.jit(jax.vmap(jax.vmap(evaluate))).lower(stacked, eval_keys).compile()
    eval_compile_s = time.perf_counter() - t0
    cells = np.asarray(jax.block_until_ready(fn(stacked, eval_keys)))  # [policy, seed, episode]
    coverage = {}
    for n, c in zip(names, cells, strict=True):
        per_seed = c.mean(axis=1)
        coverage[n] = {
            "cells_mean": float(per_seed.mean()),
            "cells_std_over_seeds": float(per_seed.std(ddof=1)) if len(seeds) > 1 else 0.0,
            "cells_per_seed": per_seed.tolist(),
            "fraction_of_grid_mean": float(per_seed.mean() / 10_000),
        }
        print(n, f"covered cells {per_seed.mean():.1f} +- {coverage[n]['cells_std_over_seeds']:.1f} "
              f"(per seed {np.round(per_seed, 1).tolist()})", flush=True)

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    write_json(
        args.out,
        {
            "benchmark": "SubPO vs ModPO (A2C) on ant coverage, brax ant, small CPU budget",
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
            "budget": {
                "updates": args.updates,
                "seeds": seeds,
                "envs": 15,
                "steps_per_env": 400,
                "env_steps_per_seed": args.updates * 6000,
                "backend": args.backend,
                "fraction_of_paper_steps": args.updates / PAPER["updates"],
            },
            "paper_budget": PAPER,
            "train": results,
            "coverage_eval": {
                "episodes_per_seed": args.eval_episodes, "compile_s": eval_compile_s, **coverage
            },
            "note": args.note + ". Coverage = cells of the 100x100 grid covered in one 400-step episode "
            "of the stochastic policy, the submodular F used to score both variants. episode_return in "
            "'train' is the variant's own reward (SubPO: covered cells / 10; ModPO: sum of cumulative "
            "coverage / 10).",
            "versions": versions(),
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
