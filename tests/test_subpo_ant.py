"""SubPO's continuous coverage task (purerl.envs.ant_coverage) and its A2C agent (purerl.agents.a2c).

The coverage maths, boundary termination and the 400-step truncation are checked on a scripted point mass
(any base env works under `CoverageEnv`); one test runs the real brax ant to check the wiring (x, y kept in
the observation, coverage read from the torso position)."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from purerl import envs
from purerl.envs.ant_coverage import GRID, CoverageEnv, cover, make_ant_coverage, torso_xy


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
        expected = np.diff(SCRIPT_COVERAGE, prepend=0) / 10 if reward == "submodular" else np.array(SCRIPT_COVERAGE) / 10
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
    assert 0 < float(jnp.abs(xy).max()) <= 0.1 and int(covered) == 0  # reset noise only; empty mask
    state = jax.eval_shape(lambda k: env.reset(k, params)[1], jax.random.PRNGKey(0))
    out = jax.eval_shape(lambda k, s, a: env.step(k, s, a, params), jax.random.PRNGKey(0), state, jnp.zeros(8))
    obs_s, state_s, reward_s, term_s, trunc_s, info_s = out
    assert obs_s.shape == (29,) and state_s.mask.shape == (GRID, GRID) and reward_s.shape == ()
    assert info_s["coverage"].dtype == jnp.int32 and info_s["final_observation"].shape == (29,)
