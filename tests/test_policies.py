"""Every agent's evaluation policy (`Agent.policy`), on a tiny real run of each: `purerl eval` of the final
checkpoint reproduces `summary.json` to the bit, `purerl.load(run).act` works in both modes, and playing the
episodes by hand through `act` in the policy's evaluation mode gives the run's final returns (the final
evaluation acts through the same policy), and `purerl render` plays it. HNPG and SubPO keep `purerl eval`
and say that they do not expose their policy."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import purerl
from purerl import agents, saved
from purerl import data as pdata
from purerl.cli import main as cli_main
from purerl.evaluation import evaluate_policy

pytestmark = pytest.mark.timeout(1800)  # a dozen tiny runs, each compiled once, on a shared 2-core CPU

OFFLINE = ["--num-updates", "20", "--updates-per-iteration", "10", "--eval-episodes", "2"]
PENDULUM_SAC = ["--env", "Pendulum-v1", "--total-timesteps", "200", "--rollout-steps", "50",
                "--learning-starts", "100", "--batch-size", "16", "--hidden", "16", "16",
                "--eval-episodes", "2"]
PG = ["--batch-steps", "100", "--num-iters", "2", "--max-episode-length", "50", "--eval-episodes", "4",
      "--gamma-0", "0.01"]  # small steps keep the policy stochastic (0.1 made one seed greedy)
FLAGS = {  # the tiniest budgets: one or two iterations of small networks
    "ppo": ["--env", "CartPole-v1", "--total-timesteps", "256", "--num-envs", "2", "--num-steps", "64",
            "--hidden", "16", "16", "--eval-episodes", "4"],
    "pmoe_ppo": ["--env", "Pendulum-v1", "--total-timesteps", "128", "--num-envs", "2", "--num-steps", "32",
                 "--update-epochs", "1", "--num-minibatches", "1", "--hidden", "16", "16", "--q-hidden", "16",
                 "16", "--eval-episodes", "2", "--normalize-obs"],
    "a2c": ["--env", "Pendulum-v1", "--total-timesteps", "128", "--num-envs", "2", "--num-steps", "64",
            "--hidden", "16", "16", "--eval-episodes", "2"],
    "trpo": ["--env", "Pendulum-v1", "--total-timesteps", "256", "--num-envs", "2", "--num-steps", "64",
             "--vf-minibatches", "2", "--hidden", "16", "16", "--eval-episodes", "2"],
    "sac": [*PENDULUM_SAC, "--num-envs", "2"],
    "pmoe_sac": [*PENDULUM_SAC, "--eval-router", "sample"],  # evaluation draws the expert with the key
    "pg": PG,
    "npg_igt": PG,
    "harpg": PG,
    "td3_bc": [*OFFLINE, "--hidden", "8", "8"],
    "bc": [*OFFLINE, "--hidden", "8", "8"],
    "iql": [*OFFLINE, "--hidden", "8", "8"],
    "prdc": [*OFFLINE, "--hidden", "8", "8"],
    "odice": [*OFFLINE, "--value-hidden", "8", "8", "--policy-hidden", "8", "8"],
    "hnpg": ["--horizon", "3", "--batch-steps", "60", "--num-iters", "2", "--offline-episodes", "500",
             "--no-hybrid", "--eval-episodes", "8"],
    "subpo": ["--env", "items", "--policy-input", "history", "--epochs", "2", "--batch-trajectories", "16",
              "--horizon", "10", "--eval-episodes", "8"],
}
OFFLINE_AGENTS = {"td3_bc", "bc", "iql", "prdc", "odice"}
NOT_EXPOSED = {"hnpg", "subpo"}
DETERMINISTIC_ACTORS = {"td3_bc", "bc", "prdc"}  # their two modes are the same action
EXPOSED = [algo for algo in FLAGS if algo not in NOT_EXPOSED]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    """A small Pendulum-shaped dataset of one-step episodes (random actions, reward -a^2)."""
    rng = np.random.default_rng(0)
    n = 512
    actions = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    rows = {"observations": rng.normal(size=(n, 3)).astype(np.float32), "actions": actions,
            "rewards": -actions[:, 0] ** 2, "next_observations": rng.normal(size=(n, 3)).astype(np.float32),
            "terminals": np.ones(n, bool), "timeouts": np.zeros(n, bool)}
    path = str(tmp_path_factory.mktemp("policies") / "pendulum.hdf5")
    pdata.write_hdf5(path, rows, {"env_id": "Pendulum-v1", "episode_length": 200, "purerl_version": "0"})
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, dataset):
    """`runs(algo)`: the run directory of `algo`'s tiny run, trained on first use (2 seeds, one process)."""
    root, trained = tmp_path_factory.mktemp("runs"), {}

    def run_dir(algo: str) -> str:
        if algo not in trained:
            out = str(root / algo)
            data = ["--dataset", dataset] if algo in OFFLINE_AGENTS else []
            cli_main(["train", algo, *FLAGS[algo], *data, "--num-seeds", "2", "--workers", "1",
                      "--no-progress", "--out", out])
            trained[algo] = out
        return trained[algo]

    return run_dir


def final_returns(run_dir: str) -> list[float]:
    with open(f"{run_dir}/summary.json") as f:
        return json.load(f)["final_return_per_seed"]


@pytest.mark.parametrize("algo", list(FLAGS))
def test_eval_of_the_final_checkpoint_reproduces_the_summary(algo, runs, capsys):
    run_dir = runs(algo)
    capsys.readouterr()
    cli_main(["eval", run_dir, "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["algo"] == algo and len(result["per_seed"]) == 2
    assert [row["mean"] for row in result["per_seed"]] == final_returns(run_dir)


@pytest.mark.parametrize("algo", EXPOSED)
def test_act_in_both_modes_and_the_evaluation_acts_through_it(algo, runs):
    run = purerl.load(runs(algo))
    policy = run.agent.policy
    obs, _ = policy.env.reset(jax.random.PRNGKey(1), policy.env_params)
    shape = policy.env.action_space(policy.env_params).shape
    keys = jax.random.split(jax.random.PRNGKey(2), 64)
    for i in range(len(run.seeds)):
        greedy = jax.vmap(lambda k, i=i: run.act(obs, k, seed_index=i, deterministic=True))(keys)
        sampled = jax.vmap(lambda k, i=i: run.act(obs, k, seed_index=i))(keys)
        assert greedy.shape == sampled.shape == (64, *shape)
        assert bool(jnp.all(jnp.isfinite(greedy))) and bool(jnp.all(jnp.isfinite(sampled)))
        if algo == "pmoe_sac":  # its evaluation action draws the expert: a few distinct actions at most
            assert len(np.unique(np.asarray(greedy), axis=0)) <= run.config.num_experts
        else:  # the most likely action does not depend on the key
            assert bool(jnp.all(greedy == greedy[0]))
        if algo in DETERMINISTIC_ACTORS:
            np.testing.assert_array_equal(sampled, greedy)
        else:  # sampled: the keys give different actions
            assert len(np.unique(np.asarray(sampled), axis=0)) > 1
    # the runner's evaluation episodes of seed 0, played here through `act` in the evaluation mode
    key = saved.evaluation_keys(run.seeds)[0]
    mode = policy.deterministic_evaluation
    returns = jax.jit(lambda key: evaluate_policy(
        policy.env, policy.env_params, lambda k, o: run.act(o, k, seed_index=0, deterministic=mode), key,
        run.config.eval_episodes))(key)
    assert float(returns.mean()) == pytest.approx(final_returns(run.directory)[0], rel=1e-4, abs=1e-3)


@pytest.mark.parametrize("algo", EXPOSED)
def test_render_plays_every_exposed_policy(algo, runs, tmp_path, capsys):
    out = tmp_path / f"{algo}.gif"
    capsys.readouterr()
    cli_main(["render", runs(algo), "--out", str(out), "--steps", "3", "--seed-index", "1"])
    assert Image.open(out).n_frames == 3  # no episode of these envs ends within 3 steps
    assert "3 steps of seed 1" in capsys.readouterr().out


@pytest.mark.parametrize("algo", sorted(NOT_EXPOSED))
def test_agents_without_a_policy_say_so(algo, runs, tmp_path, capsys):
    run = purerl.load(runs(algo))
    assert run.agent.policy is None
    reason = agents.get(algo).NO_POLICY_REASON  # why, in the agent's own words
    with pytest.raises(ValueError, match=f"{algo} does not expose its policy") as refused:
        run.act(jnp.zeros(3), jax.random.PRNGKey(0))
    assert reason in str(refused.value)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        cli_main(["render", run.directory, "--out", str(tmp_path / "episode.gif")])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1, err
    assert err[0] == (f"purerl: error: render needs the agent's policy, which {algo} does not expose: "
                      f"{reason} (purerl eval works)")
    assert not (tmp_path / "episode.gif").exists()
