"""Saved runs: a run directory's config and checkpoint, loaded to evaluate, act with and render.

`load(RUN_DIR, checkpoint=None) -> SavedRun` rebuilds the agent from `config.json` and restores the
seed-batched train state of a checkpoint (default: the last). `evaluate` runs fresh episodes of each seed's
policy with the runner's evaluation keys unless told otherwise, so the final checkpoint reproduces
`summary.json`'s final returns to the bit. `render` writes one episode of one seed's policy: a GIF or an MP4
video for gymnax and purerl envs (matplotlib frames, saved by Pillow, or by imageio-ffmpeg for MP4), brax's
HTML viewer for brax envs. `purerl eval`
and `purerl render` (`purerl.cli`) are these functions behind flags; every `check_*` here raises a
ValueError for bad input before anything is compiled or written.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from gymnax.environments import spaces

from purerl import agents, checkpoint, envs, flags, stats, sweep
from purerl.agent import Agent
from purerl.envs.gymnasium_eval import is_gymnasium
from purerl.evaluation import runs_on_host
from purerl.runner import EVAL_SALT, RunOptions


@dataclass(frozen=True)
class EvalOptions:
    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]
    """run directory written by `purerl train ... --out DIR`"""
    checkpoint: int | None = None
    """iteration of the checkpoint to evaluate (default: the last; a run keeps its newest two)"""
    episodes: int = 0
    """fresh episodes per seed (0: the run's own eval_episodes, as in summary.json)"""
    env: str = ""
    """evaluate in another environment whose observations and actions have the run's shapes"""
    seed: int | None = None
    """draw the episodes from this seed (default: the runner's evaluation keys, which reproduce
    summary.json's final returns on the final checkpoint)"""
    json: bool = False
    """print the result as one JSON object instead of a table"""


@dataclass(frozen=True)
class RenderOptions:
    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]
    """run directory written by `purerl train ... --out DIR`"""
    out: str
    """file to write: .gif or .mp4 for gymnax and purerl envs (.mp4 needs pip install 'purerl[video]'), .html
    for brax envs (brax's viewer)"""
    checkpoint: int | None = None
    """iteration of the checkpoint to render (default: the last)"""
    seed_index: int = 0
    """which of the run's seeds acts: 0 .. num_seeds - 1"""
    steps: int = 0
    """steps shown at most; the rollout stops where the first episode ends (0: the env's time limit)"""
    deterministic: bool = False
    """act with the policy's most likely action instead of sampling"""
    seed: int = 0
    """seed of the rollout's random keys (initial state, sampled actions)"""
    overwrite: bool = False
    """replace an existing --out file"""


@dataclass(frozen=True)
class SavedRun:
    """A run directory loaded at one checkpoint (see `load`)."""

    directory: str
    algo: str
    config: Any
    """the agent's Config, as the run trained it (with any `--resume` changes)"""
    options: RunOptions
    iteration: int
    """the loaded checkpoint's iteration"""
    agent: Agent
    state: Any
    """the train state of every seed, stacked on a leading seed axis"""
    _act: Callable = field(repr=False)

    @property
    def seeds(self) -> list[int]:
        return self.options.seeds

    @property
    def params(self) -> list[Any]:
        """Each seed's network parameters (`state.params`), in the order of `seeds`."""
        if not hasattr(self.state, "params"):
            raise ValueError(f"{self.algo}'s train state keeps its parameters elsewhere; use `.state`")
        return [jax.tree.map(lambda x, i=i: x[i], self.state.params) for i in range(len(self.seeds))]

    def act(self, obs, key, seed_index: int = 0, deterministic: bool = False) -> jax.Array:
        """Seed `seeds[seed_index]`'s action for one observation (jitted; `jax.vmap` it for a batch):
        sampled with `key`, or its most likely action if `deterministic`. The final evaluation acts in the
        mode `agent.policy.deterministic_evaluation` names (sampled for PPO, A2C, TRPO; the most likely
        action for SAC, the policy-gradient estimators and the offline agents)."""
        check_seed_index(self, seed_index)
        if self.agent.policy is None:
            raise ValueError(f"{self.algo} does not expose its policy: {no_policy_reason(self.algo)}; only "
                             "`evaluate` works for its saved runs")
        return self._act(self.state, jnp.asarray(seed_index), jnp.asarray(obs), key, deterministic)


def no_policy_reason(algo: str) -> str:
    """Why an agent exposes no `Agent.policy`, as its module states it."""
    return getattr(agents.get(algo), "NO_POLICY_REASON", "it has not been written yet")


def read_run(directory: str) -> tuple[str, Any, RunOptions]:
    """(algo, agent Config, RunOptions) from a run directory's config.json."""
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        raise ValueError(f"{directory!r} is not a purerl run directory (no config.json)")
    try:
        with open(path) as f:
            saved = json.load(f)
        module = agents.get(saved["algo"])
        return (saved["algo"], flags.from_dict(module.Config, saved["config"]),
                flags.from_dict(RunOptions, saved["run"]))
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a purerl run config ({type(err).__name__}: {err})") from None


def check_checkpoint(directory: str, iteration: int | None) -> int:
    """The iteration of the checkpoint to load: `iteration`, or the last one saved."""
    saved = checkpoint.steps(os.path.join(directory, "checkpoints"))
    if not saved:
        raise ValueError(f"{directory!r} has no checkpoint (a run saves one at its end, and every "
                         "--checkpoint-every N iterations)")
    if iteration is None:
        return saved[-1]
    if iteration not in saved:
        raise ValueError(f"no checkpoint at iteration {iteration} in {directory!r}; saved: "
                         f"{', '.join(map(str, saved))}")
    return iteration


def load(directory: str, checkpoint: int | None = None) -> SavedRun:
    """The run in `directory` at the checkpoint of iteration `checkpoint` (default: the last).

    The result holds `.config` (the agent's Config), `.seeds`, `.state` and `.params` (one per seed), and a
    jitted `.act(obs, key, seed_index=0, deterministic=False)` for agents that expose their policy (all but
    HNPG and SubPO); `evaluate` and `render` take it."""
    algo, config, options = read_run(directory)
    iteration = check_checkpoint(directory, checkpoint)
    agent = agents.get(algo).make_agent(config)
    return SavedRun(directory, algo, config, options, iteration, agent,
                    _restore(directory, agent, options.seeds, iteration), _make_act(agent))


def _restore(directory: str, agent: Agent, seeds: list[int], iteration: int):
    """The seed-batched train state of one checkpoint, on this process's first device."""
    sharding = sweep.seed_sharding(1)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                            jax.eval_shape(jax.vmap(agent.init), sweep.seed_keys(seeds)))
    _, state, _ = checkpoint.restore(os.path.join(directory, "checkpoints"), abstract, step=iteration)
    return sweep.uncommitted(state)  # `evaluate` then compiles the runner's own final evaluation program


def _make_act(agent: Agent) -> Callable:
    def act(state, seed_index, obs, key, deterministic):
        one_seed = jax.tree.map(lambda x: x[seed_index], state)
        return agent.policy.act_fn(one_seed, deterministic)(key, obs)

    return jax.jit(act, static_argnums=4)


def check_seed_index(run: SavedRun, seed_index: int) -> None:
    if not 0 <= seed_index < len(run.seeds):
        raise ValueError(f"seed_index must lie in [0, {len(run.seeds)}) (the run trained {len(run.seeds)} "
                         f"seed(s)), got {seed_index}")


# ---------------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------------


def evaluation_config(algo: str, config: Any, episodes: int = 0, env: str = "") -> Any:
    """The run's config with `episodes` per seed and `env` (defaults: the run's own), after checking that the
    run's policy fits that env: same observation shape, same kind and number of actions."""
    changes = {}
    if episodes:
        if episodes < 0 or not hasattr(config, "eval_episodes"):
            raise ValueError(f"episodes must be positive, got {episodes}" if episodes < 0 else
                             f"{algo}'s config has no eval_episodes to change")
        changes["eval_episodes"] = episodes
    if is_gymnasium(env) and env != getattr(config, "eval_env", ""):
        if not hasattr(config, "eval_env"):
            raise ValueError(f"--env {env} evaluates offline agents (their --eval-env); {algo} has none")
        # the agent checks the run's dataset, hence its policy's shapes, against the gymnasium env
        changes.update(env=env, eval_env=env)
    elif env and env != getattr(config, "env", ""):
        if not getattr(config, "env", ""):
            raise ValueError(f"--env needs a run trained on an environment; this {algo} run's config names "
                             "none")
        envs.check_name(env)
        trained, other = _describe_spaces(config.env), _describe_spaces(env)
        if trained != other:
            raise ValueError(f"the run's policy does not fit {env}: it was trained on {config.env} with "
                             f"{trained}, {env} has {other}")
        changes["env"] = env
    return dataclasses.replace(config, **changes) if changes else config


def _describe_spaces(name: str) -> str:
    env, params = envs.make(name)
    obs, action = env.observation_space(params), env.action_space(params)
    actions = (f"{action.n} discrete actions" if isinstance(action, spaces.Discrete)
               else f"continuous actions of shape {tuple(action.shape)}")
    return f"observations of shape {tuple(obs.shape)} and {actions}"


def evaluation_keys(seeds: list[int], seed: int | None = None) -> jax.Array:
    """The runner's keys, `fold_in(PRNGKey(s), EVAL_SALT)` for each run seed s; or, given `seed`, fresh
    keys `fold_in(PRNGKey(seed), i)` for the i-th run seed."""
    if seed is None:
        return jax.vmap(lambda k: jax.random.fold_in(k, EVAL_SALT))(sweep.seed_keys(seeds))
    return jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(seed), i))(jnp.arange(len(seeds)))


def evaluate(run: SavedRun, episodes: int = 0, env: str = "", seed: int | None = None) -> np.ndarray:
    """(num_seeds, episodes) undiscounted returns of fresh episodes of every seed's policy (acting as in the
    agent's own evaluation), in one vmapped program as the runner's final evaluation."""
    config = evaluation_config(run.algo, run.config, episodes, env)
    agent = run.agent if config == run.config else agents.get(run.algo).make_agent(config)
    if runs_on_host(agent.evaluate):  # a gymnasium env (--eval-env): stepped from Python, as the runner does
        return np.asarray(agent.evaluate(run.state, evaluation_keys(run.seeds, seed)))
    returns = jax.jit(sweep.over_seeds(agent.evaluate))(run.state, evaluation_keys(run.seeds, seed))
    return np.asarray(returns)


def summarize(run: SavedRun, returns: np.ndarray, env: str = "", seed: int | None = None) -> dict[str, Any]:
    """Mean return per seed with a 95% bootstrap CI over its episodes, and over seeds with a 95% bootstrap CI
    over the seeds' means. The means are computed as the runner's (float32 episode means), so that the
    final checkpoint's per-seed means equal summary.json's `final_return_per_seed`."""
    per_seed = returns.mean(axis=1)
    rows = []
    for s, seed_returns, mean in zip(run.seeds, returns, per_seed, strict=True):
        _, low, high = stats.bootstrap_ci(seed_returns)
        rows.append({"seed": s, "mean": float(mean), "ci95": [float(low), float(high)]})
    _, low, high = stats.bootstrap_ci(per_seed)
    return {
        "run": run.directory, "algo": run.algo, "env": env or getattr(run.config, "env", ""),
        "checkpoint": run.iteration, "episodes": int(returns.shape[1]),
        "keys": "runner" if seed is None else f"seed {seed}",
        "per_seed": rows, "mean": float(per_seed.mean()), "ci95": [float(low), float(high)],
        # a gymnasium evaluation env: its D4RL-normalised scores, as in summary.json
        **(run.agent.evaluate.scores(per_seed) if runs_on_host(run.agent.evaluate) else {}),
    }


def format_summary(result: dict[str, Any]) -> str:
    lines = [f"{result['algo']}{' on ' + result['env'] if result['env'] else ''}, checkpoint at iteration "
             f"{result['checkpoint']}: mean return of {result['episodes']} episodes per seed "
             f"({'the runner' if result['keys'] == 'runner' else result['keys']}'s keys), 95% bootstrap CI"]
    lines += [f"  seed {row['seed']}: {row['mean']:.1f} [{row['ci95'][0]:.1f}, {row['ci95'][1]:.1f}]"
              for row in result["per_seed"]]
    lines.append(f"  over seeds: {result['mean']:.1f} [{result['ci95'][0]:.1f}, {result['ci95'][1]:.1f}]")
    if result.get("final_score_mean") is not None:
        lines.append(f"  D4RL-normalised score: mean {result['final_score_mean']:.1f} (reference returns "
                     f"{result['reference_returns']['min']:.1f} .. {result['reference_returns']['max']:.1f})")
    elif "score_note" in result:
        lines.append(f"  {result['score_note']}")
    return "\n".join(lines)


def eval_main(argv: list[str]) -> dict[str, Any]:
    """`purerl eval RUN_DIR [--checkpoint N] [--episodes E] [--env ENV] [--seed S] [--json]`: prints the
    table (or, with --json, one JSON object) and writes nothing. An offline run evaluates in a gymnasium
    MuJoCo env with `--env gymnasium:ID` (or in its own `--eval-env`), and then reports its scores too."""
    options = flags.parse(EvalOptions, argv, prog="purerl eval",
                          description="Evaluate a saved run's policies: mean return per seed and over seeds.")
    try:
        if options.seed is not None and options.seed < 0:
            raise ValueError(f"seed must be non-negative, got {options.seed}")
        algo, config, _ = read_run(options.run_dir)
        check_checkpoint(options.run_dir, options.checkpoint)
        agents.get(algo).make_agent(evaluation_config(algo, config, options.episodes, options.env))
    except ValueError as err:
        flags.fail(str(err))
    run = load(options.run_dir, options.checkpoint)
    result = summarize(run, evaluate(run, options.episodes, options.env, options.seed), options.env,
                       options.seed)
    print(json.dumps(result) if options.json else format_summary(result))
    return result


# ---------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------


def check_render(run: SavedRun, options: RenderOptions) -> None:
    """Bad render input, before anything is compiled or written."""
    check_seed_index(run, options.seed_index)
    if run.agent.policy is None:
        raise ValueError(f"render needs the agent's policy, which {run.algo} does not expose: "
                         f"{no_policy_reason(run.algo)} (purerl eval works)")
    if runs_on_host(run.agent.evaluate):
        raise ValueError(f"render draws purerl's own envs; this run evaluates in {run.config.eval_env} "
                         "(gymnasium's own render_mode shows it)")
    if options.steps < 0:
        raise ValueError(f"steps must be positive (or 0 for the env's time limit), got {options.steps}")
    extension, brax = os.path.splitext(options.out)[1].lower(), is_brax(run.agent.policy.env)
    if brax and extension != ".html":
        raise ValueError(f"--out must end in .html: brax envs render to brax's HTML viewer, got "
                         f"{options.out!r}")
    if not brax and extension not in (".gif", ".mp4"):
        raise ValueError(f"--out must end in .gif or .mp4: this env renders to a GIF or an MP4 video, got "
                         f"{options.out!r}")
    if extension == ".mp4":
        check_video_writer()
    if os.path.exists(options.out) and not options.overwrite:
        raise ValueError(f"{options.out!r} exists; pass --overwrite or choose another --out")


def check_video_writer() -> None:
    """An MP4 is written by imageio through imageio-ffmpeg (which brings its own ffmpeg binary): the optional
    extra `purerl[video]`."""
    import importlib.util

    missing = [name for name, module in (("imageio", "imageio"), ("imageio-ffmpeg", "imageio_ffmpeg"))
               if importlib.util.find_spec(module) is None]
    if missing:
        raise ValueError(f"--out .mp4 needs {' and '.join(missing)}: pip install 'purerl[video]' (or write a "
                         ".gif)")


def is_brax(env) -> bool:
    return hasattr(env, "brax_env")  # purerl.envs.brax.BraxEnv, through any wrapper


@dataclass
class Episode:
    """One seed's rollout: what it saw at each step, the rewards, and where the first episode ended."""

    states: Any  # the env states the policy acted in, stacked over steps
    observations: np.ndarray
    rewards: np.ndarray
    length: int  # steps up to and including the one that ended the first episode (or all steps)


def rollout(run: SavedRun, seed_index: int = 0, steps: int = 0, deterministic: bool = False,
            seed: int = 0) -> Episode:
    """Run one seed's policy for `steps` steps (0: the env's time limit) and keep its first episode."""
    policy = run.agent.policy
    steps = steps or int(policy.env_params.max_steps_in_episode)
    one_seed = jax.tree.map(lambda x: x[seed_index], run.state)

    @jax.jit
    def run_steps(state, key):
        act = policy.act_fn(state, deterministic)
        reset_key, key = jax.random.split(key)
        obs, env_state = policy.env.reset(reset_key, policy.env_params)

        def step(carry, step_key):
            obs, env_state = carry
            act_key, env_key = jax.random.split(step_key)
            next_obs, next_state, reward, terminated, truncated, _ = policy.env.step(
                env_key, env_state, act(act_key, obs), policy.env_params)
            return (next_obs, next_state), (env_state, obs, reward, terminated | truncated)

        return jax.lax.scan(step, (obs, env_state), jax.random.split(key, steps))[1]

    states, observations, rewards, done = jax.device_get(run_steps(one_seed, jax.random.PRNGKey(seed)))
    ends = np.flatnonzero(done)
    length = int(ends[0]) + 1 if ends.size else steps
    return Episode(jax.tree.map(lambda x: x[:length], states), observations[:length], rewards[:length],
                   length)


def render(run: SavedRun, options: RenderOptions) -> Episode:
    """Write one episode of seed `options.seed_index` to `options.out`: a GIF or an MP4 video with one frame
    per step (the state the policy acted in), or brax's HTML viewer of the same states."""
    check_render(run, options)
    episode = rollout(run, options.seed_index, options.steps, options.deterministic, options.seed)
    os.makedirs(os.path.dirname(os.path.abspath(options.out)), exist_ok=True)
    env = run.agent.policy.env
    if is_brax(env):
        _write_brax_html(env, episode, options.out)
    elif options.out.lower().endswith(".mp4"):
        _write_mp4(_frames(env.name, episode), options.out)
    else:
        _write_gif(_frames(env.name, episode), options.out)
    return episode


def _write_brax_html(env, episode: Episode, out: str) -> None:
    from brax.io import html  # brax is imported by the env already; its viewer only here

    pipeline = episode.states.brax_state.pipeline_state
    frames = [jax.tree.map(lambda x, t=t: x[t], pipeline) for t in range(episode.length)]
    with open(out, "w") as f:
        f.write(html.render(env.brax_env.sys, frames, colab=False))


FRAMES_PER_S = 20  # of a GIF or an MP4: a frame per env step


def _frames(env_name: str, episode: Episode) -> list[np.ndarray]:
    """One (240, 320, 3) uint8 picture per step: the env drawn by matplotlib, off-screen."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    draw = SCENES.get(env_name, _draw_observation)
    returns = np.cumsum(episode.rewards)
    images = []
    for t in range(episode.length):
        figure = Figure(figsize=(4, 3), dpi=80)
        canvas = FigureCanvasAgg(figure)  # no pyplot: headless, and no global figure state
        ax = figure.add_subplot()
        draw(ax, jax.tree.map(lambda x, t=t: x[t], episode.states), episode.observations[t])
        ax.set_title(f"{env_name}  step {t + 1}  return {returns[t]:.1f}", fontsize=9)
        canvas.draw()
        images.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return images


def _write_gif(frames: list[np.ndarray], out: str) -> None:
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(out, save_all=True, append_images=images[1:], duration=1000 // FRAMES_PER_S, loop=0)


def _write_mp4(frames: list[np.ndarray], out: str) -> None:
    import imageio.v2 as imageio  # purerl[video], checked by check_render

    # H.264 in yuv420p (what browsers and players take) needs even sides: the 320x240 frames have them
    imageio.mimwrite(out, frames, format="FFMPEG", fps=FRAMES_PER_S, codec="libx264", pixelformat="yuv420p",
                     macro_block_size=16)


# One drawing per classic-control env, from its gymnax state; any other env shows its observation.

def _draw_cartpole(ax, state, obs) -> None:
    x, theta = float(state.x), float(state.theta)
    ax.add_patch(_rectangle((x - 0.25, -0.1), 0.5, 0.2))
    ax.plot([x, x + np.sin(theta)], [0.0, np.cos(theta)], lw=4, color="tab:orange")
    ax.axhline(-0.1, color="grey", lw=1)
    ax.set(xlim=(-2.4, 2.4), ylim=(-0.5, 1.3), aspect="equal", yticks=[])


def _draw_pendulum(ax, state, obs) -> None:
    theta = float(state.theta)  # 0 is upright
    ax.plot([0.0, np.sin(theta)], [0.0, np.cos(theta)], lw=4, color="tab:orange")
    ax.set(xlim=(-1.2, 1.2), ylim=(-1.2, 1.2), aspect="equal", xticks=[], yticks=[])


def _draw_acrobot(ax, state, obs) -> None:
    a1, a2 = float(state.joint_angle1), float(state.joint_angle2)  # 0, 0 hangs straight down
    elbow = (np.sin(a1), -np.cos(a1))
    tip = (elbow[0] + np.sin(a1 + a2), elbow[1] - np.cos(a1 + a2))
    ax.plot([0.0, elbow[0], tip[0]], [0.0, elbow[1], tip[1]], lw=4, color="tab:orange", marker="o")
    ax.axhline(1.0, color="grey", lw=1, ls="--")  # the tip must rise above this line
    ax.set(xlim=(-2.2, 2.2), ylim=(-2.2, 2.2), aspect="equal", xticks=[], yticks=[])


def _draw_mountain_car(ax, state, obs) -> None:
    hills = np.linspace(-1.2, 0.6, 100)
    position = float(state.position)
    ax.plot(hills, np.sin(3 * hills), color="grey")
    ax.plot([position], [np.sin(3 * position)], "o", ms=10, color="tab:orange")
    ax.axvline(0.5, color="green", lw=1, ls="--")  # the goal
    ax.set(xlim=(-1.2, 0.6), ylim=(-1.1, 1.1), yticks=[])


def _draw_observation(ax, state, obs) -> None:
    """Any other env: its observation, as an image (MinAtar's channels) or as bars (a vector)."""
    if obs.ndim == 3:
        ax.imshow(np.argmax(np.concatenate([np.zeros(obs.shape[:2] + (1,)), obs], axis=-1), axis=-1),
                  cmap="tab20", interpolation="none")
        ax.set(xticks=[], yticks=[])
    else:
        ax.bar(np.arange(obs.size), obs.ravel(), color="tab:blue")
        ax.set(xlabel="observation entry")


def _rectangle(corner, width, height):
    from matplotlib.patches import Rectangle

    return Rectangle(corner, width, height, color="tab:blue")


SCENES = {
    "CartPole-v1": _draw_cartpole,
    "Pendulum-v1": _draw_pendulum,
    "Acrobot-v1": _draw_acrobot,
    "MountainCar-v0": _draw_mountain_car,
    "MountainCarContinuous-v0": _draw_mountain_car,
}


def render_main(argv: list[str]) -> Episode:
    """`purerl render RUN_DIR --out FILE [--seed-index i] [--steps T] [--deterministic]`."""
    options = flags.parse(RenderOptions, argv, prog="purerl render",
                          description="Write one episode of a saved run's policy: a GIF or an MP4 video, or "
                                      "brax's HTML viewer for brax envs.")
    try:
        read_run(options.run_dir)
        check_checkpoint(options.run_dir, options.checkpoint)
        run = load(options.run_dir, options.checkpoint)
        check_render(run, options)
    except ValueError as err:
        flags.fail(str(err))
    episode = render(run, options)
    print(f"wrote {options.out}: {episode.length} steps of seed {run.seeds[options.seed_index]}, return "
          f"{float(episode.rewards.sum()):.1f}")
    return episode
