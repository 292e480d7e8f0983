"""Saved runs: `purerl eval`, `purerl render` and `purerl.load` on a tiny real run (PPO on CartPole-v1, 8192
env steps x 2 seeds, a checkpoint every 8 of its 16 iterations), checked against the run's own files and
against the network and env driven here by hand; brax's HTML viewer on an untrained inverted-pendulum run."""

import base64
import dataclasses
import json
import os
import re
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import purerl
from purerl import checkpoint, envs, sweep
from purerl.agents import ppo
from purerl.cli import main as cli_main
from purerl.logging import write_json
from purerl.runner import RunOptions


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("saved") / "cartpole"
    cli_main(["train", "ppo", "--env", "CartPole-v1", "--total-timesteps", "8192", "--num-seeds", "2",
              "--checkpoint-every", "8", "--no-progress", "--out", str(out)])
    return str(out)


def eval_json(argv, capsys) -> dict:
    capsys.readouterr()
    cli_main(["eval", *argv, "--json"])
    return json.loads(capsys.readouterr().out)


def test_eval_of_the_final_checkpoint_reproduces_the_summary_exactly(run_dir, capsys):
    with open(f"{run_dir}/summary.json") as f:
        summary = json.load(f)
    result = eval_json([run_dir], capsys)
    assert result["checkpoint"] == 16 and result["episodes"] == summary["eval_episodes"] == 128
    assert [row["seed"] for row in result["per_seed"]] == summary["seeds"] == [0, 1]
    assert [row["mean"] for row in result["per_seed"]] == summary["final_return_per_seed"]
    assert result["mean"] == summary["final_return_mean"]
    for row in result["per_seed"]:  # a CI over 128 episodes: around the mean, and narrow
        low, high = row["ci95"]
        assert low < row["mean"] < high and high - low < 0.5 * row["mean"]
    assert min(summary["final_return_per_seed"]) <= result["ci95"][0] <= result["ci95"][1] <= max(
        summary["final_return_per_seed"])


def test_eval_of_a_run_with_the_agents_own_observation_statistics_reproduces_its_summary(tmp_path, capsys):
    # obs_stats_update=before_sgd keeps the statistics in the train state, not in the env state
    out = tmp_path / "pendulum"
    cli_main(["train", "ppo", "--env", "Pendulum-v1", "--normalize-obs", "--obs-stats-update", "before_sgd",
              "--total-timesteps", "2048", "--num-envs", "2", "--num-steps", "256", "--num-seeds", "2",
              "--hidden", "16", "--eval-episodes", "4", "--no-progress", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    result = eval_json([str(out)], capsys)
    assert [row["mean"] for row in result["per_seed"]] == summary["final_return_per_seed"]
    stats = purerl.load(str(out)).state.obs_stats
    np.testing.assert_allclose(stats.count, [2048, 2048], rtol=1e-6)  # per seed, every observation trained on


def test_eval_of_an_earlier_checkpoint_other_keys_and_episode_counts(run_dir, capsys):
    final = eval_json([run_dir], capsys)
    earlier = eval_json([run_dir, "--checkpoint", "8"], capsys)
    assert earlier["checkpoint"] == 8
    assert [r["mean"] for r in earlier["per_seed"]] != [r["mean"] for r in final["per_seed"]]
    other_keys = eval_json([run_dir, "--seed", "3", "--episodes", "16"], capsys)
    assert other_keys["episodes"] == 16 and other_keys["keys"] == "seed 3"
    assert [r["mean"] for r in other_keys["per_seed"]] != [r["mean"] for r in final["per_seed"]]
    # seed index i's episodes are drawn from fold_in(PRNGKey(3), i): the agent's own evaluation, called here
    run = purerl.load(run_dir)
    agent = ppo.make_agent(dataclasses.replace(run.config, eval_episodes=16))
    keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(3), i) for i in range(2)])
    returns = np.asarray(jax.jit(jax.vmap(agent.evaluate))(run.state, keys))
    assert [r["mean"] for r in other_keys["per_seed"]] == [float(x) for x in returns.mean(axis=1)]

    capsys.readouterr()
    cli_main(["eval", run_dir, "--episodes", "4"])  # the table
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ppo on CartPole-v1, checkpoint at iteration 16: mean return of 4 episodes")
    assert [line.split(":")[0] for line in lines[1:]] == ["  seed 0", "  seed 1", "  over seeds"]


def test_load_gives_the_config_params_per_seed_and_a_jitted_policy(run_dir):
    run = purerl.load(run_dir)
    with open(f"{run_dir}/config.json") as f:
        recorded = json.load(f)["config"]
    assert run.config.hidden == (64, 64)  # tuples come back as tuples, not JSON's lists
    assert json.loads(json.dumps(dataclasses.asdict(run.config))) == recorded
    assert run.iteration == 16 and run.seeds == [0, 1] and len(run.params) == 2
    env, env_params = envs.make("CartPole-v1")
    network = ppo.make_network(run.config, env, env_params)
    obs = jnp.asarray([0.05, 0.3, -0.04, -0.5])
    for i, params in enumerate(run.params):
        logits = network.apply(params, obs)[0].logits
        greedy = run.act(obs, jax.random.PRNGKey(0), seed_index=i, deterministic=True)
        assert int(greedy) == int(jnp.argmax(logits))
        keys = jax.random.split(jax.random.PRNGKey(i), 4000)
        actions = jax.vmap(lambda k, i=i: run.act(obs, k, seed_index=i))(keys)  # sampled, as evaluated
        assert float(actions.mean()) == pytest.approx(float(jax.nn.softmax(logits)[1]), abs=0.03)
    assert purerl.load(run_dir, checkpoint=8).iteration == 8
    with pytest.raises(ValueError, match="no checkpoint at iteration 5"):
        purerl.load(run_dir, checkpoint=5)


def test_render_writes_one_gif_frame_per_step_of_the_first_episode(run_dir, tmp_path, capsys):
    short = tmp_path / "short.gif"
    cli_main(["render", run_dir, "--out", str(short), "--steps", "5"])
    assert short.read_bytes()[:6] == b"GIF89a"
    assert Image.open(short).n_frames == 5  # CartPole cannot fail within 5 steps

    episode = tmp_path / "deterministic" / "episode.gif"
    capsys.readouterr()
    cli_main(["render", run_dir, "--out", str(episode), "--seed-index", "1", "--deterministic"])
    # the same episode played here step by step through purerl.load's policy
    run = purerl.load(run_dir)
    env, env_params = envs.make("CartPole-v1")
    step = jax.jit(env.step)
    obs, state = env.reset(jax.random.split(jax.random.PRNGKey(0))[0], env_params)  # render's reset key
    length, done = 0, False
    while not done:
        action = run.act(obs, jax.random.PRNGKey(0), seed_index=1, deterministic=True)
        obs, state, _, terminated, truncated, _ = step(jax.random.PRNGKey(0), state, action, env_params)
        length, done = length + 1, bool(terminated | truncated)
    assert Image.open(episode).n_frames == length
    assert f"{length} steps of seed 1, return {float(length):.1f}" in capsys.readouterr().out


def test_render_writes_an_mp4_video_of_the_gif_frames(run_dir, tmp_path):
    """`--out x.mp4`: an H.264 video at 20 frames per second with the GIF's pictures (lossy, so compared on
    average), read back through imageio's ffmpeg reader."""
    import imageio.v2 as imageio

    for name in ("short.gif", "short.mp4"):
        cli_main(["render", run_dir, "--out", str(tmp_path / name), "--steps", "5"])
    reader = imageio.get_reader(str(tmp_path / "short.mp4"), format="FFMPEG")
    meta = reader.get_meta_data()
    assert meta["codec"] == "h264" and meta["fps"] == 20 and tuple(meta["size"]) == (320, 240)
    video = np.stack([frame for frame in reader.iter_data()]).astype(np.float64)
    gif = Image.open(tmp_path / "short.gif")
    frames = []
    for index in range(gif.n_frames):
        gif.seek(index)
        frames.append(np.asarray(gif.convert("RGB"), np.float64))
    assert video.shape == (5, 240, 320, 3)  # CartPole cannot fail within 5 steps
    gif_frames = np.stack(frames)
    difference = np.abs(video - gif_frames).mean(axis=(1, 2, 3))  # about 0.4 of 255: compression
    to_the_previous = np.abs(video[1:] - gif_frames[:-1]).mean(axis=(1, 2, 3))
    assert (difference < 1).all() and (difference[1:] < to_the_previous).all(), (difference, to_the_previous)


def test_render_to_mp4_without_imageio_ffmpeg_is_one_line_and_writes_nothing(run_dir, tmp_path, capsys,
                                                                              monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec  # as if imageio-ffmpeg were not installed
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "imageio_ffmpeg" else find_spec(name, *a))
    with pytest.raises(SystemExit) as stop:
        cli_main(["render", run_dir, "--out", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1, err
    assert err[0] == ("purerl: error: --out .mp4 needs imageio-ffmpeg: pip install 'purerl[video]' (or write "
                      "a .gif)")
    assert not list(tmp_path.iterdir())


def test_render_of_a_brax_run_is_brax_html_viewer_of_its_system(tmp_path, capsys):
    """An untrained run written here (config.json and a checkpoint of the initial state): 20 steps."""
    out = tmp_path / "run"
    config = ppo.Config(env="inverted_pendulum", brax_backend="positional", num_envs=1, num_steps=8,
                        num_minibatches=1, total_timesteps=8)
    options = RunOptions(num_seeds=1)
    out.mkdir()
    write_json(str(out / "config.json"), {"algo": "ppo", "config": dataclasses.asdict(config),
                                          "run": dataclasses.asdict(options)})
    state = jax.jit(jax.vmap(ppo.make_agent(config).init))(sweep.seed_keys(options.seeds))
    checkpoint.save(str(out / "checkpoints"), 0, state, {"episode_return": np.full((1, 1), np.nan)})
    html = tmp_path / "pendulum.html"
    cli_main(["render", str(out), "--out", str(html), "--steps", "20"])
    text = html.read_text()
    packed = re.search(r'var system = "([^"]*)"', text).group(1)  # brax's viewer: zlib-packed JSON in base64
    system = json.loads(zlib.decompress(base64.b64decode(packed)))
    assert system["link_names"] == ["cart", "pole"] and len(system["states"]["x"]) == 20
    assert "20 steps of seed 0" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["eval", "{run}", "--checkpoint", "3"], r"no checkpoint at iteration 3 in .*; saved: 8, 16"),
    (["eval", "{run}", "--env", "Acrobot-v1"], r"does not fit Acrobot-v1: it was trained on CartPole-v1 with "
     r"observations of shape \(4,\) and 2 discrete actions, Acrobot-v1 has observations of shape \(6,\)"),
    (["eval", "{run}", "--env", "Nope-v0"], "unknown env 'Nope-v0'"),
    (["eval", "{run}", "--episodes", "-1"], "episodes must be positive"),
    (["eval", "{run}", "--seed", "-1"], "seed must be non-negative"),
    (["render", "{run}", "--out", "{new}.gif", "--seed-index", "2"], r"seed_index must lie in \[0, 2\)"),
    (["render", "{run}", "--out", "{new}.html"], r"--out must end in .gif or .mp4: this env renders"),
    (["render", "{run}", "--out", "{new}.avi"], r"--out must end in .gif or .mp4"),
    (["render", "{run}", "--out", "{new}.gif", "--steps", "-1"], "steps must be positive"),
    (["render", "{run}", "--out", "{run}/config.json"], "--out must end in .gif"),
    (["render", "{run}", "--out", "{new}.gif", "--checkpoint", "9"], "no checkpoint at iteration 9"),
])
def test_bad_input_on_a_real_run_is_one_line_exit_2_and_writes_nothing(argv, message, run_dir, tmp_path,
                                                                       capsys):
    new = tmp_path / "new"
    before = sorted(p.name for p in tmp_path.iterdir()), sorted(os.listdir(run_dir))
    with pytest.raises(SystemExit) as stop:
        cli_main([a.format(run=run_dir, new=new) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and err[0].startswith("purerl: error: "), err
    assert re.search(message, err[0]), (message, err[0])
    assert (sorted(p.name for p in tmp_path.iterdir()), sorted(os.listdir(run_dir))) == before


def test_an_existing_render_file_is_kept_unless_overwrite(run_dir, tmp_path, capsys):
    out = tmp_path / "taken.gif"
    out.write_bytes(b"mine")
    with pytest.raises(SystemExit) as stop:
        cli_main(["render", run_dir, "--out", str(out), "--steps", "2"])
    assert stop.value.code == 2 and "exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"mine"
    cli_main(["render", run_dir, "--out", str(out), "--steps", "2", "--overwrite"])
    assert Image.open(out).n_frames == 2
