"""`runner.train_and_evaluate` (the one train-then-evaluate) and the runner's per-chunk callback."""

import jax
import numpy as np
import pytest

from purerl import runner
from purerl.agents import ppo
from purerl.cli import train as cli_train

# 6 iterations of 4 envs x 32 steps = 128 env steps each; chunks of 3 iterations -> 2 chunks.
TINY = ppo.Config(env="CartPole-v1", total_timesteps=6 * 128, num_envs=4, num_steps=32, eval_episodes=8)
CLI_FLAGS = ["--env", "CartPole-v1", "--total-timesteps", "768", "--num-envs", "4", "--num-steps", "32",
             "--eval-episodes", "8", "--num-seeds", "2", "--seed", "3",
             "--chunk-iterations", "3", "--no-progress"]


@pytest.fixture(scope="module")
def with_callback():
    calls = []
    result = runner.train_and_evaluate(ppo.make_agent(TINY), num_seeds=2, seed=3, chunk_iterations=3,
                                       callback=lambda done, metrics: calls.append((done, metrics)))
    return result, calls


def test_callback_is_called_once_per_chunk_with_the_budget_spent(with_callback):
    result, calls = with_callback
    assert [done for done, _ in calls] == [3 * 128, 6 * 128]
    for index, (_, metrics) in enumerate(calls):
        assert set(metrics) == set(result.metrics)
        for name, values in metrics.items():  # the chunk's own (num_seeds, 3) slice of the run's metrics
            assert values.shape == (2, 3)
            np.testing.assert_array_equal(values, result.metrics[name][:, 3 * index:3 * index + 3])


def test_a_callback_changes_no_number(with_callback):
    result, _ = with_callback
    plain = runner.train_and_evaluate(ppo.make_agent(TINY), num_seeds=2, seed=3, chunk_iterations=3)
    np.testing.assert_array_equal(plain.returns, result.returns)
    for name in plain.metrics:
        np.testing.assert_array_equal(plain.metrics[name], result.metrics[name])
    for a, b in zip(jax.tree.leaves(plain.state), jax.tree.leaves(result.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_the_cli_reports_the_same_final_returns(with_callback, capsys):
    result, _ = with_callback
    summary = cli_train("ppo", CLI_FLAGS)
    assert summary["final_return_per_seed"] == [float(x) for x in result.per_seed_returns]
    assert result.summary["algo"] == "ppo" and result.summary["seeds"] == [3, 4]
    assert result.returns.shape == (2, 8) and result.compile_s > 0 and result.run_s > 0
    assert "final return" in capsys.readouterr().out
