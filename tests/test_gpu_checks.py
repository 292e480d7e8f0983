"""benchmarks/gpu_checks.sh: each step runs the command it documents (checked with a stand-in python that
records its arguments, so no GPU is needed)."""

import os
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_steps(tmp_path, *steps, **env):
    calls = tmp_path / "calls.txt"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_checks.sh"), str(out), *steps],
                          env={**os.environ, "PYTHON": str(python), **env}, capture_output=True, text=True,
                          timeout=60)
    lines = calls.read_text().splitlines()
    return done, [line for line in lines if line.startswith("-m ")]  # the first call checks the imports


def test_ppo_steps_run_both_sides_of_the_brax_trainers_bench(tmp_path):
    done, calls = run_steps(tmp_path, "ppo-walker2d-brax", "ppo-halfcheetah-purerl", BRAX_BUDGET="163840")
    out = tmp_path / "out"
    assert calls == [
        f"-m benchmarks.bench_brax_trainers --env {env} --part train --side {side} --seeds 3 "
        f"--out {out}/brax_trainers_runs --experts {out}/experts --results {out} --budget 163840"
        for env, side in (("walker2d", "brax"), ("halfcheetah", "purerl"))]
    assert "ppo-walker2d-brax: rc 0" in done.stdout and "ppo-halfcheetah-purerl: rc 0" in done.stdout


def test_ppo_steps_default_to_brax_budget_and_unknown_steps_are_named(tmp_path):
    done, calls = run_steps(tmp_path, "ppo-hopper-purerl", "ppo-hopper")
    assert len(calls) == 1 and calls[0].endswith(f"--results {tmp_path / 'out'}")  # no --budget: brax's own
    assert "unknown step ppo-hopper" in done.stdout and "ppo-hopper: rc 2" in done.stdout


def test_pmoe_steps_train_each_side_at_1m_steps_then_compare(tmp_path):
    done, calls = run_steps(tmp_path, "pmoe-hopper-sac", "pmoe-hopper-pmoe_sac", "pmoe-hopper-auc")
    out = tmp_path / "out"
    assert calls == [
        *(f"-m benchmarks.bench_sac learn --algo {algo} --env hopper --total 1000000 --seeds 5 --num-envs 16 "
          f"--brax-backend spring --out {out}" for algo in ("sac", "pmoe_sac")),
        f"-m benchmarks.bench_sac auc --env hopper --total 1000000 --out {out}"]
    assert all(f"{step}: rc 0" in done.stdout for step in ("pmoe-hopper-sac", "pmoe-hopper-pmoe_sac",
                                                           "pmoe-hopper-auc"))
