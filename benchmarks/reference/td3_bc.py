"""purerl's TD3+BC against the authors' code (sfujim/TD3_BC): a paired float64 update, then speed.

Usage (from the repository root; setup in benchmarks/reference/README.md):
    python -m benchmarks.reference.td3_bc --authors-code /path/to/TD3_BC
    -> benchmarks/results/reference/td3_bc.json

Two processes. This one (purerl's venv, jax) drives; the authors' side runs their `TD3_BC.TD3_BC` and
`utils.ReplayBuffer` in the reference venv (`--reference-python`, default the venv of `make reference-env`,
PyTorch), started as `python -m benchmarks.reference.td3_bc --side authors ...`; they exchange `.npz` files.

1. Paired update, float64 on both sides. A synthetic dataset of hopper's shapes (obs 11, act 3; the same rows
   on both sides) is normalised by their `ReplayBuffer.normalize_states` (compared with purerl's
   `purerl.data.normalize_states`). Their networks are built under `torch.set_default_dtype(float64)` with
   torch's own initialisation; purerl's TrainState gets those weights (torch Linear (out, in) -> flax Dense
   (in, out)).
   purerl's `update` runs 2 gradient steps (a critic step, then a critic + actor step and the target update);
   their `train()` runs twice on the same minibatches and target-policy noise: purerl's draws (batch indices
   and the standard normal noise, from its own keys) are replayed into their code. Compared: the critic losses
   and the actor loss, every parameter tensor of actor, critic and both targets after the 2 steps, and each
   trained tensor's change (the step itself, a stricter test than the parameters).
2. Speed: gradient updates/s, float32 (both sides' defaults), batch 256, 1 seed, on `--rows` rows: purerl's
   jitted `update` (`--chunk` steps per call) against their `train()` loop on their replay buffer, torch on
   `--torch-threads` threads (1 by default: on the shared 2-core CPU 2 threads ran several times slower);
   alternating rounds, best of each.

Monkeypatches on the authors' side (their files are never edited), for the paired update only:
`numpy.random.randint` returns purerl's batch indices (their `ReplayBuffer.sample` draws with it),
`torch.FloatTensor` keeps float64 (their buffer casts minibatches to float32), `torch.randn_like` returns
purerl's target-policy noise draws, and `torch.Tensor.backward` records each loss it is called on. Their
modules import no gym/d4rl, so nothing else is stubbed; the speed rounds run their code unpatched.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.reference import common

AUTHORS_REPO = "https://github.com/sfujim/TD3_BC"
OBS_DIM, ACT_DIM = 11, 3  # hopper's shapes
BATCH = 256
PAIRED_ROWS = 5000


# --- the data (numpy; both sides) ------------------------------------------------------------------------

def synthetic_dataset(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Raw (unnormalised) transitions of hopper's shapes: shifted/scaled Gaussian states, actions in
    [-0.95, 0.95], Gaussian rewards, 1% terminals; float64."""
    rng = np.random.default_rng(seed)
    scale, shift = rng.uniform(0.2, 3.0, OBS_DIM), rng.normal(0.0, 2.0, OBS_DIM)
    obs = rng.normal(size=(rows, OBS_DIM)) * scale + shift
    return {"observations": obs,
            "actions": rng.uniform(-0.95, 0.95, (rows, ACT_DIM)),
            "rewards": rng.normal(1.0, 1.0, rows),
            "next_observations": obs + 0.1 * rng.normal(size=(rows, OBS_DIM)) * scale,
            "terminals": (rng.uniform(size=rows) < 0.01).astype(np.float64)}


# --- the authors' side (reference venv, torch) ----------------------------------------------------------

class Replay:
    """Hands out recorded arrays in order (the monkeypatched draws); `done()` checks all were used."""

    def __init__(self, arrays, name):
        self.arrays, self.name, self.used = list(arrays), name, 0

    def next(self, shape=None):
        if self.used == len(self.arrays):
            raise RuntimeError(f"the authors' code drew more {self.name} than purerl did ({self.used})")
        out = self.arrays[self.used]
        if shape is not None and tuple(out.shape) != tuple(shape):
            raise RuntimeError(f"{self.name} draw {self.used}: shape {tuple(shape)}, recorded {out.shape}")
        self.used += 1
        return out

    def done(self):
        if self.used != len(self.arrays):
            raise RuntimeError(f"the authors' code used {self.used} of {len(self.arrays)} {self.name} draws")


def patch_for_paired_update(inputs: dict) -> list[float]:
    """The float64 replay monkeypatches (module docstring); returns the list the recorded losses go into."""
    import torch

    draws = inputs["draws"]
    indices = Replay([draws["indices"][i] for i in sorted(draws["indices"], key=int)], "batch indices")
    noise = Replay([draws["noise"][i] for i in sorted(draws["noise"], key=int)], "noise tensors")
    losses: list[float] = []
    np.random.randint = lambda low, high=None, size=None: indices.next((size,))
    torch.FloatTensor = lambda array: torch.as_tensor(np.asarray(array), dtype=torch.float64)
    torch.randn_like = lambda like: torch.as_tensor(noise.next(like.shape), dtype=like.dtype)
    backward = torch.Tensor.backward

    def recording_backward(self, *args, **kwargs):
        losses.append(float(self.detach()))
        return backward(self, *args, **kwargs)

    torch.Tensor.backward = recording_backward
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    patch_for_paired_update.checks = (indices, noise)
    return losses


def networks(policy) -> dict:
    """Their actor, critic and targets as {name: {"l1": {"weight", "bias"}, ...}} numpy trees."""
    out = {}
    for name in ("actor", "critic", "actor_target", "critic_target"):
        layers = common.linear_layers(getattr(policy, name))
        out[name] = {f"l{i + 1}": {"weight": w, "bias": b} for i, (w, b) in enumerate(layers)}
    return out


def authors_td3_bc(authors_code: str, data: dict, float64: bool):
    """Their agent and replay buffer on `data` (raw), states normalised by their buffer: (policy, buffer)."""
    sys.path.insert(0, authors_code)
    import TD3_BC  # noqa: N813  (their module)
    import utils  # their utils.py

    buffer = utils.ReplayBuffer(OBS_DIM, ACT_DIM)
    buffer.convert_D4RL(data)
    buffer.normalize_states()
    policy = TD3_BC.TD3_BC(OBS_DIM, ACT_DIM, max_action=1.0)  # main.py's defaults for max_action 1
    return policy, buffer


def authors_paired(args, make=authors_td3_bc) -> None:
    """Paired-update side: read the inputs, run their `train()` twice under the replay patches, save it."""
    inputs = common.load_tree(args.inputs)
    losses = patch_for_paired_update(inputs)
    policy, buffer = make(args.authors_code, inputs["data"], True)
    initial = networks(policy)
    for _ in range(2):
        policy.train(buffer, BATCH)
    for replay in patch_for_paired_update.checks:
        replay.done()
    common.save_tree(args.outputs, {
        "initial": initial, "final": networks(policy), "losses": np.asarray(losses),
        "normalised": {"observations": buffer.state, "next_observations": buffer.next_state},
        "recorded": getattr(policy, "recorded", {})})  # whatever `make` chose to record (PRDC: its search)


def authors_speed(args, make=authors_td3_bc) -> None:
    """Speed side (unpatched, float32): `--warmup`, then `--speed-updates` timed calls of their `train()`;
    prints updates/s."""
    import torch

    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(0)
    np.random.seed(0)
    data = common.load_tree(args.inputs)["data"]
    policy, buffer = make(args.authors_code, data, False)
    for _ in range(args.warmup):
        policy.train(buffer, BATCH)
    start = time.perf_counter()
    for _ in range(args.speed_updates):
        policy.train(buffer, BATCH)
    rate = args.speed_updates / (time.perf_counter() - start)
    print(json.dumps({"updates_per_s": rate, "torch_threads": torch.get_num_threads()}))


# --- the purerl side (purerl venv, jax) -----------------------------------------------------------------

def offline_data(data: dict, dtype) -> object:
    """`purerl.offline.OfflineData` over already-normalised arrays (no env: nothing is evaluated here)."""
    import jax.numpy as jnp

    from purerl import offline

    device = {k: jnp.asarray(v, dtype) for k, v in data.items()}
    return offline.OfflineData(device, np.zeros(OBS_DIM), np.ones(OBS_DIM), "hopper", None, None, {}, "")


def purerl_draws(key, rows: int):
    """The batch indices and standard normal target-policy noise one 2-step `update` of td3_bc draws from its
    state's key (the key splits of `update` and `pair` in purerl/agents/td3_bc.py)."""
    import jax

    from purerl import offline

    _, run_key = jax.random.split(key)
    k1, k2, k3, k4 = jax.random.split(jax.random.split(run_key, 1)[0], 4)
    index_data = {"observations": np.arange(rows)}  # sample() draws rows of every key; take the row numbers
    indices = [np.asarray(offline.sample(index_data, k, BATCH)["observations"]) for k in (k1, k3)]
    noise = [np.asarray(jax.random.normal(k, (BATCH, ACT_DIM))) for k in (k2, k4)]
    return {"indices": {"0": indices[0], "1": indices[1]}, "noise": {"0": noise[0], "1": noise[1]}}


def critic_params(tree: dict) -> dict:
    """Their twin critic (l1-l3: Q1, l4-l6: Q2) as purerl's EnsembleQ params (Dense_i kernels stacked)."""
    pairs = [(tree[f"l{i}"]["weight"], tree[f"l{i}"]["bias"]) for i in range(1, 7)]
    q1, q2 = common.dense_params(pairs[:3]), common.dense_params(pairs[3:])
    return {"params": {"critics": {name: {p: np.stack([q1[name][p], q2[name][p]]) for p in ("kernel", "bias")}
                                   for name in q1}}}


def actor_params(tree: dict) -> dict:
    layers = [(tree[f"l{i}"]["weight"], tree[f"l{i}"]["bias"]) for i in (1, 2, 3)]
    return {"params": common.dense_params(layers)}


def as_torch_layout(params: dict, critic: bool) -> dict:
    """purerl params -> their {"l<i>": {"weight", "bias"}} layout (inverse of actor_params/critic_params)."""
    dense = params["params"]["critics"] if critic else params["params"]
    if not critic:
        return {f"l{i + 1}": {"weight": w, "bias": b} for i, (w, b) in enumerate(common.linear_pairs(dense))}
    out = {}
    for q in (0, 1):
        member = {n: {p: np.asarray(v[p])[q] for p in v} for n, v in dense.items()}
        for i, (w, b) in enumerate(common.linear_pairs(member)):
            out[f"l{3 * q + i + 1}"] = {"weight": w, "bias": b}
    return out


def paired_update(make_agent, config, data: dict, theirs: dict, state):
    """purerl's 2-step `update` from `state` with their initial weights, float64 -> (final state, metrics).

    `make_agent(config, offline_data)` builds the agent; `state` is its init state (its key drew the replayed
    batches and noise)."""
    import jax
    import jax.numpy as jnp

    agent = make_agent(config, offline_data(data, jnp.float64))
    actor, critic = actor_params(theirs["initial"]["actor"]), critic_params(theirs["initial"]["critic"])
    state = state.replace(actor=actor, actor_target=actor, critic=critic, critic_target=critic)
    # every float leaf to float64: the copied weights, and the fresh Adam moments (zeros) of the init state
    def float64(x):
        x = jnp.asarray(x)
        return x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x

    state = jax.tree.map(float64, state)
    return jax.jit(agent.update)(state)


def compare_networks(state, theirs: dict) -> dict:
    """name -> (ours, theirs) for every tensor of the four networks after the update, and for each trained
    tensor's change over the update (ours: final - their initial, the same start)."""
    pairs = {}
    for name in ("actor", "critic", "actor_target", "critic_target"):
        ours = as_torch_layout(jax_to_numpy(getattr(state, name)), critic=name.startswith("critic"))
        for layer, tensors in theirs["final"][name].items():
            for p, value in tensors.items():
                pairs[f"{name}/{layer}.{p}"] = (ours[layer][p], value)
                if name in ("actor", "critic"):
                    start = theirs["initial"][name][layer][p]
                    pairs[f"{name}/{layer}.{p} (step)"] = (ours[layer][p] - start, value - start)
    return pairs


def jax_to_numpy(tree):
    import jax

    return jax.tree.map(np.asarray, tree)


def run_authors(args, side: str, inputs: str, outputs: str = "", extra: list[str] | None = None) -> str:
    """Run this module's authors' side in the reference venv; returns its stdout."""
    command = [args.reference_python, "-m", args.module, "--side", side, "--authors-code", args.authors_code,
               "--inputs", inputs, *(["--outputs", outputs] if outputs else []), *(extra or [])]
    done = subprocess.run(command, cwd=common.REPO, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"purerl: error: the authors' side failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    return done.stdout


def purerl_speed(make_agent, config, data32: dict):
    """A timer of purerl's jitted `update` (float32, `config.updates_per_iteration` steps a call) and its
    compile seconds."""
    import jax

    from benchmarks import harness

    agent = make_agent(config, offline_data(data32, np.float32))
    state = jax.jit(agent.init)(jax.random.key(0))
    program, compile_s = harness.compile_timed(agent.update, state)
    holder = {"state": jax.block_until_ready(program(state)[0])}  # warm-up call

    def timer():
        (holder["state"], _), seconds = harness.run_timed(program, holder["state"])
        return config.updates_per_iteration / seconds

    return timer, compile_s


def authors_speed_timer(args, inputs: str):
    def timer():
        out = run_authors(args, "authors-speed", inputs,
                          extra=["--speed-updates", str(args.speed_updates), "--warmup", str(args.warmup),
                                 "--torch-threads", str(args.torch_threads)])
        return json.loads(out.strip().splitlines()[-1])["updates_per_s"]

    return timer


def verdict_of(quantities: dict, tolerance: float, deviations: list[dict]) -> str:
    name, rel = common.worst(quantities)
    if rel <= tolerance:
        toggled = ", ".join(d["name"] for d in deviations if d.get("toggle"))
        named = f"; deviations toggled to the authors' behaviour: {toggled}" if toggled else ""
        return f"agrees: every max relative difference <= {tolerance:g} (worst {rel:.2e}, {name}){named}"
    return f"DIFFERS: {name} has max relative difference {rel:.2e} > {tolerance:g}"


def parse(argv=None, description: str = __doc__, module: str = "benchmarks.reference.td3_bc"):
    parser = argparse.ArgumentParser(description=description.split("\n")[0])
    parser.add_argument("--authors-code", required=True, help="a checkout of the authors' repository")
    parser.add_argument("--authors-commit", default="", help="its commit (default: git rev-parse HEAD there)")
    parser.add_argument("--reference-python", default=str(common.REFERENCE_PYTHON),
                        help="python of the reference venv (make reference-env)")
    parser.add_argument("--rows", type=int, default=100_000, help="dataset rows of the speed rounds")
    parser.add_argument("--rounds", type=int, default=3, help="alternating speed rounds (0: no speed)")
    parser.add_argument("--chunk", type=int, default=1000, help="purerl: gradient steps per update call")
    parser.add_argument("--speed-updates", type=int, default=1000, help="authors: timed train() calls")
    parser.add_argument("--warmup", type=int, default=50, help="authors: untimed train() calls first")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="authors: torch threads (1: on the shared 2-core CPU, 2 threads ran 5x slower)")
    parser.add_argument("--side", choices=("purerl", "authors", "authors-speed"), default="purerl",
                        help=argparse.SUPPRESS)
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    parser.add_argument("--outputs", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.module = module
    if args.side == "purerl":
        if not os.path.isdir(args.authors_code):
            parser.exit(2, f"purerl: error: --authors-code {args.authors_code!r} is not a directory\n")
        common.require_reference_python(parser, args.reference_python)
        if args.rows < PAIRED_ROWS or args.chunk < 2 or args.chunk % 2 or args.rounds < 0:
            parser.exit(2, f"purerl: error: need --rows >= {PAIRED_ROWS}, an even --chunk >= 2 and "
                           "--rounds >= 0\n")
        args.authors_code = os.path.abspath(args.authors_code)
    return args


def main(argv=None) -> None:
    args = parse(argv)
    if args.side == "authors":
        return authors_paired(args)
    if args.side == "authors-speed":
        return authors_speed(args)
    from benchmarks import harness  # noqa: F401  (first: the XLA CPU flags of the purerl commands)
    from purerl.agents import td3_bc

    config = td3_bc.Config(updates_per_iteration=2, num_updates=2)
    check(args, "td3_bc", td3_bc.make_agent, config, AUTHORS_REPO, deviations=[],
          what="TD3+BC against sfujim/TD3_BC: one paired float64 update (2 steps) and updates/s")


def check(args, agent_name: str, make_agent, config, authors_repo: str, deviations: list[dict], what: str,
          extra_pairs=None, speed_config=None) -> None:
    """The purerl side of a TD3-family check: paired update, speed rounds, result file.

    `extra_pairs(state, metrics, theirs, data) -> {name: (ours, theirs)}` adds agent-specific quantities;
    `speed_config` (default: `config` with `--chunk` steps a call): the float32 agent of the speed rounds."""
    import dataclasses

    import jax

    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = Path(tmp) / "inputs.npz", Path(tmp) / "outputs.npz"
        raw = synthetic_dataset(PAIRED_ROWS)
        with jax.enable_x64(True):
            probe = make_agent(config, offline_data(normalised_purerl(raw), np.float64))
            state = probe.init(jax.random.key(0))
            common.save_tree(inputs, {"data": raw, "draws": purerl_draws(state.key, PAIRED_ROWS)})
            run_authors(args, "authors", str(inputs), str(outputs))
            theirs = common.load_tree(outputs)
            data = {**raw, **theirs["normalised"]}  # their float64 normalisation (purerl stores float32)
            final, metrics = paired_update(make_agent, config, data, theirs, state)
            metrics = jax_to_numpy(metrics)
            losses = theirs["losses"]
            pairs = {
                "normalised observations (purerl stores float32)": (normalised_purerl(raw)["observations"],
                                                                    theirs["normalised"]["observations"]),
                "critic_loss (mean of the 2 steps)": (metrics["critic_loss"], losses[:2].mean()),
                "actor_loss": (metrics["actor_loss"], losses[2]),
                **(extra_pairs(final, metrics, theirs, data) if extra_pairs else {}),  # float64 too
                **compare_networks(final, theirs),
            }
        quantities = common.differences(pairs)
        print(f"{agent_name}: paired float64 update, max abs / rel differences:")
        common.print_differences(quantities)

        speed, compile_s = {}, None
        if args.rounds:
            rows = synthetic_dataset(args.rows, seed=1)
            common.save_tree(inputs, {"data": rows})
            speed_config = speed_config or dataclasses.replace(config, updates_per_iteration=args.chunk,
                                                               num_updates=args.chunk)
            ours_timer, compile_s = purerl_speed(make_agent, speed_config, normalised_purerl(rows))
            timers = {"purerl": ours_timer, "authors": authors_speed_timer(args, str(inputs))}
            rates = common.alternating_rates(timers, args.rounds)
            speed = common.speed_summary(rates["purerl"], rates["authors"], "updates/s", {
                "rows": args.rows, "batch": BATCH, "dtype": "float32", "seeds": 1,
                "purerl_steps_per_call": args.chunk, "authors_timed_updates": args.speed_updates,
                "authors_warmup_updates": args.warmup, "authors_torch_threads": args.torch_threads,
                "cpu_count": os.cpu_count()})
            print(f"speed: purerl {speed['purerl']:,.1f} vs authors {speed['authors']:,.1f} updates/s "
                  f"(ratio {speed['ratio_purerl_over_authors']})")
    res = common.result(
        agent_name, what, authors_repo=authors_repo,
        authors_commit=common.authors_commit(args.authors_code, args.authors_commit), quantities=quantities,
        deviations=deviations, speed=speed, verdict=verdict_of(quantities, 1e-6, deviations),
        config=dataclasses.asdict(config), compile_s=None if compile_s is None else round(compile_s, 2),
        extra={"paired_rows": PAIRED_ROWS, "obs_dim": OBS_DIM, "action_dim": ACT_DIM})
    print(res["extra"]["verdict"])
    print(f"-> {common.write(res)}")


def normalised_purerl(raw: dict) -> dict:
    """purerl's own state normalisation of the raw rows (`purerl.data.normalize_states`, eps 1e-3)."""
    from purerl import data as pdata

    return pdata.normalize_states(raw, 1e-3)[0]


if __name__ == "__main__":
    main()
