"""TA-LPG: the random grid worlds, the backward LPG network, the agent update, lifetime masking, antithetic
task pairing and the ES loop (resume)."""

import dataclasses
import json

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from purerl.agents import lpg
from purerl.envs import gridworld

pytestmark = pytest.mark.timeout(120)

SIZE = gridworld.SIZE


def open_level(**kw):
    """A 5x5 level with one object at (0, 1), walls at (1, 0); everything else explicit."""
    rows, cols = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    blocked = (rows >= 5) | (cols >= 5)
    blocked[1, 0] = True
    base = dict(
        blocked=jnp.asarray(blocked),
        object_cell=jnp.asarray([[0, 1]] + [[4, 4]] * 4, jnp.int32),
        object_active=jnp.asarray([True, False, False, False, False]),
        object_reward=jnp.asarray([0.7, 0.0, 0.0, 0.0, 0.0]),
        object_terminate=jnp.zeros(5), object_respawn=jnp.zeros(5),
        episode_cap=jnp.asarray(50, jnp.int32), lifetime=jnp.asarray(5, jnp.int32),
    )
    base.update(kw)
    return gridworld.Level(**base)


def at(cell, present=(True, False, False, False, False), t=0):
    return gridworld.State(cell=jnp.asarray(cell, jnp.int32), present=jnp.asarray(present), t=jnp.asarray(t))


UP, DOWN, LEFT, RIGHT = range(4)
KEY = jax.random.PRNGKey(0)


def test_moves_walls_and_edges():
    level = open_level()
    step = jax.jit(gridworld.step)
    assert step(KEY, at([0, 0]), UP, level)[1].cell.tolist() == [0, 0]  # off the grid: stay
    assert step(KEY, at([0, 0]), DOWN, level)[1].cell.tolist() == [0, 0]  # wall at (1, 0): stay
    assert step(KEY, at([2, 4]), RIGHT, level)[1].cell.tolist() == [2, 4]  # outside the 5x5 grid: stay
    assert step(KEY, at([2, 2]), LEFT, level)[1].cell.tolist() == [2, 1]
    obs = step(KEY, at([2, 2]), UP, level)[0]
    assert obs.shape == (gridworld.OBS_DIM,) and obs[1 * SIZE + 2] == 1 and obs.sum() == 2  # cell + 1 object


def test_collect_terminate_respawn_and_truncate():
    step = jax.jit(gridworld.step)
    # collecting removes the object and pays its reward; no termination at probability 0
    obs, state, reward, term, trunc, final = step(KEY, at([0, 0]), RIGHT, open_level())
    assert float(reward) == pytest.approx(0.7) and not term and not state.present[0]
    # an absent object reappears with probability 1, and is not collected again in the same step
    level = open_level(object_respawn=jnp.ones(5))
    _, state, reward, *_ = step(KEY, at([0, 2], present=[False] * 5), LEFT, level)
    assert float(reward) == 0.0 and bool(state.present[0]) and not state.present[1]  # inactive never appears
    # termination probability 1: the episode ends, the returned state is a fresh episode, final_obs is not
    certain_end = open_level(object_terminate=jnp.ones(5))
    obs, state, reward, term, trunc, final = step(KEY, at([0, 0], t=7), RIGHT, certain_end)
    assert bool(term) and not trunc and int(state.t) == 0 and bool(state.present[0])
    assert final[0 * SIZE + 1] == 1 and final[SIZE * SIZE] == 0  # ended on the object's cell, object gone
    # the cap truncates (not terminates)
    _, state, _, term, trunc, final = step(KEY, at([3, 3], t=49), LEFT, open_level())
    assert bool(trunc) and not term and int(state.t) == 0 and final[3 * SIZE + 2] == 1


def test_sampled_levels_respect_the_distribution():
    dist = gridworld.Distribution()
    levels = jax.jit(jax.vmap(gridworld.sample_level, in_axes=(0, None)), static_argnums=1)(
        jax.random.split(KEY, 300), dist)
    free = ~np.asarray(levels.blocked)
    height = free.any(axis=2).sum(axis=1)  # rows with a free cell
    assert height.min() >= 2 and free[:, SIZE - 1, :].any()  # some level uses the full canvas
    cells = np.asarray(levels.object_cell)
    assert free[np.arange(300)[:, None], cells[..., 0], cells[..., 1]].all()  # objects sit on free cells
    flat = cells[..., 0] * SIZE + cells[..., 1]
    assert (np.diff(np.sort(flat, axis=1), axis=1) > 0).all()  # on distinct cells
    assert (np.asarray(levels.object_reward)[:, 0] >= 0).all()
    n_obj = np.asarray(levels.object_active).sum(1)
    assert n_obj.min() == 1 and n_obj.max() == 5
    for field, (lo, hi) in (("lifetime", dist.lifetime), ("episode_cap", dist.episode_cap)):
        v = np.asarray(getattr(levels, field))
        assert v.min() >= lo and v.max() <= hi and np.median(v) < (lo + hi) / 2  # log-uniform: skewed low
    term = np.asarray(levels.object_terminate)
    assert term.min() >= 1e-2 and term.max() <= 1.0
    assert free.sum((1, 2)).min() >= 4 * 4 - 4  # walls take at most a quarter of the smallest grid


def test_lpg_net_runs_backwards_and_resets_at_episode_ends():
    net, params = lpg.lpg_template(hidden=8, temporal=True, key=jax.random.PRNGKey(3))
    t, b = 6, 1
    rng = np.random.default_rng(0)
    reward = jnp.asarray(rng.normal(size=(t, b)), jnp.float32)
    z = jnp.zeros((t, b))
    y = jnp.full((t, b, 8), 1 / 8)
    end = jnp.zeros((t, b), bool).at[2].set(True)  # episode A = steps 0..2, episode B = 3..5

    apply = jax.jit(net.apply)

    def run(r):
        return apply(params, r, z, z + 0.5, y, y, end, 0.3, 2.0)[0][:, 0]

    base = run(reward)
    later_in_b = run(reward.at[5, 0].add(1.0))
    assert np.allclose(base[:3], later_in_b[:3])  # nothing flows back across the episode end at step 2
    assert not np.allclose(base[3:5], later_in_b[3:5])  # ...but it flows back within episode B
    earlier = run(reward.at[0, 0].add(1.0))
    assert np.allclose(base[1:], earlier[1:])  # backward in time only: step 0 affects no later output
    # TA inputs matter; plain LPG has no progress input at all
    assert not np.allclose(base, apply(params, reward, z, z + 0.5, y, y, end, 0.9, 2.0)[0][:, 0])
    plain, plain_params = lpg.lpg_template(hidden=8, temporal=False)
    plain_apply = jax.jit(plain.apply)
    out = plain_apply(plain_params, reward, z, z + 0.5, y, y, end, 0.3, 2.0)[0]
    np.testing.assert_array_equal(out, plain_apply(plain_params, reward, z, z + 0.5, y, y, end, 0.9, 7.0)[0])


def test_agent_loss_matches_hand_computation():
    rng = np.random.default_rng(1)
    t, b, d = 3, 2, gridworld.OBS_DIM
    obs = jnp.asarray(rng.normal(size=(t, b, d)), jnp.float32)
    next_obs = jnp.asarray(rng.normal(size=(t, b, d)), jnp.float32)
    action = jnp.asarray(rng.integers(0, 4, size=(t, b)))
    agent = {"pi": jnp.asarray(0.1 * rng.normal(size=(d, 4)), jnp.float32),
             "y": jnp.asarray(0.1 * rng.normal(size=(d, 8)), jnp.float32)}
    rollout = lpg.Rollout(obs, action, jnp.zeros((t, b)), jnp.zeros((t, b)), jnp.zeros((t, b), bool),
                          next_obs)
    pi_hat = jnp.asarray(rng.normal(size=(t, b)), jnp.float32)
    log_y_hat = jax.nn.log_softmax(jnp.asarray(rng.normal(size=(t, b, 8)), jnp.float32))
    policy_loss, target_loss = lpg.agent_loss(agent, rollout, lambda *_: (pi_hat, log_y_hat))

    o, W, V = (np.asarray(x, np.float64) for x in (obs, agent["pi"], agent["y"]))
    logits = o @ W
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    taken = np.take_along_axis(logp, np.asarray(action)[..., None], -1)[..., 0]
    yl = o @ V
    y = np.exp(yl) / np.exp(yl).sum(-1, keepdims=True)
    kl = (y * (np.log(y) - np.asarray(log_y_hat, np.float64))).sum(-1)
    assert float(policy_loss) == pytest.approx((np.asarray(pi_hat) * taken).mean(), rel=1e-5)
    assert float(target_loss) == pytest.approx(kl.mean(), rel=1e-4)
    # the LPG outputs are targets: no gradient flows into the rule's inputs through them
    seen = {}

    def rule(rollout, pi_taken, y, y_next):
        seen["y_next"] = y_next
        return pi_hat * pi_taken, log_y_hat

    g = jax.grad(lambda a: sum(lpg.agent_loss(a, rollout, rule)))(agent)
    g_fixed = jax.grad(lambda a: sum(lpg.agent_loss(
        a, rollout, lambda *_: (pi_hat * jnp.exp(taken.astype(np.float32)), log_y_hat))))(agent)
    np.testing.assert_allclose(g["pi"], g_fixed["pi"], atol=1e-6)


def test_reinforce_signal_is_centred_negative_return_to_go():
    reward = jnp.asarray([[1.0], [0.0], [2.0], [1.0]])
    end = jnp.asarray([[False], [True], [False], [False]])
    rollout = lpg.Rollout(None, None, reward, None, end, None)
    g = np.array([1.0 + 0.5 * 0.0, 0.0, 2.0 + 0.5 * 1.0, 1.0])
    np.testing.assert_allclose(lpg.reinforce_signal(rollout, 0.5)[:, 0], -(g - g.mean()), atol=1e-6)


def test_pairwise_shaping_and_paired_tasks():
    np.testing.assert_array_equal(lpg.pairwise_shaping(jnp.asarray([3.0, 1.0, 2.0, 2.0, 1.0, 5.0])),
                                  [1.0, 0.5, 0.0, 0.0, 0.5, 1.0])
    cfg = lpg.MetaConfig(population=6)
    levels, keys = jax.jit(lpg.paired_tasks, static_argnums=0)(cfg, KEY)
    for leaf in jax.tree.leaves((levels, keys)):
        np.testing.assert_array_equal(leaf[:3], leaf[3:])
    assert not np.array_equal(keys[0], keys[1])


# ---------------------------------------------------------------------------------------------------------
# Inner lifetimes (small compiled programs shared by the tests below)

TINY = lpg.MetaConfig(hidden=8, num_envs=8, rollout_steps=10, eval_episodes=16, episode_cap=(15, 15),
                      lifetime=(4, 12), population=4, generations=2, checkpoint_every=1, eval_every=1,
                      eval_tasks=4)


def corridor(lifetime: int):
    """A 1x10 corridor: start anywhere, +1 object at the right end that ends the episode; 15 steps."""
    rows, cols = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    return open_level(blocked=jnp.asarray(rows >= 1), object_cell=jnp.asarray([[0, 9]] * 5, jnp.int32),
                      object_reward=jnp.asarray([1.0, 0, 0, 0, 0]), object_terminate=jnp.ones(5),
                      episode_cap=jnp.asarray(15, jnp.int32), lifetime=jnp.asarray(lifetime, jnp.int32))


def stack(*trees):
    return jax.tree.map(lambda *x: jnp.stack(x), *trees)


@pytest.fixture(scope="module")
def lpg_lifetimes():
    """The TINY learned-rule lifetime on 4 tasks with shared LPG params: the same program as meta_train's
    held-out scoring, so the persistent compilation cache compiles it once."""
    net, params = lpg.lpg_template(TINY.hidden, TINY.temporal)
    return params, jax.jit(jax.vmap(lpg.make_lifetime(TINY, net), in_axes=(None, 0, 0)))


def test_updates_past_the_lifetime_are_discarded(lpg_lifetimes):
    params, lifetimes = lpg_lifetimes
    short = jax.jit(lpg.make_lifetime(dataclasses.replace(TINY, lifetime=(4, 4)), lpg.LPGNet(TINY.hidden)))
    levels, keys = stack(corridor(4), corridor(12), corridor(4), corridor(12)), jnp.stack([KEY] * 4)
    long_run = lifetimes(params, levels, keys)
    assert float(long_run[0]) == float(short(params, corridor(4), KEY))  # 12 scanned, 4 kept == 4 scanned
    assert float(long_run[1]) != float(long_run[0])  # the 12-update lifetime differs


def test_reinforce_reference_learns_the_corridor():
    """A rule that learns walks straight to the +1; the untrained (uniform) policy rarely gets there in 15
    steps -- so the inner update loop, the rollout and the evaluation work together."""
    keys = jax.random.split(jax.random.PRNGKey(5), 6)
    levels = stack(*[corridor(12)] * 3, *[corridor(0)] * 3)
    returns = lpg.evaluate_rule(TINY, None, levels, keys, rule="reinforce")
    assert float(returns[:3].min()) > 0.9 and float(returns[3:].max()) < 0.6


def test_antithetic_members_share_their_task(lpg_lifetimes):
    """Identical parameters on both sides of every pair give identical returns: same level, same key."""
    params, lifetimes = lpg_lifetimes
    levels, keys = jax.jit(lpg.paired_tasks, static_argnums=0)(TINY, jax.random.PRNGKey(9))
    returns = lifetimes(params, levels, keys)
    np.testing.assert_array_equal(returns[:2], returns[2:])
    assert returns[0] != returns[1]  # ...and the two pairs got different tasks


@pytest.mark.timeout(360)  # compiles an ES generation of inner trainings: ~1 min idle, 3x when busy
def test_meta_train_writes_the_learned_rule(tmp_path):
    """Two generations end to end (resume is the shared `purerl.meta` loop, tested with LPO's toy)."""
    cfg = dataclasses.replace(TINY, out=str(tmp_path / "meta"))
    res = lpg.meta_train(cfg, log=lambda m: None)
    assert res["fitness"].shape == (2, 4) and np.isfinite(res["fitness"]).all()
    es, _, template = lpg.make_es(cfg)
    start = lpg.init_es_state(es, template, cfg.seed).mean
    assert 0 < float(jnp.abs(res["es_state"].mean - start).max()) < 1.0  # ES moved, Adam-sized steps
    net, params = lpg.load_lpg(str(tmp_path / "meta" / "lpg_mean.msgpack"))
    assert net.hidden == TINY.hidden and net.temporal
    np.testing.assert_array_equal(jax.flatten_util.ravel_pytree(params)[0], res["es_state"].mean)
    with open(tmp_path / "meta" / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == 2 and all(np.isfinite(r["eval_return"]) for r in rows)
    with pytest.raises(ValueError, match="not empty"):
        lpg.meta_train(cfg, log=lambda m: None)


def test_bad_input():
    with pytest.raises(ValueError, match="even"):
        lpg.validate_meta(lpg.MetaConfig(population=5))
    with pytest.raises(ValueError, match="lifetime"):
        lpg.validate_meta(lpg.MetaConfig(lifetime=(20, 10)))
    with pytest.raises(ValueError, match="max_size"):
        lpg.validate_meta(lpg.MetaConfig(max_size=12))
    with pytest.raises(ValueError, match="unknown rule"):
        lpg.make_lifetime(TINY, None, rule="ppo")
    with pytest.raises(ValueError, match="does not exist"):
        lpg.load_lpg("/nonexistent/lpg.msgpack")
