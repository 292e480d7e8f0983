"""benchmarks/bench_brax_trainers.py: purerl's PPO set up as brax's ppo.train, its result file, bad input."""

import json

import numpy as np
import pytest
from one_line_error import assert_one_line_error

from benchmarks import bench_brax_trainers as bench
from purerl.agents import ppo


@pytest.mark.parametrize("env", sorted(bench.BRAX_PPO))
def test_purerl_config_takes_brax_batch_geometry_and_settings(env):
    hp = bench.BRAX_PPO[env]
    per_update = hp["batch_size"] * hp["num_minibatches"] * hp["unroll_length"]
    config = bench.purerl_config(env, "spring", 3 * per_update, hp)
    assert config.batch_size == per_update  # env steps between two policy updates
    assert config.num_iterations == 3
    assert config.batch_size // config.num_minibatches == hp["batch_size"] * hp["unroll_length"]
    assert (config.num_envs, config.update_epochs, config.gamma, config.lr, config.ent_coef) == (
        hp["num_envs"], hp["num_updates_per_batch"], hp["discounting"], hp["learning_rate"],
        hp["entropy_cost"])
    assert config.reward_scale == hp["reward_scaling"] and not config.anneal_lr and not config.clip_value
    assert (config.hidden, config.value_hidden, config.activation) == ((32,) * 4, (256,) * 5, "silu")
    # brax's tanh_normal policy, and its advantages recomputed per minibatch of whole unrolls
    assert config.state_dependent_std and config.action_squash == "tanh"
    assert (config.recompute_advantages, config.segment_length) == ("minibatch", hp["unroll_length"])
    ppo.validate(config)  # the segments fill the minibatches


def record(seed, mean):
    returns = {"stochastic": [mean - 1.0, mean + 1.0], "deterministic": [mean, mean]}
    # brax's epochs: the first two (each a compile + 5 steps) took 3 s and 2 s, the third (5 steps) 1 s
    epochs = [{"env_steps": 5, "walltime": 3.0}, {"env_steps": 10, "walltime": 5.0},
              {"env_steps": 15, "walltime": 6.0}]
    return {"seed": seed, "env_steps": 10, "returns": returns, "epochs": epochs}


def test_result_compares_the_sides_per_seed_and_keeps_every_part():
    timing = {"compile_s": 1.0, "run_s": 2.0, "env_steps_per_s": 10.0}
    parts = {"train_purerl": {"budget": 10, "config": {}, "records": [record(0, 100.0), record(1, 120.0)],
                              "timing": timing},
             "train_brax": {"budget": 10, "config": {}, "records": [record(0, 50.0), record(1, 70.0)]},
             "speed": {"rows": [], "summary": {"budget": 10, "ratio_purerl_over_brax": 2.0}}}
    res = bench.build_result("hopper", "spring", bench.BRAX_PPO["hopper"], parts)
    assert res["kind"] == "comparison" and res["comparison"]["pair"] == "purerl vs brax"
    assert res["comparison"]["difference"] == pytest.approx(50.0)
    purerl = res["extra"]["runs"][0]
    assert purerl["scores"]["final_return"]["per_seed"] == [100.0, 120.0]
    assert purerl["scores"]["final_return_deterministic"]["per_seed"] == [100.0, 120.0]
    assert (purerl["compile_s"], purerl["run_s"], purerl["throughput"]["value"]) == (1.0, 2.0, 10.0)
    brax = res["extra"]["runs"][1]
    assert (brax["compile_s"], brax["run_s"], brax["throughput"]["value"]) == (3.0, 1.0, 5.0)
    assert res["extra"]["parts"] == parts and res["extra"]["speed"]["ratio_purerl_over_brax"] == 2.0


def test_save_experts_picks_the_best_seed_and_its_medium_snapshot(tmp_path, monkeypatch):
    """expert.npz: the best seed's final snapshot; medium.npz: its first reaching random + MEDIUM_FRACTION x
    (expert - random); a JSON beside each names the seed, env steps and returns."""
    monkeypatch.setattr(bench, "random_return", lambda env, backend: 0.0)
    points = [10, 20, 30]
    for steps in points:  # two seeds' snapshot params: seed i's entry holds 100 i + steps
        np.savez(tmp_path / f"snapshot_{steps:09d}.npz", w=np.array([steps, 100 + steps], np.float32))
    records = [{"seed": 0, "returns": {"stochastic": [50.0]}, "eval_curve": [10.0, 40.0, 50.0],
                "eval_points": points},
               {"seed": 1, "returns": {"stochastic": [90.0]}, "eval_curve": [10.0, 40.0, 90.0],
                "eval_points": points}]
    config = bench.purerl_config("hopper", "spring", 327_680, bench.BRAX_PPO["hopper"])
    info = bench.save_experts("hopper", "spring", config, {"records": records}, str(tmp_path))
    # the target is 0 + 90 / 3 = 30: seed 1's curve first reaches it at 40, after 20 env steps
    assert (info["expert"]["seed"], info["expert"]["env_steps"], info["medium"]["env_steps"]) == (1, 30, 20)
    assert float(np.load(tmp_path / "expert.npz")["w"]) == 130.0
    assert float(np.load(tmp_path / "medium.npz")["w"]) == 120.0
    saved = json.loads((tmp_path / "expert.json").read_text())
    assert saved["expert_return"] == 90.0 and saved["medium_target"] == pytest.approx(30.0)


@pytest.mark.parametrize("argv, message", [
    (["--env", "ant"], "unknown env 'ant'"),
    (["--part", "fast"], "unknown part 'fast'"),
    (["--side", "torch"], "unknown side 'torch'"),
    (["--backend", "mjx"], "unknown backend 'mjx'"),
    (["--seeds", "0"], "seeds must be positive"),
    (["--env", "hopper", "--part", "train", "--budget", "80000"], "budget 80,000 is less than one update"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert_one_line_error(bench.main, argv, message, capsys)


def test_evaluation_points_split_the_updates_evenly_for_brax_epochs():
    """brax's ppo.train runs ceil(updates / (num_evals - 1)) updates per epoch: the points must divide the
    updates, or brax trains past the budget (hopper's 96 updates in 20 epochs of 5 would be 100). The SAC
    bench asks sac.train for its epochs the same way."""
    assert bench.peer.even_epochs(96, 20) == 16 and 96 % 16 == 0
    assert bench.peer.even_epochs(96, 24) == 24
    assert bench.peer.even_epochs(152, 20) == 19  # halfcheetah: 50M steps // 327,680 per update
    assert bench.peer.even_epochs(2, 20) == 2 and bench.peer.even_epochs(7, 5) == 1
