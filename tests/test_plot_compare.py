"""`purerl plot` and `purerl compare` through the command line, on two tiny real runs (PPO on CartPole, 8192
env steps, 2 seeds, learning rates 2.5e-4 and 1e-3), checked against the run files read here by hand."""

import csv
import json
import shutil

import numpy as np
import pytest

from purerl import compare, plotting
from purerl.cli import main as cli_main

LEARNING_RATES = ("0.00025", "0.001")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two run directories that differ only in --lr."""
    root = tmp_path_factory.mktemp("runs")
    directories = []
    for lr in LEARNING_RATES:
        out = root / f"ppo_lr{lr}"
        cli_main(["train", "ppo", "--env", "CartPole-v1", "--total-timesteps", "8192", "--num-seeds", "2",
                  "--lr", lr, "--no-progress", "--out", str(out)])
        directories.append(str(out))
    return directories


def metric_by_hand(directory, metric):
    """(env steps, values (num_seeds, num_points)) of `metric`, read straight from metrics.csv."""
    with open(f"{directory}/metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["metric"] == metric]
    seeds = sorted({int(r["seed"]) for r in rows})
    steps = [int(r["env_steps"]) for r in rows if int(r["seed"]) == seeds[0]]
    values = [[float(r["value"]) for r in rows if int(r["seed"]) == s] for s in seeds]
    return np.array(steps), np.array(values)


def final_returns(directory):
    with open(f"{directory}/summary.json") as f:
        return np.array(json.load(f)["final_return_per_seed"])


def test_plot_draws_each_run_over_env_steps_labelled_by_its_learning_rate(runs, tmp_path, monkeypatch):
    figures, draw = [], plotting.learning_curves_figure

    def keep(*args, **kwargs):
        figures.append(draw(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(compare.plotting, "learning_curves_figure", keep)
    out = tmp_path / "curves.png"
    cli_main(["plot", *runs, "--metric", "episode_return", "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (ax,) = figures[0].axes
    assert ax.get_title() == "ppo on CartPole-v1" and ax.get_xlabel() == "env steps"
    assert [line.get_label() for line in ax.get_lines()] == [f"lr={lr}" for lr in LEARNING_RATES]
    for line, band, directory in zip(ax.get_lines(), ax.collections, runs, strict=True):
        steps, values = metric_by_hand(directory, "episode_return")
        assert steps[-1] == 8192 and values.shape == (2, len(steps))
        np.testing.assert_array_equal(line.get_xdata(), steps)
        np.testing.assert_allclose(line.get_ydata(), values.mean(axis=0))
        # the 95% band of 2 seeds: its ends lie at the lower and the higher seed (each resample's mean is
        # one of x1, (x1+x2)/2, x2; the extremes have probability 1/4 each)
        band_y = band.get_paths()[0].vertices[:, 1]
        np.testing.assert_allclose([band_y.min(), band_y.max()], [values.min(), values.max()], rtol=1e-6)


def test_compare_table_against_the_per_seed_returns(runs, tmp_path, capsys):
    out = tmp_path / "table.json"
    cli_main(["compare", *runs, "--out", str(out)])
    printed = capsys.readouterr().out
    table = json.loads(out.read_text())
    low_lr, high_lr = (final_returns(d) for d in runs)
    labels = [f"lr={lr}" for lr in LEARNING_RATES]
    assert list(table["methods"]) == labels and table["tasks"] == ["CartPole-v1"]
    for label, scores in zip(labels, (low_lr, high_lr), strict=True):
        row = table["methods"][label]
        assert row["scores"] == [scores.tolist()] and row["optimality_gap"] is None  # no target given
        for name in ("mean", "median", "iqm"):  # 1 task, 2 seeds: all three are the mean of the two
            assert row[name]["value"] == pytest.approx(scores.mean())
            # 95% CI of 2 seeds: from the lower to the higher (each has probability 1/4 > 2.5%)
            assert row[name]["ci"] == pytest.approx([scores.min(), scores.max()])
        assert label in printed
    wins = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a in high_lr for b in low_lr])
    (low_over_high, high_over_low) = table["probability_of_improvement"]
    assert (high_over_low["x"], high_over_low["y"]) == tuple(reversed(labels))
    assert high_over_low["value"] == pytest.approx(wins) and low_over_high["value"] == pytest.approx(1 - wins)
    assert "probability of improvement" in printed and "optimality gap n/a" in printed


def test_compare_normalises_and_writes_csv(runs, tmp_path):
    out = tmp_path / "table.csv"
    cli_main(["compare", *runs, "--min", "0", "--max", "CartPole-v1=500", "--out", str(out)])
    with open(out) as f:
        rows = {(r["statistic"], r["method"], r["versus"]): r for r in csv.DictReader(f)}
    for lr, directory in zip(LEARNING_RATES, runs, strict=True):
        normalised = final_returns(directory) / 500
        mean = rows["mean", f"lr={lr}", ""]
        assert float(mean["value"]) == pytest.approx(normalised.mean())
        gap = rows["optimality_gap", f"lr={lr}", ""]  # target 1 after normalisation; CartPole caps at 500
        assert float(gap["value"]) == pytest.approx(np.maximum(1 - normalised, 0).mean())
        assert float(gap["ci_low"]) <= float(gap["value"]) <= float(gap["ci_high"])
    assert {k[0] for k in rows} == {"mean", "median", "iqm", "optimality_gap", "probability_of_improvement"}


def test_compare_pools_environments_into_tasks(runs, tmp_path, capsys):
    """Runs that differ only in the environment are one method on several tasks (a copy of each run,
    relabelled as another environment, stands in for a second task)."""
    copies = []
    for directory in runs:
        copy = tmp_path / f"{directory.rsplit('/', 1)[-1]}_other_env"
        shutil.copytree(directory, copy, ignore=shutil.ignore_patterns("checkpoints"))
        for name in ("config.json", "summary.json"):
            saved = json.loads((copy / name).read_text())
            if name == "config.json":
                saved["config"]["env"] = "Other-v0"
            else:
                saved["env"] = "Other-v0"
                saved["final_return_per_seed"] = [2 * r for r in saved["final_return_per_seed"]]
            (copy / name).write_text(json.dumps(saved))
        copies.append(str(copy))
    out = tmp_path / "table.json"
    cli_main(["compare", *runs, *copies, "--gamma", "100", "--out", str(out)])
    table = json.loads(out.read_text())
    assert table["tasks"] == ["CartPole-v1", "Other-v0"]
    for lr, directory in zip(LEARNING_RATES, runs, strict=True):
        per_seed = final_returns(directory)
        matrix = np.stack([per_seed, 2 * per_seed], axis=1)  # (seeds, tasks)
        row = table["methods"][f"lr={lr}"]
        assert row["mean"]["value"] == pytest.approx(matrix.mean())
        assert row["median"]["value"] == pytest.approx(np.median(matrix.mean(axis=0)))
        assert row["optimality_gap"]["value"] == pytest.approx(np.maximum(100 - matrix, 0).mean())
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:  # a method without runs on every task
        cli_main(["compare", *runs, copies[0]])
    assert stop.value.code == 2 and "every task" in capsys.readouterr().err


def bad_inputs(runs, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    return [
        (["plot", str(empty)], "is not a purerl run directory"),
        (["plot", runs[0], "--metric", "no_such_metric"], "metric 'no_such_metric' is not in"),
        (["plot", runs[0], "--out", str(tmp_path / "curves.txt")], "the image format is taken from"),
        (["plot", runs[0], "--out", str(tmp_path / "missing" / "curves.png")], "does not exist"),
        (["plot"], "at least one run directory"),
        (["compare", runs[0], str(tmp_path / "nowhere")], "is not a purerl run directory"),
        (["compare", *runs, "--out", str(tmp_path / "table.txt")], "written as .csv or .json"),
        (["compare", *runs, "--min", "0"], "--min and --max"),
        (["compare", *runs, "--min", "0", "--max", "Acrobot-v1=1"], "names no value for CartPole-v1"),
        (["compare", *runs, "--min", "5", "--max", "1"], "--max must exceed --min"),
        (["compare", runs[0], runs[0]], "repeats seeds"),
        (["compare", *runs, "--confidence", "1.5"], "--confidence must lie in"),
    ]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(runs, tmp_path, capsys):
    for argv, message in bad_inputs(runs, tmp_path):
        before = sorted(p.name for p in tmp_path.iterdir())
        with pytest.raises(SystemExit) as stop:
            cli_main(argv)
        captured = capsys.readouterr()
        assert stop.value.code == 2, argv
        assert captured.err.count("\n") == 1 and captured.err.startswith("purerl: error: "), argv
        assert message in captured.err, (argv, captured.err)
        assert sorted(p.name for p in tmp_path.iterdir()) == before, argv
