"""Shipped experts (`purerl.data.shipped`) and dataset statistics (`purerl.data.summarize`): export -> load is
bit-identical, `purerl collect` from a shipped expert reproduces the training path and is deterministic given
the seed, the `.stats.json` sidecar, bad input, and the experts in the package."""

import dataclasses
import importlib
import json
import os

import jax
import numpy as np
import pytest

from purerl import data as pdata
from purerl.data import shipped

pytestmark = pytest.mark.timeout(600)

pcollect = importlib.import_module("purerl.collect")
PACKAGE_EXPERTS = shipped.EXPERTS_DIR

# a tiny PPO expert on Pendulum: 2 checkpoints of 256 env steps (2 PPO iterations each)
TINY_PPO = dict(env="Pendulum-v1", size=300, expert_algo="ppo", expert_steps=512, checkpoint_every=256,
                ppo_num_envs=4, ppo_num_steps=32, num_envs=4, eval_episodes=2, ref_episodes=2,
                episode_length=50, progress=False)


def test_summarize_hand_computed():
    data = {
        "rewards": np.array([1, 2, 3, 4, 5, 6], np.float32),
        "terminals": np.array([0, 0, 1, 0, 0, 0], bool),
        "timeouts": np.array([0, 0, 0, 0, 1, 0], bool),  # episodes [1 2 3] [4 5] and the cut [6]
        "actions": np.array([[1, 0], [-0.99, 0.5], [0.98, -1], [0, 0], [0.995, 0], [0, 0]], np.float32),
    }
    stats = pdata.summarize(data)
    assert (stats["rows"], stats["episodes"], stats["terminals"], stats["timeouts"]) == (6, 3, 1, 1)
    assert stats["episode_length"] == {"min": 1, "median": 2.0, "mean": 2.0, "max": 3}
    # returns 6, 9, 6: sorted 6 6 9, linear quartiles at positions 0.5 and 1.5
    assert stats["return"] == pytest.approx({"mean": 7.0, "std": np.sqrt(2.0), "min": 6.0, "q25": 6.0,
                                             "median": 6.0, "q75": 7.5, "max": 9.0})
    assert stats["reward_per_step"] == pytest.approx({"mean": 3.5, "std": np.sqrt(35 / 12)})
    assert stats["actions_at_bounds"] == pytest.approx(4 / 12)  # 1, -0.99, -1, 0.995
    with pytest.raises(ValueError, match="no rows"):
        pdata.summarize({k: v[:0] for k, v in data.items()})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A trained tiny expert, its checkpoint dir, and its export into a directory that stands in for the
    package's experts (patched for the whole module)."""
    out, experts = str(tmp_path_factory.mktemp("trained")), str(tmp_path_factory.mktemp("experts"))
    config = pcollect.CollectConfig(kinds=("medium",), out=out, expert="train", **TINY_PPO)
    expert = pcollect.train_expert(config, out)
    files = pcollect.export_expert(config, out, experts)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shipped, "EXPERTS_DIR", experts)
        yield config, expert, files


def test_export_round_trip_is_bit_identical(exported):
    config, expert, (npz, meta_path) = exported
    arrays, meta = shipped.load_expert(npz[: -len(".npz")])
    m = meta["policies"]["medium"]["checkpoint"]
    assert m == pcollect.medium_index(expert["evals"], expert["ref_min"], expert["ref_max"],
                                      config.medium_fraction)
    learner = pcollect.expert_learner(config)
    template = jax.eval_shape(learner.snapshot, jax.eval_shape(learner.agent.init, jax.random.PRNGKey(0)))
    for name, original in (("medium", expert["checkpoints"][m]), ("expert", expert["checkpoints"][-1])):
        loaded = shipped.unflatten(template, arrays[name])
        for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(original), strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    assert meta["collect_config"]["expert_steps"] == 512 and meta["seed"] == 0 and meta["learner"] == "ppo"
    assert meta["checkpoint_evals"] == pytest.approx(expert["evals"].tolist())
    assert meta["ref_max"] == expert["ref_max"]
    assert meta["command"].startswith("purerl collect --env Pendulum-v1 --expert train --seed 0")
    assert os.path.getsize(npz) < 1_000_000
    with pytest.raises(ValueError, match="no array 'params/"):
        shipped.unflatten(template, {k: v for k, v in arrays["medium"].items()
                                     if not k.startswith("params/")})


@pytest.fixture(scope="module")
def from_shipped(exported, tmp_path_factory):
    config, _, _ = exported
    shipped_config = pcollect.CollectConfig(env="Pendulum-v1", kinds=("medium", "medium-replay"), size=300,
                                            num_envs=4, expert="shipped", progress=False,
                                            out=str(tmp_path_factory.mktemp("shipped")))
    return shipped_config, pcollect.collect(shipped_config)


def test_collect_from_shipped_expert_reproduces_the_training_path(exported, from_shipped):
    """With the recipe's seed, the shipped expert gives the very files that training the expert gives: the
    rollout kinds act with the same policies, the replay kinds re-run the same (deterministic) training."""
    config, _, _ = exported
    _, paths = from_shipped
    # the training path on the trained expert's checkpoint (reused, not retrained)
    trained = pcollect.collect(dataclasses.replace(config, kinds=("medium", "medium-replay")))
    for kind in ("medium", "medium-replay"):
        a, meta = pdata.read_hdf5(paths[kind])
        b, _ = pdata.read_hdf5(trained[kind])
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
        assert meta["expert_source"] == "shipped Pendulum-v1.npz" and meta["algorithm"] == "PPO"
    assert pdata.read_hdf5(paths["medium-replay"])[1]["replay_reproduced"]


def test_collect_from_shipped_expert_is_deterministic_given_the_seed(from_shipped, tmp_path):
    config, paths = from_shipped
    first = pdata.read_hdf5(paths["medium"])[0]
    again = pcollect.collect(dataclasses.replace(config, kinds=("medium",), out=str(tmp_path / "a")))
    other = pcollect.collect(dataclasses.replace(config, kinds=("medium",), out=str(tmp_path / "b"), seed=1))
    for key, value in pdata.read_hdf5(again["medium"])[0].items():
        np.testing.assert_array_equal(value, first[key])
    assert not np.array_equal(pdata.read_hdf5(other["medium"])[0]["observations"], first["observations"])


def test_statistics_sidecar_beside_every_file(from_shipped):
    config, paths = from_shipped
    for path in paths.values():
        data, meta = pdata.read_hdf5(path)
        with open(pdata.stats_path(path)) as f:
            sidecar = json.load(f)
        assert pdata.stats_path(path) == path[: -len(".hdf5")] + ".stats.json"
        assert sidecar == pdata.summarize(data) == json.loads(meta["statistics"])
    # a dataset kept from before the sidecar existed gets one on the next collect
    os.remove(pdata.stats_path(paths["medium"]))
    pcollect.collect(dataclasses.replace(config, kinds=("medium",)))
    with open(pdata.stats_path(paths["medium"])) as f:
        assert json.load(f) == pdata.summarize(pdata.read_hdf5(paths["medium"])[0])


def test_expert_choice_and_bad_input(exported, capsys, tmp_path):
    from purerl.cli import main

    recipe, stem = pcollect.resolve_expert(pcollect.CollectConfig(env="Pendulum-v1"))
    assert stem.endswith("Pendulum-v1") and recipe.expert_algo == "ppo" and recipe.expert_steps == 512
    # auto: a training flag that asks for another expert trains; train always trains
    assert pcollect.resolve_expert(pcollect.CollectConfig(env="Pendulum-v1", expert_steps=1024))[1] is None
    assert pcollect.resolve_expert(pcollect.CollectConfig(env="Pendulum-v1", expert="train"))[1] is None
    assert pcollect.resolve_expert(pcollect.CollectConfig(env="MountainCarContinuous-v0"))[1] is None
    # on the command line, naming a training flag trains (as such commands did before experts were shipped)
    chosen = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pcollect, "collect", lambda config: chosen.append(pcollect.resolve_expert(config)[1]))
        pcollect.main(["--env", "Pendulum-v1", "--expert-algo", "ppo"])
        pcollect.main(["--env", "Pendulum-v1", "--expert-steps=512"])
        pcollect.main(["--env", "Pendulum-v1", "--size", "100"])
    assert chosen[:2] == [None, None] and chosen[2] == stem
    cases = [
        (["--env", "MountainCarContinuous-v0", "--expert", "shipped"],
         "no shipped expert for env 'MountainCarContinuous-v0' (shipped: Pendulum-v1); pass --expert train"),
        (["--env", "Pendulum-v1", "--expert", "shipped", "--expert-steps", "1024"],
         "the shipped Pendulum-v1 expert was trained with expert_steps = 512, not 1024"),
        (["--env", "Pendulum-v1", "--expert", "train", "--export-expert", str(tmp_path / "x")],
         "no expert checkpoint"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(["collect", *argv, "--out", str(tmp_path / "out")])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("purerl: error: " + message), err
    assert not os.path.exists(tmp_path / "out")


def test_packaged_experts(monkeypatch):
    """Every expert in the package loads into its learner's policy (names, shapes), is < 1 MB, and carries the
    metadata that collect and the docs rely on."""
    monkeypatch.setattr(shipped, "EXPERTS_DIR", PACKAGE_EXPERTS)  # not the module fixture's stand-in
    assert "hopper" in shipped.shipped_envs()
    for env in shipped.shipped_envs():
        stem = shipped.shipped_expert(env)
        arrays, meta = shipped.load_expert(stem)
        assert os.path.getsize(stem + ".npz") < 1_000_000
        config, found = pcollect.resolve_expert(pcollect.CollectConfig(env=env, expert="shipped"))
        assert found == stem and meta["env"] == env and meta["brax_backend"] == config.brax_backend
        learner = pcollect.expert_learner(config, meta.get("ppo_network"))
        template = jax.eval_shape(learner.snapshot, jax.eval_shape(learner.agent.init, jax.random.PRNGKey(0)))
        for name in ("medium", "expert"):
            shipped.unflatten(template, arrays[name], f"{env} {name}")
        steps, evals = meta["checkpoint_steps"], meta["checkpoint_evals"]
        m = meta["policies"]["medium"]["checkpoint"]
        assert m == pcollect.medium_index(np.array(evals), meta["ref_min"], meta["ref_max"],
                                          config.medium_fraction)
        assert meta["policies"]["expert"]["step"] == steps[-1]
        if "collect_config" in meta:  # trained by collect's recipe: whole chunks of checkpoint_every steps
            assert steps[-1] == config.expert_steps // config.checkpoint_every * config.checkpoint_every
        for key in ("command", "seed", "purerl_version", "git_commit", "learner", "backend", "source"):
            assert key in meta
