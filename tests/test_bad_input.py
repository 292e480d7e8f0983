"""Every command's answer to bad input: one line `purerl: error: <what and how to fix>`, exit status 2, no
traceback, nothing compiled or written. One table over `train` for every algorithm, `collect`,
`meta-train lpo|lpg`, `train --resume`, `eval` and `render` (their probes that need a trained run are in
tests/test_saved_runs.py).

Training is never reached: `runner.run` and the meta-training loops are replaced by a function that fails
the test, so a probe that slips through fails at once instead of starting a run."""

import importlib
import os
import re

import pytest
from bad_datasets import CASES, MESSAGES, write_bad_datasets, write_good_dataset

from purerl import agents, runner
from purerl.cli import main as cli_main

ONLINE_BUDGET = {"pg": "--num-iters", "npg_igt": "--num-iters", "harpg": "--num-iters",
                 "ppo": "--total-timesteps", "pmoe_ppo": "--total-timesteps", "trpo": "--total-timesteps",
                 "hnpg": "--num-iters", "sac": "--total-timesteps", "pmoe_sac": "--total-timesteps",
                 "subpo": "--epochs", "a2c": "--total-timesteps"}
OFFLINE = ("td3_bc", "iql", "bc", "prdc", "odice")
# an impossible batch layout per algorithm
BATCH = {
    "ppo": (["--num-envs", "4", "--num-steps", "32", "--num-minibatches", "3"],
            "not divisible by num_minibatches"),
    "pmoe_ppo": (["--num-envs", "4", "--num-steps", "32", "--num-minibatches", "3"], "num_minibatches"),
    "trpo": (["--num-envs", "3", "--num-steps", "3", "--vf-minibatches", "4"], "vf_minibatches"),
    "sac": (["--batch-size", "0"], "batch_size must be positive"),
    "pmoe_sac": (["--batch-size", "-4"], "batch_size must be positive"),
    "a2c": (["--num-envs", "0"], "num_envs must be positive"),
    "pg": (["--batch-steps", "0"], "batch_steps"),
    "npg_igt": (["--batch-steps", "-1"], "batch_steps"),
    "harpg": (["--batch-steps", "0"], "batch_steps"),
    "hnpg": (["--batch-steps", "0"], "batch_steps"),
    "subpo": (["--batch-trajectories", "-1"], "batch_trajectories"),
    **{algo: (["--batch-size", "0"], "batch_size must be positive") for algo in OFFLINE},
}
assert set(ONLINE_BUDGET) | set(OFFLINE) == set(agents.ALGOS), "a new algorithm needs its rows here"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("datasets")
    paths = write_bad_datasets(str(directory), "hdf5")
    minari_paths = write_bad_datasets(str(directory / "m"), "minari")
    paths.update({f"minari_{case}": path for case, path in minari_paths.items()})
    paths["good"] = write_good_dataset(str(directory / "good.hdf5"))
    taken = directory / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep me")
    paths["taken"] = str(taken)
    unsaved = directory / "unsaved"  # a run's config.json, but no checkpoint
    unsaved.mkdir()
    (unsaved / "config.json").write_text('{"algo": "ppo", "config": {}, "run": {}}')
    paths["unsaved"] = str(unsaved)
    return paths


def probes():
    """(id, argv, message): argv may hold {good}, {taken} and bad-file placeholders."""
    rows = []
    for algo in agents.ALGOS:
        offline = algo in OFFLINE
        offline_flags = ["--dataset", "{good}", "--num-updates", "20", "--updates-per-iteration", "10"]
        base = ["train", algo] + (offline_flags if offline else [])
        if offline:
            rows.append((f"{algo}-unknown-dataset", ["train", algo, "--dataset", "no-such-dataset"],
                         "'no-such-dataset' is neither an existing path nor an `env-kind` name"))
            budget = "--num-updates"
        else:
            env = "--env"
            rows.append((f"{algo}-unknown-env", base + [env, "Nope-v0"], "Nope"))
            budget = ONLINE_BUDGET[algo]
        rows.append((f"{algo}-unknown-flag", base + ["--no-such-flag", "1"],
                     "Unrecognized options: --no-such-flag"))
        rows.append((f"{algo}-wrong-type", base + [budget, "many"], f"Error parsing {budget}"))
        if algo != "subpo":  # subpo: epochs 0 means "the paper's value for this env"
            rows.append((f"{algo}-zero-budget", base + [budget, "0"], "must be"))
        rows.append((f"{algo}-negative-budget", base + [budget, "-5"], "must be"))
        rows.append((f"{algo}-zero-seeds", base + ["--num-seeds", "0"], "num_seeds must be positive"))
        rows.append((f"{algo}-negative-seeds", base + ["--num-seeds", "-2"], "num_seeds must be positive"))
        rows.append((f"{algo}-batch", base + BATCH[algo][0], BATCH[algo][1]))
        rows.append((f"{algo}-taken-out", base + ["--out", "{taken}"], "exists and is not empty"))
    for case in CASES:  # files that are not datasets, one per defect, through two offline agents
        for algo in ("td3_bc", "prdc"):
            rows.append((f"{algo}-file-{case}", ["train", algo, "--dataset", "{" + case + "}"],
                         MESSAGES["hdf5"][case]))
        rows.append((f"iql-minari-{case}", ["train", "iql", "--env", "Pendulum-v1", "--dataset",
                                            "{minari_" + case + "}"], MESSAGES["minari"][case]))
    rows += [
        ("collect-unknown-env", ["collect", "--env", "Nope-v0", "--kinds", "random", "--out", "{new}"],
         "Nope-v0"),
        ("collect-unknown-kind", ["collect", "--env", "Pendulum-v1", "--kinds", "bogus", "--out", "{new}"],
         "bogus"),
        ("collect-zero-size", ["collect", "--env", "Pendulum-v1", "--size", "0", "--out", "{new}"], "size"),
        ("collect-negative-size", ["collect", "--env", "Pendulum-v1", "--size", "-3", "--out", "{new}"],
         "size"),
        ("collect-unknown-flag", ["collect", "--env", "Pendulum-v1", "--bogus"],
         "Unrecognized options: --bogus"),
        ("collect-no-shipped-expert",
         ["collect", "--env", "Pendulum-v1", "--expert", "shipped", "--out", "{new}"],
         "no shipped expert for env 'Pendulum-v1'"),
        ("collect-shipped-and-export",
         ["collect", "--env", "hopper", "--expert", "shipped", "--export-expert", "{new}"],
         "--export-expert writes the expert trained"),
        ("lpo-zero-generations", ["meta-train", "lpo", "--generations", "0", "--out", "{new}"],
         "generations"),
        ("lpo-negative-population", ["meta-train", "lpo", "--population", "-4", "--out", "{new}"],
         "population"),
        ("lpo-unknown-env", ["meta-train", "lpo", "--env", "Nope-v0", "--out", "{new}"], "Nope-v0"),
        ("lpo-taken-out", ["meta-train", "lpo", "--out", "{taken}"], "not empty"),
        ("lpo-wrong-type", ["meta-train", "lpo", "--generations", "x"], "Error parsing --generations"),
        ("lpg-zero-generations", ["meta-train", "lpg", "--generations", "0", "--out", "{new}"],
         "generations"),
        ("lpg-negative-population", ["meta-train", "lpg", "--population", "-4", "--out", "{new}"],
         "population"),
        ("lpg-taken-out", ["meta-train", "lpg", "--out", "{taken}"], "not empty"),
        ("meta-train-unknown-method", ["meta-train", "dqn"], "meta-train needs the method"),
        ("unknown-command", ["fly"], "unknown command 'fly'"),
        ("train-unknown-algo", ["train", "dqn"], "unknown algorithm 'dqn'"),
        ("train-negative-cpu-threads", ["train", "ppo", "--cpu-threads", "-1", "--out", "{new}"],
         "cpu_threads must be >= 0"),
        ("train-cpu-threads-wrong-type", ["train", "ppo", "--cpu-threads", "many", "--out", "{new}"],
         "Error parsing --cpu-threads"),
        ("resume-missing-dir", ["train", "--resume", "{new}"], "cannot resume"),
        ("resume-not-a-run", ["train", "--resume", "{taken}"], "a purerl run directory"),
        ("resume-no-dir", ["train", "--resume"], "--resume needs the run directory"),
        ("eval-missing-dir", ["eval", "{new}"], "is not a purerl run directory"),
        ("eval-not-a-run", ["eval", "{taken}"], "is not a purerl run directory"),
        ("eval-no-checkpoint", ["eval", "{unsaved}"], "has no checkpoint"),
        ("eval-no-dir", ["eval"], "Missing .*run directory"),
        ("eval-unknown-flag", ["eval", "{unsaved}", "--bogus"], "Unrecognized options: --bogus"),
        ("eval-wrong-type", ["eval", "{unsaved}", "--episodes", "many"], "Error parsing --episodes"),
        ("render-no-out", ["render", "{unsaved}"], "Missing .*--out"),
        ("render-not-a-run", ["render", "{taken}", "--out", "{new}/x.gif"], "not a purerl run directory"),
        ("render-no-checkpoint", ["render", "{unsaved}", "--out", "{new}/episode.gif"], "has no checkpoint"),
    ]
    return rows


PROBES = probes()


def _no_training(*args, **kwargs):
    raise AssertionError("bad input reached training")


@pytest.mark.parametrize("argv, message", [p[1:] for p in PROBES], ids=[p[0] for p in PROBES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, message, files, tmp_path, capsys, monkeypatch):
    from purerl.agents import lpg, lpo

    collect = importlib.import_module("purerl.collect")
    monkeypatch.setattr(runner, "run", _no_training)
    for module, name in ((lpo, "make_generation"), (lpg, "make_generation"), (collect, "train_expert")):
        monkeypatch.setattr(module, name, _no_training)
    new = tmp_path / "new"
    argv = [a.format(new=new, **files) for a in argv]
    before = sorted(os.listdir(files["taken"]))
    with pytest.raises(SystemExit) as stop:
        cli_main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert stop.value.code == 2, (stop.value.code, captured.err[-2000:])
    assert len(err) == 1 and err[0].startswith("purerl: error: "), captured.err[-2000:]
    assert re.search(message, err[0]), (message, err[0])
    assert not new.exists(), "something was written"
    assert sorted(os.listdir(files["taken"])) == before
