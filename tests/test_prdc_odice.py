"""PRDC and O-DICE: nearest-neighbour search vs brute force, reduction to TD3+BC, gradient isolation, O-DICE's
conjugate / orthogonal projection / decomposition, learning vs BC, determinism, bad input."""

import dataclasses
import functools

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import data as pdata
from purerl import offline
from purerl.agents import bc, prdc, td3_bc
from purerl.sweep import vmap_seeds

# Generous per-test limit: the 2-core CI CPU is often shared; each test takes well under a minute when idle.
pytestmark = pytest.mark.timeout(600)

GOOD, BAD = 0.8, -0.8


def reward_of(a):
    return -((a - GOOD) ** 2)


def write_bandit(path, n=4096, next_obs=True):
    """One-step episodes on Pendulum-shaped data (as in test_offline_agents): the behaviour plays +0.8 (reward
    0) or -0.8 (reward -2.56) with equal probability in every state; BC regresses to the mean action ~0."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    actions = np.where(rng.random(n) < 0.5, GOOD, BAD).astype(np.float32)[:, None]
    d = {
        "observations": obs,
        "actions": actions,
        "rewards": reward_of(actions[:, 0]).astype(np.float32),
        "next_observations": rng.normal(size=(n, 3)).astype(np.float32),
        "terminals": np.ones(n, bool),
        "timeouts": np.zeros(n, bool),
    }
    if not next_obs:
        del d["next_observations"]
    pdata.write_hdf5(
        path,
        d,
        {
            "env_id": "Pendulum-v1",
            "episode_length": 200,
            "purerl_version": "0",
            "ref_min_score": -200.0,
            "ref_max_score": 0.0,
        },
    )
    return path


@pytest.fixture(scope="module")
def bandit_path(tmp_path_factory):
    return write_bandit(str(tmp_path_factory.mktemp("offline") / "bandit.hdf5"))


SMALL = dict(num_updates=600, updates_per_iteration=600, hidden=(32, 32), eval_episodes=2)


def policy_score(module, config, actor, seeds=(0, 1), attr="actor"):
    """Normalised score (0 = the bad action, 100 = the good one) of the trained policy's (mean) action."""
    data = offline.prepare(config.dataset, normalize_states=getattr(config, "normalize_states", False))
    states, _ = vmap_seeds(module.make_train(config), seeds)
    obs = data.data["observations"][:512]
    actions = jax.vmap(lambda p: actor(p, obs))(getattr(states, attr))
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


def test_nearest_index_tree_vs_brute_force(random_search_data):
    """The kd-tree search is exact: on structured data (clusters, exact duplicates, leaves of unequal size, so
    pad rows) where the box bounds prune most leaves, and on unstructured random data where they prune few."""
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(40, 6)) * 4
    x = (centres[rng.integers(0, 40, 20_003)] + 0.3 * rng.normal(size=(20_003, 6))).astype(np.float32)
    x = np.concatenate([x, x[:50]])  # exact duplicates: the lower row wins
    queries = np.concatenate([x[:64] + 0.05 * rng.normal(size=(64, 6)), rng.normal(size=(64, 6)) * 6,
                              x[[3, 7]]])
    queries = jnp.asarray(queries.astype(np.float32))
    index = prdc.build_leaf_index(x, 100)
    assert bool(jnp.any(index.rows == len(x)))  # some leaves are padded
    idx = np.asarray(jax.jit(prdc.nearest_index_tree)(index, queries))
    np.testing.assert_array_equal(idx, brute_force(x, np.asarray(queries))[0])
    assert list(idx[-2:]) == [3, 7]
    x, queries, d = random_search_data
    idx = np.asarray(jax.jit(prdc.nearest_index_tree)(prdc.build_leaf_index(x, 256), jnp.asarray(queries)))
    np.testing.assert_array_equal(idx, d.argmin(1))
    on_cpu = jax.default_backend() == "cpu"
    assert prdc.resolved_search_mode(prdc.Config(), prdc.TREE_MIN_ROWS) == ("tree" if on_cpu else "exact")
    assert prdc.resolved_search_mode(prdc.Config(), prdc.TREE_MIN_ROWS - 1) == "exact"
    assert prdc.resolved_search_mode(prdc.Config(search_mode="tree"), 10) == "tree"


@pytest.mark.parametrize("mode", ["exact", "fast", "tree"])
def test_vmapped_search_equals_separate_searches_and_keeps_dataset_unbatched(mode):
    rng = np.random.default_rng(1)
    n, dim, s = 3000, 5, 4
    x = jnp.asarray(rng.normal(size=(n, dim)).astype(np.float32))
    xb, xsqb = prdc.blocked(x, 1024)
    queries = jnp.asarray(rng.normal(size=(s, 64, dim)).astype(np.float32))
    config = prdc.Config(search_mode=mode, tree_leaf_size=64)
    search = prdc.search_fn(config, x)
    f = jax.jit(jax.vmap(lambda q: search(xb, xsqb, q)))
    batched = np.asarray(f(queries))
    single, exact = jax.jit(lambda q: search(xb, xsqb, q)), jax.jit(lambda q: prdc.nearest_index(xb, xsqb, q))
    for i in range(s):
        np.testing.assert_array_equal(batched[i], np.asarray(single(queries[i])))
        np.testing.assert_array_equal(batched[i], np.asarray(exact(queries[i])))
    hlo = f.lower(queries).as_text()
    broadcast = (f"{s}x3x1024x{dim}", f"{s}x1024x{dim}")
    if mode == "tree":  # the leaf table stays one operand: the seeds' queries are searched as one set
        broadcast = ("x".join(map(str, (s, *prdc.build_leaf_index(x, 64).points.shape))),)
    assert not any(shape in hlo for shape in broadcast), "X was broadcast over the seed axis"


@pytest.fixture(scope="module")
def random_search_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50_000, 23)).astype(np.float32)
    queries = rng.normal(size=(256, 23)).astype(np.float32)
    return x, queries, brute_force(x, queries)[1]


@pytest.mark.parametrize("precision", ["default", "bf16"])
def test_fast_search_vs_exact(precision, random_search_data):
    """Spec sec. 8 test 2: low-precision top-32 per block + exact re-rank returns a neighbour whose squared
    distance is within 1e-5 relative of the exact minimum for >= 99.9% of queries, and exactly the exact
    search's index on well-separated data (with duplicate rows: the lower index)."""
    x, queries, d = random_search_data
    n, dim = x.shape
    xb, xsqb = prdc.blocked(jnp.asarray(x), 8192)
    fast = jax.jit(lambda xb, xsqb, q: prdc.nearest_index_fast(xb, xsqb, q, 32, precision))
    idx = np.asarray(fast(xb, xsqb, jnp.asarray(queries)))
    assert idx.max() < n
    assert np.mean(d[np.arange(256), idx] <= d.min(1) * (1 + 1e-5)) >= 0.999
    rng = np.random.default_rng(0)
    # well separated: queries are dataset rows plus small noise; rows 0..99 repeated at the end (ties: lower)
    sep = np.concatenate([10 * x[:20_000], 10 * x[:100]])
    rows = rng.integers(0, 20_000, 256)
    q2 = jnp.asarray(sep[rows] + 0.01 * rng.normal(size=(256, dim)).astype(np.float32))
    xb2, xsq2 = prdc.blocked(jnp.asarray(sep), 8192)
    got = np.asarray(fast(xb2, xsq2, q2))
    np.testing.assert_array_equal(got, np.asarray(jax.jit(prdc.nearest_index)(xb2, xsq2, q2)))
    np.testing.assert_array_equal(got, rows)


def test_fast_search_pad_rows_and_candidate_counts():
    """The last block holds 5 real rows and 27 zero pad rows: a query at the origin is closest to the zero
    pad rows by subtraction, yet they are never returned; 1 candidate and more than a block both work."""
    rng = np.random.default_rng(4)
    x = (5.0 + rng.normal(size=(69, 3))).astype(np.float32)
    queries = np.concatenate([np.zeros((1, 3)), rng.normal(size=(15, 3)) + 5.0])
    queries = jnp.asarray(queries.astype(np.float32))
    xb, xsqb = prdc.blocked(jnp.asarray(x), 32)
    exact = np.asarray(jax.jit(prdc.nearest_index)(xb, xsqb, queries))
    fast = jax.jit(prdc.nearest_index_fast, static_argnums=3)
    for k in (1, 32, 100):
        np.testing.assert_array_equal(np.asarray(fast(xb, xsqb, queries, k)), exact)


def test_reduction_to_td3_bc_targets():
    """With a large beta and the batch's own (s, a) in X, the neighbour of (beta s, pi(s)) is the sample with
    the same state: the constraint target is the batch action and the actor loss equals TD3+BC's."""
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
    """Every search mode (wired through Config.search_mode) reduces to TD3+BC with a huge beta."""
    common = dict(dataset=bandit_path, num_updates=20, updates_per_iteration=20, hidden=(8, 8))
    t_state, _ = jax.jit(td3_bc.make_train(td3_bc.Config(**common)))(jax.random.PRNGKey(0))
    for mode in ("exact", "fast", "tree"):
        config = prdc.Config(beta=1e4, search_mode=mode, **common)
        p_state, p_metrics = jax.jit(prdc.make_train(config))(jax.random.PRNGKey(0))
        assert float(p_metrics["same_state_fraction"][-1]) == 1.0
        for a, b in zip(jax.tree.leaves(p_state.actor), jax.tree.leaves(t_state.actor), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_gradient_isolation():
    rng = np.random.default_rng(3)
    obs = jnp.asarray(rng.normal(size=(32, 3)).astype(np.float32))
    data_actions = jnp.asarray(rng.uniform(-1, 1, size=(500, 2)).astype(np.float32))
    data_obs = jnp.asarray(rng.normal(size=(500, 3)).astype(np.float32))
    x = prdc.build_search_matrix(data_obs, data_actions, 2.0)
    actor = td3_bc.Actor(2, (16,))
    params = jax.jit(actor.init)(jax.random.PRNGKey(0), obs[0])
    q_of = lambda pi: (pi**2).sum(1) - pi[:, 0]  # a stand-in critic  # noqa: E731

    def loss(params, x):
        xb, xsqb = prdc.blocked(x, 128)
        pi = actor.apply(params, obs)
        a_hat = prdc.constraint_target(pi, obs, xb, xsqb, x[:, 3:], 2.0)[0]
        return td3_bc.actor_objective(pi, a_hat, q_of(pi), 2.5)[0]

    @jax.jit  # one program for the three gradients (op by op, each primitive would compile on its own)
    def all_gradients(params, x):
        xb, xsqb = prdc.blocked(x, 128)
        pi0 = actor.apply(params, obs)
        idx = prdc.nearest_index(xb, xsqb, jnp.concatenate([2.0 * obs, pi0], 1))
        fixed = data_actions[idx]

        def reference(params):
            pi = actor.apply(params, obs)
            return td3_bc.actor_objective(pi, fixed, q_of(pi), 2.5)[0]

        return jax.grad(loss, argnums=1)(params, x), jax.grad(loss)(params, x), jax.grad(reference)(params)

    g_x, grads, reference_grads = all_gradients(params, x)
    assert float(jnp.abs(g_x).max()) == 0.0
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(reference_grads), strict=True):
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


@pytest.mark.parametrize("mode", ["exact", "tree"])
def test_prdc_vmapped_seed_equals_single_run(bandit_path, mode):
    config = prdc.Config(
        dataset=bandit_path, num_updates=20, updates_per_iteration=10, hidden=(8, 8), search_block=1000,
        search_mode=mode, tree_leaf_size=64,
    )
    train = prdc.make_train(config)
    batched, _ = vmap_seeds(train, [0, 1])
    single, _ = jax.jit(train)(jax.random.PRNGKey(1))
    for a, b in zip(jax.tree.leaves(single.actor), jax.tree.leaves(batched.actor), strict=True):
        np.testing.assert_allclose(a, b[1], rtol=1e-5, atol=1e-6)


def test_prdc_bad_input(bandit_path, tmp_path):
    for field, value, match in (
        ("beta", 0.0, "beta must be positive"),
        ("beta", -1.0, "beta must be positive"),
        ("k", 2, "k must be 1"),
        ("search_mode", "approx", "search_mode must be one of auto, exact, tree, fast, got 'approx'"),
        ("tree_leaf_size", 0, "tree_leaf_size must be >= 1"),
        ("fast_candidates", 0, "fast_candidates must be >= 1"),
        ("fast_precision", "fp8", "fast_precision must be one of"),
        ("policy_freq", 3, "policy_freq"),
    ):
        with pytest.raises(ValueError, match=match):
            prdc.make_agent(dataclasses.replace(prdc.Config(dataset=bandit_path), **{field: value}))
    no_next = write_bandit(str(tmp_path / "no_next.hdf5"), n=64, next_obs=False)
    with pytest.raises(ValueError, match="next_observations"):
        prdc.make_agent(prdc.Config(dataset=no_next))
    data = offline.prepare(bandit_path)
    data = dataclasses.replace(data, data={k: v for k, v in data.data.items() if k != "next_observations"})
    with pytest.raises(ValueError, match="next_observations"):
        prdc.make_agent(prdc.Config(dataset=bandit_path), data)


# --- O-DICE -------------------------------------------------------------------------------------------------

from purerl.agents import odice  # noqa: E402


def test_fstar_closed_form_vs_brute_force():
    y = np.concatenate([np.linspace(-6, 6, 241), [-2.0]])
    x = np.linspace(0.0, 10.0, 200_001)  # the ratio x >= 0; f(x) = (x - 1)^2
    brute = np.array([(x * yi - (x - 1) ** 2).max() for yi in y])
    np.testing.assert_allclose(odice.fstar_chi2(jnp.asarray(y, jnp.float32)), brute, atol=1e-5)
    assert (
        float(odice.fstar_chi2(jnp.float32(-2.0))) == -1.0
        and float(odice.fstar_chi2(jnp.float32(-3.0))) == -1.0
    )
    grads = jax.vmap(jax.grad(odice.fstar_chi2))(jnp.asarray(y, jnp.float32))
    np.testing.assert_allclose(grads, np.maximum(0.0, 1.0 + y / 2), atol=1e-6)
    np.testing.assert_allclose(odice.omega_chi2(jnp.asarray(y)), np.maximum(0.0, 1.0 + y / 2), atol=1e-7)
    d = jnp.array([-5.0, 0.0, 3.0, 250.0])
    np.testing.assert_allclose(odice.policy_weights(d), [0.0, 0.0, 3.0, 100.0])
    np.testing.assert_allclose(odice.policy_weights(d, "omega"), [0.0, 1.0, 2.5, 100.0])
    assert float(jax.grad(lambda d: odice.policy_weights(d).sum())(d).sum()) == 0.0


def value_setup(heads=2, layer_norm=True, reward_shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    b, dim = 64, 5
    batch = {
        "observations": jnp.asarray(rng.normal(size=(b, dim)), jnp.float32),
        "next_observations": jnp.asarray(rng.normal(size=(b, dim)), jnp.float32),
        "rewards": jnp.asarray(rng.normal(size=b) + reward_shift, jnp.float32),
        "terminals": jnp.asarray(rng.random(b) < 0.2),
    }
    v_init, v_apply = value_functions((16, 16), layer_norm, heads)
    params = jax.jit(v_init)(jax.random.PRNGKey(seed), jnp.zeros(dim))
    # a target different from V
    target = jax.jit(lambda tree: jax.tree.map(lambda p: p + 0.05 * jnp.sin(p * 7.0 + 1.0), tree))(params)
    return v_apply, params, target, batch


# One (init, apply) pair per architecture, so that the jitted helpers below, keyed by `v_apply`, compile once
# per architecture and gradient mode for all the tests (op by op, each primitive would compile on its own).
value_functions = functools.cache(odice.make_value)


@functools.partial(jax.jit, static_argnames=("v_apply", "gradient"))
def gradients(v_apply, params, target, batch, lam, eta, gamma, gradient="orthogonal"):
    """(g_lin, g_f, g_b, the combined g, its metrics): `value_gradients` then `combine_gradients`."""
    g_lin, g_f, g_b, _ = odice.value_gradients(v_apply, params, target, batch, lam, eta, gamma)
    return (g_lin, g_f, g_b, *odice.combine_gradients(g_lin, g_f, g_b, gradient))


combine = jax.jit(odice.combine_gradients, static_argnames="gradient")


def flat(tree):
    return np.asarray(jax.flatten_util.ravel_pytree(tree)[0], np.float64)


def test_orthogonal_projection():
    v_apply, params, target, batch = value_setup()
    g_lin, g_f, g_b, g, metrics = gradients(v_apply, params, target, batch, 0.6, 1.0, 0.99)
    perp, gf = flat(g) - flat(g_lin) - flat(g_f), flat(g_f)
    assert np.linalg.norm(perp) > 0 and np.linalg.norm(gf) > 0
    assert abs(perp @ gf) <= 1e-5 * np.linalg.norm(perp) * np.linalg.norm(gf)
    np.testing.assert_allclose(perp, flat(g_b) - float(metrics["c"]) * gf, rtol=1e-5, atol=1e-7)
    # g_b parallel to g_f: nothing survives the projection
    g_par, _ = combine(g_lin, g_f, jax.tree.map(lambda x: -3.0 * x, g_f))
    np.testing.assert_allclose(flat(g_par), flat(g_lin) + gf, rtol=1e-5, atol=1e-7)
    # eta scales the corrected component linearly
    g_lin2, g_f2, _, g2, _ = gradients(v_apply, params, target, batch, 0.6, 2.5, 0.99)
    np.testing.assert_allclose(flat(g2) - flat(g_lin2) - flat(g_f2), 2.5 * perp, rtol=1e-4, atol=1e-7)


def test_decomposition_exactness_and_vjp_equals_reference():
    v_apply, params, target, batch = value_setup(heads=1)
    lam, gamma = 0.6, 0.99
    g = gradients(v_apply, params, params, batch, lam, 1.0, gamma, gradient="true")[3]
    mask = gamma * (1.0 - batch["terminals"].astype(jnp.float32))

    def dual(p):  # J(V) with V(s) and V(s') both live
        v, vn = v_apply(p, batch["observations"]), v_apply(p, batch["next_observations"])
        return (1 - lam) * v.mean() + lam * odice.fstar_chi2(batch["rewards"] + mask * vn - v).mean()

    np.testing.assert_allclose(flat(g), flat(jax.jit(jax.grad(dual))(params)), rtol=1e-5, atol=1e-6)
    # the one-forward-pass vjp equals three jax.grad calls (twin heads, target != V)
    v_apply, params, target, batch = value_setup(heads=2)
    fast = gradients(v_apply, params, target, batch, lam, 1.3, gamma)[:3]
    reference = jax.jit(odice.value_gradients_reference, static_argnums=0)
    ref = reference(v_apply, params, target, batch, lam, 1.3, gamma)
    for a, b in zip(fast, ref, strict=True):
        np.testing.assert_allclose(flat(a), flat(b), rtol=1e-5, atol=1e-6)


def test_degenerate_cases():
    v_apply, params, target, batch = value_setup(reward_shift=-100.0)  # every delta_f < -2: g_f = 0
    g_lin, g_f, g_b, g, metrics = gradients(v_apply, params, target, batch, 0.6, 1.0, 0.99)
    assert np.abs(flat(g_f)).max() == 0.0
    assert np.isfinite(flat(g)).all() and all(np.isfinite(float(v)) for v in metrics.values())
    np.testing.assert_allclose(flat(g), flat(g_lin) + flat(g_b), rtol=1e-6, atol=1e-8)
    v_apply, params, target, batch = value_setup()
    g_lin, g_f, g_b, g, _ = gradients(v_apply, params, target, batch, 0.6, 0.0, 0.99)
    np.testing.assert_allclose(flat(g), flat(g_lin) + flat(g_f), rtol=1e-6, atol=1e-8)
    g_semi, _ = combine(g_lin, g_f, g_b, gradient="semi")
    np.testing.assert_allclose(flat(g_semi), flat(g_lin) + flat(g_f), rtol=1e-6, atol=1e-8)


ODICE_SMALL = dict(
    SMALL, value_hidden=(32, 32), policy_hidden=(32, 32), value_lr=1e-3, policy_lr=1e-3, reward_mode="none"
)


def test_odice_beats_bc(bandit_path, bc_scores):
    config = odice.Config(dataset=bandit_path, **{k: v for k, v in ODICE_SMALL.items() if k != "hidden"})
    policy = odice.GaussianPolicy(1, (32, 32))
    scores = policy_score(odice, config, lambda p, obs: policy.apply(p, obs)[0], attr="policy")
    assert np.isfinite(scores).all()
    assert (scores >= bc_scores + 10).all(), (scores, bc_scores)


def test_odice_vmapped_seed_equals_single_run_and_il_mode(bandit_path):
    config = odice.Config(
        dataset=bandit_path,
        num_updates=20,
        updates_per_iteration=10,
        value_hidden=(8, 8),
        policy_hidden=(8, 8),
        mode="il",
        lam=0.4,
    )
    train = odice.make_train(config)
    batched, metrics = vmap_seeds(train, [0, 1])
    single, _ = jax.jit(train)(jax.random.PRNGKey(1))
    single_leaves = jax.tree.leaves((single.policy, single.value))
    for a, b in zip(single_leaves, jax.tree.leaves((batched.policy, batched.value)), strict=True):
        np.testing.assert_allclose(a, b[1], rtol=1e-5, atol=1e-6)
    assert np.isfinite(np.asarray(metrics["policy_loss"])).all()


def test_odice_bad_input(bandit_path, tmp_path):
    for field, value, match in (
        ("lam", 0.0, "lam must lie"),
        ("lam", 1.0, "lam must lie"),
        ("lam", 1.5, "lam"),
        ("eta", -0.1, "eta must be >= 0"),
        ("mode", "x", "mode"),
        ("gradient", "y", "gradient"),
        ("weight_form", "z", "weight_form"),
    ):
        with pytest.raises(ValueError, match=match):
            odice.make_agent(dataclasses.replace(odice.Config(dataset=bandit_path), **{field: value}))
    no_next = write_bandit(str(tmp_path / "no_next.hdf5"), n=64, next_obs=False)
    with pytest.raises(ValueError, match="next_observations"):
        odice.make_agent(odice.Config(dataset=no_next))
