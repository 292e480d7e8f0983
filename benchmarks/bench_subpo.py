"""SubPO throughput: epochs/s on 30x30 coverage at the paper's setting (B = 500 trajectories, H = 80).

Compile time is measured separately (`jax.jit(f).lower(args).compile()`), then the compiled chunk of
`--epochs` updates (a lax.scan) is timed with block_until_ready, best of `--repeats`.

    python -m benchmarks.bench_subpo [--epochs 5] [--repeats 2] [--out benchmarks/results/subpo.json]
"""

from __future__ import annotations

from benchmarks import harness  # noqa: F401 # isort: skip  (first: sets the XLA CPU flags before jax loads)

import argparse
import os
import sys
import time

import jax  # noqa: E402

from purerl.agents import subpo  # noqa: E402
from purerl.logging import machine, versions, write_json  # noqa: E402

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

    t0 = time.perf_counter()
    compiled = jax.jit(chunk).lower(state).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(state))  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out, metrics = compiled(state)
        jax.block_until_ready((out, metrics))
        times.append(time.perf_counter() - t0)
    run_s = min(times)
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "subpo.json"))
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
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    write_json(
        args.out,
        {
            "benchmark": "subpo epochs/s, 30x30 coverage, B=500, H=80 (one seed, one jitted chunk of epochs)",
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
            "results": results,
            "note": args.note,
            "versions": versions(),
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
