import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import envs, evaluation
from purerl.envs.wrappers import RunningMeanStd, find_obs_stats
from purerl.evaluation import step_without_reset


def test_unknown_env_lists_valid_names():
    with pytest.raises(ValueError, match="unknown env 'CartPole-v0'.*CartPole-v1.*hopper"):
        envs.make("CartPole-v0")


@pytest.mark.parametrize("name", envs.GYMNAX_ENVS)
def test_gymnax_envs_reset_and_step(name):
    env, params = envs.make(name)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    action = env.action_space(params).sample(jax.random.PRNGKey(1))
    obs2, _, reward, terminated, truncated, info = env.step(jax.random.PRNGKey(2), state, action, params)
    assert obs2.shape == obs.shape == env.observation_space(params).shape
    assert info["final_observation"].shape == obs.shape
    assert terminated.dtype == truncated.dtype == jnp.bool_
    assert np.isfinite(float(reward))


def test_param_kwargs_override_params():
    _, params = envs.make("CartPole-v1", max_steps_in_episode=7)
    assert params.max_steps_in_episode == 7


def run_steps(env, params, n, action=0, key=0):
    obs, state = env.reset(jax.random.PRNGKey(key), params)
    out = []
    for t in range(n):
        obs, state, reward, terminated, truncated, info = env.step(jax.random.PRNGKey(100 + t), state, action,
                                                                   params)
        out.append((obs, reward, terminated, truncated, info))
    return out, state


def test_truncation_keeps_final_observation_and_is_not_termination():
    env, params = envs.make("Pendulum-v1", max_steps_in_episode=5)  # Pendulum never terminates
    steps, _ = run_steps(env, params, 5, action=jnp.array([0.0]))
    *_, (obs, reward, terminated, truncated, info) = steps
    assert bool(truncated) and not bool(terminated)
    # The returned obs is the reset obs; the true next obs is kept in final_observation.
    assert not np.allclose(obs, info["final_observation"])
    before = steps[-2][4]["final_observation"]
    assert not np.allclose(before, info["final_observation"])


def test_episode_stats_report_finished_episode():
    env, params = envs.make("CartPole-v1", max_steps_in_episode=6)
    env = envs.EpisodeStats(env)
    steps, state = run_steps(env, params, 6, action=1)
    rewards = sum(float(s[1]) for s in steps)
    last_info = steps[-1][4]
    assert bool(last_info["episode_done"])
    np.testing.assert_allclose(float(last_info["episode_return"]), rewards)
    assert int(last_info["episode_length"]) == 6
    assert float(state.episode_return) == 0.0 and float(state.returned_episode_return) == rewards


def test_running_mean_std_matches_numpy_and_merges_exactly():
    rng = np.random.default_rng(0)
    data = rng.normal(2.0, 3.0, size=(3, 50, 4)).astype(np.float32)
    stats = []
    for chunk in data:
        s = RunningMeanStd.create((4,))
        for row in chunk:
            s = s.update(jnp.asarray(row)[None])
        np.testing.assert_allclose(s.mean, chunk.mean(0), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(s.var, chunk.var(0), rtol=1e-3, atol=1e-3)
        stats.append(s)
    merged = jax.tree.map(lambda *x: jnp.stack(x), *stats).merge()
    flat = data.reshape(-1, 4)
    np.testing.assert_allclose(merged.mean, flat.mean(0), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(merged.var, flat.var(0), rtol=1e-3, atol=1e-3)


def test_normalize_observation_normalises_final_observation_too():
    env, params = envs.make("Pendulum-v1", max_steps_in_episode=3)
    env = envs.NormalizeObservation(env)
    steps, state = run_steps(env, params, 3, action=jnp.array([0.5]))
    stats = find_obs_stats(state)
    assert stats is not None and float(stats.count) > 3
    info = steps[-1][4]
    assert np.all(np.abs(info["final_observation"]) <= 10.0)


def test_clip_and_rescale_actions():
    env, params = envs.make("Pendulum-v1")  # actions in [-2, 2]
    seen = []

    class Spy(envs.wrappers.Wrapper):
        def step(self, key, state, action, params=None):
            seen.append(np.asarray(action))
            return self._env.step(key, state, action, params)

    obs, state = env.reset(jax.random.PRNGKey(0), params)
    envs.ClipAction(Spy(env)).step(jax.random.PRNGKey(1), state, jnp.array([5.0]), params)
    envs.RescaleAction(Spy(env)).step(jax.random.PRNGKey(1), state, jnp.array([0.5]), params)
    np.testing.assert_allclose(seen[0], [2.0])
    np.testing.assert_allclose(seen[1], [1.0])


def test_brax_env_has_time_limit_and_separate_termination():
    env, params = envs.make("inverted_pendulum", backend="spring", max_steps_in_episode=4)
    assert params.max_steps_in_episode == 4
    step = jax.jit(env.step)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    action = jnp.zeros(env.action_space(params).shape)
    for t in range(4):
        obs, state, reward, terminated, truncated, info = step(jax.random.PRNGKey(t), state, action, params)
    assert bool(truncated) and not bool(terminated)
    assert info["final_observation"].shape == obs.shape


def test_shared_normalisation_pools_the_vmapped_envs():
    env, params = envs.make("Pendulum-v1")
    env = envs.NormalizeObservation(env, axis_name="envs")
    keys = jax.random.split(jax.random.PRNGKey(0), 8)
    raw, _ = jax.vmap(envs.make("Pendulum-v1")[0].reset, in_axes=(0, None))(keys, params)
    _, state = jax.vmap(env.reset, in_axes=(0, None), axis_name="envs")(keys, params)
    stats = find_obs_stats(state)
    # Every env holds the same statistics: those of the whole batch of 8 initial observations.
    np.testing.assert_allclose(stats.mean, np.broadcast_to(raw.mean(0), (8, 3)), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(stats.var, np.broadcast_to(raw.var(0), (8, 3)), rtol=1e-3, atol=1e-4)


def test_step_without_reset_is_step_until_the_episode_ends():
    """`step_without_reset` hands step_env the key that gymnax's `step` does, so up to an episode's end the
    two agree (to float rounding: XLA fuses the two programs differently; here CartPole terminates within
    the 60 steps under random actions); wrappers that carry their own state fall back to `step`."""
    env, params = envs.make("CartPole-v1")
    step, env_step = jax.jit(step_without_reset(env)), jax.jit(env.step)
    obs, state = env.reset(jax.random.key(0), params)
    ended = False
    for i in range(60):
        key = jax.random.fold_in(jax.random.key(1), i)
        action = jax.random.bernoulli(jax.random.fold_in(key, 7)).astype(jnp.int32)
        expected = env_step(key, state, action, params)
        got = step(key, state, action, params)
        final_obs = expected[5]["final_observation"]  # the pre-reset observation, at an episode's end too
        for x, y in zip(jax.tree.leaves((got[0], *got[2:])), jax.tree.leaves((final_obs, *expected[2:5])),
                        strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
        if bool(expected[3] | expected[4]):
            ended = True
            break
        for x, y in zip(jax.tree.leaves(got[1]), jax.tree.leaves(expected[1]), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
        state = expected[1]
    assert ended
    assert step_without_reset(envs.EpisodeStats(env)) is None
    assert step_without_reset(envs.ClipAction(envs.EpisodeStats(env))) is None


@pytest.mark.parametrize("name, wrap, max_steps", [
    ("CartPole-v1", None, 100),  # terminations
    ("Pendulum-v1", envs.ClipAction, None),  # truncations at the time limit, actions clipped
    ("MountainCarContinuous-v0", envs.RescaleAction, 50),
    ("comblock", None, None),
])
def test_evaluation_without_resets_gives_the_returns_of_stepping_with_them(monkeypatch, name, wrap,
                                                                           max_steps):
    """The evaluation steps its envs without the automatic reset (`step_without_reset`); the returns are
    those of `env.step`, whose resets it never read (to float rounding, as above)."""
    env, params = envs.make(name)
    env = wrap(env) if wrap else env
    assert step_without_reset(env) is not None
    space = env.action_space(params)

    def act(key, obs):  # a random policy, so that episodes end at different steps
        return space.sample(key)

    def returns():
        run = jax.jit(lambda key: evaluation.evaluate_policy(env, params, act, key, 16, max_steps))
        return np.asarray(run(jax.random.key(3)))

    without_resets = returns()
    monkeypatch.setattr(evaluation, "step_without_reset", lambda env: None)
    np.testing.assert_allclose(without_resets, returns(), rtol=1e-6)
    assert len(np.unique(without_resets)) > 1
