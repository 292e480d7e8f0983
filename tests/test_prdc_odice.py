"""PRDC and O-DICE: nearest-neighbour search vs brute force, reduction to TD3+BC, gradient isolation, O-DICE's
conjugate / orthogonal projection / decomposition, learning vs BC, determinism, bad input."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# Generous per-test limit: the 2-core CI CPU is often shared; each test takes well under a minute when idle.
pytestmark = pytest.mark.timeout(600)

from purerl import data as pdata
from purerl import offline
from purerl.agents import bc, prdc, td3_bc
from purerl.sweep import vmap_seeds

GOOD, BAD = 0.8, -0.8


def reward_of(a):
    return -((a - GOOD) ** 2)


def write_bandit(path, n=4096, next_obs=True):
    """One-step episodes on Pendulum-shaped data (as in test_offline_agents): the behaviour plays +0.8 (reward 0) or
    -0.8 (reward -2.56) with equal probability in every state; BC regresses to the mean action ~0."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    actions = np.where(rng.random(n) < 0.5, GOOD, BAD).astype(np.float32)[:, None]
    d = {"observations": obs, "actions": actions, "rewards": reward_of(actions[:, 0]).astype(np.float32),
         "next_observations": rng.normal(size=(n, 3)).astype(np.float32), "terminals": np.ones(n, bool),
         "timeouts": np.zeros(n, bool)}
    if not next_obs:
        del d["next_observations"]
    pdata.write_hdf5(path, d, {"env_id": "Pendulum-v1", "episode_length": 200, "purerl_version": "0",
                               "ref_min_score": -200.0, "ref_max_score": 0.0})
    return path


@pytest.fixture(scope="module")
def bandit_path(tmp_path_factory):
    return write_bandit(str(tmp_path_factory.mktemp("offline") / "bandit.hdf5"))


SMALL = dict(num_updates=600, updates_per_iteration=600, hidden=(32, 32), eval_episodes=2)


def policy_score(module, config, actor, seeds=(0, 1)):
    """Normalised score (0 = the bad action, 100 = the good one) of the trained policy's (mean) action."""
    data = offline.prepare(config.dataset, normalize_states=getattr(config, "normalize_states", False))
    states, _ = vmap_seeds(module.make_train(config), seeds)
    obs = data.data["observations"][:512]
    actions = jax.vmap(lambda p: actor(p, obs))(states.actor)
    r = reward_of(np.asarray(actions)[..., 0]).mean(axis=1)
    return 100 * (r - reward_of(BAD)) / (reward_of(GOOD) - reward_of(BAD))


@pytest.fixture(scope="module")
def bc_scores(bandit_path):
    actor = td3_bc.Actor(1, SMALL["hidden"])
    return policy_score(bc, bc.Config(dataset=bandit_path, **SMALL), actor.apply)


# --- PRDC: the nearest-neighbour search ---------------------------------------------------------------------

def brute_force(x, queries):
    x, queries = x.astype(np.float64), queries.astype(np.float64)
    d = (queries**2).sum(1)[:, None] + (x**2).sum(1)[None] - 2 * queries @ x.T  # float64: exact enough here
    return d.argmin(1), d


def test_nearest_index_exact_vs_brute_force():
    rng = np.random.default_rng(0)
    n, dim = 50_000, 23
    x = rng.normal(size=(n, dim)).astype(np.float32)
    queries = rng.normal(size=(256, dim)).astype(np.float32)
    xb, xsqb = prdc.blocked(jnp.asarray(x), 8192)  # 50_000 is not a multiple of 8192: 7 blocks, padded rows
    assert xb.shape == (7, 8192, dim) and bool(jnp.isinf(xsqb[-1, -1]))
    idx = np.asarray(jax.jit(prdc.nearest_index)(xb, xsqb, jnp.asarray(queries)))
    expected, d = brute_force(x, queries)
    assert idx.max() < n  # padding rows are never returned
    np.testing.assert_array_equal(idx, expected)
    # queries equal to dataset rows find themselves (and the lowest index on an exact duplicate)
    dup = np.concatenate([x, x[:10]])
    xb2, xsq2 = prdc.blocked(jnp.asarray(dup), 4096)
    found = np.asarray(prdc.nearest_index(xb2, xsq2, jnp.asarray(x[[3, 7, 49_999]])))
    np.testing.assert_array_equal(found, [3, 7, 49_999])


def test_vmapped_search_keeps_dataset_unbatched():
    rng = np.random.default_rng(1)
    n, dim, s = 3000, 5, 4
    x = jnp.asarray(rng.normal(size=(n, dim)).astype(np.float32))
    xb, xsqb = prdc.blocked(x, 1024)
    queries = jnp.asarray(rng.normal(size=(s, 64, dim)).astype(np.float32))
    f = jax.jit(jax.vmap(lambda q: prdc.nearest_index(xb, xsqb, q)))
    batched = np.asarray(f(queries))
    for i in range(s):
        np.testing.assert_array_equal(batched[i], np.asarray(prdc.nearest_index(xb, xsqb, queries[i])))
    hlo = f.lower(queries).as_text()
    assert f"{s}x3x1024x{dim}" not in hlo and f"{s}x1024x{dim}" not in hlo, "X was broadcast over the seed axis"


def test_reduction_to_td3_bc_targets():
    """With a large beta and the batch's own (s, a) in X, the neighbour of (beta s, pi(s)) is the sample with the
    same state: the constraint target is the batch action and the actor loss equals TD3+BC's."""
    rng = np.random.default_rng(2)
    obs = jnp.asarray(rng.normal(size=(256, 4)).astype(np.float32))
    actions = jnp.asarray(rng.uniform(-1, 1, size=(256, 2)).astype(np.float32))
    pi = jnp.asarray(rng.uniform(-1, 1, size=(256, 2)).astype(np.float32))
    q = jnp.asarray(rng.normal(size=256).astype(np.float32))
    xb, xsqb = prdc.blocked(prdc.build_search_matrix(obs, actions, 1e3), 100)
    a_hat, idx, _, _ = prdc.constraint_target(pi, obs, xb, xsqb, actions, 1e3)
    np.testing.assert_array_equal(np.asarray(idx), np.arange(256))
    l_prdc = td3_bc.actor_objective(pi, a_hat, q, 2.5)[0]
    l_td3 = td3_bc.actor_objective(pi, actions, q, 2.5)[0]
    assert abs(float(l_prdc) - float(l_td3)) <= 1e-6
    # with a small beta the nearest action at any state is used instead: pi itself when pi is in the data
    xb, xsqb = prdc.blocked(prdc.build_search_matrix(obs, pi, 1e-3), 100)
    a_hat, _, _, _ = prdc.constraint_target(pi, obs, xb, xsqb, pi, 1e-3)
    np.testing.assert_allclose(a_hat, pi)


def test_prdc_agent_with_huge_beta_equals_td3_bc(bandit_path):
    common = dict(dataset=bandit_path, num_updates=20, updates_per_iteration=20, hidden=(8, 8))
    p_state, p_metrics = jax.jit(prdc.make_train(prdc.Config(beta=1e4, **common)))(jax.random.PRNGKey(0))
    t_state, _ = jax.jit(td3_bc.make_train(td3_bc.Config(**common)))(jax.random.PRNGKey(0))
    assert float(p_metrics["same_state_fraction"][-1]) == 1.0
    for a, b in zip(jax.tree.leaves(p_state.actor), jax.tree.leaves(t_state.actor)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_gradient_isolation():
    rng = np.random.default_rng(3)
    obs = jnp.asarray(rng.normal(size=(32, 3)).astype(np.float32))
    data_actions = jnp.asarray(rng.uniform(-1, 1, size=(500, 2)).astype(np.float32))
    data_obs = jnp.asarray(rng.normal(size=(500, 3)).astype(np.float32))
    x = prdc.build_search_matrix(data_obs, data_actions, 2.0)
    actor = td3_bc.Actor(2, (16,))
    params = actor.init(jax.random.PRNGKey(0), obs[0])
    q_of = lambda pi: (pi**2).sum(1) - pi[:, 0]  # a stand-in critic  # noqa: E731

    def loss(params, x):
        xb, xsqb = prdc.blocked(x, 128)
        pi = actor.apply(params, obs)
        a_hat = prdc.constraint_target(pi, obs, xb, xsqb, x[:, 3:], 2.0)[0]
        return td3_bc.actor_objective(pi, a_hat, q_of(pi), 2.5)[0]

    g_x = jax.grad(loss, argnums=1)(params, x)
    assert float(jnp.abs(g_x).max()) == 0.0
    xb, xsqb = prdc.blocked(x, 128)
    pi0 = actor.apply(params, obs)
    idx = prdc.nearest_index(xb, xsqb, jnp.concatenate([2.0 * obs, pi0], 1))
    fixed = data_actions[idx]

    def reference(params):
        pi = actor.apply(params, obs)
        return td3_bc.actor_objective(pi, fixed, q_of(pi), 2.5)[0]

    for a, b in zip(jax.tree.leaves(jax.grad(loss)(params, x)), jax.tree.leaves(jax.grad(reference)(params))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_prdc_presets():
    c = prdc.config_for("halfcheetah-medium-replay")
    assert (c.alpha, c.beta) == (40.0, 2.0)
    c = prdc.config_for("hopper-medium", num_updates=10)
    assert (c.alpha, c.beta, c.num_updates) == (2.5, 2.0, 10)
    c = prdc.config_for("antmaze-umaze")
    assert (c.alpha, c.beta, c.reward_scale, c.reward_shift) == (7.5, 7.5, 10000.0, -1.0)


def test_prdc_beats_bc(bandit_path, bc_scores):
    actor = td3_bc.Actor(1, SMALL["hidden"])
    scores = policy_score(prdc, prdc.Config(dataset=bandit_path, **SMALL), actor.apply)
    assert np.isfinite(scores).all()
    assert (scores >= bc_scores + 10).all(), (scores, bc_scores)


def test_prdc_vmapped_seed_equals_single_run(bandit_path):
    config = prdc.Config(dataset=bandit_path, num_updates=20, updates_per_iteration=10, hidden=(8, 8),
                         search_block=1000)
    train = prdc.make_train(config)
    batched, _ = vmap_seeds(train, [0, 1])
    single, _ = jax.jit(train)(jax.random.PRNGKey(1))
    for a, b in zip(jax.tree.leaves(single.actor), jax.tree.leaves(batched.actor)):
        np.testing.assert_allclose(a, b[1], rtol=1e-5, atol=1e-6)


def test_prdc_bad_input(bandit_path, tmp_path):
    for field, value, match in (("beta", 0.0, "beta must be positive"), ("beta", -1.0, "beta must be positive"),
                                ("k", 2, "k must be 1"), ("search_mode", "fast", "search_mode"),
                                ("policy_freq", 3, "policy_freq")):
        with pytest.raises(ValueError, match=match):
            prdc.make_agent(dataclasses.replace(prdc.Config(dataset=bandit_path), **{field: value}))
    no_next = write_bandit(str(tmp_path / "no_next.hdf5"), n=64, next_obs=False)
    with pytest.raises(ValueError, match="next_observations"):
        prdc.make_agent(prdc.Config(dataset=no_next))
    data = offline.prepare(bandit_path)
    data = dataclasses.replace(data, data={k: v for k, v in data.data.items() if k != "next_observations"})
    with pytest.raises(ValueError, match="next_observations"):
        prdc.make_agent(prdc.Config(dataset=bandit_path), data)
