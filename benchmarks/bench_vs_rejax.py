"""purerl's PPO against rejax's (rejax 0.1.3, PyPI), side by side on this machine: CartPole-v1, 500k steps
per seed, 8 vmapped seeds, purejaxrl's hyperparameters on both sides.

    python -m benchmarks.bench_vs_rejax [--rounds 2] [--rejax-python /tmp/peers-venv/bin/python]

Each round runs, one after the other and each in a fresh process: rejax (`benchmarks/peers/rejax_ppo.py` in
an interpreter that has rejax; rejax is not a purerl dependency), then `purerl train ppo` with `--workers 1`
(one process, like rejax), with `--workers 1 --cpu-threads 1` (the same on one thread of XLA's CPU client)
and with the CLI's default (one worker process per core). Alternating spreads the load of a shared machine
over every side. Both sides compile ahead of time apart from the run; run_s is the training alone, the final
evaluation untimed. The ratios use each side's fastest round (each a noisy upper bound of the idle machine's
time); the per-round ratios and the load before each run are kept too.

Writes `benchmarks/results/ppo_vs_rejax_side_by_side.json` (`--name`, `--out`), a SPEED result with one
measurement per side, and prints the run_s ratios purerl/rejax last.
"""

from __future__ import annotations

import os

USER_ENV = dict(os.environ)  # before the harness adds purerl's XLA flags: each side runs as its user runs it

from benchmarks import harness  # noqa: E402  # isort: skip  (it sets the XLA CPU flags before jax is imported)

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from benchmarks.harness import SPEED  # noqa: E402

DRIVER = Path(__file__).resolve().parent / "peers" / "rejax_ppo.py"
REJAX_PYTHON = "/tmp/peers-venv/bin/python"
# purejaxrl's CartPole-v1 PPO: purerl's defaults, spelled out so that both sides visibly get the same
SETTINGS = {"env": "CartPole-v1", "total-timesteps": 500_000, "num-seeds": 8, "num-envs": 4, "num-steps": 128,
            "update-epochs": 4, "num-minibatches": 4}
# purerl's sides: CLI flags added to SETTINGS. workers1_threads1: one process whose program runs on one thread
# of XLA's CPU client, as each worker's does by default (purerl.cpu)
MODES = {"workers1": ["--workers", "1"], "workers1_threads1": ["--workers", "1", "--cpu-threads", "1"],
         "default": []}
SIDES = ("rejax", *MODES)
MIN_RETURN = 475.0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_vs_rejax", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (each runs every side)")
    parser.add_argument("--rejax-python", default=REJAX_PYTHON, help="an interpreter with rejax 0.1.3")
    parser.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated, of {', '.join(SIDES)}")
    parser.add_argument("--timeout", type=int, default=900, help="seconds before one run counts as hung")
    parser.add_argument("--name", default="ppo_vs_rejax_side_by_side", help="result file name")
    parser.add_argument("--out", default=str(harness.RESULTS), help="results directory")
    args = parser.parse_args(argv)
    args.sides = [s for s in args.sides.split(",") if s]
    problems = [f"{k} must be positive" for k in ("rounds", "timeout") if getattr(args, k) < 1]
    problems += [f"unknown side {s!r} (valid: {', '.join(SIDES)})" for s in args.sides if s not in SIDES]
    problems += ["--sides needs rejax and at least one purerl side"] * (
        "rejax" not in args.sides or len(args.sides) < 2)
    if "rejax" in args.sides and not os.access(args.rejax_python, os.X_OK):
        problems.append(f"no interpreter at {args.rejax_python} (--rejax-python: a venv with rejax 0.1.3, "
                        "gymnax 0.0.9)")
    if problems:
        print(f"purerl: error: {problems[0]}", file=sys.stderr)
        raise SystemExit(2)
    return args


def flags() -> list[str]:
    return [x for k, v in SETTINGS.items() for x in (f"--{k}", str(v))]


def cpu_busy(seconds: float = 1.0) -> float:
    """The share of the CPUs that was not idle during the next `seconds` (other jobs skew the timings)."""
    def snapshot():
        with open("/proc/stat") as f:
            values = [int(x) for x in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    total, idle = snapshot()
    time.sleep(seconds)
    total2, idle2 = snapshot()
    return round(1.0 - (idle2 - idle) / max(1, total2 - total), 2)


def run_rejax(args) -> dict:
    command = [args.rejax_python, str(DRIVER), *flags()]
    done = subprocess.run(command, env=dict(USER_ENV, JAX_PLATFORMS="cpu"), capture_output=True, text=True,
                          timeout=args.timeout)
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        raise RuntimeError(f"rejax exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return json.loads(lines[-1])


def run_purerl(mode: str, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        command = [str(Path(sys.executable).parent / "purerl"), "train", "ppo", *flags(), *MODES[mode],
                   "--no-progress", "--out", out]
        done = subprocess.run(command, env=USER_ENV, capture_output=True, text=True, timeout=args.timeout)
        if done.returncode:
            raise RuntimeError(f"purerl exited with {done.returncode}: {done.stderr.strip()[-500:]}")
        summary = json.loads(Path(out, "summary.json").read_text())
    keys = ("compile_s", "run_s", "env_steps_per_s", "total_timesteps", "final_return_per_seed",
            "final_return_mean", "final_return_min")
    return {"peer": f"purerl {mode}", **{k: summary[k] for k in keys}}


def ratios(rows: list[dict]) -> dict:
    """run_s and compile_s of each purerl side over rejax's: each side's fastest round over rejax's fastest,
    and round by round (a purerl run over the rejax run of its round)."""
    ok = [r for r in rows if "error" not in r]
    best = {side: min((r for r in ok if r["side"] == side), key=lambda r: r["run_s"]) for side in
            dict.fromkeys(r["side"] for r in ok)}
    out = {}
    if "rejax" not in best:
        return out
    rejax = best["rejax"]
    for side in (s for s in best if s != "rejax"):
        per_round = []
        for row in (r for r in ok if r["side"] == side):
            peer = [r for r in ok if r["side"] == "rejax" and r["round"] == row["round"]]
            if peer:
                per_round.append(round(row["run_s"] / peer[0]["run_s"], 3))
        out[side] = {"run_s": round(best[side]["run_s"] / rejax["run_s"], 3),
                     "compile_s": round(min(r["compile_s"] for r in ok if r["side"] == side)
                                        / min(r["compile_s"] for r in ok if r["side"] == "rejax"), 3),
                     "run_s_per_round": per_round}
    return out


def measurement(side: str, rows: list[dict]) -> dict:
    """One side's report row: its fastest round (rate of all 8 seeds), and its returns over every round."""
    runs = [r for r in rows if r["side"] == side and "error" not in r]
    best = min(runs, key=lambda r: r["run_s"])
    return {"what": f"PPO CartPole-v1 8 seeds x 500k steps: {best['peer']} (fastest of {len(runs)} rounds)",
            "compile_s": min(r["compile_s"] for r in runs), "run_s": best["run_s"],
            "throughput": {"value": best["env_steps_per_s"], "unit": "env steps/s (all seeds)"},
            "final_return_min": min(r["final_return_min"] for r in runs)}


def build_result(rows: list[dict], rounds: int, name: str) -> dict:
    sides = [s for s in dict.fromkeys(r["side"] for r in rows)
             if any(r["side"] == s and "error" not in r for r in rows)]
    measurements = [measurement(side, rows) for side in sides]
    head = next((m for m in measurements if "workers1" in m["what"]), measurements[0])
    budget = next(r["total_timesteps"] for r in rows if "error" not in r)
    return harness.result(
        SPEED, name, "PPO CartPole-v1, 8 vmapped seeds x 500k steps: purerl (--workers 1, with and "
        "without --cpu-threads 1, and the CLI default) against rejax 0.1.3, alternating rounds", algo="ppo",
        env=SETTINGS["env"], config=dict(SETTINGS), budget=budget, budget_unit="env steps",
        seeds=list(range(SETTINGS["num-seeds"])), compile_s=head["compile_s"], run_s=head["run_s"],
        throughput=head["throughput"]["value"], throughput_unit=head["throughput"]["unit"],
        extra={"ratios_purerl_over_rejax": ratios(rows), "measurements": measurements, "rounds": rounds,
               "every_run": rows,
               "how": "each round: rejax, purerl --workers 1, purerl default, each a fresh process; ratios "
                      "of the fastest rounds; load before each run recorded"})


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    rows, res = [], None
    for round_ in range(1, args.rounds + 1):
        for side in args.sides:
            load = {"load_average": round(os.getloadavg()[0], 2), "cpu_busy_before": cpu_busy()}
            print(f"round {round_}: {side} (load {load['load_average']}, busy {load['cpu_busy_before']}) ...",
                  flush=True)
            try:
                run = run_rejax(args) if side == "rejax" else run_purerl(side, args)
                row = {"side": side, "round": round_, **load, **run}
                print(f"  compile {row['compile_s']:.1f} s, run {row['run_s']:.1f} s, "
                      f"worst seed's return {row['final_return_min']:.1f}", flush=True)
            except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError, OSError) as e:
                row = {"side": side, "round": round_, **load, "error": str(e)[-500:]}
                print(f"  FAILED: {row['error']}", flush=True)
            rows.append(row)
            if any("error" not in r for r in rows):  # written after every run: a later failure keeps these
                res = build_result(rows, args.rounds, args.name)
                harness.write(res, args.out)
    if res is None:
        print("purerl: error: every run failed", file=sys.stderr)
        raise SystemExit(1)
    print(f"-> {Path(args.out) / (args.name + '.json')}")
    low = [m for m in res["extra"]["measurements"] if m["final_return_min"] < MIN_RETURN]
    for m in low:
        print(f"WARNING: {m['what']}: a seed's final return {m['final_return_min']:.1f} < {MIN_RETURN}")
    for side, r in res["extra"]["ratios_purerl_over_rejax"].items():
        print(f"run_s ratio purerl {side} / rejax = {r['run_s']:.3f} (rounds: {r['run_s_per_round']}); "
              f"compile_s ratio {r['compile_s']:.3f}")


if __name__ == "__main__":
    main()
