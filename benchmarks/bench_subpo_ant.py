"""SubPO vs ModPO on the continuous ant coverage task (A2C, spec `subpo.md` §4.6) at a small CPU budget.

Both variants train the same A2C (`purerl.agents.a2c`, 15 envs x 400 steps per update, one Adam step, lr
1e-2) on `ant_coverage` (reward = newly covered cells / 10: SubPO) or `ant_coverage_modular` (reward =
total covered cells / 10: ModPO), `--seeds` seeds vmapped in one program, each through
`purerl.runner.train_and_evaluate` (the CLI's numbers: compile timed apart from the run). Both final policies
(and the untrained initial policy) are then scored with the *submodular* objective — cells covered in a
400-step episode (stochastic policy, `--eval-episodes` per seed, the runner's evaluation key of each seed) —
as the paper scores ModPO with F.

The paper trains 20,001 updates x 6,000 steps (120 M steps) per run; this budget is ~0.15 % of that, so
it measures the pipeline and early learning, not the paper's final coverage.

    python -m benchmarks.bench_subpo_ant [--updates 40] [--seeds 3] [--backend spring] [--out DIR]

Writes `<out>/subpo_ant.json` (harness schema, `harness.several_runs`): a COMPARISON of SubPO against ModPO
in covered cells per seed (`stats.compare`), each variant's TRAIN result (its own reward as the return,
`scores.coverage_cells`) under `extra.runs`, the untrained policy's coverage and the budget under `extra`.
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.harness import Entry
from purerl import envs, runner, stats
from purerl.agents import a2c
from purerl.envs.ant_coverage import REWARD_SCALE
from purerl.evaluation import evaluate_policy
from purerl.sweep import seed_keys

VARIANTS = {"SubPO": "ant_coverage", "ModPO": "ant_coverage_modular"}
PAPER = {"updates": 20_001, "envs": 15, "steps_per_env": 400, "env_steps": 20_001 * 6_000}
GRID_CELLS = 10_000  # the 100x100 coverage grid


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


def train_variant(name: str, config: a2c.Config, num_seeds: int) -> tuple[dict, object]:
    """Train one variant through the runner -> (its TRAIN result, its final parameters over the seeds)."""
    entry = Entry(name, algo="a2c", config=dataclasses.asdict(config), num_seeds=num_seeds,
                  what=f"{name}: A2C on {config.env}")
    res, run = harness.trained(entry)
    res["extra"]["label"] = name
    ret = np.asarray(run.metrics["episode_return"])
    print(name, f"{harness.one_line(res)}; train episode return first/last update "
          f"{np.nanmean(ret[:, 0]):.1f} / {np.nanmean(ret[:, -1]):.1f}", flush=True)
    return res, run.state.params


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_subpo_ant", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--backend", default="spring", help="brax physics backend (spring: fastest on CPU)")
    parser.add_argument("--eval-episodes", type=int, default=8)
    parser.add_argument("--out", default=str(harness.RESULTS),
                        help="results directory (or a .json file path: its folder and name)")
    parser.add_argument("--note", default="2-core CPU shared with 2 other engineers' jobs (load average ~4)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out_dir, name = (out.parent, out.stem) if out.suffix == ".json" else (out, "subpo_ant")
    seeds = list(range(args.seeds))
    runs, params = [], {}
    for variant, env in VARIANTS.items():
        config = a2c.Config(env=env, total_timesteps=args.updates * 6000, brax_backend=args.backend)
        res, params[variant] = train_variant(variant, config, args.seeds)
        runs.append(res)
    params["untrained"] = jax.jit(jax.vmap(a2c.make_agent(config).init))(seed_keys(seeds)).params

    # Score every policy with F (covered cells per 400-step episode) in ONE compiled program; a seed's
    # policies share its runner evaluation key.
    evaluate = make_coverage_eval(config, args.eval_episodes)
    names = ["untrained", *VARIANTS]
    stacked = jax.tree.map(lambda *p: jnp.stack(p), *(params[n] for n in names))  # [policy, seed, ...]
    seed_eval_keys = jax.vmap(lambda k: jax.random.fold_in(k, runner.EVAL_SALT))(seed_keys(seeds))
    eval_keys = jnp.broadcast_to(seed_eval_keys, (len(names), *seed_eval_keys.shape))
    timing = harness.timed(jax.vmap(jax.vmap(evaluate)), stacked, eval_keys)
    cells = np.asarray(timing.out)  # [policy, seed, episode]
    coverage = {n: stats.summarize(c.mean(axis=1)) for n, c in zip(names, cells, strict=True)}
    for n, summary in coverage.items():
        print(n, f"covered cells {summary['mean']:.1f} [{summary['ci'][0]:.1f}, {summary['ci'][1]:.1f}] "
              f"(per seed {np.round(summary['per_seed'], 1).tolist()})", flush=True)
    for res in runs:
        res["scores"]["coverage_cells"] = coverage[res["extra"]["label"]]
    comparison = harness.compared(runs[0], runs[1], "covered cells (F) per 400-step episode",
                                  "coverage_cells")
    extra = {
        "budget": {"updates": args.updates, "envs": 15, "steps_per_env": 400,
                   "env_steps_per_seed": args.updates * 6000, "backend": args.backend,
                   "fraction_of_paper_steps": args.updates / PAPER["updates"]},
        "paper_budget": PAPER,
        "coverage_eval": {"episodes_per_seed": args.eval_episodes, "compile_s": timing.compile_s,
                          "run_s": timing.run_s, "untrained": coverage["untrained"],
                          "fraction_of_grid_mean": {n: c["mean"] / GRID_CELLS for n, c in coverage.items()}},
        "note": args.note + ". Coverage = cells of the 100x100 grid covered in one 400-step episode of the "
        "stochastic policy, the submodular F used to score both variants. The runs' final return is the "
        "variant's own reward (SubPO: covered cells / 10; ModPO: sum of cumulative coverage / 10).",
    }
    what = "SubPO vs ModPO (A2C) on ant coverage, brax ant, small CPU budget"
    res = harness.several_runs(name, what, runs, [comparison], extra, algo="a2c", env="ant_coverage",
                               budget=args.updates * 6000, budget_unit="env steps", seeds=seeds)
    print(f"{name}: {harness.one_line(res)} -> {harness.write(res, out_dir)}")


if __name__ == "__main__":
    main()
