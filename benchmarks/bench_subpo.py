"""SubPO throughput: epochs/s on 30x30 coverage at the paper's setting (B = 500 trajectories, H = 80).

The harness's timer (`harness.timed`) compiles the chunk of `--epochs` updates (a lax.scan) apart, runs it
once untimed, then times it to completion, best of `--repeats`. The result: a harness SPEED result (SubPO-M's
env steps/s; every variant under `extra.results`).

    python -m benchmarks.bench_subpo [--epochs 5] [--repeats 2] [--out benchmarks/results/subpo.json]
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import os

import jax

from benchmarks.harness import SPEED
from purerl.agents import subpo

VARIANTS = {
    "SubPO-M": dict(),
    "SubPO-NM": dict(policy_input="history"),
    "ModPO": dict(reward="modular"),
}


def bench(config: subpo.Config, epochs: int, repeats: int) -> dict:
    agent = subpo.make_agent(config)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))

    def chunk(state):
        return jax.lax.scan(lambda s, _: agent.update(s), state, None, length=epochs)

    timing = harness.timed(chunk, state, repeats=repeats, warmup=True)
    compile_s, run_s, metrics = timing.compile_s, timing.run_s, timing.out[1]
    steps = epochs * agent.steps_per_iteration
    return {
        "compile_s": compile_s,
        "run_s": run_s,
        "epochs": epochs,
        "epochs_per_s": epochs / run_s,
        "env_steps_per_s": steps / run_s,
        "batch_trajectories": config.batch_trajectories,
        "horizon": config.horizon,
        "final_F_mean_in_chunk": float(metrics["F_mean"][-1]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_subpo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--out", default=str(harness.RESULTS / "subpo.json"), help="result file (.json)")
    parser.add_argument(
        "--note",
        default="2-core CPU shared with ~6 other jobs at the time (load average ~10): "
        "numbers are pessimistic and noisy",
    )
    args = parser.parse_args(argv)
    results = {}
    for name in args.variants:
        cfg = subpo.Config(env="coverage", batch_trajectories=500, horizon=80, **VARIANTS[name])
        results[name] = bench(cfg, args.epochs, args.repeats)
        print(
            name,
            {k: round(v, 3) if isinstance(v, float) else v for k, v in results[name].items()},
            flush=True,
        )
    first = results[args.variants[0]]
    what = "subpo epochs/s, 30x30 coverage, B=500, H=80 (one seed, one jitted chunk of epochs)"
    res = harness.result(SPEED, os.path.basename(args.out).removesuffix(".json"), what, algo="subpo",
                         env="coverage", seeds=[0], compile_s=first["compile_s"], run_s=first["run_s"],
                         throughput=first["env_steps_per_s"],
                         throughput_unit=f"env steps/s ({args.variants[0]})",
                         extra={"results": results, "note": args.note})
    path = harness.write(res, os.path.dirname(os.path.abspath(args.out)))
    print(f"{res['name']}: {harness.one_line(res)} -> {path}")


if __name__ == "__main__":
    main()
