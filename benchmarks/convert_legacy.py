"""Convert the result files recorded before the harness schema into it, in place (done once; kept so that
the conversion can be re-run and checked):

    python -m benchmarks.convert_legacy

A converted file keeps every field it had, unchanged, under `legacy`; the schema's fields
(`benchmarks.harness`) are filled only from what the file records, and are null where it does not record
them. The headline numbers are the ones the report showed for these files before the conversion:

- a training run (a runner summary, a SAC-family learning run) is a TRAIN result with the per-seed finals as
  `scores`; a file of several runs (policy-gradient estimators, offline agents on datasets) is headed by its
  first run and lists every run under `extra["runs"]`, as `harness.several_runs` writes them;
- A against B (PMOE against its base agent) is a COMPARISON, several pairs under `extra["comparisons"]`;
- timings of pieces of code are SPEED results, each timed piece under `extra["measurements"]`
  (`{"what", "compile_s", "throughput"}`, a row each in the report);
- anything else is an OTHER result: what it measured is under `legacy` alone.

Files already in the schema are left as they are, except that an HNPG update-chunk timing without its
measurement row gets it (from its own `extra`); so a second run changes nothing. A run's folder next to its
result (`lpo_cartpole_scratch/`: checkpoints, the meta-training configuration) holds no result."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.harness import COMPARISON, RESULTS, SCHEMA, SPEED, TRAIN, write
from benchmarks.report import result_paths
from purerl import stats

OTHER = "other"  # a result no table of the report fits: its numbers stay under `legacy`
HNPG_RATE = "iterations_per_s (all seeds together)"


def rate(value, unit: str) -> dict:
    return {"value": value, "unit": unit}


def train_run(name: str, what: str, algo: str, env: str, config, budget: int, budget_unit: str, seeds,
              compile_s, run_s, throughput: dict, scores: dict) -> dict:
    return {"name": name, "kind": TRAIN, "what": what, "algo": algo, "env": env, "config": config,
            "budget": budget, "budget_unit": budget_unit, "seeds": seeds, "compile_s": compile_s,
            "run_s": run_s, "throughput": throughput, "scores": scores, "extra": {}}


def runs_of(name: str, data: dict) -> list[dict]:
    """The training runs a file records, each as a TRAIN result."""
    if "final_return_per_seed" in data and "run_s" in data:  # a runner summary (benchmarks.run, purerl train)
        return [train_run(name, f"{data['algo']} on {data['env']}", data["algo"], data["env"],
                          data.get("config"), data["total_timesteps"], "env steps", data["seeds"],
                          data["compile_s"], data["run_s"], rate(data["env_steps_per_s"], "env steps/s"),
                          {"final_return": stats.summarize(data["final_return_per_seed"])})]
    if "eval_return_mean_per_seed" in data:  # a SAC-family learning run
        config = data["config"]
        return [train_run(name, data["benchmark"], data["benchmark"].split()[0], config["env"], config,
                          config["total_timesteps"], "env steps", data["seeds"], data["compile_s"],
                          data["run_s"], rate(data["env_steps_per_s"], "env steps/s"),
                          {"final_return": stats.summarize(data["eval_return_mean_per_seed"])})]
    runs = []
    if isinstance(data.get("methods"), dict):  # policy-gradient estimators on one env
        for key, method in data["methods"].items():
            if "final_return_per_seed" in method and "run_s" in method:
                runs.append(train_run(f"{name}:{key}", f"{method['method']} on {data['env']}",
                                      method["method"], data["env"], None,
                                      data["iters"] * method["steps_per_iteration"], "env steps", None,
                                      method["compile_s"], method["run_s"],
                                      rate(method["env_steps_per_s"], "env steps/s"),
                                      {"final_return": stats.summarize(method["final_return_per_seed"])}))
    elif isinstance(data.get("datasets"), dict):  # offline agents on datasets (normalised scores)
        for dataset, entry in data["datasets"].items():
            for r in entry.get("results", []):
                if "score_per_seed" in r and "run_s" in r:
                    runs.append(train_run(f"{name}:{dataset}:{r['algo']}", f"{r['algo']} on {dataset}",
                                          r["algo"], dataset, r["config"], r["config"]["num_updates"],
                                          "updates", None, r["compile_s"], r["run_s"],
                                          rate(r["updates_per_s"], "updates/s"),
                                          {"normalised_score": stats.summarize(r["score_per_seed"])}))
    return runs


def comparison(pair: str, measure: str, difference, difference_ci) -> dict:
    return {"pair": pair, "measure": measure, "difference": difference, "difference_ci": difference_ci}


def comparisons_of(data: dict) -> list[dict]:
    """The A-against-B differences a file records (the difference and its CI as recorded)."""
    if "auc_difference_ci95" in data:  # PMOE-SAC vs SAC, area under the training curve
        return [comparison("pmoe_sac vs sac", f"AUC, {data['env']}", data["auc_difference"],
                           data["auc_difference_ci95"])]
    if "auc_pmoe_vs_ppo" in data:
        return [comparison("pmoe_ppo vs ppo", f"{measure}, {data['env']}", data[key]["difference"],
                           data[key]["difference_ci"])
                for key, measure in (("auc_pmoe_vs_ppo", "AUC"), ("final_eval_pmoe_vs_ppo", "final return"))]
    return []


def measurement(what: str, compile_s, value, unit: str) -> dict:
    return {"what": what, "compile_s": compile_s, "throughput": rate(value, unit)}


def measurements_of(name: str, data: dict) -> list[dict]:
    """The timed pieces of code a file records, each with its compile time and throughput."""
    out = []
    results = data.get("results")
    if isinstance(results, list):
        for r in results:
            if not isinstance(r, dict) or "compile_s" not in r:
                continue
            if "grad_steps_per_s" in r:
                out.append(measurement(f"{r['algo']} gradient step, batch 256", r["compile_s"],
                                       r["grad_steps_per_s"], "gradient steps/s"))
            elif "updates_per_s_all_seeds" in r:
                what = f"{r.get('algo', data.get('name', '').removesuffix('_updates'))} update, "
                out.append(measurement(what + f"{r.get('seeds', 1)} seed(s)", r["compile_s"],
                                       r["updates_per_s_all_seeds"], "updates/s (all seeds)"))
    elif isinstance(results, dict) and name.startswith("subpo"):  # SubPO's methods, each timed
        for method, r in results.items():
            if "env_steps_per_s" in r:
                out.append(measurement(method, r["compile_s"], r["env_steps_per_s"], "env steps/s"))
    for key in ("sac", "pmoe_sac_k4"):  # gradient steps timed by the accelerator suite
        if isinstance(data.get(key), dict):
            r = data[key]
            out.append(measurement(f"{r['algo']} gradient step, batch 256", r["compile_s"],
                                   r["grad_steps_per_s"], "gradient steps/s"))
    if "inner_env_steps_per_s" in data:  # an ES generation of TA-LPO, timed by the accelerator suite
        out.append(measurement(f"TA-LPO ES generation, population {data['population']}", data["compile_s"],
                               data["inner_env_steps_per_s"], "inner env steps/s"))
    if HNPG_RATE in data and "compile_update_chunk_s" in data and not out:
        out.append(measurement("HNPG update chunk, combination lock", data["compile_update_chunk_s"],
                               data[HNPG_RATE], "iterations/s (all seeds)"))
    return out


def describe(data: dict) -> str:
    return str(data.get("benchmark") or data.get("name") or data.get("note") or "configuration")


def convert(name: str, data: dict) -> dict:
    """The schema record of a file recorded before the schema, named `name` (its file name's stem)."""
    runs, pairs, timed = runs_of(name, data), comparisons_of(data), measurements_of(name, data)
    kind = TRAIN if runs else COMPARISON if pairs else SPEED if timed else OTHER
    head = runs[0] if runs else {}
    seeds = data.get("seeds")
    out = {"schema": SCHEMA, "name": name, "kind": kind,
           "what": head["what"] if len(runs) == 1 and not pairs else describe(data),
           "algo": head.get("algo", data.get("algo")), "env": head.get("env", data.get("env")),
           "config": head.get("config", data["config"] if isinstance(data.get("config"), dict) else None),
           "budget": head.get("budget"), "budget_unit": head.get("budget_unit"),
           # a list of seeds, or their number where that is all the file kept
           "seeds": seeds if isinstance(seeds, list | int) and not isinstance(seeds, bool) else None,
           "compile_s": head.get("compile_s", timed[0]["compile_s"] if timed else data.get("compile_s")),
           "run_s": head.get("run_s", data.get("run_s")),
           "throughput": head.get("throughput", timed[0]["throughput"] if timed else None)}
    if head:
        out["scores"] = head["scores"]
    if pairs:
        out["comparison"] = pairs[0]
    extra = {}
    if len(runs) + len(pairs) > 1:
        extra.update(runs=runs, comparisons=pairs)
    if timed:
        extra["measurements"] = timed
    out["extra"] = extra
    out.update(machine=data.get("machine"), versions=data.get("versions"), command=data.get("command"),
               git_commit=data.get("git_commit"), recorded_at=data.get("recorded_at", data.get("date")),
               legacy=data)
    return out


def with_hnpg_measurement(data: dict) -> dict:
    """A schema HNPG update-chunk timing with its measurement row (from its own extra) where it lacks it."""
    extra = data.get("extra", {})
    if data.get("kind") != SPEED or "measurements" in extra or HNPG_RATE not in extra:
        return data
    return {**data, "extra": {**extra, "measurements": measurements_of(data["name"], extra)}}


def convert_file(path: Path) -> bool:
    """Convert one file in place (atomically); False where there was nothing to change."""
    data = json.loads(path.read_text())
    new = with_hnpg_measurement(data) if data.get("schema") == SCHEMA else convert(path.stem, data)
    if new == data:
        return False
    write(new, path.parent)
    return True


def main(argv=None) -> None:
    argparse.ArgumentParser(prog="python -m benchmarks.convert_legacy", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    for path in result_paths():
        if convert_file(path):
            print(f"converted {path.relative_to(RESULTS)}")


if __name__ == "__main__":
    main()
