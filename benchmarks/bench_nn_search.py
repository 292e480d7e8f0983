"""PRDC nearest-neighbour search speed: exact (fp32 HIGHEST) vs the fast mode (low-precision block scores,
running top-32 per block, exact fp32 re-rank) at score precision `default` (fp32 Precision.DEFAULT) and
`bf16`. Queries/s for M = 256 queries, D = 23 (halfcheetah's obs 17 + act 6), N in {100k, 1M} rows, block
65536; compile timed apart from run time (`harness.compile_timed`), then `--reps` calls per mode,
interleaved across modes. Also the PRDC gradient-update cost (exact vs fast search) relative to TD3+BC on a
synthetic 1M-row hopper-shaped dataset (D = 14; reuses `workloads.synthetic_file` /
`time_offline_updates`; one actor step, hence one search, per 2 updates; 1 seed).

Usage: `python -m benchmarks.bench_nn_search [--rows 100000 1000000 --reps 5 --update-rows 1000000]`
       (`--update-rows 0` skips the update part) -> benchmarks/results/nn_search_speed.json, a harness SPEED
       result (headline: exact search at the largest N, queries/s; every mode and ratio under `extra`).
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import json
import os
import tempfile

import jax.numpy as jnp
import numpy as np

from benchmarks.harness import SPEED
from benchmarks.workloads import synthetic_file, time_offline_updates
from purerl.agents import prdc, td3_bc

MODES = {  # name -> Config overrides
    "exact": {"search_mode": "exact"},
    "fast_default": {"search_mode": "fast", "fast_precision": "default"},
    "fast_bf16": {"search_mode": "fast", "fast_precision": "bf16"},
}
NOTE = (
    "2-core CPU shared with 2 other engineers' jobs (tests, compiles) during the run: timings are noisy "
    "lower bounds of the idle machine's speed; ratios measured back to back are more reliable than "
    "absolute numbers."
)


def search_part(args) -> list[dict]:
    """All modes compiled first, then their calls interleaved (exact, fast_default, fast_bf16, exact, ...) so
    that the shared CPU's load drifts hit every mode alike; best and median of `reps` calls per mode."""
    rng = np.random.default_rng(0)
    out = []
    for n in args.rows:
        x = jnp.asarray(rng.normal(size=(n, args.dim)).astype(np.float32))
        queries = jnp.asarray(rng.normal(size=(args.queries, args.dim)).astype(np.float32))
        xb, xsqb = prdc.blocked(x, args.block)
        compiled, compile_s, times, idx = {}, {}, {m: [] for m in MODES}, {}
        for name, overrides in MODES.items():
            search = prdc.search_fn(prdc.Config(**overrides))
            compiled[name], compile_s[name] = harness.compile_timed(search, xb, xsqb, queries)
            idx[name] = np.asarray(compiled[name](xb, xsqb, queries))  # warm-up call
        for _ in range(args.reps):
            for name, f in compiled.items():
                times[name].append(harness.run_timed(f, xb, xsqb, queries)[1])
        for name in MODES:
            best = min(times[name])
            r = {
                "rows": n,
                "dim": args.dim,
                "queries": args.queries,
                "block": args.block,
                "mode": name,
                "compile_s": round(compile_s[name], 2),
                "call_s": [round(x, 4) for x in times[name]],
                "best_s": round(best, 4),
                "median_s": round(float(np.median(times[name])), 4),
                "queries_per_s": round(args.queries / best, 1),
                "same_index_as_exact": float(np.mean(idx[name] == idx["exact"])),
            }
            print(json.dumps(r), flush=True)
            out.append(r)
    return out


def update_part(args) -> tuple[list[dict], dict]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hopper-synthetic.hdf5")
        synthetic_file(path, args.update_rows)
        runs = [("td3_bc", td3_bc, {})] + [(f"prdc_{m}", prdc, o) for m, o in MODES.items()]
        for name, module, overrides in runs:
            r = {
                "algo": name,
                "rows": args.update_rows,
                **time_offline_updates(module, path, 1, args.updates, args.chunks, **overrides),
            }
            print(json.dumps(r), flush=True)
            results.append(r)
    by = {r["algo"]: r["updates_per_s_per_seed"] for r in results}
    ratios = {f"{k}_over_td3_bc": round(by["td3_bc"] / v, 2) for k, v in by.items() if k != "td3_bc"}
    return results, ratios


def summarise(result: dict) -> dict:
    """Time of each fast mode over exact mode (best call, search part), per row count: > 1 means slower."""
    best = {(r["rows"], r["mode"]): r["best_s"] for r in result["search"]}
    return {
        f"{mode}_over_exact_{n}_rows": round(t / best[(n, "exact")], 2)
        for (n, mode), t in best.items()
        if mode != "exact"
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_nn_search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=23)
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--block", type=int, default=65536)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--update-rows", type=int, default=1_000_000)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--out", default=str(harness.RESULTS), help="results folder")
    args = parser.parse_args(argv)
    load_start = [round(x, 2) for x in os.getloadavg()]
    result = {"search": search_part(args) if args.rows else []}
    result["search_time_ratios"] = summarise(result)
    if args.update_rows:
        result["prdc_updates"], result["cost_ratios_per_update"] = update_part(args)
    result.update(note=NOTE, load_average_1_5_15min={"start": load_start,
                                                     "end": [round(x, 2) for x in os.getloadavg()]})
    what = "PRDC nearest-neighbour search: exact vs fast (top-32 per block + exact re-rank)"
    exact = [r for r in result["search"] if r["mode"] == "exact"]
    if exact:  # the headline: exact search at the largest N
        head = exact[-1]
        timing = dict(compile_s=head["compile_s"], run_s=head["best_s"], throughput=head["queries_per_s"],
                      throughput_unit=f"queries/s (exact, {head['rows']:,} rows)")
    else:  # only the update part ran: PRDC's exact-search updates
        head = next(r for r in result["prdc_updates"] if r["algo"] == "prdc_exact")
        timing = dict(compile_s=head["compile_s"], run_s=min(head["call_s"]),
                      throughput=head["updates_per_s_per_seed"], throughput_unit="updates/s (PRDC, exact)")
    res = harness.result(SPEED, "nn_search_speed", what, algo="prdc", env="synthetic", **timing, extra=result)
    print(f"{res['name']}: {harness.one_line(res)} -> {harness.write(res, args.out)}")


if __name__ == "__main__":
    main()
