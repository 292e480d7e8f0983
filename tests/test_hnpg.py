"""HNPG on the combination lock: learning, hybrid off == on-policy TRPO step, determinism, bad input."""

import dataclasses

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import runner
from purerl.agents import hnpg, trpo
from purerl.envs.comblock import collect_offline
from purerl.natural_gradient import policy_step, trpo_kwargs
from purerl.returns import gae
from purerl.sweep import seed_keys, vmap_seeds

# The HNPG programs take 30-120 s to compile on the shared 2-core CPU (several random-number-heavy scans),
# above the suite's default 120 s timeout when the machine is loaded; these tests get a longer limit.
SLOW_COMPILE = pytest.mark.timeout(900)

KEY = jax.random.key(11)
# 50 iterations: the slowest of the 3 seeds succeeds 0.91 of the time over the last 5 (0.50 at 40, 0.99 at
# 60); the bar is 0.5, and a policy that does not learn stays near the random level, under 0.2.
LEARN = hnpg.Config(horizon=5, num_iters=50, offline_episodes=5000)
SMALL = hnpg.Config(horizon=3, batch_steps=60, num_iters=2, offline_episodes=500, hybrid=False)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"horizon": 0}, "horizon"),
        ({"batch_steps": 4}, "batch_steps"),  # less than horizon = 5
        ({"offline_eps": 1.5}, "offline_eps"),
        ({"offline_eps": -0.1}, "offline_eps"),
        ({"max_kl": 0.0}, "max_kl"),
        ({"max_kl": -0.01}, "max_kl"),
        ({"offline_counterfactual": 1.5}, "offline_counterfactual"),
        ({"offline_counterfactual": -0.1}, "offline_counterfactual"),
    ],
)
def test_bad_config_raises_before_compiling(changes, field):
    with pytest.raises(ValueError, match=field):
        hnpg.make_agent(dataclasses.replace(hnpg.Config(horizon=5), **changes))


def test_trpo_bad_config():
    with pytest.raises(ValueError, match="max_kl"):
        trpo.make_agent(trpo.Config(max_kl=0.0))
    with pytest.raises(ValueError, match="vf_minibatches"):
        trpo.make_agent(trpo.Config(num_envs=3, num_steps=3, vf_minibatches=4))


@pytest.fixture(scope="module")
def learned():
    return vmap_seeds(lambda key: hnpg.make_train(LEARN)(key)[1], [0, 1, 2])


@SLOW_COMPILE
def test_hnpg_learns_h5_lock(learned):
    metrics = learned
    # success of the stochastic policy over the last 5 iterations' on-policy batches (5 x 200 episodes)
    success = metrics["success"][:, -5:].mean(1)
    assert success.shape == (3,)
    assert bool((success >= 0.5).all()), success
    # early iterations are at the random-policy level: the improvement is learned, not given
    assert float(metrics["success"][:, :3].mean()) < 0.2
    assert bool(jnp.isfinite(metrics["kl"]).all())
    assert float(metrics["kl"].max()) < 2 * LEARN.max_kl


@pytest.fixture(scope="module")
def small():
    agent, parts = hnpg.make_agent_and_parts(SMALL)
    state = jax.jit(agent.init)(jax.random.PRNGKey(4))
    update = jax.jit(agent.update)
    return agent, parts, state, update


@SLOW_COMPILE
def test_hybrid_off_ignores_offline_data(small):
    agent, parts, state, update = small
    collect = jax.jit(lambda params, key: collect_offline(parts["env"], params, key, SMALL.offline_episodes))
    other = collect(state.env_params, jax.random.PRNGKey(77))
    assert not bool((other.z == state.offline.z).all())
    a, _ = update(state)
    b, _ = update(state.replace(offline=other))
    for x, y in zip(jax.tree.leaves((a.policy, a.q)), jax.tree.leaves((b.policy, b.q)), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@SLOW_COMPILE
def test_hybrid_off_equals_per_timestep_trpo_step(small):
    """hybrid=False: the HNPG update equals, for every h, the TRPO actor step (`policy_step`, the one
    `agents/trpo.py` takes) on that timestep's on-policy batch, GAE(γ=1) advantages from the same critics."""
    agent, parts, state, update = small
    new_state, _ = update(state)
    h = SMALL.horizon

    def dist(p, obs):
        mean, log_std = parts["policy_net"].apply(p, obs)
        return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))

    @jax.jit  # the reference step as one program (op by op, each primitive would compile on its own)
    def trpo_reference(state):
        _, roll_key, off_key, critic_key, v_key, _ = jax.random.split(state.key, 6)
        traj = parts["rollout"](state.policy, state.env_params, roll_key, SMALL.episodes_per_iter)
        off = parts["offline_batch"](state.offline, state.env_params, off_key)
        q, _, _ = parts["fit_critics"](state, traj, off, critic_key)
        values = jax.vmap(parts["value"])(q, state.policy, traj.obs, jax.random.split(v_key, (2, h))[0])
        last = jnp.broadcast_to((jnp.arange(h) == h - 1)[:, None], values.shape)
        next_values = jnp.concatenate([values[1:], jnp.zeros_like(values[:1])], 0)
        adv, _ = gae(traj.reward, values, next_values, last, last, 1.0, SMALL.gae_lambda)
        return jax.vmap(lambda p, o, a, g: policy_step(dist, p, o, a, g, **trpo_kwargs(SMALL))[0])(
            state.policy, traj.obs, traj.action, adv
        )

    expected = trpo_reference(state)
    changed = False
    for x, y, old in zip(*map(jax.tree.leaves, (new_state.policy, expected, state.policy)), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-6)
        changed |= not np.array_equal(np.asarray(x), np.asarray(old))
    assert changed


@SLOW_COMPILE
def test_seed_in_vmapped_batch_equals_single_run(small):
    """Seed 5 of a batch of seeds [4, 5], trained through the runner as `purerl train hnpg --num-seeds 2`
    does, equals a single run with seed 5 (the fixture's jitted init and update, called step by step). The
    batch's programs are those of test_policies.py's tiny HNPG run (same config, 2 seeds): whichever test
    runs second loads them from the compilation cache."""
    agent, _, _, update = small
    batched = runner.train_and_evaluate(hnpg.make_agent(dataclasses.replace(SMALL, eval_episodes=8)),
                                        num_seeds=2, seed=4)
    state = jax.jit(agent.init)(seed_keys([5])[0])
    single_metrics = []
    for _ in range(agent.num_iterations):
        state, metrics = update(state)
        single_metrics.append(metrics)
    assert set(batched.metrics) == set(single_metrics[0])
    for name in single_metrics[0]:
        single = np.stack([np.asarray(m[name]) for m in single_metrics])
        np.testing.assert_allclose(batched.metrics[name][1], single, rtol=1e-5, atol=1e-6, err_msg=name)
    for x, y in zip(jax.tree.leaves(batched.state.policy), jax.tree.leaves(state.policy), strict=True):
        np.testing.assert_allclose(np.asarray(x)[1], np.asarray(y), rtol=1e-5, atol=1e-6)
    assert agent.steps_per_iteration == 60 and agent.num_iterations == 2


# Spec §9 test 6: H = 3 lock, the critics alone, offline data only, next actions from the one-hot expert that
# decodes z from the observation. 3000 full-batch Adam steps (lr 2e-3) per h on 1000 transitions per h reach
# the plateau (on this data the backward means move by <= 0.006 between 2000 and 5000 steps; spec allows
# <= 5000). Small critics (32, 32) keep it cheap.
CRITIC = hnpg.Config(
    horizon=3,
    batch_steps=3,
    offline_episodes=2000,
    offline_batch_per_h=1000,
    critic_hidden=(32, 32),
    critic_lr=2e-3,
    critic_steps=3000,
)


def test_critic_backward_pass_recovers_lock_values_and_forward_order_does_not():
    """Q_h(s, e_good) ≈ p^{H-h} ± 0.02 in A/B (p = e^10/(e^10+9), the one-hot's per-step success; a failed
    episode's expected 0.05 adds only (1-p^{H-h})·0.05 < 1e-4) and Q_h(C, a) ≈ 0.05 ± 0.02 (terminal
    anti-reward 0.1 with prob 0.5; checked at h >= 1 only: episodes start in A/B, so the data hold no C state
    at h = 0). A single forward-order pass with the same fresh nets leaves Q_0 near the untrained Q_1 ≈ 0."""
    horizon = CRITIC.horizon
    agent, parts = hnpg.make_agent_and_parts(CRITIC)
    env, q_net = parts["env"], parts["q_net"]
    p = np.exp(10.0) / (np.exp(10.0) + 9.0)
    states = 256  # fresh test observations per (h, z)

    @jax.jit
    def run(key):
        init_key, off_key, pass_key, test_key = jax.random.split(key, 4)
        state = agent.init(init_key)
        params = state.env_params

        def expert(h, next_obs, _):  # one-hot good action of the decoded next latent state (at step h + 1)
            z = jnp.argmax(env.decode(next_obs)[..., :3], -1)
            return jax.nn.one_hot(env.good_index(params, z, h + 1), CRITIC.action_dim)

        off = parts["offline_batch"](state.offline, params, off_key)
        fit = lambda backward: parts["critic_pass"](  # noqa: E731
            state.q, pass_key, expert, jnp.arange(horizon), off=off, backward=backward
        )[0]

        def q_good(q, h, z, k):  # Q_h(s, e_good(z, h)) on fresh observations of latent (z, h)
            obs = jax.vmap(lambda kk: env.observe(kk, z, h, params))(jax.random.split(k, states))
            good = jax.nn.one_hot(env.good_index(params, z, h), CRITIC.action_dim)
            return q_net.apply(
                jax.tree.map(lambda x: x[h], q), obs, jnp.broadcast_to(good, (states,) + good.shape)
            )

        keys = jax.random.split(test_key, (horizon, 3))
        per_z = lambda q, h, ks: jax.vmap(lambda z, k: q_good(q, h, z, k))(jnp.arange(3), ks)  # noqa: E731
        grid = lambda q: jax.vmap(lambda h, ks: per_z(q, h, ks))(jnp.arange(horizon), keys)  # noqa: E731
        return grid(fit(True)), grid(fit(False))  # (H, 3 latents, states)

    backward, forward = (np.asarray(x) for x in run(jax.random.PRNGKey(0)))
    target = p ** (horizon - np.arange(horizon))[:, None]  # (H, 1)
    alive_mean = backward[:, :2].mean(-1)  # (H, 2): z = A, B
    np.testing.assert_allclose(alive_mean, np.broadcast_to(target, (horizon, 2)), atol=0.02)
    assert (np.abs(backward[:, :2] - target[..., None]) < 0.02).mean() > 0.8  # most single states too
    np.testing.assert_allclose(backward[1:, 2].mean(-1), 0.05, atol=0.02)
    # forward order: h = 0 bootstraps from the untrained Q_1 (output layer x0.1 at init) -> the check breaks
    forward_mean = forward[0, :2].mean(-1)
    assert bool((np.abs(forward_mean - target[0]) > 0.5).all()), forward_mean
    assert bool((np.abs(forward_mean) < 0.1).all()), forward_mean
    # ... while h = H-1 (target = r, no bootstrap) is the same fit in both orders
    np.testing.assert_allclose(forward[-1], backward[-1], atol=1e-5)


@SLOW_COMPILE
def test_good_action_probability_diagnostic(small):
    """Initial policy (mean ~ 0, std 1): about 1/A per step. A policy that always plays lock A's good
    action: 1 where A and B share the good action, else 1/2 (right in A, wrong in B), so z must be indexed
    correctly."""
    _, parts, state, _ = small
    one_seed = lambda tree: jax.tree.map(lambda x: x[None], tree)  # noqa: E731  (the diagnostic's seed axis)
    policy, env_params = one_seed(state.policy), one_seed(state.env_params)
    diag = hnpg.good_action_probability(parts, n_obs=64, n_act=64)
    p0 = np.asarray(diag(policy, env_params, jax.random.key(0)))
    assert p0.shape == (1, SMALL.horizon)
    np.testing.assert_allclose(p0, 0.1, atol=0.04)

    lock = np.asarray(parts["env"].lock(state.env_params))  # (2, H): good actions in A and in B
    mlp = policy["params"]["TorchMLP_0"]
    last = sorted(mlp)[-1]  # the output layer
    mlp[last]["kernel"] = jnp.zeros_like(mlp[last]["kernel"])
    mlp[last]["bias"] = 5.0 * jax.nn.one_hot(lock[None, 0], SMALL.action_dim)  # (1, H, A)
    policy["params"]["log_std"] = jnp.full_like(policy["params"]["log_std"], -3.0)
    p1 = np.asarray(diag(policy, env_params, jax.random.key(1)))
    np.testing.assert_allclose(p1[0], np.where(lock[0] == lock[1], 1.0, 0.5), atol=1e-3)


def last_critic_gap(counterfactual: float) -> tuple[float, float]:
    """Q_{H-1} fitted on offline data alone (ε = 0: no random action in the data) -> (its one-hot value gap
    from `one_hot_value_gap`, the same gap computed by hand from Q_{H-1})."""
    config = dataclasses.replace(CRITIC, offline_eps=0.0, offline_counterfactual=counterfactual)
    agent, parts = hnpg.make_agent_and_parts(config)
    env, q_net, h = parts["env"], parts["q_net"], config.horizon - 1

    def never(_, next_obs, __):  # next actions only feed Q_{h+1} bootstraps; Q_{H-1} has none
        return jnp.zeros(next_obs.shape[:-1] + (config.action_dim,))

    @jax.jit
    def run(key):
        init_key, off_key, pass_key = jax.random.split(key, 3)
        state = agent.init(init_key)
        off = parts["offline_batch"](state.offline, state.env_params, off_key)
        q = parts["critic_pass"](state.q, pass_key, never, jnp.arange(config.horizon), off=off)[0]
        return q, state.env_params

    q, env_params = run(jax.random.PRNGKey(0))
    one_seed = lambda tree: jax.tree.map(lambda x: x[None], tree)  # noqa: E731
    gap = np.asarray(hnpg.one_hot_value_gap(parts, n_obs=64)(one_seed(q), one_seed(env_params), KEY))
    assert gap.shape == (1, config.horizon)
    lock, q_last = np.asarray(env.lock(env_params)), jax.tree.map(lambda x: x[h], q)
    by_hand = []
    for z in (0, 1):
        obs = jax.vmap(lambda k, z=z: env.observe(k, z, h, env_params))(jax.random.split(KEY, 256))
        values = np.array(  # (A,): Q_{H-1}(s, e_k) averaged over the observations
            [float(q_net.apply(q_last, obs, jnp.broadcast_to(e, (256, 10))).mean()) for e in np.eye(10)]
        )
        by_hand.append(values[lock[z, h]] - np.delete(values, lock[z, h]).mean())
    return float(gap[0, -1]), float(np.mean(by_hand))


@SLOW_COMPILE
def test_counterfactual_branches_let_the_last_critic_tell_good_from_wrong_one_hots():
    """The expert data as collected hold only the good one-hot in on-lock states, so Q_{H-1} cannot rank
    the wrong one-hots below it (gap near 0). With `offline_counterfactual` = 0.5 it sees wrong one-hots
    there and the gap reaches about p - 0.05 (p = e^10/(e^10+9) ~ 1; a wrong action's expected anti-reward
    0.05). The diagnostic agrees with the gap computed by hand."""
    published, published_by_hand = last_critic_gap(0.0)
    branched, branched_by_hand = last_critic_gap(0.5)
    np.testing.assert_allclose([published, branched], [published_by_hand, branched_by_hand], atol=0.03)
    assert abs(published) < 0.3, published
    assert branched > 0.8, branched


def test_authors_run_logs_finished_and_partial(tmp_path):
    """benchmarks/reference/hnpg.py records a log with its summary line as a finished run and one without
    (cut off) as partial, with the samples and best 10-iteration moving average it reached."""
    import argparse
    import json

    from benchmarks.reference import hnpg as reference

    success = [0.0] * 5 + [0.3] * 10 + [0.8] * 10  # moving average 0.5 at iteration 19, 0.55 at 20
    lines = [
        {"success": s, "env_steps": 1000 * (i + 1), "train_s": 2.0, "eval_s": 0.1}
        for i, s in enumerate(success)
    ]
    record = {k: [line[k] for line in lines] for k in lines[0]}
    (tmp_path / "h5_seed0.jsonl").write_text(
        "\n".join([json.dumps(x) for x in lines] + [json.dumps({"summary": record, "wall_s": 60.0})])
    )
    cut_off = "[LOCK] a printed line\n" + "\n".join(json.dumps(x) for x in lines[:12])
    (tmp_path / "h5_seed1.jsonl").write_text(cut_off)
    args = argparse.Namespace(runs_dir=str(tmp_path), horizons=[5], seeds=[0, 1, 2], run_minutes=10.0)
    done, cut = reference.their_runs(args, [])  # seed 2 has no log: no row
    assert not done["partial"] and done["samples_to_solve"] == 20_000 and done["wall_s"] == 60.0
    assert done["success_ma10_best"] == 0.8 and done["iterations"] == 25
    assert cut["partial"] and cut["samples_to_solve"] is None and cut["wall_s"] is None
    assert cut["iterations"] == 12 and cut["samples_run"] == 12_000
    assert cut["success_ma10_best"] == round((0.3 * 7) / 10, 3)
