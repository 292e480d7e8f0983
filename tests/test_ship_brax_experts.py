"""benchmarks/ship_brax_experts.py: the PPO experts that the brax comparison exports (brax's network scheme)
become packaged experts that `purerl collect` loads and acts with exactly as the trained policy does."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from one_line_error import assert_one_line_error

from benchmarks import bench_brax_trainers as trainers
from benchmarks import ship_brax_experts as ship
from purerl import collect
from purerl.agents import ppo
from purerl.data import shipped

POINTS = [4096, 8192, 12288]  # the training run's evaluation points
CURVES = {0: [50.0, 90.0, 120.0], 1: [60.0, 200.0, 400.0]}  # per seed; seed 1 is the better one


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """What `bench_brax_trainers --part train --side purerl` leaves in RESULTS_DIR/experts/hopper for 2 seeds
    (snapshots: freshly initialised states, one per evaluation point, with observation statistics that are
    not the identity), made by its own `save_experts`; and the seed-batched states."""
    experts = str(tmp_path_factory.mktemp("experts"))
    hp = trainers.BRAX_PPO["hopper"]
    config = trainers.purerl_config("hopper", "spring", 0, hp)
    config = dataclasses.replace(config, total_timesteps=config.num_envs * config.num_steps)
    agent = ppo.make_agent(config)
    states = {}
    for i, step in enumerate(POINTS):
        state = jax.vmap(agent.init)(jax.random.split(jax.random.PRNGKey(i), 2))
        stats = state.obs_stats
        stats = stats.replace(mean=stats.mean + 0.5 * (i + 1), var=stats.var * 4.0)
        states[step] = state = state.replace(obs_stats=stats)
        np.savez(os.path.join(experts, f"snapshot_{step:09d}.npz"), **trainers.snapshot_arrays(state))
    records = [{"seed": seed, "returns": {"stochastic": [curve[-1]]}, "eval_points": POINTS,
                "eval_curve": curve} for seed, curve in CURVES.items()]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainers, "random_return", lambda env, backend: 30.0)
        trainers.save_experts("hopper", "spring", config, {"records": records}, experts)
    return experts, config, states


def test_shipped_pair_keeps_the_acting_policy_and_its_references(exported, tmp_path):
    experts, config, _ = exported
    npz, meta_path = ship.ship(experts, str(tmp_path))
    with open(meta_path) as f:
        meta = json.load(f)
    # seed 1 is the expert (final return 400); medium = its first point at 30 + (400 - 30) / 3 = 153.3 or more
    assert meta["seed"] == 1 and (meta["ref_min"], meta["ref_max"]) == (30.0, 400.0)
    assert meta["policies"]["expert"] == {"checkpoint": 2, "step": 12288, "eval_return": 400.0}
    assert meta["policies"]["medium"] == {"checkpoint": 1, "step": 8192, "eval_return": 200.0}
    assert meta["policies"]["medium"]["checkpoint"] == collect.medium_index(
        np.array(meta["checkpoint_evals"]), meta["ref_min"], meta["ref_max"], 1 / 3)
    assert meta["ppo_network"] == {"hidden": [32, 32, 32, 32], "activation": "silu", "log_std_init": 0.0,
                                   "state_dependent_std": True, "action_squash": "tanh",
                                   "normalize_obs": True}
    assert meta["brax_backend"] == "spring" and "collect_config" not in meta
    with np.load(npz) as saved:
        names = saved.files
    assert names and not [n for n in names if "critic" in n]  # the actor and the statistics only
    assert {n.split("/", 1)[0] for n in names} == {"medium", "expert"}
    assert os.path.getsize(npz) < 100_000


def test_collect_acts_with_the_shipped_policy_as_training_did(exported, tmp_path, monkeypatch):
    """collect resolves the shipped expert (its backend, its network), and its acting function gives, from the
    shipped actor alone, the tanh of the trained network's Gaussian sample under the trained statistics, and
    that sample's log-density: for the expert (seed 1 at the last point) and the medium policy."""
    experts, config, states = exported
    ship.ship(experts, str(tmp_path))
    monkeypatch.setattr(shipped, "EXPERTS_DIR", str(tmp_path))
    run_config, stem = collect.resolve_expert(collect.CollectConfig(env="hopper", expert="shipped"))
    assert stem == os.path.join(str(tmp_path), "hopper") and run_config.brax_backend == "spring"
    expert = collect.load_shipped(run_config, stem)
    learner = expert["learner"]
    env, env_params = ppo.make_env(config)
    network = ppo.make_network(config, env, env_params)
    obs = jax.random.normal(jax.random.PRNGKey(7), (5, 11)) * 2.0
    key = jax.random.PRNGKey(8)
    for kind, step in (("expert", 12288), ("medium", 8192)):
        trained = jax.tree.map(lambda x: x[1], states[step])  # seed 1
        pi = network.apply(trained.params, trained.obs_stats.normalize(obs), method="policy")
        sample = pi.sample(seed=key)
        action, log_prob = learner.act(expert["policies"][kind], key, obs)
        np.testing.assert_allclose(action, jnp.tanh(sample), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(log_prob, pi.log_prob(sample), rtol=1e-5)
        assert np.abs(np.asarray(action)).max() <= 1.0
    assert not np.allclose(learner.act(expert["policies"]["medium"], key, obs)[0],
                           learner.act(expert["policies"]["expert"], key, obs)[0])


def test_unknown_network_fields_are_refused():
    with pytest.raises(ValueError, match="not the network's: \\['lr'\\]"):
        collect.expert_learner(collect.CollectConfig(env="hopper", expert_algo="ppo"), {"lr": 1e-3})


def test_a_directory_without_the_export_is_one_line(tmp_path, capsys):
    assert_one_line_error(ship.main, [str(tmp_path)], f"{tmp_path} has no medium.json", capsys)


def test_an_expert_without_recipe_refuses_the_replay_kinds_and_skips_the_training_checks(exported, tmp_path,
                                                                                         monkeypatch):
    """Nothing trains from an expert trained elsewhere: collect's training defaults (checkpoint_every 10000,
    not a multiple of the PPO batch) are not checked, and the replay kinds, which need the learner's data,
    are refused before anything runs."""
    experts, _, _ = exported
    ship.ship(experts, str(tmp_path))
    monkeypatch.setattr(shipped, "EXPERTS_DIR", str(tmp_path))
    collect.validate(collect.CollectConfig(env="hopper", expert="shipped", kinds=("medium", "expert")))
    with pytest.raises(ValueError, match="has no training recipe: .* not medium-replay \\(leave"):
        collect.validate(collect.CollectConfig(env="hopper", kinds=("medium", "medium-replay")))
    with pytest.raises(ValueError, match="checkpoint_every = 10000 is not a multiple"):  # training checks it
        collect.validate(collect.CollectConfig(env="hopper", expert="train", expert_algo="ppo",
                                               kinds=("medium",)))
