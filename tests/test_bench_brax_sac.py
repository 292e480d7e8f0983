"""benchmarks/bench_brax_sac.py: purerl's SAC set up as brax's sac.train, the timed window, bad input."""

import pytest
from one_line_error import assert_one_line_error

from benchmarks import bench_brax_sac as bench
from purerl.agents import sac
from purerl.logging import write_json


@pytest.mark.parametrize("env", sorted(bench.BRAX_SAC))
def test_purerl_config_takes_brax_settings(env):
    hp = bench.BRAX_SAC[env]
    budget = bench.budget_for(hp, epochs=6)
    config = bench.purerl_config(env, "spring", budget, hp)
    sac.validate(config)
    assert budget == hp["min_replay_size"] + 6 * bench.STEPS_PER_EPOCH * hp["num_envs"]
    assert config.num_iterations * config.steps_per_iteration == budget  # whole iterations: one per epoch
    assert config.utd * config.num_envs == hp["grad_updates_per_step"]  # gradient steps per env step
    assert (config.num_envs, config.batch_size, config.learning_starts) == (
        hp["num_envs"], hp["batch_size"], hp["min_replay_size"])
    assert (config.gamma, config.reward_scale) == (hp["discounting"], hp["reward_scaling"])
    assert config.actor_lr == config.critic_lr == hp["learning_rate"] and config.alpha_lr == 3e-4
    assert (config.tau, config.init_alpha, config.target_entropy_scale) == (0.005, 1.0, 0.5)
    assert (config.hidden, config.activation, config.max_episode_steps) == ((256, 256), "relu", 1000)
    assert config.normalize_obs == hp["normalize_observations"] is True
    ablation = bench.purerl_config(env, "spring", budget, hp, normalize_obs=False)
    assert not ablation.normalize_obs


def test_steady_window_starts_after_the_last_iteration_that_holds_prefill_steps():
    config = bench.purerl_config("hopper", "spring", bench.budget_for(bench.BRAX_SAC["hopper"], 4),
                                 bench.BRAX_SAC["hopper"])
    # 8192 prefill transitions = 64 steps of 128 envs: the 64th learns, so iterations 1-8 (8 steps each) hold
    # prefill steps and 9-12 are timed
    stamps = [(1024 * i, 100.0 + i) for i in range(1, 9)] + [(1024 * i, 108.0 + 10 * (i - 8)) for i in
                                                               range(9, 13)]
    window = bench.steady_window(config, stamps)
    assert window == {"run_s": 40.0, "env_steps_timed": 4 * 1024, "env_steps_per_s": round(4096 / 40, 1)}


def test_steady_window_needs_an_iteration_after_the_prefill():
    config = bench.purerl_config("hopper", "spring", 8192, bench.BRAX_SAC["hopper"])
    with pytest.raises(ValueError, match="no iteration after the prefill"):
        bench.steady_window(config, [(1024 * i, float(i)) for i in range(1, 9)])


@pytest.mark.parametrize("argv, message", [
    (["--env", "ant"], "unknown env 'ant'"),
    (["--backend", "mjx"], "unknown backend 'mjx'"),
    (["--epochs", "2"], "epochs must be at least 3"),
    (["--rounds", "0"], "rounds must be positive"),
    (["--part", "returns", "--seeds", "1"], "seeds must be at least 2"),
    (["--part", "returns", "--budget", "100000"], "budget 100,000 is not the prefill (8,192) plus"),
    (["--part", "returns", "--budget", "10240"], "budget 10,240 is not"),  # the prefill and 2 epochs
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert_one_line_error(bench.main, argv, message, capsys)


def test_brax_speed_counts_the_prefill_with_the_first_epoch():
    """brax's SAC counts (and times) its prefill with the first epoch: the surplus of the first two epochs
    over the steady rate is the compiles and the prefill, and the steady rate ignores both."""
    epochs = [{"env_steps": 110, "walltime": 5.0}, {"env_steps": 120, "walltime": 8.0},
              {"env_steps": 130, "walltime": 9.0}, {"env_steps": 140, "walltime": 10.0}]
    speed = bench.peer.brax_speed({"epochs": epochs}, prefill_steps=100)
    assert speed == {"compile_s": 6.0, "run_s": 2.0, "env_steps_timed": 20, "env_steps_per_s": 10.0}


def test_returns_resume_from_kept_records_and_compare_the_seed_means(tmp_path, monkeypatch):
    """Both sides' records kept for this budget (purerl's: and its config) are reused (nothing trains), and
    the result's comparison is purerl's mean minus brax's over the seeds' mean returns, per policy mode; the
    ablation without observation normalisation is compared with the matched run."""
    monkeypatch.setattr(bench, "returns_dir", lambda env: tmp_path)
    budget = bench.budget_for(bench.BRAX_SAC["hopper"], 3)

    def record(seed, deterministic, stochastic):
        return {"seed": seed, "returns": {"deterministic": deterministic, "stochastic": stochastic}}

    brax_returns = ([100.0, 200.0], [300.0, 300.0], [500.0, 700.0])  # per seed: mean 150, 300, 600
    for seed, returns in zip(bench.RETURNS_SEEDS, brax_returns, strict=True):
        write_json(tmp_path / f"brax_seed{seed}.json",
                   {"budget": budget, "records": [record(seed, returns, [0.0, 2.0])]})
    hp = bench.BRAX_SAC["hopper"]
    for name, normalize_obs, returns in (("purerl_seeds.json", True, (400.0, 500.0, 600.0)),
                                         ("purerl_raw_obs_seeds.json", False, (100.0, 200.0, 300.0))):
        config = bench.as_json(bench.purerl_config("hopper", "spring", budget, hp, normalize_obs))
        write_json(tmp_path / name, {"budget": budget, "config": config, "records": [
            {**record(seed, [r], [1.0]), "compile_s": 20.0, "run_s_all_seeds": 100.0, "seeds_in_program": 3}
            for seed, r in zip(bench.RETURNS_SEEDS, returns, strict=True)]})
    monkeypatch.setattr(bench, "purerl_final_policies", lambda *args: pytest.fail("a kept run trained again"))
    res = bench.returns_result("hopper", "spring", budget)
    deterministic = res["extra"]["returns"]["deterministic"]
    assert deterministic["brax"] == [150.0, 300.0, 600.0] and deterministic["purerl"] == [400.0, 500.0, 600.0]
    assert deterministic["purerl_minus_brax"]["difference"] == pytest.approx(500.0 - 350.0)
    assert deterministic["purerl_raw_obs"] == [100.0, 200.0, 300.0]
    assert deterministic["normalised_minus_raw_obs"]["difference"] == pytest.approx(300.0)
    assert deterministic["normalised_minus_raw_obs"]["seeds"] == [0, 1, 2]
    assert res["extra"]["returns"]["stochastic"]["purerl_minus_brax"]["difference"] == pytest.approx(0.0)
    assert res["comparison"]["difference"] == pytest.approx(150.0)
    assert res["scores"]["final_return"]["mean"] == pytest.approx(500.0)
    throughput = round(3 * budget / 100.0, 1)  # env steps/s of all seeds
    assert (res["compile_s"], res["run_s"], res["throughput"]["value"]) == (20.0, 100.0, throughput)
    # records of another budget are not reused: the side would train again
    assert bench.kept(tmp_path / "purerl_seeds.json", budget + 1024) is None
    # nor those of another config (the ablation's file read for the matched run)
    matched = bench.purerl_config("hopper", "spring", budget, hp)
    assert bench.kept(tmp_path / "purerl_seeds.json", budget, matched) is not None
    assert bench.kept(tmp_path / "purerl_raw_obs_seeds.json", budget, matched) is None


def test_more_seeds_train_only_the_missing_ones_in_one_program(tmp_path, monkeypatch):
    """--seeds 5 over kept seeds 0-2: purerl trains seeds 3 and 4 in one program and keeps all five; a gap in
    the missing seeds is refused (the runner trains consecutive seeds)."""
    hp, budget = bench.BRAX_SAC["hopper"], bench.budget_for(bench.BRAX_SAC["hopper"], 3)
    config = bench.purerl_config("hopper", "spring", budget, hp)
    path = tmp_path / "purerl_seeds.json"
    trained = []

    def train(config, seeds):
        trained.append(seeds)
        return [{"seed": seed} for seed in seeds]

    monkeypatch.setattr(bench, "purerl_final_policies", train)
    assert bench.purerl_records(path, budget, config, (0, 1, 2)) == [{"seed": 0}, {"seed": 1}, {"seed": 2}]
    assert bench.purerl_records(path, budget, config, (0, 1, 2, 3, 4)) == [{"seed": s} for s in range(5)]
    assert trained == [(0, 1, 2), (3, 4)]
    assert [r["seed"] for r in bench.kept(path, budget, config)] == [0, 1, 2, 3, 4]
    assert bench.purerl_records(path, budget, config, (0, 1, 2, 3, 4, 5), train=False) == [
        {"seed": s} for s in range(5)]  # the ablation without --ablation: only what is kept
    with pytest.raises(ValueError, match="consecutive seeds"):
        bench.purerl_records(path, budget, config, (0, 6, 8))
