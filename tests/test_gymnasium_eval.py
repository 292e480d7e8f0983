"""Offline agents trained on Minari data and evaluated in gymnasium's MuJoCo envs (`--eval-env gymnasium:ID`).

A tiny Hopper-v5 dataset is recorded by minari's own DataCollector (random actions, reference returns set in
its metadata as minari does), TD3+BC trains on it through the command line, and the final evaluation runs in
gymnasium's Hopper-v5 on the host: summary.json must hold the D4RL-normalised score of the returns it reports,
and `purerl eval` must reproduce those returns. Bad input (shapes that do not fit, an unknown env id) is one
line, exit status 2, nothing written."""

import json
import re
import shutil
import warnings

import numpy as np
import pytest

from purerl.cli import main as cli_main

REF_MIN, REF_MAX = -20.0, 3000.0  # what the recorded dataset's metadata says; the score must use these
DATASET_ID = "purerl-test/hopper-random-v0"
TINY = ["--num-updates", "20", "--updates-per-iteration", "10", "--batch-size", "32", "--hidden", "32", "32",
        "--eval-episodes", "2", "--num-seeds", "2", "--no-progress"]


@pytest.fixture(scope="module")
def minari_root(tmp_path_factory):
    """$MINARI_DATASETS_PATH holding DATASET_ID: about 300 steps of random actions in Hopper-v5."""
    import gymnasium as gym
    import minari

    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        patch.setenv("MINARI_DATASETS_PATH", str(root))  # nothing written to ~/.minari
        warnings.simplefilter("ignore", UserWarning)  # minari's notes on unset author, code_permalink, ...
        collector = minari.DataCollector(gym.make("Hopper-v5"), data_format="hdf5")
        collector.action_space.seed(0)
        steps, seed = 0, 0
        while steps < 300:
            collector.reset(seed=seed)
            seed, done = seed + 1, False
            while not done:
                _, _, terminated, truncated, _ = collector.step(collector.action_space.sample())
                steps, done = steps + 1, terminated or truncated
        collector.create_dataset(DATASET_ID, algorithm_name="random", ref_min_score=REF_MIN,
                                 ref_max_score=REF_MAX)
        collector.close()
    return root


def test_train_on_minari_and_score_in_gymnasium(minari_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(minari_root))
    with open(minari_root / DATASET_ID / "data" / "metadata.json") as f:
        metadata = json.load(f)
    assert (metadata["ref_min_score"], metadata["ref_max_score"]) == (REF_MIN, REF_MAX)  # minari's own keys
    out = str(tmp_path / "run")
    cli_main(["train", "td3_bc", "--dataset", f"minari:{DATASET_ID}", "--eval-env", "gymnasium:Hopper-v5",
              *TINY, "--eval-every", "1", "--out", out])
    printed = capsys.readouterr().out
    with open(f"{out}/summary.json") as f:
        summary = json.load(f)
    returns = np.asarray(summary["final_return_per_seed"])
    assert summary["eval_env"] == summary["env"] == "gymnasium:Hopper-v5"
    assert summary["reference_returns"] == {"min": REF_MIN, "max": REF_MAX}
    by_hand = 100 * (returns - REF_MIN) / (REF_MAX - REF_MIN)
    np.testing.assert_allclose(summary["final_score_per_seed"], by_hand, rtol=1e-12)
    assert summary["final_score_mean"] == pytest.approx(by_hand.mean(), rel=1e-12)
    assert f"D4RL-normalised score in gymnasium:Hopper-v5: mean {by_hand.mean():.1f}" in printed
    # real Hopper episodes: every step alive earns about 1 (healthy reward), so a return is a positive number
    # that differs between the two seeds' policies
    assert (returns > 0).all() and returns[0] != returns[1]
    # --eval-every evaluates there too, on the final evaluation's keys: the last one is the final evaluation
    assert [e["iteration"] for e in summary["evaluations"]] == [1, 2]
    assert summary["evaluations"][-1]["return_per_seed"] == summary["final_return_per_seed"]

    # the saved run evaluates in the same env with the runner's keys: the same episodes, the same returns
    cli_main(["eval", out, "--json"])
    evaluated = json.loads(capsys.readouterr().out)
    np.testing.assert_array_equal([row["mean"] for row in evaluated["per_seed"]], returns)
    assert evaluated["final_score_per_seed"] == summary["final_score_per_seed"]
    # another gymnasium env must fit the run's dataset: Walker2d-v5's 17 observations and 6 actions do not
    with pytest.raises(SystemExit) as stop:
        cli_main(["eval", out, "--env", "gymnasium:Walker2d-v5"])
    assert stop.value.code == 2
    assert re.fullmatch(r"purerl: error: dataset/env mismatch .* env 'gymnasium:Walker2d-v5': .*\n",
                        capsys.readouterr().err)


def test_without_reference_returns_reports_raw_returns(minari_root, tmp_path, monkeypatch):
    """A dataset without ref_min_score/ref_max_score: the returns, and a note instead of scores."""
    copy = tmp_path / "no-refs"
    shutil.copytree(minari_root / DATASET_ID, copy)
    meta_path = copy / "data" / "metadata.json"
    metadata = json.loads(meta_path.read_text())
    del metadata["ref_min_score"], metadata["ref_max_score"]
    meta_path.write_text(json.dumps(metadata))
    out = str(tmp_path / "run")
    cli_main(["train", "bc", "--dataset", str(copy), "--eval-env", "gymnasium:Hopper-v5", *TINY,
              "--out", out])
    with open(f"{out}/summary.json") as f:
        summary = json.load(f)
    assert summary["final_score_mean"] is None and "raw returns only" in summary["score_note"]
    assert len(summary["final_return_per_seed"]) == 2


@pytest.mark.parametrize("eval_env, message", [
    ("gymnasium:Walker2d-v5", r"dataset/env mismatch .* env 'gymnasium:Walker2d-v5'"),
    ("gymnasium:Hopperr-v5", r"env 'Hopperr-v5' cannot be made: Environment `Hopperr` doesn't exist"),
    ("Hopper-v5", r"eval_env must be gymnasium:ENV_ID"),
])
def test_bad_eval_env(minari_root, tmp_path, monkeypatch, capsys, eval_env, message):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(minari_root))
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        cli_main(["train", "td3_bc", "--dataset", f"minari:{DATASET_ID}", "--eval-env", eval_env, *TINY,
                  "--out", str(out)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("purerl: error: ")
    assert re.search(message, err), err
    assert not out.exists()
