"""TD3+BC, IQL and BC: maths vs hand computation, learning vs BC, determinism, CLI, bad input."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import data as pdata
from purerl import offline
from purerl.agents import bc, iql, td3_bc
from purerl.sweep import vmap_seeds

# Generous per-test limit: the 2-core CI CPU is often shared; each test takes well under a minute when idle.
pytestmark = pytest.mark.timeout(600)

GOOD, BAD = 0.8, -0.8


def reward_of(a):
    return -((a - GOOD) ** 2)


@pytest.fixture(scope="module")
def bandit_path(tmp_path_factory):
    """One-step episodes on Pendulum-shaped data: the behaviour plays +0.8 (reward 0) or -0.8 (reward -2.56)
    with equal probability in every state. BC regresses to their mean (~0, reward -0.64); a method that uses
    the rewards should move towards +0.8. Every row is terminal, so the critic is a plain regression."""
    rng = np.random.default_rng(0)
    n = 4096
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    actions = np.where(rng.random(n) < 0.5, GOOD, BAD).astype(np.float32)[:, None]
    d = {"observations": obs, "actions": actions, "rewards": reward_of(actions[:, 0]).astype(np.float32),
         "next_observations": rng.normal(size=(n, 3)).astype(np.float32), "terminals": np.ones(n, bool),
         "timeouts": np.zeros(n, bool)}
    path = str(tmp_path_factory.mktemp("offline") / "bandit.hdf5")
    pdata.write_hdf5(path, d, {"env_id": "Pendulum-v1", "episode_length": 200, "purerl_version": "0",
                               "ref_min_score": -200.0, "ref_max_score": 0.0})
    return path


SMALL = dict(num_updates=600, updates_per_iteration=600, hidden=(32, 32), eval_episodes=2)


def policy_score(module, config, seeds=(0, 1)):
    """Normalised score (0 = the bad action, 100 = the good one) of the trained policy's mean action."""
    data = offline.prepare(config.dataset, normalize_states=getattr(config, "normalize_states", False))
    states, _ = vmap_seeds(module.make_train(config), seeds)
    obs = data.data["observations"][:512]
    if module is iql:
        actor = iql.GaussianActor(1, config.hidden, config.activation)
        actions = jax.vmap(lambda p: actor.apply(p, obs)[0])(states.actor)
    else:
        actor = td3_bc.Actor(1, config.hidden, config.activation)
        actions = jax.vmap(lambda p: actor.apply(p, obs))(states.actor)
    r = reward_of(np.asarray(actions)[..., 0]).mean(axis=1)
    return 100 * (r - reward_of(BAD)) / (reward_of(GOOD) - reward_of(BAD))


@pytest.fixture(scope="module")
def bc_scores(bandit_path):
    return policy_score(bc, bc.Config(dataset=bandit_path, **SMALL))


def test_td3_bc_beats_bc(bandit_path, bc_scores):
    scores = policy_score(td3_bc, td3_bc.Config(dataset=bandit_path, **SMALL))
    assert (bc_scores > 60).all() and (bc_scores < 85).all(), bc_scores  # ~75: the mean action 0
    assert (scores >= bc_scores + 10).all(), (scores, bc_scores)


def test_iql_beats_bc(bandit_path, bc_scores):
    scores = policy_score(iql, iql.Config(dataset=bandit_path, **SMALL))
    assert (scores >= bc_scores + 10).all(), (scores, bc_scores)


# --- maths -----------------------------------------------------------------------------------------------

def test_expectile_loss_and_weights():
    u = jnp.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    expected = np.array([0.3 * 4, 0.3 * 0.25, 0.0, 0.7 * 0.25, 0.7 * 4])
    np.testing.assert_allclose(iql.expectile_loss(u, 0.7), expected, rtol=1e-6)
    q, v = jnp.array([1.0, 0.0, 5.0]), jnp.array([0.0, 1.0, 0.0])
    np.testing.assert_allclose(iql.awr_weights(q, v, 3.0), [np.exp(3.0), np.exp(-3.0), 100.0], rtol=1e-5)
    # no gradient flows through the weights
    assert float(jax.grad(lambda q: iql.awr_weights(q, v, 3.0).sum())(q).sum()) == 0.0


def test_td3_bc_lambda_is_detached():
    pi = jnp.array([[0.5], [-0.2]])
    a = jnp.array([[0.1], [0.3]])
    q = jnp.array([2.0, -4.0])
    loss, (lam, bc_term) = td3_bc.actor_objective(pi, a, q, 2.5)
    assert float(lam) == pytest.approx(2.5 / 3.0)
    assert float(bc_term) == pytest.approx(((0.4) ** 2 + 0.5**2) / 2)
    assert float(loss) == pytest.approx(-2.5 / 3.0 * (-1.0) + float(bc_term))
    # d loss / d q = -lam / B (lam constant); a gradient through lam would add terms depending on sign(q)
    np.testing.assert_allclose(jax.grad(lambda q: td3_bc.actor_objective(pi, a, q, 2.5)[0])(q),
                               [-2.5 / 3.0 / 2] * 2, rtol=1e-6)


def test_td3_bc_target_noise_and_critic_target():
    next_pi = jnp.array([[0.95, -0.95, 0.0]] * 2000)
    out = td3_bc.target_action(next_pi, jax.random.PRNGKey(0), 0.2, 0.5)
    assert float(jnp.abs(out).max()) <= 1.0
    noise = out[:, 2] - next_pi[:, 2]
    assert float(jnp.abs(noise).max()) <= 0.5 + 1e-6
    assert float(noise.std()) == pytest.approx(0.2, rel=0.1)
    big = td3_bc.target_action(next_pi[:, 2:], jax.random.PRNGKey(1), 10.0, 0.5)
    big = np.asarray(big)
    assert np.abs(big).max() <= 0.5 and (big == 0.5).any() and (big == -0.5).any()  # noise clip binds
    y = td3_bc.critic_target(jnp.array([1.0, 2.0]), jnp.array([False, True]),
                             jnp.array([[3.0, 5.0], [4.0, 1.0]]), 0.9)
    np.testing.assert_allclose(y, [1.0 + 0.9 * 3.0, 2.0])


def test_td3_bc_critic_target_keeps_float64():
    """In an x64 run (the float64 check against the authors' code, benchmarks/reference/td3_bc.py) the
    target stays float64: a float32 terminal mask rounded gamma = 0.99 to float32 (relative error 1e-8)."""
    with jax.enable_x64(True):
        reward, next_q = np.array([1.0, -2.0, 0.5]), np.array([[3.0, 5.0, 7.0], [4.0, 1.0, 6.0]])
        terminal = np.array([False, True, False])
        y = td3_bc.critic_target(jnp.asarray(reward), jnp.asarray(terminal), jnp.asarray(next_q), 0.99)
        assert y.dtype == jnp.float64
        expected = reward + 0.99 * (1.0 - terminal) * next_q.min(0)
        np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-15, atol=0)


def test_bc_loss():
    loss = bc.bc_loss(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 0.5]]))
    assert float(loss) == pytest.approx((1 + 0.25) / 2)


def test_normalize_states_and_reward_scale():
    d = {"observations": np.array([[0.0], [2.0], [4.0]], np.float32),
         "next_observations": np.array([[2.0], [4.0], [6.0]], np.float32),
         "rewards": np.array([1.0, 2.0, 3.0], np.float32), "terminals": np.array([0, 1, 0], bool),
         "timeouts": np.array([0, 0, 1], bool)}
    out, mean, std = pdata.normalize_states(d, eps=1e-3)
    assert mean[0] == pytest.approx(2.0) and std[0] == pytest.approx(np.std([0, 2, 4]) + 1e-3)
    np.testing.assert_allclose(out["next_observations"][:, 0], (np.array([2, 4, 6]) - 2.0) / std[0],
                               rtol=1e-6)
    # episodes: rows 0-1 (terminal at 1, return 3) and row 2 (return 3) -> split also where obs[i+1] !=
    # next[i]
    d2 = dict(d, rewards=np.array([1.0, 2.0, 7.0], np.float32))
    np.testing.assert_allclose(pdata.iql_reward_scale(d2)["rewards"], np.array([1, 2, 7]) * 1000 / 4,
                               rtol=1e-6)
    np.testing.assert_allclose(pdata.antmaze_shift(d)["rewards"], [0, 1, 2])
    clipped = pdata.clip_actions({"actions": np.array([[2.0, -2.0]])})["actions"]
    assert clipped.max() == pytest.approx(1 - 1e-5)


# --- determinism, CLI, bad input ---------------------------------------------------------------------------

def test_vmapped_seed_equals_single_run(bandit_path):
    config = td3_bc.Config(dataset=bandit_path, num_updates=40, updates_per_iteration=20, hidden=(8, 8))
    train = td3_bc.make_train(config)
    batched, _ = vmap_seeds(train, [0, 1])
    single, _ = jax.jit(train)(jax.random.PRNGKey(1))
    for a, b in zip(jax.tree.leaves(single.actor), jax.tree.leaves(batched.actor), strict=True):
        np.testing.assert_allclose(a, b[1], rtol=1e-5, atol=1e-6)


def test_cli_train_td3_bc(bandit_path, tmp_path):
    from purerl.cli import main

    out = str(tmp_path / "run")
    main(["train", "td3_bc", "--dataset", bandit_path, "--num-updates", "20", "--updates-per-iteration", "10",
          "--hidden", "8", "8", "--eval-episodes", "2", "--num-seeds", "2", "--out", out, "--no-progress"])
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    assert summary["env"] == "Pendulum-v1" and summary["num_seeds"] == 2 and summary["iterations"] == 2
    assert np.isfinite(summary["final_return_mean"])
    # the budget counts gradient updates, not env steps, in the summary and in metrics.csv
    assert summary["budget_unit"] == "updates" and summary["total_updates"] == 20
    assert summary["updates_per_s"] > 0
    assert "total_timesteps" not in summary and "env_steps_per_s" not in summary
    with open(os.path.join(out, "metrics.csv")) as f:
        header, first = f.readline().strip(), f.readline()
    assert header == "seed,iteration,updates,metric,value" and first.startswith("0,1,10,")


def test_bad_configs(bandit_path):
    with pytest.raises(ValueError, match="updates_per_iteration must be even"):
        td3_bc.make_agent(td3_bc.Config(dataset=bandit_path, updates_per_iteration=3, num_updates=9))
    with pytest.raises(ValueError, match="expectile"):
        iql.make_agent(iql.Config(dataset=bandit_path, expectile=1.5))
    with pytest.raises(ValueError, match="num_updates"):
        bc.make_agent(bc.Config(dataset=bandit_path, num_updates=10, updates_per_iteration=100))
    with pytest.raises(ValueError, match="neither an existing path"):
        bc.make_agent(bc.Config(dataset="/no/such/file.hdf5"))
    with pytest.raises(ValueError, match="dataset/env mismatch"):
        td3_bc.make_agent(td3_bc.Config(dataset=bandit_path, env="hopper"))
