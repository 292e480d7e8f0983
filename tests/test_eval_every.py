"""`--eval-every N`: the current policy evaluated every N iterations on the final evaluation's fixed keys,
without changing a single training number, recorded in metrics.csv, summary.json and across a resume."""

import dataclasses
import json
import os
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from purerl import runner, stats
from purerl.agents import ppo
from purerl.cli import main as cli_main
from purerl.logging import EVAL_RETURN, read_metrics_csv

# 12 iterations of 4 envs x 32 steps; 2 seeds (the batch layout in which runs repeat bitwise)
TINY = ppo.Config(env="CartPole-v1", total_timesteps=12 * 128, num_envs=4, num_steps=32, eval_episodes=8)
EVERY = 4


@pytest.fixture(scope="module")
def agent():
    return ppo.make_agent(TINY)


@pytest.fixture(scope="module")
def runs(agent, tmp_path_factory):
    """The same run without and with evaluations. Chunks of 6 iterations without; with --eval-every 4 the
    chunks must end on iterations 4, 8, 12, so they are 4 long: the chunk boundaries differ as well."""
    base = runner.RunOptions(num_seeds=2, chunk_iterations=6, progress=False)
    plain_options = dataclasses.replace(base, out=str(tmp_path_factory.mktemp("plain")))
    options = dataclasses.replace(base, eval_every=EVERY, checkpoint_every=EVERY,
                                  out=str(tmp_path_factory.mktemp("evaluated")))
    assert runner.chunk_size(agent.num_iterations, plain_options) == 6
    assert runner.chunk_size(agent.num_iterations, options) == 4
    return runner.run("ppo", agent, plain_options), runner.run("ppo", agent, options), options, plain_options


def test_evaluations_change_no_training_number(runs):
    plain, evaluated, _, _ = runs
    assert set(evaluated.metrics) == set(plain.metrics) | {EVAL_RETURN}
    for name, values in plain.metrics.items():
        np.testing.assert_array_equal(evaluated.metrics[name], values, err_msg=name)
    for a, b in zip(jax.tree.leaves(plain.state), jax.tree.leaves(evaluated.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(evaluated.returns, plain.returns)


def test_evaluations_at_every_nth_iteration_on_the_final_evaluation_keys(runs):
    plain, evaluated, options, _ = runs
    series = evaluated.metrics[EVAL_RETURN]  # (seeds, iterations), NaN between evaluations
    assert series.shape == (2, 12)
    assert list(np.flatnonzero(~np.isnan(series).any(axis=0)) + 1) == [4, 8, 12]
    assert np.isnan(series).all(axis=0).sum() == 9
    # the evaluation at the last iteration is the final evaluation: same policy, same fixed keys
    np.testing.assert_array_equal(series[:, -1], plain.per_seed_returns)
    # the earlier ones evaluate earlier policies (an untrained CartPole policy scores far below a trained one)
    assert not np.array_equal(series[:, 3], series[:, -1])
    recorded = evaluated.summary["evaluations"]
    assert [e["iteration"] for e in recorded] == [4, 8, 12]
    assert [e["env_steps"] for e in recorded] == [512, 1024, 1536]
    for entry in recorded:
        per_seed = series[:, entry["iteration"] - 1]
        mean, low, high = stats.bootstrap_ci(per_seed)
        assert entry["return_per_seed"] == list(per_seed)
        assert (entry["return_mean"], entry["return_ci"]) == (mean, [low, high])
        assert per_seed.min() <= low <= mean <= high <= per_seed.max()
    with open(os.path.join(options.out, "summary.json")) as f:
        assert json.load(f)["evaluations"] == recorded


def test_metrics_csv_holds_the_evaluations_only_where_they_happened(runs):
    plain, evaluated, options, plain_options = runs
    curves = read_metrics_csv(os.path.join(options.out, "metrics.csv"))
    for seed in (0, 1):
        points = curves[EVAL_RETURN][seed]
        assert [step for step, _ in points] == [512, 1024, 1536]
        np.testing.assert_allclose([v for _, v in points], evaluated.metrics[EVAL_RETURN][seed, [3, 7, 11]],
                                   rtol=1e-5)
    # every other row is the plain run's, in the same order
    with_eval = (Path(options.out) / "metrics.csv").read_text().splitlines()
    training_rows = [row for row in with_eval if f",{EVAL_RETURN}," not in row]
    assert training_rows == (Path(plain_options.out) / "metrics.csv").read_text().splitlines()
    assert len(with_eval) - len(training_rows) == 2 * 3  # 2 seeds x 3 evaluations


def test_resume_keeps_the_evaluations(agent, runs, tmp_path):
    """A run stopped after iteration 8 and resumed writes the uninterrupted run's metrics.csv and
    evaluations."""
    _, evaluated, options, _ = runs
    crashed = tmp_path / "crashed"
    shutil.copytree(options.out, crashed)
    shutil.rmtree(crashed / "checkpoints" / "12")
    os.remove(crashed / "summary.json")
    resumed = runner.run("ppo", agent, options, resume_dir=str(crashed))
    assert resumed.summary["resumed_from"] == 8
    assert (crashed / "metrics.csv").read_text() == (Path(options.out) / "metrics.csv").read_text()
    assert resumed.summary["evaluations"] == evaluated.summary["evaluations"]


@pytest.mark.parametrize("argv, message", [
    (["--eval-every", "-1"], "eval_every must be >= 0"),
    (["--eval-every", "x"], "Error parsing --eval-every"),
])
def test_bad_eval_every_is_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "run", lambda *a, **k: pytest.fail("bad input reached training"))
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as stop:
        cli_main(["train", "ppo", "--total-timesteps", "768", "--num-steps", "32", *argv, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and err[0].startswith("purerl: error: "), err
    assert message in err[0], err
    assert not out.exists()
