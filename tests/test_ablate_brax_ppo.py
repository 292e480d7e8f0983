"""benchmarks/ablate_brax_ppo.py: brax's advantages against brax's own compute_gae, the first-state reset,
the patches staying inside their block, bad input."""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from one_line_error import assert_one_line_error

from benchmarks import ablate_brax_ppo as ablate
from purerl import envs
from purerl.agents import ppo


def test_brax_advantages_equal_brax_compute_gae():
    from brax.training.agents.ppo.losses import compute_gae

    steps, num_envs, gamma, lam = 20, 6, 0.97, 0.9
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    rewards = jax.random.normal(keys[0], (steps, num_envs))
    values = jax.random.normal(keys[1], (steps, num_envs))
    bootstrap = jax.random.normal(keys[2], (num_envs,))
    done = jax.random.uniform(keys[3], (steps, num_envs)) < 0.15
    truncated = done & (jax.random.uniform(keys[4], (steps, num_envs)) < 0.5)
    terminated = done & ~truncated
    assert truncated.any() and terminated.any()
    # purerl's next values: the next step's value, or after a truncation the final observation's (which
    # brax never reads: it masks the step); brax's: the next step's value, bootstrap after the last step
    next_values = jnp.concatenate([values[1:], bootstrap[None]])
    purerl_next = jnp.where(truncated, 123.0, next_values)
    vs, brax_adv = compute_gae(truncation=truncated.astype(jnp.float32),
                               termination=terminated.astype(jnp.float32), rewards=rewards, values=values,
                               bootstrap_value=bootstrap, lambda_=lam, discount=gamma)
    adv, targets = ablate.brax_advantages(rewards, values, purerl_next, terminated, done, gamma, lam)
    np.testing.assert_allclose(adv, brax_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets, vs, rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(adv)[np.asarray(truncated)] == 0.0)
    # not purerl's GAE: delta + gamma * A_(t+1) instead of delta + gamma * lam * A_(t+1)
    gae_adv, gae_targets = ppo.gae(rewards, values, purerl_next, terminated, done, gamma, lam)
    assert not np.allclose(adv, gae_adv, atol=1e-3)


def test_first_state_resets_to_the_first_initial_state():
    env, params = envs.make("Pendulum-v1", max_steps_in_episode=3)
    env = ablate.FirstState(env)
    first_obs, state = env.reset(jax.random.PRNGKey(0), params)
    action = jnp.zeros((1,))
    for i in range(6):
        obs, state, _, terminated, truncated, _ = env.step(jax.random.PRNGKey(10 + i), state, action, params)
        if i in (2, 5):  # each episode ends after 3 steps, and starts again from the first state
            assert truncated and not terminated
            np.testing.assert_array_equal(obs, first_obs)
        else:
            assert not np.allclose(obs, first_obs)
    np.testing.assert_array_equal(jax.tree.leaves(state[0]), jax.tree.leaves(state[2]))


def test_patches_hold_inside_their_block_only():
    args = argparse.Namespace(brax_advantages=True, adam_eps=1e-8, brax_network=False, first_state=True,
                              obs_clip=1e6, brax_entropy=False, stats_per_step=True)
    gae, adam, make_env = ppo.gae, optax.adam, ppo.make_env
    with ablate.patched(args):
        assert ppo.gae is ablate.brax_advantages and ppo.make_env is not make_env
        assert optax.adam is not adam
        env, _ = ppo.make_env(ppo.Config(env="Pendulum-v1", normalize_obs=True))
        assert env.clip == 1e6
        # with the statistics updated before SGD the agent normalises: no wrapper
        before_sgd = ppo.Config(env="Pendulum-v1", normalize_obs=True, obs_stats_update="before_sgd")
        env, _ = ppo.make_env(before_sgd)
        assert not isinstance(env, envs.NormalizeObservation)
    assert (ppo.gae, optax.adam, ppo.make_env) == (gae, adam, make_env)
    assert ablate.label(args) == ("brax_advantages + adam_eps=1e-08 + first_state + obs_clip=1000000.0 + "
                                  "stats_per_step")


def test_brax_network_has_brax_shapes_and_std():
    network = ablate.brax_network(3)
    params = network.init(jax.random.PRNGKey(0), jnp.zeros(11))
    policy, value = network.apply(params, jnp.zeros((2, 11)))
    assert policy.loc.shape == (2, 3) and value.shape == (2,)
    np.testing.assert_allclose(policy.scale_diag, jax.nn.softplus(0.0) + 0.001, rtol=1e-6)  # zero biases
    widths = [p["kernel"].shape for p in params["params"]["actor"].values()]
    assert widths == [(11, 32), (32, 32), (32, 32), (32, 32), (32, 6)]


def test_policy_std_adds_nothing_and_reports_the_mean_std():
    import distrax

    scale = jnp.array([[0.2, 0.4], [0.6, 0.8]])
    loss, stats = ablate.policy_std(None, None, distrax.MultivariateNormalDiag(jnp.zeros((2, 2)), scale))
    assert loss == 0.0
    np.testing.assert_allclose(stats["policy_std"], 0.5, rtol=1e-6)


def test_brax_entropy_adds_the_tanh_log_det_of_a_reparameterised_sample():
    import distrax

    def loss(std):  # 3 action dims, 5000 samples of a Normal(0, std)
        policy = distrax.MultivariateNormalDiag(jnp.zeros((5000, 3)), jnp.full((5000, 3), std))
        return ablate.brax_entropy(1e-4)(None, (None, None, jnp.ones(5000)), policy)[0]

    # brute force: -1e-4 * 3 E[log(1 - tanh(u)^2)], u ~ N(0, 0.5^2), and its derivative in the std,
    # 1e-4 * 3 * 2 E[tanh(u) u / std] (the sample is reparameterised, as brax's is)
    u = np.random.default_rng(0).normal(size=1_000_000) * 0.5
    np.testing.assert_allclose(loss(0.5), -3e-4 * np.log(1 - np.tanh(u) ** 2).mean(), rtol=0.02)
    np.testing.assert_allclose(jax.grad(loss)(0.5), 6e-4 * np.mean(np.tanh(u) * u / 0.5), rtol=0.02)


def test_bad_input_is_one_line(capsys):
    assert_one_line_error(ablate.main, ["--env", "ant"], "unknown env 'ant'", capsys)
    assert_one_line_error(ablate.main, ["--budget", "1000"], "budget must hold at least one update", capsys)
    assert_one_line_error(ablate.main, ["--seeds", "0"], "seeds must be positive", capsys)
    assert_one_line_error(ablate.main, ["--obs-clip", "-1"], "obs_clip must not be negative", capsys)
    assert_one_line_error(ablate.main, ["--side", "brax", "--first-state"], "the switches apply", capsys)
    assert_one_line_error(ablate.main, ["--stats-after-sgd"], "--stats-after-sgd applies to", capsys)
    assert_one_line_error(ablate.main, ["--obs-clip", "5"], "--obs-clip needs --stats-per-step", capsys)
    assert_one_line_error(ablate.main, ["--side", "brax", "--budget", str(5 * 81920)],
                          "with --side brax the budget must be a whole number", capsys)


def test_brax_stats_after_sgd_pins_the_adaptive_kl_rate_to_the_fixed_one():
    args = argparse.Namespace(env="hopper", stats_after_sgd=False)
    assert ablate.brax_hp(args) == ablate.bench.BRAX_PPO["hopper"]
    hp = ablate.brax_hp(argparse.Namespace(env="hopper", stats_after_sgd=True))
    lr = ablate.bench.BRAX_PPO["hopper"]["learning_rate"]
    assert hp["learning_rate_schedule"] == "ADAPTIVE_KL"
    assert hp["learning_rate_schedule_min_lr"] == hp["learning_rate_schedule_max_lr"] == lr
    assert hp["learning_rate"] == lr
    assert "learning_rate_schedule" not in ablate.bench.BRAX_PPO["hopper"]  # not changed in place


def test_write_keeps_one_run_per_label_and_budget(tmp_path, monkeypatch):
    import json

    from benchmarks import harness

    monkeypatch.setattr(harness, "RESULTS", tmp_path)  # write() writes there
    run = lambda label, budget, final: harness.result(
        harness.TRAIN, "brax_ppo_ablations_test", "a run", algo="ppo", env="hopper", config={},
        budget=budget, budget_unit="env steps", seeds=[0], compile_s=1.0, run_s=1.0, throughput=1.0,
        throughput_unit="x", per_seed=[final], extra={"label": label})
    for res in (run("a", 10, 1.0), run("a", 20, 2.0), run("b", 10, 3.0), run("a", 10, 4.0)):
        path = ablate.write(res)
    runs = json.loads(open(path).read())["extra"]["runs"]
    assert [(r["extra"]["label"], r["budget"], r["scores"]["final_return"]["per_seed"]) for r in runs] == [
        ("a", 20, [2.0]), ("b", 10, [3.0]), ("a", 10, [4.0])]


def test_brax_curve_reads_brax_recorded_points(tmp_path, monkeypatch):
    import json

    from benchmarks import bench_brax_trainers as bench

    path = tmp_path / "brax_trainers_hopper.json"
    records = [{"eval_points": [10, 20], "eval_curve": [1.0 + seed, 2.0 + seed]} for seed in range(3)]
    path.write_text(json.dumps({"extra": {"parts": {"train_brax": {"records": records}}}}))
    monkeypatch.setattr(bench, "result_path", lambda env: path)
    assert ablate.brax_curve("hopper", [10, 15, 20]) == [[1.0, 2.0, 3.0], None, [2.0, 3.0, 4.0]]
    monkeypatch.setattr(bench, "result_path", lambda env: tmp_path / "missing.json")
    assert ablate.brax_curve("hopper", [10]) == [None]


def test_epoch_recorder_keeps_brax_ppo_policy_std():
    from benchmarks import brax_peer

    epochs = []
    record = brax_peer.epoch_recorder(epochs)
    record(0, {"eval/episode_reward": 1.0})  # no training metrics: skipped
    record(10, {"training/walltime": 1.0, "training/sps": 10.0, "training/policy_dist_mean_std": 0.5})
    record(20, {"training/walltime": 2.0, "training/sps": 10.0})  # SAC's: no policy std
    assert epochs == [{"env_steps": 10, "sps": 10.0, "walltime": 1.0, "policy_std": 0.5},
                      {"env_steps": 20, "sps": 10.0, "walltime": 2.0}]
