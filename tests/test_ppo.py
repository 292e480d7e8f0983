"""PPO: learning, determinism across vmap/devices/resume, CLI outputs, bad input."""

import dataclasses
import json
import os
import runpy
import shutil
import sys

import jax
import numpy as np
import pytest

from purerl import runner
from purerl.agent import train_fn
from purerl.agents import ppo
from purerl.cli import main as cli_main
from purerl.envs.wrappers import find_obs_stats
from purerl.returns import gae
from purerl.rollout import make_env

# A tiny budget shared by the determinism tests: 6 iterations of 4 envs x 32 steps.
TINY = ppo.Config(env="CartPole-v1", total_timesteps=6 * 128, num_envs=4, num_steps=32, eval_episodes=8)
SEEDS = [0, 1, 2, 3]


@pytest.fixture(scope="module")
def tiny_agent():
    return ppo.make_agent(TINY)


@pytest.fixture(scope="module")
def vmapped_run(tiny_agent):
    options = runner.RunOptions(num_seeds=len(SEEDS), chunk_iterations=3, progress=False)
    return runner.run("ppo", tiny_agent, options)


def test_seed_i_of_vmapped_batch_equals_single_run(tiny_agent, vmapped_run):
    options = runner.RunOptions(num_seeds=1, seed=2, chunk_iterations=3, progress=False)
    single = runner.run("ppo", tiny_agent, options)
    for name, values in single.metrics.items():
        np.testing.assert_allclose(values[0], vmapped_run.metrics[name][2], rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    leaves = zip(jax.tree.leaves(single.state.params), jax.tree.leaves(vmapped_run.state.params), strict=True)
    for a, b in leaves:
        np.testing.assert_allclose(a[0], b[2], rtol=1e-5, atol=1e-6)


def test_make_train_equals_runner_chunks(tiny_agent, vmapped_run):
    """The pure `train(key)` and the runner's chunked program compute the same run."""
    state, metrics = jax.jit(train_fn(tiny_agent))(jax.random.PRNGKey(1))
    np.testing.assert_allclose(metrics["episode_return"], vmapped_run.metrics["episode_return"][1], rtol=1e-5)
    np.testing.assert_allclose(metrics["value_loss"], vmapped_run.metrics["value_loss"][1], rtol=1e-5)


def full_and_resumed_runs(agent, options, tmp_path):
    """A run of `agent` to the end, and the same run resumed after a simulated crash at its next-to-last
    checkpoint (the final checkpoint and the summary dropped); both must be bit-identical."""
    full = runner.run("ppo", agent, dataclasses.replace(options, out=str(tmp_path / "full")))
    crashed = tmp_path / "crashed"
    shutil.copytree(tmp_path / "full", crashed)
    shutil.rmtree(crashed / "checkpoints" / str(agent.num_iterations))
    os.remove(crashed / "summary.json")
    resumed = runner.run("ppo", agent, options, resume_dir=str(crashed))
    assert resumed.summary["resumed_from"] == agent.num_iterations - options.checkpoint_every
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for name in full.metrics:
        np.testing.assert_array_equal(full.metrics[name], resumed.metrics[name])
    np.testing.assert_array_equal(full.returns, resumed.returns)
    return full, resumed


def test_resume_is_bit_identical(tiny_agent, tmp_path):
    # vmapped_run's seeds and chunks: the same programs, loaded from the compilation cache
    options = runner.RunOptions(num_seeds=len(SEEDS), chunk_iterations=3, checkpoint_every=3, progress=False)
    full_and_resumed_runs(tiny_agent, options, tmp_path)  # crashed after iteration 3 of 6


def test_cli_writes_documented_files(tmp_path, capsys):
    out = tmp_path / "run"
    # TINY over vmapped_run's seeds and chunks: the same programs, loaded from the compilation cache
    cli_main(["train", "ppo", "--total-timesteps", "768", "--num-steps", "32", "--eval-episodes", "8",
              "--num-seeds", str(len(SEEDS)), "--chunk-iterations", "3", "--out", str(out), "--no-progress"])
    assert sorted(os.listdir(out)) == ["checkpoints", "config.json", "metrics.csv", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    for key in ["final_return_mean", "final_return_min", "final_return_max", "final_return_per_seed",
                "compile_s", "run_s", "env_steps_per_s", "versions", "machine"]:
        assert key in summary
    assert len(summary["final_return_per_seed"]) == 4 and summary["versions"]["jax"] == jax.__version__
    assert summary["budget_unit"] == "env steps" and summary["total_timesteps"] == 768
    config = json.loads((out / "config.json").read_text())
    assert config["algo"] == "ppo" and config["config"]["num_steps"] == 32
    header, *rows = (out / "metrics.csv").read_text().splitlines()
    assert header == "seed,iteration,env_steps,metric,value"
    assert {r.split(",")[0] for r in rows} == {"0", "1", "2", "3"}
    assert any(",episode_return," in r for r in rows)
    assert "final return" in capsys.readouterr().out
    # Resuming a finished run changes nothing and keeps the files.
    cli_main(["train", "--resume", str(out)])
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["final_return_per_seed"] == summary["final_return_per_seed"]


def test_existing_output_dir_is_refused(tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit):
        cli_main(["train", "ppo", "--total-timesteps", "768", "--num-steps", "32", "--out", str(out)])
    assert "not empty" in capsys.readouterr().err
    assert os.listdir(out) == ["keep.txt"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "dqn"], "unknown algorithm 'dqn'; valid algorithms: "),
        (["train", "ppo", "--env", "Nope-v0"], "unknown env 'Nope-v0'; valid envs: CartPole-v1"),
        (["train", "ppo", "--num-minibatches", "3"], "not divisible by num_minibatches"),
        (["train", "ppo", "--total-timesteps", "0"], "total_timesteps must be positive"),
        (["train", "ppo", "--num-envs", "-1"], "num_envs must be positive"),
        (["train", "ppo", "--num-seeds", "3", "--num-devices", "2"], "not divisible by num_devices"),
        (["train", "ppo", "--num-devices", "64"], "only 2 device"),
        (["train", "ppo", "--recompute-advantages", "minibatch", "--segment-length", "7"],
         "segment_length = 7 must divide num_steps = 128"),
        (["train", "ppo", "--recompute-advantages", "minibatch", "--segment-length", "128", "--num-envs", "2",
          "--num-minibatches", "4"], "num_minibatches = 4 the number of segments"),
        (["train", "ppo", "--obs-stats-update", "before_sgd"],
         "obs_stats_update=before_sgd needs normalize_obs"),
    ],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(SystemExit):
        cli_main(argv + ["--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_unsupported_action_space_is_refused():
    class FakeSpace:
        pass

    with pytest.raises(ValueError, match="action space"):
        ppo.check_action_space(FakeSpace())


# In this process the module is already imported, which `python -m` (a fresh interpreter) never sees.
@pytest.mark.filterwarnings("ignore:'purerl.agents.ppo' found in sys.modules:RuntimeWarning")
def test_module_entry_point_matches_cli_help(monkeypatch, capsys):
    """`python -m purerl.agents.ppo --help`, run as `python -m` runs it (runpy, as `__main__`) but in this
    process: a subprocess would spend its time importing jax and the envs again, to test the same lines."""
    monkeypatch.setattr(sys, "argv", ["purerl.agents.ppo", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("purerl.agents.ppo", run_name="__main__", alter_sys=True)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--num-minibatches" in out and "--num-seeds" in out and "--checkpoint-every" in out


@pytest.mark.slow
def test_ppo_learns_cartpole_in_100k_steps():
    config = dataclasses.replace(ppo.Config(), total_timesteps=100_000, eval_episodes=32)
    result = runner.run("ppo", ppo.make_agent(config), runner.RunOptions(num_seeds=2, progress=False))
    # A random policy scores ~22; a broken update stays far below this.
    assert result.returns.mean(axis=1).min() > 150, result.returns.mean(axis=1)


@pytest.mark.slow
def test_ppo_continuous_improves_on_pendulum():
    config = ppo.Config(env="Pendulum-v1", total_timesteps=16 * 256 * 40, num_envs=16, num_steps=256,
                        update_epochs=10, num_minibatches=8, lr=1e-3, gamma=0.95, ent_coef=0.0,
                        clip_value=False, normalize_obs=True, eval_episodes=16)
    result = runner.run("ppo", ppo.make_agent(config), runner.RunOptions(num_seeds=1, progress=False))
    first = np.nanmean(result.metrics["episode_return"][0, :2])
    last = result.returns.mean()
    # 164k steps: the start is ~-1260 and a broken update stays there; measured -1122 here. The full
    # 1M-step x 4-seed run (benchmarks/results/ppo_pendulum_1m_4seeds.json) reaches -145.
    assert last > first + 100, (first, last)


def test_value_hidden_gives_the_critic_its_own_widths_and_defaults_to_the_actors():
    def widths(params, part):
        layers = params["params"][part]
        return [layers[f"Dense_{i}"]["kernel"].shape[1] for i in range(len(layers))]

    pendulum = ppo.Config(env="Pendulum-v1", hidden=(32,) * 4, value_hidden=(256,) * 5)
    # the parameters' shapes, without computing them
    params = jax.eval_shape(ppo.make_agent(pendulum).init, jax.random.PRNGKey(0)).params
    assert widths(params, "actor") == [32] * 4 + [1]
    assert widths(params, "critic") == [256] * 5 + [1]
    same = jax.eval_shape(ppo.make_agent(dataclasses.replace(pendulum, value_hidden=())).init,
                          jax.random.PRNGKey(0)).params
    assert widths(same, "critic") == [32] * 4 + [1]


def test_reward_scale_scales_what_gae_sees_and_not_the_reported_return(monkeypatch):
    seen = []

    def recording_gae(reward, *args):
        jax.debug.callback(lambda r: seen.append(np.asarray(r)), reward)  # the rewards GAE gets, at run time
        return gae(reward, *args)

    gae = ppo.gae
    monkeypatch.setattr(ppo, "gae", recording_gae)
    metrics = []
    # one Pendulum-v1 episode (200 steps) per env, one minibatch step
    config = ppo.Config(env="Pendulum-v1", total_timesteps=400, num_envs=2, num_steps=200, update_epochs=1,
                        num_minibatches=1)
    for scale in (1.0, 3.0):
        agent = ppo.make_agent(dataclasses.replace(config, reward_scale=scale))
        metrics.append(jax.jit(agent.update)(agent.init(jax.random.PRNGKey(0)))[1])
    assert np.all(seen[0] < 0)  # Pendulum's rewards are negative costs
    np.testing.assert_array_equal(seen[1], 3.0 * seen[0])
    assert np.isfinite(metrics[0]["episode_return"])
    assert metrics[1]["episode_return"] == metrics[0]["episode_return"]


def recorded_gae_calls(monkeypatch, config):
    """One update of PPO with `config`; every call of GAE in it as (inputs, outputs), in call order."""
    calls = []

    def recording_gae(*args):
        out = gae(*args)
        jax.debug.callback(lambda *xs: calls.append([np.asarray(x) for x in xs]), *args[:5], *out)
        return out

    monkeypatch.setattr(ppo, "gae", recording_gae)
    agent = ppo.make_agent(config)
    jax.block_until_ready(jax.jit(agent.update)(agent.init(jax.random.PRNGKey(0))))
    return calls


# Pendulum with a 50-step time limit: each env's 60-step rollout holds a truncation at step 50 (inside the
# third 20-step segment) and two segment boundaries that are no episode boundaries.
RECOMPUTE = ppo.Config(env="Pendulum-v1", total_timesteps=120, num_envs=2, num_steps=60, update_epochs=1,
                       num_minibatches=1, max_episode_steps=50, gamma=0.9, gae_lambda=0.8)


def test_minibatch_advantages_are_gae_within_each_segment(monkeypatch):
    config = dataclasses.replace(RECOMPUTE, recompute_advantages="minibatch", segment_length=20)
    (rollout_call, segment_call) = recorded_gae_calls(monkeypatch, config)
    rewards, values, next_values, terminated, done, _, _ = rollout_call
    assert rewards.shape == (60, 2) and segment_call[0].shape == (20, 6) and done[49].all()
    # brute force: GAE of each env's steps [20k, 20k + 20) alone, from the whole rollout's inputs (one
    # minibatch step: the critic that recomputes is still the rollout's)
    expected = []
    for env in range(2):
        for k in range(3):
            part = slice(20 * k, 20 * k + 20)
            adv, target = gae(rewards[part, env], values[part, env], next_values[part, env],
                              terminated[part, env], done[part, env], config.gamma, config.gae_lambda)
            expected.append((np.asarray(adv), np.asarray(target)))
    got_adv, got_target = segment_call[5].T, segment_call[6].T  # rows: segments, in shuffled order
    for adv, target in expected:
        row = np.argmin(np.abs(got_adv - adv).sum(axis=1))
        np.testing.assert_allclose(got_adv[row], adv, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got_target[row], target, rtol=1e-5, atol=1e-5)
    # cut into segments, GAE differs from the whole rollout's before each cut that is no episode's end
    whole = rollout_call[5]
    assert not np.allclose(whole[19], expected[0][0][19], atol=1e-3)


def test_epoch_advantages_are_recomputed_with_the_current_critic(monkeypatch):
    config = dataclasses.replace(RECOMPUTE, recompute_advantages="epoch", update_epochs=2)
    rollout_call, first_epoch, second_epoch = recorded_gae_calls(monkeypatch, config)
    for got, want in zip(first_epoch, rollout_call, strict=True):  # the rollout's critic: the same GAE
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(second_epoch[0], rollout_call[0])  # same rewards, a trained critic
    assert not np.allclose(second_epoch[1], rollout_call[1])
    never = recorded_gae_calls(monkeypatch, dataclasses.replace(config, recompute_advantages="never"))
    assert len(never) == 1


def test_tanh_squash_sends_tanh_of_the_sample_to_the_env_and_acts_squashed():
    from purerl.envs import TanhAction, make
    from purerl.envs.wrappers import tanh_to_bounds

    env, params = make("Pendulum-v1")  # actions in [-2, 2]
    space = env.action_space(params)
    u = np.array([3.0], np.float32)
    np.testing.assert_allclose(tanh_to_bounds(u, space), 2.0 * np.tanh(3.0), rtol=1e-6)
    np.testing.assert_allclose(tanh_to_bounds(np.array([-50.0]), space), -2.0)
    key = jax.random.PRNGKey(0)
    obs, state = env.reset(key, params)
    wrapped = TanhAction(env).step(key, state, u, params)
    direct = env.step(key, state, tanh_to_bounds(u, space), params)
    np.testing.assert_array_equal(wrapped[0], direct[0])
    np.testing.assert_array_equal(wrapped[2], direct[2])

    config = ppo.Config(env="Pendulum-v1", action_squash="tanh", log_std_init=1.0)
    agent = ppo.make_agent(config)
    train_state = agent.init(jax.random.PRNGKey(1))
    batch = np.tile(np.asarray(obs), (256, 1))
    mean = agent.policy.act_fn(train_state, True)(key, batch)
    pi = ppo.make_network(config, env, params).apply(train_state.params, batch, method="policy")
    np.testing.assert_allclose(mean, tanh_to_bounds(pi.mode(), space), rtol=1e-6)
    sampled = agent.policy.act_fn(train_state, False)(key, batch)
    np.testing.assert_allclose(sampled, tanh_to_bounds(pi.sample(seed=key), space), rtol=1e-6)
    assert np.all(np.abs(sampled) <= 2.0) and np.std(sampled) > 0.5


def test_state_dependent_std_is_softplus_of_a_second_actor_output():
    config = ppo.Config(env="Pendulum-v1", state_dependent_std=True, hidden=(8,))
    agent = ppo.make_agent(config)
    params = agent.init(jax.random.PRNGKey(0)).params
    assert "log_std" not in params["params"]
    head = params["params"]["actor"]["Dense_1"]
    assert head["kernel"].shape == (8, 2)  # the mean and the std's pre-activation of the one action
    env, env_params = make_env(config)
    network = ppo.make_network(config, env, env_params)
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    # the last layer starts near 0 (orthogonal, scale 0.01): std = softplus(~0) + 0.001 ~ 0.694
    std = network.apply(params, obs, method="policy").stddev()
    np.testing.assert_allclose(std, np.log(2.0) + 0.001, atol=0.02)
    # brute force: the std is softplus of the second output + 0.001, and varies with the state
    params["params"]["actor"]["Dense_1"]["kernel"] = head["kernel"].at[:, 1].set(1.0)
    first = params["params"]["actor"]["Dense_0"]
    hidden = np.tanh(np.asarray(obs) @ np.asarray(first["kernel"]) + np.asarray(first["bias"]))
    raw = hidden @ np.ones(8) + head["bias"][1]
    std = network.apply(params, obs, method="policy").stddev()[:, 0]
    np.testing.assert_allclose(std, np.logaddexp(0.0, raw) + 0.001, rtol=1e-5)
    assert np.ptp(std) > 0.1


# Pendulum, 2 envs x 64 steps, one minibatch step per update: obs_stats_update=before_sgd
BEFORE_SGD = ppo.Config(env="Pendulum-v1", total_timesteps=256, num_envs=2, num_steps=64, update_epochs=1,
                        num_minibatches=1, normalize_obs=True, obs_stats_update="before_sgd", hidden=(16,))


def test_before_sgd_statistics_take_in_each_batch_before_the_loss_reads_it(monkeypatch):
    rollouts, losses = [], []
    make_rollout = ppo.make_rollout

    def recording_make_rollout(*args):
        rollout, critic = make_rollout(*args)

        def recording_rollout(*inputs):
            env_state, obs, traj = rollout(*inputs)
            jax.debug.callback(lambda *xs: rollouts.append([np.asarray(x) for x in xs]),
                               traj.obs, traj.action, traj.log_prob)
            return env_state, obs, traj

        return recording_rollout, critic

    def recording_loss(params, minibatch, policy):
        jax.debug.callback(lambda obs: losses.append(np.asarray(obs)), minibatch[0])
        return 0.0, {}

    monkeypatch.setattr(ppo, "make_rollout", recording_make_rollout)
    agent = ppo.make_agent(BEFORE_SGD, extra_loss=recording_loss)
    update = jax.jit(agent.update)
    first = jax.block_until_ready(update(agent.init(jax.random.PRNGKey(0)))[0])
    second = jax.block_until_ready(update(first)[0])
    (raw_1, _, _), (raw_2, action_2, log_prob_2) = rollouts
    # brute force: the statistics are the moments of every raw observation so far (after a 1e-4 prior)
    for state, seen in ((first, raw_1), (second, np.concatenate([raw_1, raw_2]))):
        seen = seen.reshape(-1, 3).astype(np.float64)
        np.testing.assert_allclose(state.obs_stats.mean, seen.mean(axis=0), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(state.obs_stats.var, seen.var(axis=0), rtol=1e-4, atol=1e-4)
    # the loss reads the first batch under statistics that include it: standardised (after updating
    # the statistics with the batch instead, it would be the raw batch, Pendulum's speed of std ~2)
    np.testing.assert_allclose(losses[0].mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(losses[0].std(axis=0), 1.0, atol=1e-3)
    # the second rollout acted under the first update's statistics, held fixed, with its params
    env, env_params = make_env(BEFORE_SGD)
    network = ppo.make_network(BEFORE_SGD, env, env_params)
    pi = network.apply(first.params, first.obs_stats.normalize(raw_2), method="policy")
    np.testing.assert_allclose(pi.log_prob(action_2), log_prob_2, rtol=1e-5, atol=1e-5)
    # the env gives raw observations: no NormalizeObservation wrapper underneath the agent's own
    assert find_obs_stats(first.env_state) is None
    # evaluation and saved runs act with the agent's statistics
    obs = raw_2[0]
    np.testing.assert_allclose(agent.policy.act_fn(second, True)(jax.random.PRNGKey(1), obs),
                               network.apply(second.params, second.obs_stats.normalize(obs),
                                             method="policy").mode(), rtol=1e-6)


def test_before_sgd_resume_is_bit_identical(tmp_path):
    agent = ppo.make_agent(dataclasses.replace(BEFORE_SGD, total_timesteps=4 * 128, eval_episodes=2))
    options = runner.RunOptions(num_seeds=2, chunk_iterations=2, checkpoint_every=2, progress=False)
    full, _ = full_and_resumed_runs(agent, options, tmp_path)  # crashed after iteration 2 of 4
    assert full.state.obs_stats.count.shape == (2,)  # the statistics are in the checkpoint, one per seed
