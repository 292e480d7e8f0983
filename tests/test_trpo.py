"""TRPO baseline: learns CartPole on a tiny budget (a broken natural-gradient step stays near ~20)."""

import pytest

from purerl import runner
from purerl.agents import trpo

CONFIG = trpo.Config(total_timesteps=25 * 1024, eval_episodes=16)


@pytest.mark.timeout(600)  # compile is 30-100 s on the shared 2-core CPU
def test_trpo_learns_cartpole():
    """Measured (runner's evaluation keys): seeds 0 / 1 score 295 / 319; with max_kl=1e-12 (no policy step)
    24 / 17."""
    result = runner.train_and_evaluate(trpo.make_agent(CONFIG), num_seeds=2, seed=0)
    metrics = result.metrics
    assert float(metrics["step_accepted"].mean()) > 0.5
    assert float(metrics["kl"].max()) < 2 * CONFIG.max_kl
    assert float(result.per_seed_returns.mean()) > 150.0, result.per_seed_returns
