"""The benchmark harness end to end on a tiny entry, its timer and writer, and the report's tables."""

import importlib
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import convert_legacy, harness, report
from purerl import runner
from purerl.agents import ppo

TINY = dict(env="CartPole-v1", total_timesteps=6 * 128, num_envs=4, num_steps=32, eval_episodes=8)


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    entry = harness.Entry("tiny_ppo", algo="ppo", config=TINY, num_seeds=2, seed=5)
    return harness.run_entry(entry, out), out


def test_a_tiny_entry_writes_one_result_in_the_schema(tiny_result):
    res, out = tiny_result
    assert os.listdir(out) == ["tiny_ppo.json"]  # written by rename: no temporary file left
    assert json.loads((out / "tiny_ppo.json").read_text()) == json.loads(json.dumps(res))
    for key in ("schema", "name", "kind", "algo", "env", "config", "budget", "budget_unit", "seeds",
                "compile_s", "run_s", "throughput", "scores", "machine", "versions", "command", "git_commit",
                "recorded_at"):
        assert res[key] is not None, key
    assert (res["kind"], res["budget"], res["budget_unit"]) == ("train", 768, "env steps")
    assert res["seeds"] == [5, 6]
    assert res["throughput"]["unit"].startswith("env steps/s") and res["compile_s"] > 0 and res["run_s"] > 0


def test_a_tiny_entry_scores_what_train_and_evaluate_returns(tiny_result):
    res, _ = tiny_result
    run = runner.train_and_evaluate(ppo.make_agent(ppo.Config(**TINY)), 2, 5)
    assert res["scores"]["final_return"]["per_seed"] == [float(x) for x in run.per_seed_returns]
    assert res["scores"]["final_return"]["mean"] == pytest.approx(float(run.per_seed_returns.mean()))


def test_timer_keeps_compile_apart_and_returns_the_output():
    timing = harness.timed(lambda x: (x * 2.0).sum(), jnp.arange(4.0), repeats=3, warmup=True)
    assert float(timing.out) == 12.0 and len(timing.run_s_all) == 3
    assert timing.run_s == min(timing.run_s_all) and timing.compile_s > 0


def test_report_tables_have_no_empty_cell_and_list_every_file(tiny_result):
    res, _ = tiny_result
    comparison = harness.result(harness.COMPARISON, "a_vs_b", "A vs B",
                                comparison={"difference": 1.0, "difference_ci": [0.5, 1.5]})
    legacy = {"benchmark": "an old file", "machine": {"platform": "cpu", "cpu_count": 2}, "wall_s": 3.0}
    files = {"tiny_ppo.json": res, "a_vs_b.json": comparison,
             "old.json": convert_legacy.convert("old", legacy),
             **report.load()}  # and every recorded file
    text = report.render(files)
    for name in files:
        assert f"| {name} |" in text, name
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| result"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert all(cells), line
    assert "| a_vs_b.json | A vs B | final return | +1 [+0.5, +1.5] | better |" in text


def test_stats_in_results_are_reproducible():
    per_seed = np.array([1.0, 2.0, 4.0])
    a = harness.result(harness.TRAIN, "x", "x", per_seed=per_seed)["scores"]
    b = harness.result(harness.TRAIN, "x", "x", per_seed=per_seed)["scores"]
    assert a == b and a["final_return"]["per_seed"] == [1.0, 2.0, 4.0]


def test_trained_runs_the_entry_in_its_chunks_and_calls_back_after_each():
    budgets = []
    entry = harness.Entry("tiny_ppo_chunks", algo="ppo", config=TINY, num_seeds=1, chunk_iterations=2)
    res, run = harness.trained(entry, callback=lambda budget, metrics: budgets.append(budget))
    assert budgets == [256, 512, 768]  # 6 iterations of 128 env steps, 2 per chunk
    assert res["scores"]["final_return"]["per_seed"] == [float(x) for x in run.per_seed_returns]
    assert run.metrics["episode_return"].shape == (1, 6)


def test_several_runs_are_one_file_with_a_report_row_per_run_and_pair():
    def run(label, per_seed):
        res = harness.result(harness.TRAIN, label, label, algo=label.lower(), env="e", budget=10,
                             budget_unit="updates", seeds=[0, 1, 2], compile_s=1.0, run_s=2.0,
                             per_seed=per_seed, extra={"label": label})
        res["scores"]["normalised_score"] = res["scores"]["final_return"]
        return res

    a, b = run("A", [5.0, 6.0, 7.0]), run("B", [1.0, 2.0, 3.0])
    pair = harness.compared(a, b, "normalised score, e", "normalised_score")
    assert pair["pair"] == "A vs B" and pair["verdict"] == "better"
    assert pair["difference"] == pytest.approx(4.0)
    res = harness.several_runs("ab", "A vs B", [a, b], [pair], {"note": "n"})
    assert res["kind"] == harness.COMPARISON and res["comparison"] == pair and res["extra"]["note"] == "n"
    assert all("machine" not in r for r in res["extra"]["runs"])  # provenance once, at the top
    text = report.render({"ab.json": json.loads(json.dumps(res))})
    assert text.count("| ab.json | a | e | 10 updates |") == 1 and "normalised score 6.0" in text
    assert "| ab.json | A vs B | normalised score, e | +4 [" in text
    alone = harness.several_runs("a", "A alone", [a], [])
    assert alone["kind"] == harness.TRAIN and alone["scores"] == a["scores"] and alone["seeds"] == [0, 1, 2]


@pytest.mark.parametrize("script", ["bench_offline_brax", "bench_subpo_ant", "bench_pmoe_ppo_brax",
                                    "bench_offline_vs_torch"])
def test_benchmark_scripts_answer_help(script, capsys):
    module = importlib.import_module(f"benchmarks.{script}")
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0 and "--out" in capsys.readouterr().out


def test_the_writer_refuses_a_record_outside_the_schema(tmp_path):
    with pytest.raises(ValueError, match="not in the purerl-benchmark/1 schema"):
        harness.write({"name": "old_layout", "run_s": 1.0}, tmp_path)
    assert list(tmp_path.iterdir()) == []
