"""benchmarks.convert_legacy: a file recorded before the harness schema becomes a schema record that keeps
every original field under `legacy` and takes its headline numbers from them; every result file is in the
schema."""

import copy
import json

from benchmarks import convert_legacy, harness, report

CPU = {"platform": "cpu", "cpu_count": 2}

RUNNER_SUMMARY = {  # what `purerl train` / benchmarks.run wrote before the schema
    "algo": "ppo", "env": "CartPole-v1", "num_seeds": 3, "seeds": [0, 1, 2], "iterations": 10,
    "total_timesteps": 5120, "final_return_mean": 300.0, "final_return_per_seed": [500.0, 250.0, 150.0],
    "compile_s": 12.5, "run_s": 3.25, "env_steps_per_s": 4726.15, "config": {"lr": 0.00025},
    "versions": {"jax": "0.4"}, "machine": CPU, "command": "purerl train ppo", "date": "2026-01-02"}

ESTIMATORS = {  # several policy-gradient estimators on one env, one file
    "benchmark": "estimators", "env": "CartPole-v1", "iters": 100, "seeds": 2, "machine": CPU,
    "methods": {key: {"method": label, "steps_per_iteration": 50, "final_return_per_seed": finals,
                      "compile_s": 7.0, "run_s": 2.0, "env_steps_per_s": 5000.0}
                for key, label, finals in (("pg", "Vanilla-PG", [10.0, 20.0]),
                                           ("npg", "N-PG", [30.0, 50.0]))}}

PAIRS = {"benchmark": "pmoe vs ppo", "env": "hopper", "seeds": [0, 1], "machine": CPU,
         "auc_pmoe_vs_ppo": {"difference": 4.0, "difference_ci": [1.0, 7.0]},
         "final_eval_pmoe_vs_ppo": {"difference": -2.0, "difference_ci": [-5.0, 1.0]}}

TIMINGS = {"name": "td3_bc_updates", "machine": CPU, "wall_s": 9.0, "results": [
    {"algo": "td3_bc", "seeds": 8, "compile_s": 3.5, "updates_per_s_all_seeds": 123456.7}]}


def converted(name, data):
    """The conversion of a copy, checked to leave its input alone and to keep all of it under `legacy`."""
    original = copy.deepcopy(data)
    out = json.loads(json.dumps(convert_legacy.convert(name, data)))  # as written to the file
    assert data == original and out["legacy"] == original
    assert out["schema"] == harness.SCHEMA and out["name"] == name
    return out


def test_a_runner_summary_becomes_a_train_result_with_its_own_numbers():
    out = converted("ppo_small", RUNNER_SUMMARY)
    assert (out["kind"], out["algo"], out["env"]) == ("train", "ppo", "CartPole-v1")
    assert (out["budget"], out["budget_unit"], out["seeds"]) == (5120, "env steps", [0, 1, 2])
    assert (out["compile_s"], out["run_s"]) == (12.5, 3.25)
    assert out["throughput"] == {"value": 4726.15, "unit": "env steps/s"}
    assert out["scores"]["final_return"]["per_seed"] == [500.0, 250.0, 150.0]
    assert out["scores"]["final_return"]["mean"] == 300.0
    assert out["config"] == {"lr": 0.00025} and out["machine"] == CPU
    assert (out["command"], out["recorded_at"], out["git_commit"]) == ("purerl train ppo", "2026-01-02", None)


def test_several_runs_are_listed_each_with_its_finals_and_the_first_heads_the_file():
    out = converted("pg_small", ESTIMATORS)
    runs = out["extra"]["runs"]
    assert [r["algo"] for r in runs] == ["Vanilla-PG", "N-PG"] and out["extra"]["comparisons"] == []
    assert [r["scores"]["final_return"]["per_seed"] for r in runs] == [[10.0, 20.0], [30.0, 50.0]]
    assert all(r["budget"] == 5000 and r["budget_unit"] == "env steps" for r in runs)
    assert out["kind"] == "train" and out["scores"] == runs[0]["scores"] and out["seeds"] == 2
    rows = [row for kind, row in report.rows_of("pg_small.json", out)]
    assert [(r["algo"], r["seeds"], r["budget per seed"]) for r in rows] == [
        ("Vanilla-PG", 2, "5,000 env steps"), ("N-PG", 2, "5,000 env steps")]


def test_recorded_differences_become_comparisons_as_recorded():
    out = converted("pmoe_small", PAIRS)
    assert out["kind"] == "comparison" and out["comparison"] == out["extra"]["comparisons"][0]
    assert [(c["measure"], c["difference"], c["difference_ci"]) for c in out["extra"]["comparisons"]] == [
        ("AUC, hopper", 4.0, [1.0, 7.0]), ("final return, hopper", -2.0, [-5.0, 1.0])]
    cells = [row["A - B [95% CI]"] for _, row in report.rows_of("pmoe_small.json", out)]
    assert cells == ["+4 [+1, +7]", "-2 [-5, +1]"]


def test_timed_pieces_become_speed_measurements_and_the_rest_stays_under_legacy():
    out = converted("td3_bc_updates", TIMINGS)
    assert out["kind"] == "speed" and out["compile_s"] == 3.5
    assert out["extra"]["measurements"] == [{
        "what": "td3_bc update, 8 seed(s)", "compile_s": 3.5,
        "throughput": {"value": 123456.7, "unit": "updates/s (all seeds)"}}]
    other = converted("notes", {"benchmark": "a table of notes", "wall_s": 3.0})
    assert other["kind"] == "other" and "scores" not in other and other["extra"] == {}
    assert report.rows_of("notes.json", other) == [("other", {
        "result": "notes.json", "what": "a table of notes", "machine": "device not recorded",
        "numbers": "wall_s=3"})]


def test_converting_a_folder_twice_changes_nothing_the_second_time(tmp_path):
    (tmp_path / "ppo_small.json").write_text(json.dumps(RUNNER_SUMMARY))
    (tmp_path / "ppo_small").mkdir()  # a run's own folder (checkpoints, configuration): not a result
    (tmp_path / "ppo_small" / "meta_config.json").write_text(json.dumps({"seed": 0}))
    paths = report.result_paths(tmp_path)
    assert paths == [tmp_path / "ppo_small.json"]
    assert convert_legacy.convert_file(paths[0]) and not convert_legacy.convert_file(paths[0])
    assert json.loads(paths[0].read_text())["legacy"] == RUNNER_SUMMARY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ppo_small", "ppo_small.json"]  # no temporary


def test_every_recorded_result_file_is_in_the_schema():
    paths = report.result_paths()
    assert len(paths) >= 90 and any(p.parent != harness.RESULTS for p in paths)  # the device folders too
    run_folders = {p.with_suffix("") for p in harness.RESULTS.glob("*.json")}
    for path in harness.RESULTS.rglob("*.json"):  # what is not a result lies in a run's own folder
        assert path in paths or path.parent in run_folders, path
    for path in paths:
        assert json.loads(path.read_text()).get("schema") == harness.SCHEMA, path
