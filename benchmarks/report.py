"""Rebuild benchmarks/README.md: one table row per results/*.json (whatever headline numbers it has)."""

from __future__ import annotations

import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = [  # (column, candidate keys in a result file)
    ("compile_s", ("compile_s",)),
    ("run_s", ("run_s",)),
    ("env steps/s", ("env_steps_per_s",)),
    ("final return (mean / min)", ("final_return_mean",)),
    ("ratio", ("ratio_run_s_purerl_over_rejax",)),
]


def row(path: str) -> str:
    with open(path) as f:
        data = json.load(f)
    name = os.path.basename(path)
    cells = []
    for column, keys in KEYS:
        value = next((data[k] for k in keys if isinstance(data.get(k), int | float)), None)
        if column.startswith("final") and value is not None:
            cells.append(f"{value:.1f} / {data.get('final_return_min', float('nan')):.1f}")
        else:
            cells.append("" if value is None else f"{value:,.3g}" if value < 1000 else f"{value:,.0f}")
    machine = data.get("machine", {})
    where = f"{machine.get('platform', '?')}, {machine.get('cpu_count', '?')} cores" if machine else "?"
    what = data.get("benchmark") or data.get("name") or data.get("algo", "")
    return f"| `{name}` | {str(what)[:80]} | {where} | " + " | ".join(cells) + " |"


def main() -> None:
    files = sorted(glob.glob(os.path.join(HERE, "results", "*.json")))
    header = "| file | what | machine | " + " | ".join(c for c, _ in KEYS) + " |"
    lines = [
        "# Benchmark results",
        "",
        "Rebuilt by `python benchmarks/report.py` from `results/*.json`; each file holds the full numbers, the",
        "command, package versions and the machine. All rows so far come from a 2-core CPU (no GPU was",
        "available), most of them recorded while the CPU was shared with other jobs, so times are upper bounds.",
        "Result files that do not report a column leave it empty; see the file itself.",
        "",
        header,
        "|" + "---|" * (3 + len(KEYS)),
        *[row(f) for f in files],
        "",
        "Suites: `python benchmarks/run.py --list` (PPO), and `benchmarks/bench_*.py` per agent family.",
        "",
    ]
    with open(os.path.join(HERE, "README.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
