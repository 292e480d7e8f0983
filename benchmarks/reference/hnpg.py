"""purerl's HNPG against the authors' code (YifeiZhou02/HNPG): a paired float64 iteration, speed, their runs.

Usage (from the repository root; setup in benchmarks/reference/README.md):
    python -m benchmarks.reference.hnpg --authors-code /path/to/HNPG
    python -m benchmarks.reference.hnpg --authors-code /path/to/HNPG --runs --horizons 5 10 --seeds 0 1 2
    -> benchmarks/results/reference/hnpg.json

Two processes, as in `td3_bc.py`: this one (purerl's venv, jax) drives; the authors' side runs in the
reference venv (`--side authors...`), and they exchange `.npz` files.

1. Paired iteration, float64 on both sides, on the H = 5 lock with the code's defaults (1000 on-policy steps =
   200 episodes, 200 offline transitions per timestep). Their `TRPO` (H policies and H Q networks, torch's own
   initialisation) gives purerl's TrainState its weights (torch Linear (out, in) -> purerl's TorchDense (in,
   out), log_std (1, A) -> (A,)). purerl's `update` runs once from that state; the rollout and the offline
   minibatch it draws from its key (the key splits of `update`) are handed to their `TRPO.update_params`, and
   every Gaussian draw of that call is purerl's: a' ~ pi_{h+1}(s') of the TD targets, the 10 actions of each
   V_h(s) and the offline action a~ ~ pi_h(s). Compared: the critic losses (on-policy and offline, each after
   the 30 Adam steps, mean over h), the TRPO surrogate before and after the step (mean over h), and every
   parameter tensor of the H policies and H critics after the iteration, and its change.
2. Speed: training iterations/s at H = 5 with the code's defaults, 1 seed, each side in its own default dtype
   (purerl float32, theirs float64): purerl's jitted `update` against their `main.py` loop (rollout of 1000
   steps + `update_params`, 1 torch thread), timed between iterations with their per-iteration evaluation
   (30 episodes, not part of the update) subtracted; alternating rounds, best of each.
3. `--runs`: their `main.py` itself (`main(args)`, `--env-name lock`) at each `--horizons` x `--seeds`,
   stopped once the 10-iteration moving average of the training batch's success rate exceeds 0.5 (purerl's
   rule), or at `--run-minutes` of wall time; online samples to solve, next to purerl's from
   benchmarks/results/hnpg_solve.json. Each run's log goes to `--runs-dir`; a finished log there is reused.
   A log without its final summary (a run cut off, or still going) is recorded as `partial`: iterations,
   samples and best moving-average success so far. `--record-runs` records the logs in `--runs-dir` into the
   existing result without repeating the paired iteration or the speed rounds.

Monkeypatches on the authors' side (their files are never edited). Always: stub modules for what the lock
code imports but never uses on the continuous lock (`gym`: only `gym.Env`, whose `seed` seeds nothing their
lock reads, and `spaces.Box`; `PIL`, `torchvision`, `transformers`, `tqdm`), a stub `wandb` whose `log`
records each iteration, and the numpy aliases `np.float` / `np.int` (gone from numpy; their lock uses them).
Paired iteration only: `torch.normal` returns mean + std * (purerl's standard normal draw, in the order their
code draws), the offline buffers' `sample` returns purerl's minibatch, and `TRPO.update_q` /
`trpo.update_policy` are wrapped to record what they fit and return. Runs and speed: `TRPO.update_params` is
wrapped to read the batch's success rate (final reward 1) before it updates, and their `evaluate` is timed.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

from benchmarks.reference import common
from benchmarks.reference.td3_bc import Replay  # replays recorded draws in order, checking shapes

AUTHORS_REPO = "https://github.com/YifeiZhou02/HNPG"
PAIRED_HORIZON = 5
SOLVED_SUCCESS, SOLVE_WINDOW = 0.5, 10  # purerl's rule (benchmarks/bench_hnpg.py)
V_SAMPLES = 10  # their QValue.get_value draws 10 actions


# --- the authors' side (reference venv, torch) ----------------------------------------------------------


class StopRun(Exception):
    """Raised from the stub `wandb.log` to end their 1500-iteration loop early."""


def install_stubs(log) -> None:
    """Stub modules for their unused imports (module docstring) and the numpy aliases; `log(dict)` is the
    stub `wandb.log`."""

    def module(name, **attrs):
        mod = types.ModuleType(name)
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None)  # torch's import probes look for one
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
        return mod

    class Box:
        def __init__(self, low, high, shape, dtype=None):
            self.low, self.high, self.shape, self.dtype = low, high, tuple(shape), dtype

    class Env:
        def seed(self, seed=None):  # gym 0.23's Env.seed seeds a generator their lock never reads
            return [seed]

    class Context:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    spaces = module("gym.spaces", Box=Box, Discrete=object)
    module("gym", Env=Env, spaces=spaces)
    module("PIL", Image=module("PIL.Image", BICUBIC=3))
    transforms = module(
        "torchvision.transforms", CenterCrop=None, Compose=None, Normalize=None, Resize=None, ToTensor=None
    )
    models = module("torchvision.models", resnet18=None)
    module("torchvision", transforms=transforms, models=models)
    module("transformers", CLIPModel=None, ViTFeatureExtractor=None, ViTModel=None)
    module("tqdm", tqdm=lambda iterable, *a, **k: iterable)
    module("wandb", init=lambda *a, **k: Context(), log=log)
    np.float, np.int = float, int  # removed from numpy; their lock code still uses them


def import_authors(authors_code: str, log=lambda metrics: None):
    """Their modules (`main`, `trpo`, `models`), imported from the checkout under the stubs."""
    install_stubs(log)
    sys.path.insert(0, authors_code)
    import main as their_main  # their main.py (it sets float64 as torch's default dtype)
    import models
    import trpo

    their_main.wandb = sys.modules["wandb"]  # main.py imports wandb only under `if __name__ == "__main__"`
    return their_main, trpo, models


def their_args(their_main, horizon: int, seed: int):
    """main.py's argparse defaults for `--seed S --env-name lock --horizon H`."""
    argv = sys.argv
    sys.argv = ["main.py", "--seed", str(seed), "--env-name", "lock", "--horizon", str(horizon)]
    try:
        return their_main.parse_args()
    finally:
        sys.argv = argv


def authors_main(args) -> None:
    """Run their `main(args)` at `--horizon`/`--seed`; print one JSON line per iteration (env_steps,
    success, train_s, eval_s) and a final summary line. Stops at `--max-iters`, `--run-minutes` of wall time,
    or (with `--stop-when-solved`) once the success moving average exceeds 0.5."""
    import torch

    torch.set_num_threads(1)
    record = {"success": [], "env_steps": [], "train_s": [], "eval_s": []}
    clock = {"last": None, "eval": 0.0, "start": time.perf_counter()}

    def log(metrics):
        now = time.perf_counter()
        if clock["last"] is not None:  # the first iteration's time includes nothing of the setup either
            record["train_s"].append(now - clock["last"] - clock["eval"])
            record["eval_s"].append(clock["eval"])
        clock["last"], clock["eval"] = now, 0.0
        record["env_steps"].append(int(metrics["env_steps"]))
        print(json.dumps({k: v[-1] if v else None for k, v in record.items()}), flush=True)
        ma = np.mean(record["success"][-SOLVE_WINDOW:])
        solved = len(record["success"]) >= SOLVE_WINDOW and ma > SOLVED_SUCCESS
        if (
            (args.stop_when_solved and solved)
            or len(record["success"]) >= args.max_iters
            or now - clock["start"] > 60 * args.run_minutes
        ):
            raise StopRun

    their_main, trpo, _ = import_authors(args.authors_code, log)
    update_params = trpo.TRPO.update_params

    def recording_update(self, batch, *rest):
        clock["last"] = clock["last"] or time.perf_counter()  # iteration 0 starts at its first update
        final = np.asarray(batch.mask) == 0
        record["success"].append(float(np.mean(np.asarray(batch.reward)[final] == 1)))
        return update_params(self, batch, *rest)

    trpo.TRPO.update_params = recording_update
    evaluate = their_main.evaluate

    def timed_evaluate(*a, **k):
        start = time.perf_counter()
        out = evaluate(*a, **k)
        clock["eval"] += time.perf_counter() - start
        return out

    their_main.evaluate = timed_evaluate
    setup = time.perf_counter()
    try:
        their_main.main(their_args(their_main, args.horizon, args.seed))
    except StopRun:
        pass
    print(json.dumps({"summary": record, "wall_s": time.perf_counter() - setup}), flush=True)


DEVIATIONS: list[dict] = [  # none changes the update; each is about what is reported or stored
    {
        "name": "surrogate after a rejected step",
        "what": "when the line search accepts no fraction, their update_policy reports the surrogate of the "
        "last fraction tried, purerl's the unchanged one (the parameters stay the same on both sides); "
        "extra.paired.step_accepted_mean says whether the paired iteration met that case",
        "toggle": None,
    },
    {
        "name": "critic losses reported",
        "what": "their update_q returns the losses computed before its last Adam step, purerl's metrics the "
        "losses after the fit; the paired iteration compares the losses after the fit on both sides",
        "toggle": None,
    },
    {
        "name": "precision",
        "what": "their code trains in float64 with float32-stored offline data, purerl in float32; the "
        "paired iteration runs both in float64 on the same minibatch",
        "toggle": None,
    },
]

POLICY_LAYERS, Q_LAYERS = ("affine1", "affine2", "action_mean"), ("affine1", "affine2", "value_head")


def their_networks(agent) -> dict:
    """Their H policies and H Q networks as {"policy": {"<h>": {"affine1": {"weight", "bias"}, ...,
    "action_log_std": (1, A)}}, "q": {...}} numpy trees."""
    out: dict = {"policy": {}, "q": {}}
    for h, (pi, q) in enumerate(zip(agent.policy_net, agent.q_net, strict=True)):
        layers = dict(zip(POLICY_LAYERS, common.linear_layers(pi), strict=True))
        out["policy"][str(h)] = {n: {"weight": w, "bias": b} for n, (w, b) in layers.items()}
        out["policy"][str(h)]["action_log_std"] = pi.action_log_std.detach().numpy().copy()
        out["q"][str(h)] = {
            n: {"weight": w, "bias": b} for n, (w, b) in zip(Q_LAYERS, common.linear_layers(q), strict=True)
        }
    return out


def their_agent(trpo, obs_dim: int, action_dim: int, horizon: int):
    """Their `TRPO` as main.py builds it (CLI defaults), torch's initialisation from seed 0."""
    import torch

    torch.manual_seed(0)
    return trpo.TRPO(obs_dim, action_dim, horizon, 0.0, 0.995, 0.97, 1e-2, 1e-1, 0.1)


def normal_draws(draws: dict, episodes: int, horizon: int) -> list[np.ndarray]:
    """purerl's standard normal draws in the order their `update_params` calls `torch.normal`: V_h of every
    on-policy state before the critic fit (its advantages are recomputed after the fit, so these are zeros),
    a' for the TD targets (h = H-2..0), V_h of every on-policy state after the fit (states in batch order,
    episode-major), then per h the offline action a~ and the 10 actions of V_h."""
    act = draws["v_on"].shape[-1]
    order = [np.zeros((1, act))] * (episodes * horizon * V_SAMPLES)
    order += [draws["next_action"][h] for h in range(horizon - 2, -1, -1)]
    order += [
        draws["v_on"][t, j, e][None]
        for e in range(episodes)
        for t in range(horizon)
        for j in range(V_SAMPLES)
    ]
    for h in range(horizon):
        order += [draws["offline_action"][h]] + [draws["v_off"][h, j] for j in range(V_SAMPLES)]
    return order


class OfflineMinibatch:
    """Stands in for their per-timestep `ReplayBuffer`: `sample(n)` returns purerl's minibatch of step h."""

    capacity = 100_000  # theirs: 2 x 50,000 episodes

    def __init__(self, batch: dict, h: int):
        self.batch, self.h = batch, h

    def sample(self, n):
        import torch

        b = {k: torch.as_tensor(v[self.h], dtype=torch.float64) for k, v in self.batch.items()}
        if n != len(b["obs"]):
            raise RuntimeError(
                f"their code asks for {n} offline transitions at h = {self.h}, purerl drew {len(b['obs'])}"
            )
        return (
            b["obs"],
            b["action"],
            b["reward"][:, None],
            b["next_obs"],
            1.0 - b["done"][:, None],
            np.full((n, 1), self.h, np.int32),
        )


def authors_init(args) -> None:
    """Their initial networks (seed 0) for the paired iteration."""
    inputs = common.load_tree(args.inputs)
    _, trpo, _ = import_authors(args.authors_code)
    obs_dim, action_dim = (int(x) for x in inputs["dims"])
    common.save_tree(args.outputs, their_networks(their_agent(trpo, obs_dim, action_dim, args.horizon)))


def authors_paired(args) -> None:
    """One `update_params` on purerl's rollout, offline minibatch and draws (module docstring)."""
    import torch

    inputs = common.load_tree(args.inputs)
    their_main, trpo, _ = import_authors(args.authors_code)
    traj, draws, horizon = inputs["rollout"], inputs["draws"], args.horizon
    episodes = traj["obs"].shape[1]
    agent = their_agent(trpo, traj["obs"].shape[2], traj["action"].shape[2], horizon)
    initial = their_networks(agent)
    replay = Replay(normal_draws(draws, episodes, horizon), "Gaussian draws")
    torch.normal = lambda mean, std: mean + std * torch.as_tensor(replay.next(tuple(mean.shape)))
    fitted, steps = [], []
    update_q, update_policy = trpo.TRPO.update_q, trpo.update_policy

    def recording_update_q(self, states, actions, targets, off_states, off_actions, off_targets, q_net):
        returned = update_q(self, states, actions, targets, off_states, off_actions, off_targets, q_net)
        with torch.no_grad():  # the losses after the 30 Adam steps (purerl's metrics)
            on = (q_net(torch.cat([states, actions], 1)) - targets).pow(2).mean().item()
            off = (q_net(torch.cat([off_states, off_actions], 1)) - off_targets).pow(2).mean().item()
        fitted.append((on, off))
        return returned

    def recording_update_policy(*a, **k):
        steps.append(update_policy(*a, **k))
        return steps[-1]

    trpo.TRPO.update_q, trpo.update_policy = recording_update_q, recording_update_policy
    memory = their_main.Memory()
    for e in range(episodes):
        for t in range(horizon):
            last = t == horizon - 1
            memory.push(
                traj["obs"][t, e],
                traj["action"][t, e][None],
                0 if last else 1,
                traj["obs"][t if last else t + 1, e],
                traj["reward"][t, e],
                t,
            )
    buffers = [OfflineMinibatch(inputs["offline"], h) for h in range(horizon)]
    returned = agent.update_params(memory.sample(), buffers, horizon, 0)
    replay.done()
    common.save_tree(
        args.outputs,
        {
            "initial": initial,
            "final": their_networks(agent),
            "returned": np.asarray(returned, np.float64),
            "fitted": np.asarray(fitted[::-1]),
            "steps": np.asarray(steps),
        },
    )  # fitted: h = H-1..0 -> 0..H-1


# --- the purerl side (purerl venv, jax) -----------------------------------------------------------------


def stacked_params(theirs: dict, layers, kind: str) -> dict:
    """Their per-h networks -> purerl's stacked pytree (leading axis H): TorchDense_i kernel (in, out)."""
    hs = sorted(theirs, key=int)
    mlp = {
        f"TorchDense_{i}": {
            "kernel": np.stack([theirs[h][n]["weight"].T for h in hs]),
            "bias": np.stack([theirs[h][n]["bias"] for h in hs]),
        }
        for i, n in enumerate(layers)
    }
    params = {"TorchMLP_0": mlp}
    if kind == "policy":
        params["log_std"] = np.stack([theirs[h]["action_log_std"][0] for h in hs])
    return {"params": params}


def as_their_layout(params: dict, layers, kind: str) -> dict:
    """The inverse of `stacked_params` (numpy)."""
    p = params["params"]
    out = {}
    for h in range(len(p["TorchMLP_0"]["TorchDense_0"]["bias"])):
        net = {
            n: {
                "weight": np.asarray(p["TorchMLP_0"][f"TorchDense_{i}"]["kernel"][h]).T,
                "bias": np.asarray(p["TorchMLP_0"][f"TorchDense_{i}"]["bias"][h]),
            }
            for i, n in enumerate(layers)
        }
        if kind == "policy":
            net["action_log_std"] = np.asarray(p["log_std"][h])[None]
        out[str(h)] = net
    return out


def tensor_names(layers, kind: str) -> list[tuple[str, str | None]]:
    """(layer, "weight" / "bias") of every tensor of a network, and ("action_log_std", None) for a policy."""
    return [(n, p) for n in layers for p in ("weight", "bias")] + (
        [("action_log_std", None)] if kind == "policy" else []
    )


def stacked_tensor(tree: dict, name: str, p: str | None) -> np.ndarray:
    """One tensor of every h of a their-layout tree, stacked (leading axis H)."""
    return np.stack([tree[h][name][p] if p else tree[h][name] for h in sorted(tree, key=int)])


def update_draws(agent_parts, state, config):
    """The rollout, offline minibatch and standard normal draws of one HNPG `update` from `state` (the key
    splits of `update`, `critic_pass`, `value` and `offline_advantage` in purerl/agents/hnpg.py)."""
    import jax

    horizon, n_off, act = config.horizon, config.offline_batch, config.action_dim
    _, roll_key, off_key, critic_key, v_key, off_act_key = jax.random.split(state.key, 6)
    traj = agent_parts["rollout"](state.policy, state.env_params, roll_key, config.episodes_per_iter)
    obs, action, reward, next_obs, done = agent_parts["offline_batch"](
        state.offline, state.env_params, off_key
    )
    v_keys = jax.random.split(v_key, (2, horizon))
    per_h = lambda keys, shape: np.stack([np.asarray(jax.random.normal(k, shape)) for k in keys])  # noqa: E731
    draws = {
        "next_action": per_h(jax.random.split(critic_key, horizon), (n_off, act)),
        "v_on": per_h(v_keys[0], (V_SAMPLES, config.episodes_per_iter, act)),
        "offline_action": per_h(jax.random.split(off_act_key, horizon), (n_off, act)),
        "v_off": per_h(v_keys[1], (V_SAMPLES, n_off, act)),
    }
    rollout = {"obs": traj.obs, "action": traj.action, "reward": traj.reward}
    offline = {"obs": obs, "action": action, "reward": reward, "next_obs": next_obs, "done": done}
    as_np = lambda tree: {k: np.asarray(v, np.float64) for k, v in tree.items()}  # noqa: E731
    return as_np(rollout), as_np(offline), draws


def run_authors(args, side: str, inputs: str, outputs: str = "", extra: list[str] | None = None) -> str:
    """Run this module's authors' side in the reference venv; returns its stdout."""
    command = [
        args.reference_python,
        "-m",
        "benchmarks.reference.hnpg",
        "--side",
        side,
        "--authors-code",
        args.authors_code,
        *(["--inputs", inputs] if inputs else []),
        *(["--outputs", outputs] if outputs else []),
        *(extra or []),
    ]
    done = subprocess.run(command, cwd=common.REPO, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"purerl: error: the authors' side failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    return done.stdout


def paired_iteration(args, tmp: Path) -> tuple[dict, dict]:
    """Item 1 of the module docstring -> (name -> (ours, theirs) pairs, purerl's metrics)."""
    import jax
    import jax.numpy as jnp

    from purerl.agents import hnpg

    config = hnpg.Config(horizon=PAIRED_HORIZON, num_iters=1)
    inputs, outputs = tmp / "inputs.npz", tmp / "outputs.npz"
    with jax.enable_x64(True):
        agent, parts = hnpg.make_agent_and_parts(config)
        state = jax.jit(agent.init)(jax.random.key(0))
        common.save_tree(inputs, {"dims": np.asarray([parts["env"].dim, config.action_dim])})
        run_authors(args, "authors-init", str(inputs), str(outputs), ["--horizon", str(config.horizon)])
        initial = common.load_tree(outputs)

        def float64(x):
            x = jnp.asarray(x)
            return x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x

        state = jax.tree.map(
            float64,
            state.replace(
                policy=stacked_params(initial["policy"], POLICY_LAYERS, "policy"),
                q=stacked_params(initial["q"], Q_LAYERS, "q"),
            ),
        )
        rollout, offline, draws = update_draws(parts, state, config)
        common.save_tree(inputs, {"rollout": rollout, "offline": offline, "draws": draws})
        run_authors(args, "authors", str(inputs), str(outputs), ["--horizon", str(config.horizon)])
        theirs = common.load_tree(outputs)
        final, metrics = jax.jit(agent.update)(state)
        metrics = jax.tree.map(np.asarray, metrics)
    if not np.isclose(metrics["episode_return"], rollout["reward"].sum(0).mean(), rtol=0, atol=1e-12):
        sys.exit(
            "purerl: error: the replayed rollout is not the one purerl's update drew (key splits changed?)"
        )
    fitted, steps = theirs["fitted"], theirs["steps"]
    pairs = {
        "critic loss, on-policy (after the fit, mean over h)": (
            metrics["critic_loss_on"],
            fitted[:, 0].mean(),
        ),
        "critic loss, offline (after the fit, mean over h)": (
            metrics["critic_loss_off"],
            fitted[:, 1].mean(),
        ),
        "TRPO surrogate before the step (mean over h)": (metrics["surrogate_before"], steps[:, 0].mean()),
        "TRPO surrogate after the step (mean over h)": (metrics["surrogate_after"], steps[:, 1].mean()),
    }
    for kind, layers in (("policy", POLICY_LAYERS), ("q", Q_LAYERS)):
        ours = as_their_layout(jax.tree.map(np.asarray, getattr(final, kind)), layers, kind)
        for name, p in tensor_names(layers, kind):
            mine, final_theirs, start = (
                stacked_tensor(tree, name, p)
                for tree in (ours, theirs["final"][kind], theirs["initial"][kind])
            )
            label = f"{kind}[h=0..{config.horizon - 1}].{name}{'.' + p if p else ''}"
            pairs[label] = (mine, final_theirs)
            pairs[label + " (step)"] = (mine - start, final_theirs - start)
    first, again = (
        initial["policy"]["0"]["affine1"]["weight"],
        theirs["initial"]["policy"]["0"]["affine1"]["weight"],
    )
    if not np.array_equal(first, again):
        sys.exit("purerl: error: their initial weights differ between the two authors' processes")
    return pairs, metrics


def purerl_speed_timer(iters: int):
    """A timer of purerl's jitted `update` (float32, H = 5, code defaults, 1 seed) over `iters` calls -> its
    iterations/s; and the compile seconds."""
    import jax

    from benchmarks import harness
    from purerl.agents import hnpg

    agent = hnpg.make_agent(hnpg.Config(horizon=PAIRED_HORIZON))
    state = jax.block_until_ready(jax.jit(agent.init)(jax.random.key(0)))
    program, compile_s = harness.compile_timed(agent.update, state)
    holder = {"state": jax.block_until_ready(program(state)[0])}  # warm-up call

    def timer():
        start = time.perf_counter()
        for _ in range(iters):
            holder["state"], _ = program(holder["state"])
        jax.block_until_ready(holder["state"])
        return iters / (time.perf_counter() - start)

    return timer, compile_s


def authors_speed_timer(args):
    """Their main.py for `--speed-iters` + 1 iterations (H = 5, seed 0); iterations/s of all but the first
    (whose rollout precedes the clock), their evaluation excluded."""

    def timer():
        out = run_authors(
            args,
            "authors-main",
            "",
            "",
            ["--horizon", str(PAIRED_HORIZON), "--seed", "0", "--max-iters", str(args.speed_iters + 1)],
        )
        train_s = json.loads(out.strip().splitlines()[-1])["summary"]["train_s"][1:]
        return len(train_s) / sum(train_s)

    return timer


def run_log(args, horizon: int, seed: int) -> Path:
    return Path(args.runs_dir) / f"h{horizon}_seed{seed}.jsonl"


def finished(log: Path) -> bool:
    return log.exists() and '"summary"' in log.read_text()


def start_runs(args) -> list:
    """Item 3 of the module docstring: start their main.py for every (horizon, seed) whose log in
    `--runs-dir` is not finished, `--parallel` at a time in a background thread; returns [thread] (or [])."""
    import threading

    Path(args.runs_dir).mkdir(parents=True, exist_ok=True)
    pending = [(h, s) for h in args.horizons for s in args.seeds if not finished(run_log(args, h, s))]
    if not (args.runs and pending):
        return []

    def launch_all():
        running: list = []
        while pending or running:
            while pending and len(running) < args.parallel:
                h, seed = pending.pop(0)
                command = [
                    args.reference_python,
                    "-m",
                    "benchmarks.reference.hnpg",
                    "--side",
                    "authors-main",
                    "--authors-code",
                    args.authors_code,
                    "--horizon",
                    str(h),
                    "--seed",
                    str(seed),
                    "--stop-when-solved",
                    "--run-minutes",
                    str(args.run_minutes),
                ]
                print(f"their main.py: H = {h}, seed {seed} -> {run_log(args, h, seed)}", flush=True)
                with open(run_log(args, h, seed), "w") as out:
                    running.append(
                        subprocess.Popen(command, cwd=common.REPO, stdout=out, stderr=subprocess.DEVNULL)
                    )
            time.sleep(5)
            running = [p for p in running if p.poll() is None]

    thread = threading.Thread(target=launch_all)
    thread.start()
    return [thread]


def read_log(log: Path) -> tuple[dict, float | None]:
    """A run's record ({"success", "env_steps", "train_s", "eval_s"} lists) and wall seconds: from the
    summary line of a finished log, else (a run cut off, or still going) from its per-iteration lines, with
    wall seconds None."""
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    if lines and "summary" in lines[-1]:
        return lines[-1]["summary"], lines[-1]["wall_s"]
    return {k: [line[k] for line in lines] for k in ("success", "env_steps", "train_s", "eval_s")}, None


def their_runs(args, started: list) -> list[dict]:
    """Wait for the runs `start_runs` started; one row per log in `--runs-dir`: samples to solve (purerl's
    rule). A log without its summary line (the run was cut off or is still going) gives a row marked
    `partial` with what it had done: iterations, samples and the best moving-average success so far."""
    from purerl import stats

    for thread in started:
        thread.join()
    rows = []
    for h in args.horizons:
        for seed in args.seeds:
            log = run_log(args, h, seed)
            if not log.exists():
                continue
            record, wall_s = read_log(log)
            success = record["success"]
            solved = stats.samples_to_solve(success, record["env_steps"], SOLVED_SUCCESS, SOLVE_WINDOW)
            moving = np.convolve(success, np.ones(SOLVE_WINDOW) / SOLVE_WINDOW, "valid")
            rows.append(
                {
                    "horizon": h,
                    "seed": seed,
                    "partial": wall_s is None,
                    "samples_to_solve": solved[0],
                    "iterations": len(success),
                    "samples_run": record["env_steps"][-1] if record["env_steps"] else 0,
                    "wall_s": None if wall_s is None else round(wall_s, 1),
                    "train_s_per_iteration_median": round(float(np.median(record["train_s"] or [0])), 1),
                    "wall_cap_s": 60 * args.run_minutes,
                    "success_ma10_last": round(float(np.mean(success[-SOLVE_WINDOW:] or [0])), 3),
                    "success_ma10_best": round(float(moving.max()), 3) if len(moving) else None,
                    "success_per_iteration": success,
                }
            )
    return rows


def runs_record(args, runs: list[dict]) -> dict:
    """`extra.authors_runs` of the result."""
    return {
        "rule": "10-iteration moving average of batch success > 0.5",
        "runs": runs,
        "command": "their main.py --env-name lock --horizon H --seed S (main(args))",
        "partial": "a row with partial = true is a run cut off before it met the rule or its wall cap: "
        "iterations, samples_run and success_ma10_best are what it had done (samples_to_solve None)",
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def record_runs(args) -> None:
    """`--record-runs`: the logs in `--runs-dir` (finished or partial) and purerl's samples to solve into the
    recorded result's extra; its paired iteration and speed stay as they were recorded."""
    path = common.RESULTS / "hnpg.json"
    if not path.exists():
        sys.exit(f"purerl: error: --record-runs updates {path}, which does not exist yet (run the check)")
    res = json.loads(path.read_text())
    runs = their_runs(args, [])
    # a log does not hold its run's wall cap: a run recorded before keeps the cap it was recorded with
    before = {(r["horizon"], r["seed"]): r for r in (res["extra"].get("authors_runs") or {}).get("runs", [])}
    for row in runs:
        row["wall_cap_s"] = before.get((row["horizon"], row["seed"]), row)["wall_cap_s"]
    for row in runs:
        print(
            f"their main.py H = {row['horizon']} seed {row['seed']}{' (partial)' if row['partial'] else ''}: "
            f"samples to solve {row['samples_to_solve']} ({row['iterations']} iterations, "
            f"best moving-average success {row['success_ma10_best']})"
        )
    res["extra"]["authors_runs"] = runs_record(args, runs)
    res["extra"]["purerl_runs"] = purerl_solve_rows(args.horizons)
    from benchmarks import harness

    print(f"-> {harness.write(res, common.RESULTS)}")


def purerl_solve_rows(horizons) -> list[dict]:
    """purerl's HNPG samples to solve at the same horizons, from benchmarks/results/hnpg_solve.json (its runs,
    recorded before the result schema, are under `legacy`)."""
    path = common.REPO / "benchmarks" / "results" / "hnpg_solve.json"
    rows = json.loads(path.read_text())["legacy"]["runs"] if path.exists() else []
    key = "samples_to_solve_per_seed (None = not solved within cap)"
    return [
        {
            "horizon": r["horizon"],
            "seeds": r["seeds"],
            "samples_to_solve": r[key],
            "sample_cap": r["sample_cap"],
            "file": "benchmarks/results/hnpg_solve.json",
        }
        for r in rows
        if r["method"] == "HNPG" and r["horizon"] in horizons
    ]


def check(args) -> None:
    from benchmarks import harness  # noqa: F401  (first: the XLA CPU flags of the purerl commands)

    started = start_runs(args)  # their runs go on in the background during the paired check and the speed
    with tempfile.TemporaryDirectory() as tmp:
        pairs, metrics = paired_iteration(args, Path(tmp))
    quantities = common.differences(pairs)
    print("hnpg: paired float64 iteration (H = 5), max abs / rel differences:")
    common.print_differences(quantities)
    speed, compile_s = {}, None
    if args.rounds:
        ours, compile_s = purerl_speed_timer(args.speed_iters)
        rates = common.alternating_rates({"purerl": ours, "authors": authors_speed_timer(args)}, args.rounds)
        speed = common.speed_summary(
            rates["purerl"],
            rates["authors"],
            "iterations/s",
            {
                "horizon": PAIRED_HORIZON,
                "batch_steps": 1000,
                "offline_episodes": 50_000,
                "seeds": 1,
                "dtype": "purerl float32, authors float64 (their default)",
                "timed_iterations": args.speed_iters,
                "authors_torch_threads": 1,
                "authors_evaluation": "excluded",
                "cpu_count": os.cpu_count(),
            },
        )
        print(
            f"speed: purerl {speed['purerl']:,.2f} vs authors {speed['authors']:,.3f} iterations/s "
            f"(ratio {speed['ratio_purerl_over_authors']})"
        )
    runs = their_runs(args, started)
    for row in runs:
        print(
            f"their main.py H = {row['horizon']} seed {row['seed']}: samples to solve "
            f"{row['samples_to_solve']} ({row['iterations']} iterations, {row['wall_s']:.0f} s)"
        )
    name, rel = common.worst(quantities)
    verdict = (
        f"agrees: every max relative difference <= 1e-06 (worst {rel:.2e}, {name})"
        if rel <= 1e-6
        else f"DIFFERS: {name} has max relative difference {rel:.2e} > 1e-06"
    )
    res = common.result(
        "hnpg",
        "HNPG against YifeiZhou02/HNPG: one paired float64 iteration, iterations/s, their own runs",
        authors_repo=AUTHORS_REPO,
        authors_commit=common.authors_commit(args.authors_code, args.authors_commit),
        quantities=quantities,
        deviations=DEVIATIONS,
        speed=speed,
        verdict=verdict,
        compile_s=None if compile_s is None else round(compile_s, 2),
        extra={
            "paired": {
                "horizon": PAIRED_HORIZON,
                "on_policy_steps": 1000,
                "offline_per_h": 200,
                "step_accepted_mean": float(metrics["step_accepted"]),
            },
            "authors_runs": runs_record(args, runs),
            "purerl_runs": purerl_solve_rows(args.horizons),
        },
    )
    print(res["extra"]["verdict"])
    print(f"-> {common.write(res)}")


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors-code", required=True, help="a checkout of the authors' repository")
    parser.add_argument("--authors-commit", default="", help="its commit (default: git rev-parse HEAD there)")
    parser.add_argument(
        "--reference-python",
        default=str(common.REFERENCE_PYTHON),
        help="python of the reference venv (make reference-env)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating speed rounds (0: no speed)")
    parser.add_argument("--speed-iters", type=int, default=8, help="iterations timed per speed round")
    parser.add_argument(
        "--runs", action="store_true", help="also run their main.py (item 3 of the docstring)"
    )
    parser.add_argument("--horizons", type=int, nargs="+", default=[5, 10], help="--runs: lock horizons")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="--runs: their --seed values")
    parser.add_argument("--run-minutes", type=float, default=15.0, help="--runs: wall-time cap of one run")
    parser.add_argument(
        "--runs-dir",
        default="/tmp/hnpg_authors_runs",
        help="--runs: one log per run; finished logs there are reused",
    )
    parser.add_argument("--parallel", type=int, default=2, help="--runs: runs at once")
    parser.add_argument(
        "--record-runs",
        action="store_true",
        help="only record the logs in --runs-dir (finished or partial) into the existing result; "
        "no paired iteration, no speed rounds, no new runs",
    )
    parser.add_argument(
        "--side",
        choices=("purerl", "authors", "authors-init", "authors-main"),
        default="purerl",
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    parser.add_argument("--outputs", help=argparse.SUPPRESS)
    parser.add_argument("--horizon", type=int, default=PAIRED_HORIZON, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--max-iters", type=int, default=1500, help=argparse.SUPPRESS)
    parser.add_argument("--stop-when-solved", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side == "purerl":
        if not os.path.isdir(args.authors_code):
            parser.exit(2, f"purerl: error: --authors-code {args.authors_code!r} is not a directory\n")
        common.require_reference_python(parser, args.reference_python)
        if (
            args.rounds < 0
            or args.speed_iters < 2
            or args.run_minutes <= 0
            or args.parallel < 1
            or min(args.horizons) < 1
        ):
            parser.exit(
                2,
                "purerl: error: need --rounds >= 0, --speed-iters >= 2, --run-minutes > 0, "
                "--parallel >= 1 and --horizons >= 1\n",
            )
        if args.record_runs and args.runs:
            parser.exit(2, "purerl: error: --record-runs records existing logs; it does not take --runs\n")
        args.authors_code = os.path.abspath(args.authors_code)
    return args


SIDES = {
    "purerl": "check",
    "authors": "authors_paired",
    "authors-init": "authors_init",
    "authors-main": "authors_main",
}


def main(argv=None) -> None:
    args = parse(argv)
    globals()["record_runs" if args.side == "purerl" and args.record_runs else SIDES[args.side]](args)


if __name__ == "__main__":
    main()
