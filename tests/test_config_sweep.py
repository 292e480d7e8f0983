"""Hyperparameter sweeps in one program (purerl.config_sweep, `purerl train ALGO --sweep FIELD=V1,V2`).

A configuration trained inside a sweep starts from its separate run's keys and agrees with it to float
rounding at first (the wider program rounds differently in the last bit, as a seed trained alone does); across
sweeps it is bit for bit the same. The whole grid compiles one init, one chunk and one evaluation program, as
one run does. Fields that cannot vary inside one program are refused by name before anything compiles.
"""

import contextlib
import io
import json
import sys

import jax
import jax.monitoring
import numpy as np
import pytest
from loopback import launch, wait_all

from purerl import cli, config_sweep, runner
from purerl.agents import ppo
from purerl.logging import read_metrics_csv

BASE = ppo.Config(total_timesteps=64 * 16, num_envs=4, num_steps=16, eval_episodes=4)
OPTIONS = runner.RunOptions(num_seeds=2, progress=False, chunk_iterations=8)
RUN_PROGRAMS = ("jit(init)", "jit(body)", "jit(evaluate)")  # what the runner compiles for one run
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # every compile request, cache hits included


def sweep(*flags: str):
    """Train the grid of `flags` over OPTIONS; returns the result and the names of the programs compiled."""
    names = []

    def listen(event, duration, **kwargs):
        if event == COMPILE_EVENT:
            names.append(kwargs.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        swept = config_sweep.swept_agent(ppo.make_agent, BASE, config_sweep.parse_grid(flags, BASE))
        return config_sweep.run("ppo", swept, OPTIONS), names
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def by_label(result, label):
    return result.runs[[config_sweep.label(p) for p in result.points].index(label)]


@pytest.fixture(scope="module")
def grid():
    return sweep("lr=0.001,0.00025", "ent_coef=0,0.01")


def test_the_grid_is_one_program(grid):
    result, names = grid
    assert [config_sweep.label(p) for p in result.points] == [
        "lr=0.001,ent_coef=0.0", "lr=0.001,ent_coef=0.01",
        "lr=0.00025,ent_coef=0.0", "lr=0.00025,ent_coef=0.01"]
    # each compiled once for the 4 configurations
    assert sorted(n for n in names if n in RUN_PROGRAMS) == sorted(RUN_PROGRAMS)


def test_a_configuration_agrees_with_its_separate_run_at_first(grid):
    result, _ = grid
    for label, point in (("lr=0.001,ent_coef=0.0", {"lr": 0.001, "ent_coef": 0.0}),
                         ("lr=0.00025,ent_coef=0.01", {"lr": 0.00025, "ent_coef": 0.01})):
        swept = by_label(result, label)
        alone = runner.train_and_evaluate(ppo.make_agent(config_sweep.with_values(BASE, point)), num_seeds=2,
                                          chunk_iterations=8)
        # the first iteration's losses average 16 Adam steps: a wrong lr or ent_coef shows there already
        for name in ("policy_loss", "value_loss", "entropy", "learning_rate"):
            np.testing.assert_allclose(swept.metrics[name][:, 0], alone.metrics[name][:, 0], rtol=1e-4,
                                       atol=1e-7, err_msg=f"{label} {name}")
        np.testing.assert_array_equal(swept.metrics["learning_rate"], alone.metrics["learning_rate"])
    lr_high, lr_low = by_label(result, "lr=0.001,ent_coef=0.01"), by_label(result, "lr=0.00025,ent_coef=0.01")
    assert not np.allclose(lr_high.metrics["policy_loss"], lr_low.metrics["policy_loss"])  # the values differ


def test_a_configuration_is_bitwise_the_same_in_another_sweep(grid):
    result, _ = grid
    other, _ = sweep("lr=0.00025,0.003")  # other values, one field: ent_coef stays the config's 0.01
    a, b = by_label(result, "lr=0.00025,ent_coef=0.01"), by_label(other, "lr=0.00025")
    for name in a.metrics:
        np.testing.assert_array_equal(a.metrics[name], b.metrics[name], err_msg=name)
    np.testing.assert_array_equal(a.returns, b.returns)
    for x, y in zip(jax.tree.leaves(a.state), jax.tree.leaves(b.state), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("flag, message", [
    ("num_envs=4", "--sweep num_envs: the agent uses num_envs as a Python value"),
    ("num_envs=4,8", "--sweep num_envs: changes the number of iterations"),
    ("update_epochs=2,4", "--sweep update_epochs: the agent uses update_epochs as a Python value"),
    ("total_timesteps=1024,2048", "--sweep total_timesteps:"),
    ("hidden=64", "only int and float config fields can be swept (hidden is tuple"),
    ("anneal_lr=0,1", "only int and float config fields can be swept (anneal_lr is bool)"),
    ("lrr=1e-3", "no config field 'lrr'"),
    ("lr=fast", "'fast' is not a float"),
    ("lr=1e-3,1e-3", "a value is listed twice"),
    ("lr", "expected FIELD=V1,V2,..."),
    ("lr=1e-3,-1", "lr must be positive, got -1.0"),
])
def test_bad_sweeps_get_one_line_and_exit_2(flag, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "ppo", "--total-timesteps", "1024", "--num-envs", "4", "--num-steps", "16",
                  "--sweep", flag, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("purerl: error: "), err
    assert message in err, err
    assert not (tmp_path / "out").exists()


# --- the CLI, and the seeds of a sweep split over worker processes or devices ---------------------------
# 4 seeds: with --workers 2 or --num-devices 2 each process or device trains 2 of them, and a seed inside a
# batch of 2 or more computes bitwise what it does in any other such batch (docs/running.md)
CLI_SWEEP = ["train", "ppo", "--total-timesteps", "512", "--num-envs", "4", "--num-steps", "16",
             "--eval-episodes", "4", "--num-seeds", "4", "--no-progress", "--sweep", "gamma=0.9,0.99"]
CONFIGURATIONS = ("gamma=0.9", "gamma=0.99")


@pytest.fixture(scope="module")
def cli_sweep(tmp_path_factory):
    """CLI_SWEEP in this process, on one device: its directory and what it printed."""
    out = tmp_path_factory.mktemp("sweep") / "one_device"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        cli.main([*CLI_SWEEP, "--out", str(out)])
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def one_device_sweep(cli_sweep):
    return cli_sweep[0]


def test_cli_writes_a_run_directory_per_configuration_and_sweep_json(cli_sweep, capsys):
    out, printed = cli_sweep
    assert "2 configuration(s) x 4 seed(s)" in printed
    listing = json.loads((out / "sweep.json").read_text())
    assert [c["dir"] for c in listing["configurations"]] == ["gamma=0.9", "gamma=0.99"]
    for entry in listing["configurations"]:
        run_dir = out / entry["dir"]
        config = json.loads((run_dir / "config.json").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
        assert config["config"]["gamma"] == entry["values"]["gamma"] and config["run"]["out"] == str(run_dir)
        assert summary["final_return_mean"] == entry["final_return_mean"] and len(summary["seeds"]) == 4
        assert (run_dir / "metrics.csv").read_text().startswith("seed,iteration,env_steps,metric,value")
    with pytest.raises(SystemExit) as stop:  # a configuration of a sweep has no checkpoint to resume from
        cli.main(["train", "--resume", str(out / "gamma=0.9")])
    assert stop.value.code == 2 and "one configuration of a sweep" in capsys.readouterr().err


def final_returns(run_dir):
    return json.loads((run_dir / "summary.json").read_text())["final_return_per_seed"]


def test_a_sweep_over_worker_processes_equals_one_process_bitwise(one_device_sweep, tmp_path):
    """`--workers 2`: each worker process trains its 2 seeds of every configuration; every configuration's
    metrics.csv and final returns are those of the one-process sweep, bit for bit."""
    out = tmp_path / "workers"
    wait_all(launch([[sys.executable, "-m", "purerl.cli", *CLI_SWEEP, "--workers", "2", "--out", str(out)]]),
             timeout=300)
    listing = json.loads((out / "sweep.json").read_text())
    assert [c["dir"] for c in listing["configurations"]] == list(CONFIGURATIONS)
    for name in CONFIGURATIONS:
        assert json.loads((out / name / "summary.json").read_text())["num_processes"] == 2
        expected = (one_device_sweep / name / "metrics.csv").read_text()
        assert (out / name / "metrics.csv").read_text() == expected
        assert final_returns(out / name) == final_returns(one_device_sweep / name)


def test_a_sweep_over_devices_agrees_with_one_device_at_first(one_device_sweep, tmp_path):
    """`--num-devices 2` shards the seeds of every configuration over the session's two CPU devices. As for
    a run, the sharded program is partitioned and fused differently, so it is not bitwise the one-device
    sweep: the first iteration agrees to float rounding (a wrong seed, configuration or layout would not)."""
    out = tmp_path / "devices"
    cli.main([*CLI_SWEEP, "--num-devices", "2", "--out", str(out)])
    for name in CONFIGURATIONS:
        assert json.loads((out / name / "summary.json").read_text())["num_devices"] == 2
        sharded = read_metrics_csv(str(out / name / "metrics.csv"))
        one = read_metrics_csv(str(one_device_sweep / name / "metrics.csv"))
        assert sorted(sharded) == sorted(one) and "policy_loss" in one
        for metric in one:
            assert sorted(sharded[metric]) == [0, 1, 2, 3]
            for seed in range(4):
                (step, value), (one_step, one_value) = sharded[metric][seed][0], one[metric][seed][0]
                assert step == one_step == 64
                np.testing.assert_allclose(value, one_value, rtol=1e-4, atol=1e-7, err_msg=f"{name} {metric}")
    # the configurations differ from each other, so agreeing with the right one means something
    one = [read_metrics_csv(str(one_device_sweep / name / "metrics.csv")) for name in CONFIGURATIONS]
    assert one[0]["value_loss"][0][0] != one[1]["value_loss"][0][0]
