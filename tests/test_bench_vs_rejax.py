"""benchmarks/bench_vs_rejax.py: its ratios, its result file and the report's rows of it, bad input (no run of
rejax or purerl here)."""

import pytest
from one_line_error import assert_one_line_error

from benchmarks import bench_vs_rejax as bench
from benchmarks import report


def row(side, round_, run_s, compile_s=10.0, worst=500.0):
    peer = side if side == "rejax" else f"purerl {side}"
    return {"side": side, "round": round_, "peer": peer, "compile_s": compile_s, "run_s": run_s,
            "env_steps_per_s": 8 * 499_712 / run_s, "total_timesteps": 499_712, "final_return_min": worst,
            "load_average": 1.0, "cpu_busy_before": 0.1}


ROWS = [row("rejax", 1, 50.0, 20.0), row("workers1", 1, 40.0, 8.0), row("default", 1, 30.0, 12.0),
        row("rejax", 2, 40.0, 25.0), row("workers1", 2, 36.0, 6.0, worst=470.0),
        {"side": "default", "round": 2, "error": "purerl exited with 1"}]


def test_ratios_take_each_sides_fastest_round_and_pair_rounds():
    ratios = bench.ratios(ROWS)
    assert set(ratios) == {"workers1", "default"}
    assert ratios["workers1"]["run_s"] == pytest.approx(36.0 / 40.0)  # fastest over fastest
    assert ratios["workers1"]["run_s_per_round"] == [0.8, 0.9]  # 40/50, 36/40
    assert ratios["workers1"]["compile_s"] == pytest.approx(6.0 / 20.0)
    assert ratios["default"]["run_s"] == pytest.approx(30.0 / 40.0)
    assert ratios["default"]["run_s_per_round"] == [0.6]  # the failed round has no ratio


def test_no_ratio_without_a_rejax_run():
    assert bench.ratios([row("workers1", 1, 40.0)]) == {}


def test_result_is_a_speed_file_with_a_row_per_side():
    res = bench.build_result(ROWS, 2, "side_by_side")
    assert res["schema"] == "purerl-benchmark/1" and res["kind"] == "speed" and res["name"] == "side_by_side"
    assert (res["run_s"], res["compile_s"]) == (36.0, 6.0)  # the headline: purerl --workers 1
    measured = {m["what"].split(": ")[1].split(" (")[0]: m for m in res["extra"]["measurements"]}
    assert set(measured) == {"rejax", "purerl workers1", "purerl default"}
    assert measured["purerl workers1"]["final_return_min"] == 470.0  # the worst seed over every round
    assert res["extra"]["every_run"] == ROWS and res["command"] and res["machine"]
    rows = report.rows_of("side_by_side.json", res)
    assert [kind for kind, _ in rows] == ["speed"] * 3


@pytest.mark.parametrize("argv, message", [
    (["--rounds", "0"], "rounds must be positive"),
    (["--sides", "rejax,fast"], "unknown side 'fast'"),
    (["--sides", "workers1"], "--sides needs rejax"),
    (["--rejax-python", "/nonexistent/python"], "no interpreter at /nonexistent/python"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert_one_line_error(bench.main, argv, message, capsys)
