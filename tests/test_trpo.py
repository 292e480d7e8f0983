"""TRPO baseline: learns CartPole on a tiny budget (a broken natural-gradient step stays near ~20)."""

import jax
import pytest

from purerl.agents import trpo
from purerl.sweep import vmap_seeds

CONFIG = trpo.Config(total_timesteps=25 * 1024, eval_episodes=16)


@pytest.mark.timeout(600)  # compile is 30-100 s on the shared 2-core CPU
def test_trpo_learns_cartpole():
    agent = trpo.make_agent(CONFIG)

    def run(key):
        state, metrics = trpo.make_train(CONFIG)(key)
        return metrics, agent.evaluate(state, jax.random.PRNGKey(1))

    metrics, returns = vmap_seeds(run, [0, 1])
    assert float(metrics["step_accepted"].mean()) > 0.5
    assert float(metrics["kl"].max()) < 2 * CONFIG.max_kl
    assert float(returns.mean()) > 150.0, returns.mean(1)
