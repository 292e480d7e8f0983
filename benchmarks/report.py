"""Rebuild benchmarks/README.md from results/: one table per kind of result, each with only its own columns.

    python -m benchmarks.report

Every file is in the harness schema (`benchmarks.harness`; the files recorded before it were converted by
`benchmarks.convert_legacy`). A file whose numbers fit no table (kind "other") is listed under "Other results"
with its first scalar numbers.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from purerl import stats
from purerl.recorded import device  # the one description of a machine, as the notebooks print it

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SCHEMA = "purerl-benchmark/1"  # benchmarks.harness.SCHEMA (not imported: the report needs no jax)

# kind -> (title, columns); a row is a dict with exactly these columns
TABLES = {
    "train": ("Training runs: times, throughput and final score over seeds", [
        "result", "algo", "env", "budget per seed", "seeds", "compile s", "run s", "throughput",
        "final score: mean [95% CI]", "machine"]),
    "speed": ("Speed: throughput of one piece of code", [
        "result", "what", "compile s", "throughput", "machine"]),
    "comparison": ("Comparisons: A against B over seeds (verdict: the CI of A - B excludes 0)", [
        "result", "A vs B", "measure", "A - B [95% CI]", "verdict", "machine"]),
    "other": ("Other results (see each file; scalar headline numbers only)", [
        "result", "what", "machine", "numbers"]),
}


def fmt(x) -> str:
    if x is None:  # not measured (e.g. a run whose compile was not timed apart)
        return "none"
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def score_cell(per_seed, name: str = "return") -> str:
    s = stats.summarize(per_seed)
    return f"{name} {s['mean']:.1f} [{s['ci'][0]:.1f}, {s['ci'][1]:.1f}]"


def train_row(result, algo, env, budget, seeds, compile_s, run_s, throughput, score, machine) -> tuple:
    return "train", {"result": result, "algo": algo, "env": env, "budget per seed": budget, "seeds": seeds,
                     "compile s": fmt(compile_s), "run s": fmt(run_s), "throughput": throughput,
                     "final score: mean [95% CI]": score, "machine": machine}


def speed_row(result, what, compile_s, throughput, machine) -> tuple:
    return "speed", {"result": result, "what": what, "compile s": fmt(compile_s), "throughput": throughput,
                     "machine": machine}


def comparison_row(result, pair, measure, difference, ci, machine) -> tuple:
    return "comparison", {"result": result, "A vs B": pair, "measure": measure,
                          "A - B [95% CI]": f"{difference:+.3g} [{ci[0]:+.3g}, {ci[1]:+.3g}]",
                          "verdict": stats.verdict(ci), "machine": machine}


def rate_cell(data: dict) -> str:
    rate = data.get("throughput") or {}
    return f"{fmt(rate['value'])} {rate['unit']}" if rate else ""


def seed_count(data: dict) -> int:
    """How many seeds a TRAIN result ran: its list of seeds, or (where a file kept no list) its per-seed
    scores."""
    if isinstance(data.get("seeds"), list):
        return len(data["seeds"])
    return len(next(iter(data["scores"].values()))["per_seed"])


def run_row(name: str, data: dict, where: str) -> tuple:
    """A TRAIN result's row: its normalised score where it has one (offline datasets), else its return."""
    scores = data["scores"]
    score = (score_cell(scores["normalised_score"]["per_seed"], "normalised score")
             if "normalised_score" in scores else score_cell(scores["final_return"]["per_seed"]))
    return train_row(name, data["algo"], data["env"], f"{data['budget']:,} {data['budget_unit']}",
                     seed_count(data), data["compile_s"], data["run_s"], rate_cell(data), score, where)


def other_row(name: str, data: dict, where: str) -> tuple:
    """A result no table fits: its first scalar numbers (of the fields recorded before the schema, if any)."""
    fields = data.get("legacy") or data.get("extra") or {}
    numbers = [f"{k}={fmt(v)}" for k, v in fields.items()
               if isinstance(v, int | float) and not isinstance(v, bool)][:4]
    return "other", {"result": name, "what": str(data["what"])[:90], "machine": where,
                     "numbers": ", ".join(numbers) or "nested (see the file)"}


def rows_of(name: str, data: dict) -> list[tuple]:
    """The rows of one result file: its runs, comparisons or speed, then each piece of code it timed
    (`extra["measurements"]`)."""
    where = device(data)
    extra = data.get("extra", {})
    timed = [speed_row(name, m["what"], m["compile_s"], rate_cell(m), where)
             for m in extra.get("measurements", [])]
    if "runs" in extra:  # several runs in one file (`harness.several_runs`): a row per run and per pair
        rows = [run_row(name, run, where) for run in extra["runs"]] + [
            comparison_row(name, c["pair"], c["measure"], c["difference"], c["difference_ci"], where)
            for c in extra["comparisons"]]
    elif data["kind"] == "train":
        rows = [run_row(name, data, where)]
    elif data["kind"] == "speed":
        compile_s = "none" if data["compile_s"] is None else data["compile_s"]
        return timed or [speed_row(name, data["what"], compile_s, rate_cell(data), where)]
    elif data["kind"] == "comparison":
        c = data["comparison"]
        rows = [comparison_row(name, c.get("pair", data["what"]), c.get("measure", "final return"),
                               c["difference"], c["difference_ci"], where)]
    else:
        rows = [other_row(name, data, where)]
    return rows + timed


def table(kind: str, rows: list[dict]) -> list[str]:
    title, columns = TABLES[kind]
    lines = [f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]).replace("|", "/") for c in columns) + " |")
    return lines + [""]


def seed_scaling(files: dict[str, dict]) -> list[str]:
    """Time per seed as the vmapped batch grows, from every PPO CartPole run of one budget and machine."""
    runs = {}
    for data in files.values():
        if data["kind"] != "train" or (data["algo"], data["env"]) != ("ppo", "CartPole-v1"):
            continue
        seeds, run_s, steps = seed_count(data), data["run_s"], data["budget"]
        runs.setdefault((device(data), steps), []).append((seeds, run_s, seeds * steps / run_s))
    lines = ["## Seed scaling (PPO CartPole-v1, vmapped seeds in one program)", "",
             "| machine | steps per seed | seeds | run s | run s per seed | env steps/s |",
             "|---|---|---|---|---|---|"]
    for (machine, steps), rows in sorted(runs.items()):
        for seeds, run_s, sps in sorted(rows):
            lines.append(f"| {machine} | {steps:,} | {seeds} | {run_s:.1f} | {run_s / seeds:.3g} | "
                         f"{sps:,.0f} |")
    return lines + [""]


def result_paths(results: Path = RESULTS) -> list[Path]:
    """Every result file: results/*.json and the device folders' results/<device>/*.json; a folder named
    after a result file holds that run's checkpoints and configuration, not results."""
    runs = {p.with_suffix("") for p in results.glob("*.json")}
    nested = [p for p in results.glob("*/*.json") if p.parent not in runs]
    return sorted([*results.glob("*.json"), *nested])


def load(results: Path = RESULTS) -> dict[str, dict]:
    out = {}
    for path in result_paths(results):
        data = json.loads(path.read_text())
        if data.get("schema") != SCHEMA:
            raise ValueError(f"{path} is not in the {SCHEMA} schema (python -m benchmarks.convert_legacy)")
        out[os.path.relpath(path, results)] = data
    return out


def render(files: dict[str, dict]) -> str:
    by_kind: dict[str, list[dict]] = {kind: [] for kind in TABLES}
    for name, data in files.items():
        for kind, row in rows_of(name, data):
            by_kind[kind].append(row)
    lines = [
        "# Benchmark results",
        "",
        "Rebuilt by `python -m benchmarks.report` from `results/`; each file holds the full numbers, the",
        "command, package versions and the machine. CPU rows come from a 2-core CPU, most of them recorded",
        "while it was shared with other jobs, so their times are upper bounds. Files in",
        "`results/<device kind>/` come from `bash benchmarks/gpu.sh` on that accelerator. Confidence",
        "intervals: 95% percentile bootstrap over seeds (`purerl.stats`); a training row's CI is computed",
        "here from the per-seed scores the file records.",
        "",
        "PPO against rejax 0.1.3 on the same machine (CartPole-v1, 8 seeds x 500k steps, alternating rounds,",
        "the run_s ratios printed last): `python -m benchmarks.bench_vs_rejax` (rejax runs in its own venv,",
        "`--rejax-python`; `benchmarks/peers/rejax_ppo.py`) -> `results/ppo_vs_rejax_side_by_side.json`.",
        "PPO and SAC against brax's own trainers (`ppo.train`, `sac.train`) with brax's published settings,",
        "on the same brax env (ratio printed last): `python -m benchmarks.bench_brax_trainers --env <env>`",
        "-> `results/brax_trainers_<env>.json`, `python -m benchmarks.bench_brax_sac --env hopper` ->",
        "`results/brax_sac_hopper.json`. Which of the differences left between purerl's PPO and brax's",
        "explain a gap in return: `python -m benchmarks.ablate_brax_ppo --env hopper [switches]` ->",
        "`results/brax_ppo_ablations_<env>.json`.",
        "",
    ]
    for kind, rows in by_kind.items():
        if rows:
            lines += table(kind, rows)
    lines += seed_scaling(files)
    lines += ["Suites: `python -m benchmarks.run --list`; `benchmarks/bench_*.py` measure one agent family",
              "each (run them as `python -m benchmarks.bench_<name>` from the repository root).", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    text = render(load())
    tmp = HERE / "README.md.tmp"
    tmp.write_text(text)
    os.replace(tmp, HERE / "README.md")


if __name__ == "__main__":
    main()
