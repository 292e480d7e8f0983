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
    with open(os.path.join(HERE, "results", path)) as f:
        data = json.load(f)
    name = path
    cells = []
    for column, keys in KEYS:
        value = next((data[k] for k in keys if isinstance(data.get(k), int | float)), None)
        if column.startswith("final") and value is not None:
            cells.append(f"{value:.1f} / {data.get('final_return_min', float('nan')):.1f}")
        else:
            cells.append("" if value is None else f"{value:,.3g}" if value < 1000 else f"{value:,.0f}")
    what = data.get("benchmark") or data.get("name") or data.get("algo", "")
    return f"| `{name}` | {str(what)[:80]} | {where(data)} | " + " | ".join(cells) + " |"


def where(data: dict) -> str:
    machine = data.get("machine", {})
    if not machine:
        return "?"
    if machine.get("platform") == "cpu":
        return f"cpu, {machine.get('cpu_count', '?')} cores"
    return str(machine.get("device_kind", machine.get("platform")))


def seed_scaling(files: list[str]) -> list[str]:
    """Time per seed as the vmapped batch grows, from every PPO CartPole run of one budget and machine."""
    runs = {}
    for path in files:
        with open(path) as f:
            data = json.load(f)
        if data.get("algo") == "ppo" and data.get("env") == "CartPole-v1" and "run_s" in data:
            key = (where(data), data["total_timesteps"])
            runs.setdefault(key, []).append((data["num_seeds"], data["run_s"], data["env_steps_per_s"]))
    lines = ["| machine | steps per seed | seeds | run_s | run_s per seed | env steps/s |", "|---|---|---|---|---|---|"]
    for (machine, steps), rows in sorted(runs.items()):
        for seeds, run_s, sps in sorted(rows):
            lines.append(f"| {machine} | {steps:,} | {seeds} | {run_s:.1f} | {run_s / seeds:.3g} | {sps:,.0f} |")
    return lines


def main() -> None:
    results = os.path.join(HERE, "results")
    files = sorted(glob.glob(os.path.join(results, "*.json")) + glob.glob(os.path.join(results, "*", "*.json")))
    header = "| file | what | machine | " + " | ".join(c for c, _ in KEYS) + " |"
    lines = [
        "# Benchmark results",
        "",
        "Rebuilt by `python benchmarks/report.py` from `results/*.json`; each file holds the full numbers, the",
        "command, package versions and the machine. CPU rows come from a 2-core CPU, most of them recorded while",
        "it was shared with other jobs, so their times are upper bounds. Rows in `results/<device kind>/` come",
        "from `bash benchmarks/gpu.sh` on that accelerator (jax there: see each file's `versions`).",
        "Result files that do not report a column leave it empty; see the file itself.",
        "",
        header,
        "|" + "---|" * (3 + len(KEYS)),
        *[row(os.path.relpath(f, results)) for f in files],
        "",
        "## Seed scaling (PPO CartPole-v1, vmapped seeds in one program)",
        "",
        *seed_scaling(files),
        "",
        "Suites: `python benchmarks/run.py --list` (PPO), and `benchmarks/bench_*.py` per agent family.",
        "",
    ]
    with open(os.path.join(HERE, "README.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
