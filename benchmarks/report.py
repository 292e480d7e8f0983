"""Rebuild benchmarks/README.md from results/: one table per kind of result, each with only its own columns.

    python -m benchmarks.report

Files in the harness schema (`benchmarks.harness`) are read as they are; files recorded before it are read
through the adapters below (`legacy_rows`), which pick their headline numbers without changing any. A file
whose numbers fit no table is listed under "Other results" with its scalar numbers.
"""

from __future__ import annotations

import argparse
import glob
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


def run_row(name: str, data: dict, where: str) -> tuple:
    """A TRAIN result's row: its normalised score where it has one (offline datasets), else its return."""
    scores = data["scores"]
    score = (score_cell(scores["normalised_score"]["per_seed"], "normalised score")
             if "normalised_score" in scores else score_cell(scores["final_return"]["per_seed"]))
    return train_row(name, data["algo"], data["env"], f"{data['budget']:,} {data['budget_unit']}",
                     len(data["seeds"]), data["compile_s"], data["run_s"], rate_cell(data), score, where)


def schema_rows(name: str, data: dict) -> list[tuple]:
    """Rows of a file in the harness schema."""
    where = device(data)
    extra = data.get("extra", {})
    if "runs" in extra:  # several runs in one file (`harness.several_runs`): a row per run and per pair
        return [run_row(name, run, where) for run in extra["runs"]] + [
            comparison_row(name, c["pair"], c["measure"], c["difference"], c["difference_ci"], where)
            for c in extra["comparisons"]]
    if data["kind"] == "train":
        return [run_row(name, data, where)]
    if data["kind"] == "speed":  # and the rows of each piece it timed, as the older files list them
        listed = legacy_speed_rows(name, data.get("extra", {}), where)
        compile_s = "none" if data["compile_s"] is None else data["compile_s"]
        return listed or [speed_row(name, data["what"], compile_s, rate_cell(data), where)]
    c = data["comparison"]
    return [comparison_row(name, data["what"], c.get("measure", "final return"), c["difference"],
                           c["difference_ci"], where)]


def legacy_rows(name: str, data: dict) -> list[tuple]:
    """Rows of a file recorded before the harness schema (its numbers as recorded)."""
    where = device(data)
    rows = []
    if "final_return_per_seed" in data and "run_s" in data:  # a runner summary (benchmarks.run, purerl train)
        rows.append(train_row(name, data["algo"], data["env"], f"{data['total_timesteps']:,} env steps",
                              data["num_seeds"], data["compile_s"], data["run_s"],
                              f"{fmt(data['env_steps_per_s'])} env steps/s",
                              score_cell(data["final_return_per_seed"]), where))
    elif "eval_return_mean_per_seed" in data:  # a SAC-family learning run
        config = data["config"]
        rows.append(train_row(name, data["benchmark"].split()[0], config["env"],
                              f"{config['total_timesteps']:,} env steps", len(data["seeds"]),
                              data["compile_s"], data["run_s"], f"{fmt(data['env_steps_per_s'])} env steps/s",
                              score_cell(data["eval_return_mean_per_seed"]), where))
    elif isinstance(data.get("methods"), dict):  # policy-gradient estimators on one env
        for method in data["methods"].values():
            if "final_return_per_seed" in method and "run_s" in method:
                rows.append(train_row(name, method["method"], data["env"],
                                      f"{data['iters'] * method['steps_per_iteration']:,} env steps",
                                      len(method["final_return_per_seed"]), method["compile_s"],
                                      method["run_s"],
                                      f"{fmt(method['env_steps_per_s'])} env steps/s",
                                      score_cell(method["final_return_per_seed"]), where))
    elif isinstance(data.get("datasets"), dict):  # offline agents on brax datasets (normalised scores)
        for dataset, entry in data["datasets"].items():
            for r in entry.get("results", []):
                if "score_per_seed" in r and "run_s" in r:
                    rows.append(train_row(name, r["algo"], dataset, f"{r['config']['num_updates']:,} updates",
                                          len(r["score_per_seed"]), r["compile_s"], r["run_s"],
                                          f"{fmt(r['updates_per_s'])} updates/s",
                                          score_cell(r["score_per_seed"], "normalised score"), where))
    elif "auc_difference_ci95" in data:  # PMOE-SAC vs SAC, area under the training curve
        rows.append(comparison_row(name, "pmoe_sac vs sac", f"AUC, {data['env']}", data["auc_difference"],
                                   data["auc_difference_ci95"], where))
    elif "auc_pmoe_vs_ppo" in data:
        for key, measure in (("auc_pmoe_vs_ppo", "AUC"), ("final_eval_pmoe_vs_ppo", "final return")):
            c = data[key]
            rows.append(comparison_row(name, "pmoe_ppo vs ppo", f"{measure}, {data['env']}", c["difference"],
                                       c["difference_ci"], where))
    rows += legacy_speed_rows(name, data, where)
    return rows


def legacy_speed_rows(name: str, data: dict, where: str) -> list[tuple]:
    rows = []
    results = data.get("results")
    if isinstance(results, list):
        for r in results:
            if not isinstance(r, dict) or "compile_s" not in r:
                continue
            if "grad_steps_per_s" in r:
                rows.append(speed_row(name, f"{r['algo']} gradient step, batch 256", r["compile_s"],
                                      f"{fmt(r['grad_steps_per_s'])} gradient steps/s", where))
            elif "updates_per_s_all_seeds" in r:
                what = f"{r.get('algo', data.get('name', '').removesuffix('_updates'))} update, "
                what += f"{r.get('seeds', 1)} seed(s)"
                rows.append(speed_row(name, what, r["compile_s"],
                                      f"{fmt(r['updates_per_s_all_seeds'])} updates/s (all seeds)", where))
    elif isinstance(results, dict) and name.startswith("subpo"):
        for method, r in results.items():
            if "env_steps_per_s" in r:
                rate = f"{fmt(r['env_steps_per_s'])} env steps/s"
                rows.append(speed_row(name, method, r["compile_s"], rate, where))
    for key in ("sac", "pmoe_sac_k4"):  # sac_grad_steps of the accelerator suite
        if isinstance(data.get(key), dict):
            r = data[key]
            rows.append(speed_row(name, f"{r['algo']} gradient step, batch 256", r["compile_s"],
                                  f"{fmt(r['grad_steps_per_s'])} gradient steps/s", where))
    if "inner_env_steps_per_s" in data:  # lpo_es_generation of the accelerator suite
        rows.append(speed_row(name, f"TA-LPO ES generation, population {data['population']}",
                              data["compile_s"], f"{fmt(data['inner_env_steps_per_s'])} inner env steps/s",
                              where))
    if "iterations_per_s (all seeds together)" in data and "compile_update_chunk_s" in data and not rows:
        rate = f"{fmt(data['iterations_per_s (all seeds together)'])} iterations/s (all seeds)"
        rows.append(speed_row(name, "HNPG update chunk, combination lock", data["compile_update_chunk_s"],
                              rate, where))
    return rows


def other_row(name: str, data: dict) -> tuple:
    numbers = [f"{k}={fmt(v)}" for k, v in data.items()
               if isinstance(v, int | float) and not isinstance(v, bool)][:4]
    what = data.get("benchmark") or data.get("name") or data.get("note") or "configuration"
    return "other", {"result": name, "what": str(what)[:90], "machine": device(data),
                     "numbers": ", ".join(numbers) or "nested (see the file)"}


def rows_of(name: str, data: dict) -> list[tuple]:
    if data.get("schema") == SCHEMA:
        return schema_rows(name, data)
    return legacy_rows(name, data) or [other_row(name, data)]


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
        if data.get("schema") == SCHEMA and data.get("kind") == "train":
            algo, env, run_s, seeds, steps = (data["algo"], data["env"], data["run_s"], len(data["seeds"]),
                                              data["budget"])
        elif "final_return_per_seed" in data and "run_s" in data and "total_timesteps" in data:
            algo, env, run_s, seeds, steps = (data["algo"], data["env"], data["run_s"], data["num_seeds"],
                                              data["total_timesteps"])
        else:
            continue
        if algo == "ppo" and env == "CartPole-v1":
            runs.setdefault((device(data), steps), []).append((seeds, run_s, seeds * steps / run_s))
    lines = ["## Seed scaling (PPO CartPole-v1, vmapped seeds in one program)", "",
             "| machine | steps per seed | seeds | run s | run s per seed | env steps/s |",
             "|---|---|---|---|---|---|"]
    for (machine, steps), rows in sorted(runs.items()):
        for seeds, run_s, sps in sorted(rows):
            lines.append(f"| {machine} | {steps:,} | {seeds} | {run_s:.1f} | {run_s / seeds:.3g} | "
                         f"{sps:,.0f} |")
    return lines + [""]


def load(results: Path = RESULTS) -> dict[str, dict]:
    paths = sorted(glob.glob(str(results / "*.json")) + glob.glob(str(results / "*" / "*.json")))
    out = {}
    for path in paths:
        with open(path) as f:
            out[os.path.relpath(path, results)] = json.load(f)
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
