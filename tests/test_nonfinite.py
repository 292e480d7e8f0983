"""A diverging run stops loudly: at the end of the chunk where a metric or the train state became non-finite,
with `purerl: error: non-finite <name> at iteration N (seed S)`, exit status 1, the last finite checkpoint
kept, and `summary.json` saying so. `purerl train --resume DIR --FLAG VALUE` then continues with a changed
flag."""

import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import checkpoint, runner
from purerl.agent import Agent
from purerl.agents import ppo
from purerl.cli import main as cli_main

TINY = ppo.Config(env="CartPole-v1", total_timesteps=10 * 128, num_envs=4, num_steps=32, eval_episodes=4)


def poisoned(agent: Agent, at_iteration: int, *, seed: int, where: str) -> Agent:
    """`agent` whose update, at `at_iteration` (1-based) and only for `seed`, makes the critic's first bias
    NaN (where="state") or reports an infinite metric (where="metric").

    The iteration and the kind of poison are values in the train state, not constants of the update: every
    poisoning then runs the same chunk program, compiled once (JAX's persistent compilation cache)."""

    def init(key):
        is_seed = jnp.all(key == jax.random.PRNGKey(seed))
        return agent.init(key), jnp.int32(0), is_seed, jnp.int32(at_iteration), jnp.asarray(where == "state")

    def update(carry):
        state, done, is_seed, poisoned_iteration, in_state = carry
        state, metrics = agent.update(state)
        hit = (done + 1 == poisoned_iteration) & is_seed
        bias = state.params["params"]["critic"]["Dense_0"]["bias"]
        state.params["params"]["critic"]["Dense_0"]["bias"] = jnp.where(hit & in_state, jnp.nan, bias)
        metrics = dict(metrics, injected=jnp.where(hit & ~in_state, jnp.inf, 0.0))
        return (state, done + 1, is_seed, poisoned_iteration, in_state), metrics

    return dataclasses.replace(agent, init=init, update=update, evaluate=lambda c, k: agent.evaluate(c[0], k))


@pytest.mark.parametrize(
    "at_iteration, where, message",
    [
        # poisoned in the chunk's last iteration: the NaN has not spread yet
        (6, "state", "non-finite 0.params.params.critic.Dense_0.bias at iteration 6 (seed 1; found at the "
                     "end of the chunk of iterations 5-6)"),
        # one iteration earlier the last update has spread it to every parameter and the optimiser
        (5, "state", "non-finite 0.params.params.actor.Dense_0.bias (and 13 more state arrays) "
                     "at iteration 6"),
        (5, "metric", "non-finite injected at iteration 5 (seed 1)"),
    ],
)
def test_injected_nan_stops_the_run_and_keeps_the_last_finite_checkpoint(tmp_path, at_iteration, where,
                                                                          message):
    out = tmp_path / where
    options = runner.RunOptions(num_seeds=2, chunk_iterations=2, checkpoint_every=2, out=str(out),
                                progress=False)
    with pytest.raises(runner.TrainingDiverged) as stop:
        runner.run("ppo", poisoned(ppo.make_agent(TINY), at_iteration, seed=1, where=where), options)
    assert str(stop.value).startswith(message), stop.value
    assert "; the last finite checkpoint (iteration 4) is kept" in str(stop.value)
    assert checkpoint.latest(str(out / "checkpoints")) == 4  # iteration 6 was never saved
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "non-finite" and summary["error"].startswith(message)
    assert summary["last_finite_checkpoint"] == 4
    assert "iteration,env_steps" in (out / "metrics.csv").read_text().splitlines()[0]


def test_a_finite_run_is_completed(tmp_path):
    options = runner.RunOptions(num_seeds=1, out=str(tmp_path / "ok"), progress=False)
    runner.run("ppo", ppo.make_agent(TINY), options)
    assert json.loads((tmp_path / "ok" / "summary.json").read_text())["status"] == "completed"


def test_cli_divergence_then_resume_with_a_changed_flag(tmp_path, capsys):
    out = tmp_path / "run"
    tiny = ["--total-timesteps", "512", "--num-envs", "4", "--num-steps", "32", "--eval-episodes", "4"]
    cli_main(["train", "ppo", *tiny, "--checkpoint-every", "2", "--chunk-iterations", "2", "--out", str(out),
              "--no-progress"])
    # Continue the finished 4-iteration run with an absurd learning rate: it diverges within the next chunk.
    with pytest.raises(SystemExit) as stop:
        cli_main(["train", "--resume", str(out), "--lr", "1e30", "--total-timesteps", "1024"])
    assert stop.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("purerl: error: non-finite ") and "at iteration 6 (seed 0" in err[-1], err
    assert "the last finite checkpoint (iteration 4) is kept" in err[-1]
    assert json.loads((out / "summary.json").read_text())["status"] == "non-finite"
    # Back to a sane learning rate: the run goes on from iteration 4 and completes.
    summary = cli_main_summary(["train", "--resume", str(out), "--lr", "2.5e-4"], out)
    assert summary["status"] == "completed" and summary["resumed_from"] == 4 and summary["iterations"] == 8
    assert np.isfinite(summary["final_return_per_seed"]).all()
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["lr"] == 2.5e-4 and config["config"]["total_timesteps"] == 1024
    assert [c["changed"] for c in config["changed_on_resume"]] == [
        {"lr": 1e30, "total_timesteps": 1024}, {"lr": 2.5e-4}]


def cli_main_summary(argv, out):
    cli_main(argv)
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished tiny run, shared by the refused resumes (each checks that it writes nothing)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    cli_main(["train", "ppo", "--total-timesteps", "256", "--num-envs", "4", "--num-steps", "32",
              "--eval-episodes", "4", "--out", str(out), "--no-progress"])
    return out


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num-envs", "8"], "num_envs cannot change on --resume: it changes the shapes of the train state"),
        (["--lr", "-1"], "lr must be positive"),
    ],
)
def test_resume_refuses_changes_that_do_not_fit(finished_run, capsys, flags, message):
    out = finished_run
    before = (out / "config.json").read_text()
    with pytest.raises(SystemExit) as stop:
        cli_main(["train", "--resume", str(out), *flags, "--total-timesteps", "512"])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert (out / "config.json").read_text() == before  # nothing written


def test_resume_of_a_checkpoint_with_another_train_state_is_one_line(finished_run, tmp_path, capsys):
    """A checkpoint that does not fit the agent's train state (here the run's config edited to normalise
    observations, which adds the statistics to the state; likewise a checkpoint of an older purerl) is one
    line naming the differing field, exit 2, before anything runs, and nothing in the run is rewritten."""
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    saved = json.loads((out / "config.json").read_text())
    saved["config"]["normalize_obs"] = True
    (out / "config.json").write_text(json.dumps(saved))
    files = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    with pytest.raises(SystemExit) as stop:
        cli_main(["train", "--resume", str(out)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("purerl: error: the checkpoint in "), err
    assert "holds another train state than this agent's (fields that differ: env_state)" in err[0]
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == files
