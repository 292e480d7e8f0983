"""PRDC (with its exact nearest-neighbour search over the whole dataset) and O-DICE gradient updates/s vs TD3+BC on
the same synthetic hopper-shaped dataset (obs 11, act 3), batch 256, 1 and 8 vmapped seeds; compile time measured
apart from run time (reuses `bench_offline.synthetic_file` / `time_agent`). The issue's speed bar: a PRDC update
with the exact search over a 1M-row dataset costs at most 3x a TD3+BC update (`prdc_over_td3_bc` below).

Usage: `python benchmarks/bench_prdc_odice.py [--rows 1000000 --updates 20 --chunks 2]`
       -> benchmarks/results/prdc_odice_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_enable_concurrency_optimized_scheduler=false")
sys.path.insert(0, str(Path(__file__).parent))

from bench_offline import NOTE, synthetic_file, time_agent  # noqa: E402

from purerl.agents import odice, prdc, td3_bc  # noqa: E402
from purerl.logging import machine, versions  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    results = []
    out = RESULTS / f"prdc_odice_speed_{args.rows}.json"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hopper-synthetic.hdf5")
        synthetic_file(path, args.rows)
        for seeds in args.seeds:
            for name, module in (("td3_bc", td3_bc), ("prdc", prdc), ("odice", odice)):
                r = {"algo": name, **time_agent(module, path, seeds, args.updates, args.chunks)}
                print(json.dumps(r), flush=True)
                results.append(r)
                ratios = {}
                for s in args.seeds:
                    by = {x["algo"]: x["updates_per_s_per_seed"] for x in results if x["seeds"] == s}
                    if "td3_bc" in by and "prdc" in by:
                        ratios[f"prdc_over_td3_bc_{s}_seeds"] = round(by["td3_bc"] / by["prdc"], 2)
                    if "td3_bc" in by and "odice" in by:
                        ratios[f"odice_over_td3_bc_{s}_seeds"] = round(by["td3_bc"] / by["odice"], 2)
                RESULTS.mkdir(exist_ok=True)
                with open(out, "w") as f:
                    json.dump(
                        {
                            "benchmark": "offline gradient updates/s, batch 256, dataset closed over; "
                            "PRDC exact blocked NN search (block 65536, fp32 HIGHEST); O-DICE 1024x1024 policy",
                            "rows": args.rows,
                            "results": results,
                            "cost_ratios_per_update": ratios,
                            "note": NOTE,
                            "versions": versions(),
                            "machine": machine(),
                        },
                        f,
                        indent=2,
                    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
