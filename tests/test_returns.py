import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl.returns import discounted_returns, gae
from purerl.rollout import Transition, critic_values, time_limit


def gae_loop(rewards, values, next_values, terminated, done, gamma, lam):
    """Plain Python GAE, one env: the reference the scan must match."""
    T = len(rewards)
    adv = np.zeros(T)
    running = 0.0
    for t in reversed(range(T)):
        bootstrap = 0.0 if terminated[t] else gamma * next_values[t]
        delta = rewards[t] + bootstrap - values[t]
        running = delta + (0.0 if done[t] else gamma * lam * running)
        adv[t] = running
    return adv, adv + values


@pytest.mark.parametrize("case", ["none", "terminated", "truncated", "both", "random"])
def test_gae_matches_python_loop(case):
    rng = np.random.default_rng(0)
    T = 12
    rewards, values, next_values = rng.normal(size=(3, T))
    terminated = np.zeros(T, bool)
    truncated = np.zeros(T, bool)
    if case in ("terminated", "both"):
        terminated[4] = True
    if case in ("truncated", "both"):
        truncated[8] = True
    if case == "random":
        terminated = rng.random(T) < 0.2
        truncated = rng.random(T) < 0.2
    done = terminated | truncated
    adv, tgt = gae(*map(jnp.asarray, (rewards, values, next_values, terminated, done)), 0.97, 0.9)
    ref_adv, ref_tgt = gae_loop(rewards, values, next_values, terminated, done, 0.97, 0.9)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tgt, ref_tgt, rtol=1e-5, atol=1e-5)


def test_gae_truncation_bootstraps_and_termination_does_not():
    # One step episodes: A = r + gamma * V(s') - V(s) on truncation, r - V(s) on termination.
    r, v, nv = jnp.array([1.0, 1.0]), jnp.array([0.5, 0.5]), jnp.array([2.0, 2.0])
    adv, _ = gae(r, v, nv, jnp.array([False, True]), jnp.array([True, True]), 0.9, 0.95)
    np.testing.assert_allclose(adv, [1.0 + 0.9 * 2.0 - 0.5, 1.0 - 0.5], rtol=1e-6)


def test_gae_is_batched_over_envs():
    rng = np.random.default_rng(1)
    T, N = 7, 3
    rewards, values, next_values = rng.normal(size=(3, T, N))
    terminated = rng.random((T, N)) < 0.3
    done = terminated | (rng.random((T, N)) < 0.3)
    adv, _ = gae(*map(jnp.asarray, (rewards, values, next_values, terminated, done)), 0.99, 0.95)
    for n in range(N):
        columns = (rewards, values, next_values, terminated, done)
        ref, _ = gae_loop(*(x[:, n] for x in columns), 0.99, 0.95)
        np.testing.assert_allclose(adv[:, n], ref, rtol=1e-5, atol=1e-5)


def test_discounted_returns_cut_at_episode_end():
    rewards = jnp.array([1.0, 2.0, 3.0, 4.0])
    done = jnp.array([False, True, False, False])
    out = discounted_returns(rewards, done, 0.5, bootstrap=jnp.asarray(8.0))
    np.testing.assert_allclose(out, [1 + 0.5 * 2, 2, 3 + 0.5 * 4 + 0.25 * 8, 4 + 0.5 * 8])


def test_float64_inputs_keep_gamma_and_lambda_in_float64():
    """In a float64 run the done masks must not be float32: that rounds gamma * lam (0.97 -> 0.9700000286)
    and left HNPG's advantages 1e-9 off the authors' float64 code (benchmarks/reference/hnpg.py)."""
    rng = np.random.default_rng(1)
    T = 40
    rewards, values, next_values = rng.normal(size=(3, T))
    done = np.zeros(T, bool)
    done[[19, 39]] = True
    with jax.enable_x64(True):
        inputs = (jnp.asarray(x) for x in (rewards, values, next_values))
        adv, _ = gae(*inputs, done, done, 0.99, 0.97)
        returns = discounted_returns(jnp.asarray(rewards), done, 0.97)
        assert adv.dtype == jnp.float64 and returns.dtype == jnp.float64
    expected_adv, _ = gae_loop(rewards, values, next_values, done, done, 0.99, 0.97)
    expected_returns = np.zeros(T)
    running = 0.0
    for t in reversed(range(T)):
        running = rewards[t] + (0.0 if done[t] else 0.97 * running)
        expected_returns[t] = running
    np.testing.assert_allclose(np.asarray(adv), expected_adv, rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.asarray(returns), expected_returns, rtol=0, atol=1e-13)


def _rollout_with_episode_ends(key, num_steps=12, num_envs=5, obs_dim=3):
    """A Transition laid out as a rollout's: where no episode ended, a step's final observation is the next
    step's observation; where one ended, it is the episode's last one (not the next step's reset one).
    Env 0 truncates at step 4, env 1 terminates at 2 and truncates at 11 (the last step), env 2 terminates
    and truncates at once at 7, env 3 truncates at 0, env 4 runs on."""
    obs_key, final_key = jax.random.split(key)
    obs = jax.random.normal(obs_key, (num_steps + 1, num_envs, obs_dim))
    terminated = np.zeros((num_steps, num_envs), bool)
    truncated = np.zeros((num_steps, num_envs), bool)
    truncated[4, 0] = truncated[11, 1] = truncated[7, 2] = truncated[0, 3] = True
    terminated[2, 1] = terminated[7, 2] = True
    done = terminated | truncated
    ended_in = jax.random.normal(final_key, (num_steps, num_envs, obs_dim))
    final_obs = jnp.where(done[..., None], ended_in, obs[1:])
    zeros = jnp.zeros((num_steps, num_envs))
    return Transition(obs[:-1], zeros, zeros, jnp.asarray(terminated), jnp.asarray(done), zeros, final_obs,
                      zeros)


@pytest.mark.parametrize("limit", [None, 12])
def test_critic_values_are_the_critic_at_each_observation_and_each_true_next_one(limit):
    """Brute force: the critic at every observation and at every final observation. The gathered form
    (`limit`: at most one truncation per env) must agree wherever GAE reads a next value (not terminated)."""
    weights = jnp.array([0.5, -1.0, 2.0])
    value = lambda obs: jnp.tanh(obs @ weights)  # noqa: E731
    traj = _rollout_with_episode_ends(jax.random.PRNGKey(0))
    values, next_values = jax.jit(lambda t: critic_values(value, t, limit))(traj)
    np.testing.assert_allclose(values, value(traj.obs), rtol=1e-6)
    read = ~np.asarray(traj.terminated)
    expected = np.asarray(value(traj.final_obs))
    np.testing.assert_allclose(np.asarray(next_values)[read], expected[read], rtol=1e-6)


def test_time_limit_admits_the_gathered_bootstrap_only_for_rollouts_within_one_episode_length():
    class Params:
        max_steps_in_episode = 500

    assert time_limit(Params(), 128) == 500
    assert time_limit(Params(), 500) == 500  # a 500-step window holds at most one truncation
    assert time_limit(Params(), 501) is None
    assert time_limit(object(), 8) is None  # no time limit known: every final observation is evaluated
