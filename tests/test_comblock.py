"""The continuous combination lock: optimal/random returns, observation decoding, offline data statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import envs
from purerl.envs.comblock import CombinationLock, collect_offline, hadamard, make_params, offline_transition

H = 50
EPISODES = 20_000


def _run(env, params, policy, key, episodes):
    """Returns (returns, success) of `episodes` episodes; policy(key, obs, state) -> action."""
    reset_key, run_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, episodes), params)

    def step(carry, k):
        obs, state, ret, succ = carry
        a_key, s_key = jax.random.split(k)
        action = jax.vmap(policy)(jax.random.split(a_key, episodes), obs, state)
        obs, state, r, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(s_key, episodes), state, action, params
        )
        return (obs, state, ret + r, succ | info["success"]), (term, trunc)

    init = (obs, state, jnp.zeros(episodes), jnp.zeros(episodes, bool))
    (_, _, ret, succ), (term, trunc) = jax.lax.scan(step, init, jax.random.split(run_key, env.horizon))
    return ret, succ, term, trunc


@pytest.fixture(scope="module")
def lock():
    env, _ = envs.make("comblock", horizon=H)
    return env, make_params(env, jax.random.PRNGKey(7))


def test_hadamard_and_dims():
    w = hadamard(64)
    np.testing.assert_array_equal(w @ w.T, 64 * np.eye(64))
    for horizon, d in [(5, 16), (20, 32), (30, 64), (50, 64), (100, 128)]:
        assert CombinationLock(horizon).dim == d


def test_optimal_and_random_returns(lock):
    env, params = lock

    def optimal(key, obs, state):
        return jax.nn.one_hot(env.good_index(params, state.z, state.h), env.num_actions)

    ret, succ, term, trunc = jax.jit(lambda k: _run(env, params, optimal, k, EPISODES))(jax.random.PRNGKey(0))
    assert abs(float(succ.mean()) - 0.9798) < 0.004
    assert abs(float(ret.mean()) - 0.9808) < 0.004
    # every episode lasts exactly H steps, ends by termination, never by truncation
    assert bool(term[-1].all()) and not bool(term[:-1].any()) and not bool(trunc.any())

    def uniform(key, obs, state):
        return jax.random.uniform(key, (env.num_actions,))

    ret, succ, _, _ = jax.jit(lambda k: _run(env, params, uniform, k, EPISODES))(jax.random.PRNGKey(1))
    assert float(succ.mean()) == 0.0
    assert abs(float(ret.mean()) - 0.05) < 0.005


def test_observation_decodes_to_latent_and_step(lock):
    env, params = lock
    keys = jax.random.split(jax.random.PRNGKey(2), 5000)
    z = jax.random.randint(jax.random.PRNGKey(3), (5000,), 0, 3)
    h = jax.random.randint(jax.random.PRNGKey(4), (5000,), 0, H)
    x = env.decode(jax.vmap(env.observe, in_axes=(0, 0, 0, None))(keys, z, h, params))
    ok = (jnp.argmax(x[:, :3], 1) == z) & (jnp.argmax(x[:, 3 : 3 + H], 1) == h)
    assert float(ok.mean()) > 0.99


def test_vmapped_params_give_different_locks():
    env = CombinationLock(10)
    locks = jax.vmap(lambda k: env.lock(make_params(env, k)))(jax.random.split(jax.random.PRNGKey(0), 2))
    assert locks.shape == (2, 2, 10) and not bool((locks[0] == locks[1]).all())


def test_offline_data_success_fraction_and_time_index(lock):
    env, params = lock
    data = jax.jit(lambda k: collect_offline(env, params, k, EPISODES))(jax.random.PRNGKey(5))
    assert abs(float((data.final_reward == 1.0).mean()) - 0.395) < 0.015
    assert data.z.dtype == jnp.int8 and data.z.shape == (EPISODES, H + 1)
    for h in (0, 17, H - 1):
        obs, action, reward, next_obs, done = jax.vmap(
            lambda i, h=h: offline_transition(env, params, data, i, h)
        )(jnp.arange(300))
        assert bool((jnp.argmax(env.decode(obs)[:, 3 : 3 + H + 1], 1) == h).all())
        assert bool((jnp.argmax(env.decode(next_obs)[:, 3 : 3 + H + 1], 1) == h + 1).all())
        assert bool((jnp.argmax(env.decode(obs)[:, :3], 1) == data.z[:300, h]).all())
        assert bool((done == (h == H - 1)).all())
        if h < H - 1:
            assert float(jnp.abs(reward).max()) == 0.0


def test_offline_counterfactual_branches(lock):
    """counterfactual=0 is the stored data; 1 replaces every transition by a random one-hot branch from the
    same state (same observation; next latent and reward drawn from the lock); 0.3 branches about 30%, and
    the same (i, h) always gives the same transition (a fixed dataset)."""
    env, params = lock
    data = jax.jit(lambda k: collect_offline(env, params, k, 4000))(jax.random.PRNGKey(5))
    ids = jnp.arange(4000)

    programs = {}

    def batch(h, *counterfactual):  # no argument: the published call; one program per counterfactual, any h
        if counterfactual not in programs:
            programs[counterfactual] = jax.jit(jax.vmap(
                lambda i, h: offline_transition(env, params, data, i, h, *counterfactual), in_axes=(0, None)))
        return programs[counterfactual](ids, h)

    for h in (3, H - 1):
        stored, none, every, some = batch(h), batch(h, 0.0), batch(h, 1.0), batch(h, 0.3)
        for a, b in zip(stored, none, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_array_equal(np.asarray(every[0]), np.asarray(stored[0]))  # same state s
        action = np.asarray(every[1])
        assert set(np.unique(action)) == {0.0, 1.0} and (action.sum(1) == 1).all()
        counts = np.bincount(action.argmax(1), minlength=env.num_actions)
        assert counts.min() > 0.7 * 4000 / env.num_actions  # a uniformly random choice
        z = np.asarray(data.z[:, h], np.int32)
        good = action.argmax(1) == np.asarray(env.good_index(params, jnp.asarray(z), h))
        on_lock_good, on_lock_wrong = (z < 2) & good, (z < 2) & ~good
        if h < H - 1:  # a wrong action kills the episode; the good one (softmax prob ~1) keeps it on
            next_z = np.argmax(np.asarray(env.decode(every[3]))[:, :3], 1)
            assert (next_z[on_lock_wrong] == 2).all() and on_lock_wrong.sum() > 500
            assert (next_z[on_lock_good] < 2).mean() > 0.99
        else:  # reward 1 for the good action on the lock, else the anti-reward 0 or 0.1
            reward = np.asarray(every[2])
            assert (reward[on_lock_good] == 1.0).mean() > 0.99
            failed = reward[~good | (z == 2)]  # the anti-reward 0.1 with prob 0.5 (1 only by a rare draw)
            assert (failed == 1.0).mean() < 0.01 and abs(failed.mean() - 0.05) < 0.015
        branched = (np.asarray(some[1]) != np.asarray(stored[1])).any(1)
        assert abs(branched.mean() - 0.3 * (1 - 1 / env.num_actions * (1 - 1 / H))) < 0.03
        again = batch(h, 0.3)
        for a, b in zip(some, again, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
