"""SubPO's continuous coverage task (purerl.envs.ant_coverage) and its A2C agent (purerl.agents.a2c).

The coverage maths, boundary termination and the 400-step truncation are checked on a scripted point mass
(any base env works under `CoverageEnv`); one test runs the real brax ant to check the wiring (x, y kept in
the observation, coverage read from the torso position)."""


import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from purerl import envs
from purerl.agents import a2c
from purerl.envs.ant_coverage import GRID, CoverageEnv, cover, make_ant_coverage, torso_xy
from purerl.nn import TanhMeanActorCritic
from purerl.sweep import vmap_seeds


# ------------------------------------------------------------------------------------------ point mass
@struct.dataclass
class PointState(environment.EnvState):
    pos: jax.Array
    time: int


class PointMass(environment.Environment):
    """Starts at `start`; the action is the displacement; never terminates on its own."""

    def __init__(self, start=(0.1, 0.1)):
        self.start = jnp.asarray(start, jnp.float32)

    @property
    def default_params(self):
        return environment.EnvParams(max_steps_in_episode=10**9)

    def reset_env(self, key, params):
        return self.start, PointState(pos=self.start, time=0)

    def step_env(self, key, state, action, params):
        pos = state.pos + action
        return pos, PointState(pos=pos, time=state.time + 1), jnp.float32(0.0), jnp.bool_(False), {}

    def is_terminated(self, state, params):
        return jnp.bool_(False)

    def action_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (2,), jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (2,), jnp.float32)


def point_env(reward):
    return CoverageEnv(PointMass(), lambda s: s.pos, reward)


def run_env(env, actions, key=0):
    """Step `env` (gymnax auto-reset API) through `actions`; returns per-step outputs and final state."""
    params = env.default_params

    @jax.jit
    def run(actions):
        obs, state = env.reset(jax.random.PRNGKey(key), params)

        def step(state, inp):
            k, a = inp
            obs, state, r, term, trunc, info = env.step(k, state, a, params)
            return state, (obs, r, term, trunc, info["coverage"], info["final_observation"])

        keys = jax.random.split(jax.random.PRNGKey(key + 1), actions.shape[0])
        return jax.lax.scan(step, state, (keys, actions))

    return run(jnp.asarray(actions, jnp.float32))


def reference_coverage(xys):
    """numpy: mark mask[i:i+5, j:j+5] (cropped to the grid) after each position; covered cells per step."""
    mask = np.zeros((GRID, GRID), bool)
    out = []
    for x, y in xys:
        i, j = int(np.floor((x + 20) / 0.4)), int(np.floor((y + 20) / 0.4))
        mask[max(i, 0):max(i + 5, 0), max(j, 0):max(j + 5, 0)] = True
        out.append(int(mask.sum()))
    return np.array(out)


# scripted positions: cell (50,50) block; 2 cells along x; back (revisit); diagonal; the right edge
# (i = 99: only one row of the block lies in the grid); out of bounds (terminates, marks nothing)
SCRIPT = np.array([[0.1, 0.1], [0.9, 0.1], [0.1, 0.1], [0.9, 0.9], [19.9, 0.1], [20.5, 0.1]], np.float32)
SCRIPT_COVERAGE = [25, 35, 35, 45, 50, 50]  # by hand: +25, +2x5, +0, +5x2, +1x5 (cropped), +0


def test_cover_hand_computed():
    mask, covered = jnp.zeros((GRID, GRID), bool), jnp.int32(0)
    gains, totals = [], []
    for xy in SCRIPT:
        _, _, total_reward = cover(mask, covered, xy, "modular")
        mask, covered, gain = cover(mask, covered, xy, "submodular")
        gains.append(float(gain))
        totals.append(float(total_reward))
    np.testing.assert_array_equal(reference_coverage(SCRIPT), SCRIPT_COVERAGE)
    assert int(covered) == 50 == int(mask.sum())
    np.testing.assert_allclose(gains, [2.5, 1.0, 0.0, 1.0, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(sum(gains), 50 / 10, atol=1e-6)
    np.testing.assert_allclose(totals, np.array(SCRIPT_COVERAGE) / 10, atol=1e-6)


def test_scripted_episode_rewards_and_boundary_termination():
    start = SCRIPT[0]  # the point mass starts there; the first step stays, then it visits SCRIPT[1:]
    actions = np.concatenate([np.zeros((1, 2), np.float32), np.diff(SCRIPT, axis=0)])
    for reward in ("submodular", "modular"):
        state, (obs, r, term, trunc, cov, final_obs) = run_env(point_env(reward), actions)
        np.testing.assert_array_equal(cov, SCRIPT_COVERAGE)
        cells = np.array(SCRIPT_COVERAGE)
        expected = np.diff(cells, prepend=0) / 10 if reward == "submodular" else cells / 10
        np.testing.assert_allclose(r, expected, atol=1e-5)
        # only the step that leaves [-20, 20]^2 terminates; it is not a truncation; the env then resets
        np.testing.assert_array_equal(term, [False] * 5 + [True])
        assert not trunc.any()
        np.testing.assert_allclose(final_obs[-1], SCRIPT[-1], atol=1e-5)
        np.testing.assert_allclose(obs[-1], start)
        assert int(state.covered) == 0 and not state.mask.any() and int(state.time) == 0


def test_random_walk_matches_numpy_and_truncates_at_400():
    rng = np.random.default_rng(0)
    actions = rng.normal(0.0, 0.3, (450, 2)).astype(np.float32)  # stays well inside the grid
    for reward in ("submodular", "modular"):
        _, (obs, r, term, trunc, cov, final_obs) = run_env(point_env(reward), actions)
        assert not term.any()
        np.testing.assert_array_equal(np.flatnonzero(trunc), [399])  # 400-step episodes
        xys = np.array([0.1, 0.1]) + np.cumsum(actions[:400].astype(np.float64), axis=0)
        ref = reference_coverage(xys)
        np.testing.assert_array_equal(cov[:400], ref)
        np.testing.assert_allclose(final_obs[399], xys[-1], atol=1e-4)
        if reward == "submodular":  # marginal gains telescope to the final coverage
            np.testing.assert_allclose(r[:400].sum(), ref[-1] / 10, rtol=1e-5)
        else:  # cumulative coverage each step
            np.testing.assert_allclose(r[:400], ref / 10, atol=1e-5)
        # after the truncation a fresh episode starts from an empty mask
        assert int(cov[400]) == 25


def test_unknown_reward_option():
    with pytest.raises(ValueError, match="reward"):
        point_env("quadratic")
    with pytest.raises(ValueError, match="reward"):
        make_ant_coverage("quadratic")


def test_brax_ant_coverage_wiring():
    """The registered env: 29-d ant observation with the torso x, y first, 400-step limit, coverage from the
    torso position. (Compiling a brax ant *step* costs 30-70 s on the CI CPU, so the step is only traced
    here; benchmarks/bench_subpo_ant.py checks stepped positions against the observation.)"""
    env, params = envs.make("ant_coverage")
    assert env.name == "ant_coverage" and envs.make("ant_coverage_modular")[0].reward == "modular"
    assert params.max_steps_in_episode == 400
    assert env.observation_space(params).shape == (29,)

    @jax.jit
    def reset(key):
        obs, state = env.reset_env(key, params)
        return obs, torso_xy(state.base), state.covered

    obs, xy, covered = reset(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(obs[:2], xy)  # obs[0:2] = torso x, y (positions kept)
    assert 0 < float(jnp.abs(xy).max()) <= 0.1 and int(covered) == 0  # reset noise, no mask
    state = jax.eval_shape(lambda k: env.reset(k, params)[1], jax.random.PRNGKey(0))
    out = jax.eval_shape(lambda k, s, a: env.step(k, s, a, params), jax.random.PRNGKey(0), state,
                         jnp.zeros(8))
    obs_s, state_s, reward_s, term_s, trunc_s, info_s = out
    assert obs_s.shape == (29,) and state_s.mask.shape == (GRID, GRID) and reward_s.shape == ()
    assert info_s["coverage"].dtype == jnp.int32 and info_s["final_observation"].shape == (29,)


# ------------------------------------------------------------------------------------------------ A2C
def mlp_np(layers, x):
    """numpy forward of purerl.nn.MLP's params (ReLU hidden layers, linear output)."""
    names = sorted(layers, key=lambda n: int(n.split("_")[-1]))
    for k, name in enumerate(names):
        x = x @ np.asarray(layers[name]["kernel"], np.float64) + np.asarray(layers[name]["bias"], np.float64)
        if k < len(names) - 1:
            x = np.maximum(x, 0.0)
    return x


def test_a2c_loss_hand_computed():
    net = TanhMeanActorCritic(action_dim=2, discrete=False, hidden=(5, 4), activation="relu",
                              log_std_init=0.1)
    loss_fn = jax.jit(a2c.a2c_loss, static_argnums=(0, 3, 4))  # eager distrax ops are slow on a busy CPU
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(6, 3)).astype(np.float32)
    action = rng.normal(size=(6, 2)).astype(np.float32)
    adv = rng.normal(size=6).astype(np.float32)
    targets = rng.normal(size=6).astype(np.float32)
    params = net.init(jax.random.PRNGKey(0), obs[0])
    params = jax.tree.map(lambda x: x + 0.3 * rng.normal(size=x.shape).astype(np.float32), params)
    p = params["params"]
    mean = np.tanh(mlp_np(p["actor"], obs.astype(np.float64)))
    value = mlp_np(p["critic"], obs.astype(np.float64))[:, 0]
    z = (action - mean) / np.exp(log_std := np.asarray(p["log_std"], np.float64))
    log_prob = np.sum(-0.5 * z**2 - log_std - 0.5 * np.log(2 * np.pi), axis=1)
    entropy = np.sum(0.5 * np.log(2 * np.pi * np.e) + log_std)
    ent_coef, vf_coef = 0.01, 0.7
    expected = -np.mean(log_prob * adv) + vf_coef * 0.5 * np.mean((value - targets) ** 2) - ent_coef * entropy
    loss, stats = loss_fn(net, params, (obs, action, adv, targets), ent_coef, vf_coef)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    np.testing.assert_allclose(float(stats["entropy"]), entropy, rtol=1e-6)
    # the tanh mean keeps |mean| < 1 even for huge pre-activations; the log-std starts at 0.1
    assert np.all(np.abs(mean) < 1)
    np.testing.assert_allclose(net.init(jax.random.PRNGKey(0), obs[0])["params"]["log_std"], 0.1)
    # advantages and targets are constants: the policy term's log_std gradient is, by hand,
    # -mean_b[A_b (z_b^2 - 1)] per action dimension (z = (a - mean) / std)
    policy_term = lambda q: a2c.a2c_loss(net, q, (obs, action, adv, targets), 0.0, 0.0)[0]  # noqa: E731
    grads = jax.jit(jax.grad(policy_term))(params)
    np.testing.assert_allclose(grads["params"]["log_std"], -np.mean(adv[:, None] * (z**2 - 1), 0), rtol=1e-4)


CARTPOLE = a2c.Config(
    env="CartPole-v1", total_timesteps=51_200, num_envs=8, num_steps=32, lr=7e-4, hidden=(64, 64)
)


@pytest.fixture(scope="module")
def cartpole_runs():
    return vmap_seeds(a2c.make_train(CARTPOLE), [0, 1])


def test_a2c_learns_cartpole(cartpole_runs):
    """Random CartPole policies last ~22 steps; 51k steps of A2C (200 updates) reach ~200-270 (episode
    returns of the last 10 updates, seeds 0 and 1, when calibrated). A broken update (wrong sign, frozen
    actor) stays far below 120."""
    _, metrics = cartpole_runs
    returns = metrics["episode_return"]
    first, last = np.nanmean(returns[:, :5], axis=1), np.nanmean(returns[:, -10:], axis=1)
    assert first.max() < 40, first
    assert last.min() > 120, last


def test_a2c_seed_of_vmapped_batch_equals_single_run(cartpole_runs):
    state, metrics = cartpole_runs
    single_state, single = jax.jit(a2c.make_train(CARTPOLE))(jax.random.PRNGKey(1))
    for name in ("loss", "value_loss", "entropy", "episode_return"):
        np.testing.assert_allclose(single[name], metrics[name][1], rtol=1e-4, atol=1e-5, err_msg=name)
    for a, b in zip(jax.tree.leaves(single_state.params), jax.tree.leaves(state.params), strict=True):
        np.testing.assert_allclose(a, b[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"lr": 0.0}, "lr"),
        ({"num_envs": 0}, "num_envs"),
        ({"total_timesteps": 100}, "total_timesteps"),
        ({"ent_coef": -1.0}, "ent_coef"),
        ({"gae_lambda": 1.5}, "gae_lambda"),
        ({"activation": "sigmoid"}, "activation"),
        ({"env": "ant_coverage_quadratic"}, "unknown env"),
    ],
)
def test_a2c_bad_config(change, match):
    with pytest.raises(ValueError, match=match):
        a2c.make_agent(dataclasses.replace(CARTPOLE, **change))


def test_a2c_rollout_bootstraps_on_truncation():
    """Pendulum-v1 never terminates; with a 4-step limit every 4th step is a truncation. The rollout A2C uses
    keeps the true next observation there (not the reset one) and the A2C advantage bootstraps from it."""
    from purerl.returns import gae
    from purerl.rollout import make_rollout

    config = dataclasses.replace(CARTPOLE, env="Pendulum-v1", max_episode_steps=4, num_envs=2, num_steps=6)
    env, env_params = a2c.make_env(config)
    network = a2c.make_network(config, env, env_params)
    agent = a2c.make_agent(config)

    @jax.jit
    def run(key):
        state = agent.init(key)
        rollout, critic = make_rollout(network, env, env_params, 2, 6)
        _, _, traj = rollout(state.params, state.env_state, state.obs, key)
        values, next_values = critic(state.params, traj)
        adv, _ = gae(traj.reward, values, next_values, traj.terminated, traj.done, 0.9, 0.0)
        return traj, values, next_values, network.apply(state.params, traj.final_obs[3], method="value"), adv

    traj, values, next_values, value_at_truncation, adv = run(jax.random.PRNGKey(0))
    assert not traj.terminated.any()
    np.testing.assert_array_equal(traj.done[:, 0], [False, False, False, True, False, False])
    assert not np.allclose(traj.final_obs[3], traj.obs[4])  # the pre-reset observation, not the reset one
    np.testing.assert_allclose(traj.final_obs[2], traj.obs[3])  # elsewhere it is the next observation
    np.testing.assert_allclose(next_values[3], value_at_truncation, rtol=1e-5, atol=1e-6)  # other batch size
    expected = traj.reward[3] + 0.9 * next_values[3] - values[3]  # lambda = 0: one-step TD with bootstrap
    np.testing.assert_allclose(adv[3], expected, rtol=1e-5, atol=1e-5)
