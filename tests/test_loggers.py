"""`--logger tensorboard|wandb`: each logger's files, read back with the format's own records, hold the series
of metrics.csv (per metric and seed, at the same env steps) and the evaluations of summary.json."""

import glob
import importlib.util
import json
import struct

import numpy as np
import pytest

from purerl import checkpoint, runner
from purerl.cli import main as cli_main
from purerl.logging import EVAL_RETURN, read_metrics_csv

# 6 PPO iterations of 4 envs x 32 steps, 2 seeds, an evaluation every 3 iterations
ARGV = ["train", "ppo", "--env", "CartPole-v1", "--total-timesteps", "768", "--num-envs", "4",
        "--num-steps", "32", "--eval-episodes", "8", "--num-seeds", "2", "--eval-every", "3", "--no-progress"]
Series = dict[str, list[tuple[int, float]]]  # name -> [(env steps, value)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One CLI run with both loggers; W&B offline, its settings and caches inside the test's directory."""
    tmp = tmp_path_factory.mktemp("loggers")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
            patch.setenv(name, str(tmp / name.lower()))
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("WANDB_SILENT", "true")
        cli_main([*ARGV, "--logger", "tensorboard", "--logger", "wandb", "--out", str(tmp / "run")])
    return tmp / "run"


def expected_series(run_dir) -> Series:
    """metrics.csv's series under the loggers' names (NaN, "no value this iteration", is not logged), plus
    the evaluations' mean and 95% CI from summary.json."""
    series = {f"{metric}/seed_{seed}": [(step, value) for step, value in points if not np.isnan(value)]
              for metric, by_seed in read_metrics_csv(str(run_dir / "metrics.csv")).items()
              for seed, points in by_seed.items()}
    series = {tag: points for tag, points in series.items() if points}
    evaluations = json.loads((run_dir / "summary.json").read_text())["evaluations"]
    assert [e["iteration"] for e in evaluations] == [3, 6]
    for key, pick in (("mean", lambda e: e["return_mean"]), ("ci_low", lambda e: e["return_ci"][0]),
                      ("ci_high", lambda e: e["return_ci"][1])):
        series[f"{EVAL_RETURN}/{key}"] = [(e["env_steps"], pick(e)) for e in evaluations]
    return series


def assert_same_series(logged: Series, expected: Series):
    assert sorted(logged) == sorted(expected)
    assert any(tag.startswith("episode_return/") for tag in logged) and f"{EVAL_RETURN}/seed_1" in logged
    for tag, points in expected.items():
        assert [step for step, _ in logged[tag]] == [step for step, _ in points], tag
        # metrics.csv keeps 6 significant digits
        np.testing.assert_allclose([v for _, v in logged[tag]], [v for _, v in points], rtol=1e-5,
                                   err_msg=tag)


def tensorboard_scalars(directory) -> Series:
    """Scalars of the TFRecord event files in `directory`, read in TensorBoard's order (file names start with
    the creation time): records of (length u64, crc u32, data, crc u32), each data an `Event` protocol buffer.
    As TensorBoard does, a `SessionLog.START` event at step s (a writer's `purge_step`) drops every point read
    so far at step s or later."""
    from tensorboardX.proto import event_pb2

    out: Series = {}
    for path in sorted(glob.glob(str(directory / "events.out.tfevents.*"))):
        data, pos = open(path, "rb").read(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
                out = {tag: [(step, v) for step, v in points if step < event.step]
                       for tag, points in out.items()}
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def wandb_history(path) -> Series:
    """The logged history of a W&B run file (`run-<id>.wandb`): a 7-byte header, then LevelDB-log records in
    32 KiB blocks (crc u32, length u16, type u8: 1 full, 2 first, 3 middle, 4 last part), each a `Record`."""
    from wandb.proto import wandb_internal_pb2

    block, data = 32768, open(path, "rb").read()
    assert data[:4] == b":W&B"
    pos, parts, records = 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        parts = chunk if kind in (1, 2) else parts + chunk
        if kind in (1, 4):
            records.append(wandb_internal_pb2.Record.FromString(parts))
    out: Series = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                if not key.startswith("_"):  # wandb's own _step, _runtime, _timestamp
                    out.setdefault(key, []).append((record.history.step.num, json.loads(item.value_json)))
    return out


def test_tensorboard_holds_the_series_of_metrics_csv(run_dir):
    assert len(glob.glob(str(run_dir / "tensorboard" / "events.out.tfevents.*"))) == 1
    assert_same_series(tensorboard_scalars(run_dir / "tensorboard"), expected_series(run_dir))


def test_wandb_offline_run_holds_the_series_of_metrics_csv(run_dir):
    (path,) = glob.glob(str(run_dir / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert_same_series(wandb_history(path), expected_series(run_dir))


def test_resume_after_a_crash_logs_each_step_once(run_dir, tmp_path, monkeypatch):
    """A run that crashes after logging iterations 4-6 but before saving their checkpoint, then resumed from
    iteration 3: TensorBoard (read as TensorBoard does, applying the purge of the steps after the checkpoint)
    and the resumed W&B run each hold every step once, equal to metrics.csv, which equals the uninterrupted
    run's."""
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    save = checkpoint.save

    def crash_at_6(directory, iteration, *args):
        if iteration == 6:
            raise RuntimeError("killed before the checkpoint of iteration 6")
        save(directory, iteration, *args)

    out = tmp_path / "run"
    monkeypatch.setattr(checkpoint, "save", crash_at_6)
    with pytest.raises(RuntimeError, match="killed"):
        cli_main([*ARGV, "--checkpoint-every", "3", "--logger", "tensorboard", "--logger", "wandb",
                  "--out", str(out)])
    assert checkpoint.steps(str(out / "checkpoints")) == [3]
    interrupted = tensorboard_scalars(out / "tensorboard")
    assert [step for step, _ in interrupted["value_loss/seed_0"]] == [128 * i for i in range(1, 7)]
    monkeypatch.setattr(checkpoint, "save", save)
    cli_main(["train", "--resume", str(out)])

    assert (out / "metrics.csv").read_text() == (run_dir / "metrics.csv").read_text()
    expected = expected_series(out)
    assert len(glob.glob(str(out / "tensorboard" / "events.out.tfevents.*"))) == 2
    assert_same_series(tensorboard_scalars(out / "tensorboard"), expected)
    interrupted_wandb, resumed_wandb = sorted(glob.glob(str(out / "wandb" / "offline-run-*" / "run-*.wandb")),
                                              key=lambda path: path.split("offline-run-")[1])
    assert_same_series(wandb_history(resumed_wandb), expected)
    # the interrupted W&B run stays as it was: up to the iteration it reached
    assert max(step for step, _ in wandb_history(interrupted_wandb)["value_loss/seed_0"]) == 768


@pytest.mark.parametrize("argv, message", [
    (["--logger", "foo", "--out", "{out}"], "invalid choice 'foo' for argument '--logger'"),
    (["--logger", "tensorboard"], "--logger tensorboard writes into the run directory: pass --out DIR"),
    (["--logger", "wandb", "--out", "{out}"], "--logger wandb needs the wandb package: pip install 'purerl"),
])
def test_bad_logger_is_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "run", lambda *a, **k: pytest.fail("bad input reached training"))
    find_spec = importlib.util.find_spec  # as if wandb were not installed
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else find_spec(name, *a))
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as stop:
        cli_main(["train", "ppo", "--total-timesteps", "768", "--num-steps", "32",
                  *[a.format(out=out) for a in argv]])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and err[0].startswith("purerl: error: "), err
    assert message in err[0], err
    assert not out.exists()
