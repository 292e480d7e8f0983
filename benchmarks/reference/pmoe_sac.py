"""PMOE-SAC against the authors' code (JieRen98/rlkit-pmoe): a paired float64 gradient step, then speed.

    python -m benchmarks.reference.pmoe_sac --authors-code /path/to/rlkit-pmoe

The script runs twice: here under purerl's venv (jax, float64 via x64), and as its authors' side under the
reference venv (`make reference-env`, PyTorch CPU) that it starts itself with `--side authors`; the sides
trade arrays through `.npz` files in a temporary folder.

1. The authors' side builds their networks as `examples/PMOEsac.py` builds them (`TanhPMOEGaussianPolicy`,
   four `FlattenPMOEMlp` critics, 256-256, K = 4; torch's and rlkit's initialisation, seed 0) in float64 for
   hopper's shapes (obs 11, act 3) and saves the weights in flax layout.
2. purerl loads them into a `purerl.agents.sac.Learner` built by PMOE-SAC's own gradient step
   (`sac.make_gradient_step` with `pmoe_sac.mixture_policy`) and draws, from the step's key exactly as
   the step does, the actor's reparameterisation noise at s, the target's noise at s' and the target's
   expert choice k' ~ Categorical(w(s')). A synthetic replay batch (256 rows, 1% terminals) and those draws
   go to the authors' side.
3. The authors' side runs ONE `PMOESACTrainer.train_from_torch` (their config: gamma 0.99, tau 5e-3, Adam 3e-4
   for actor, critics and temperature, learned temperature, target entropy -dim(A)) on that batch with the
   draws replayed; purerl runs ONE jitted gradient step. Compared: every loss, the chosen-expert share, the
   temperature, every tensor of actor, critics and target critics after the step and each trained tensor's
   change, and both sides' Adam moments.

Monkeypatches of the authors' side (their files are never edited): `dateutil`, `dateutil.tz` and `gtimer` are
empty stub modules (rlkit's logger and training loop import them; neither is used by the trainer or the
policy); `torch.distributions.Normal.sample` returns purerl's standard normal draws (their
`TanhNormal.rsample` draws its noise with it) and `Categorical.sample` purerl's target experts; their module's
`f.one_hot` records the best-expert indices; the batch is handed to `train_from_torch` as float64 tensors
(`TorchTrainer.train` would cast it to float32); `env` is a namespace holding the action space's shape.

Deviations, each toggled for the paired update and also reported left as it is:
- their `train_from_torch` steps the critics' Adam before the actor's backward pass. Under torch 0.4.1 (their
  environment files) the actor's gradient then flows back through critic weights that were already stepped
  (the forward pass used the old ones); torch >= 1.5 refuses to run it ("modified by an inplace operation").
  purerl takes every gradient from the pre-step networks. Toggle: the critics' optimiser steps wait until
  the actor has stepped (with their own gradients put back). Left as it is: the optimiser steps write through
  `Parameter.data`, which autograd does not track, as torch 0.4.1 did.
- their `TanhNormal.log_prob` is log N(u) - log(1 - tanh(u)^2 + 1e-6); purerl's is the exact, stable form.
  Toggle: their TanhNormal gets epsilon 0.

Speed: gradient updates/s, float32, batch 256, K = 4, on `--rows` stored transitions: purerl's jitted
gradient step with its replay sampling (`--chunk` steps scanned per call) against their
`SimpleReplayBuffer.random_batch` + `PMOESACTrainer.train` loop (torch on `--torch-threads` threads; its
critic steps through `.data` as under torch 0.4.1, since current torch refuses the loop as released);
alternating rounds, the best of each. Result: `benchmarks/results/reference/pmoe_sac.json`.
"""

from __future__ import annotations

import argparse
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
from benchmarks.reference.odice import untoggled
from benchmarks.reference.td3_bc import Replay  # hands out recorded draws in order, checking shapes

AUTHORS_REPO = "https://github.com/JieRen98/rlkit-pmoe"
OBS_DIM, ACT_DIM, EXPERTS, HIDDEN, BATCH = 11, 3, 4, 256, 256
GAMMA, TAU, LR = 0.99, 5e-3, 3e-4
ACTOR_LAYERS = {"trunk_0": "fc0", "trunk_1": "fc1", "mean": "last_fc", "log_std": "last_fc_log_std",
                "router": "mixing_coefficient_fc"}  # purerl's Dense name -> their nn.Linear attribute
CRITIC_LAYERS = {"Dense_0": "fc0", "Dense_1": "fc1", "Dense_2": "last_fc"}
VARIANTS = {  # the authors' side runs: (critic steps deferred past the actor's step, TanhNormal epsilon)
    "toggled": (True, 0.0),
    "critic_step_order": (False, 0.0),
    "tanh_log_prob_epsilon": (True, 1e-6),
}
DEVIATIONS = [
    {"name": "critic_step_order",
     "what": "their train_from_torch steps the critics' Adam before the actor's backward pass: under torch "
             "0.4.1 (their environment files) the actor gradient flows back through the already-stepped "
             "critic weights; torch >= 1.5 refuses to run it. purerl takes every gradient from the pre-step "
             "networks",
     "toggle": "the authors' critic optimiser steps run after the actor's step, with their own gradients"},
    {"name": "tanh_log_prob_epsilon",
     "what": "their TanhNormal.log_prob subtracts log(1 - tanh(u)^2 + 1e-6); purerl the exact stable form",
     "toggle": "the authors' TanhNormal gets epsilon 0"},
]


def synthetic_batch(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Replay rows of hopper's shapes: Gaussian states, actions in [-0.95, 0.95], Gaussian rewards, 1%
    terminals; float64."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(rows, OBS_DIM))
    return {"obs": obs, "action": rng.uniform(-0.95, 0.95, (rows, ACT_DIM)), "reward": rng.normal(size=rows),
            "next_obs": obs + 0.1 * rng.normal(size=(rows, OBS_DIM)),
            "terminated": (rng.uniform(size=rows) < 0.01).astype(np.float64)}


# --- the authors' side (reference venv, torch) -------------------------------------------------------------

def import_authors(directory: str):
    """Their trainer, policy and critic classes, with the stub modules of the docstring."""
    for name in ("dateutil", "dateutil.tz", "gtimer"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.path.insert(0, directory)
    from rlkit.data_management.simple_replay_buffer import SimpleReplayBuffer
    from rlkit.torch.networks import FlattenPMOEMlp
    from rlkit.torch.PMOEsac import PMOEsac
    from rlkit.torch.PMOEsac.policies import TanhPMOEGaussianPolicy
    return PMOEsac, TanhPMOEGaussianPolicy, FlattenPMOEMlp, SimpleReplayBuffer


def authors_trainer(directory: str, initial: dict | None = None):
    """Their trainer as examples/PMOEsac.py configures it (seed 0 initialisation, or `initial`'s weights)."""
    import torch

    pmoe, policy_class, critic_class, _ = import_authors(directory)
    torch.manual_seed(0)
    critics = [critic_class(input_size=OBS_DIM + ACT_DIM, output_size=1, hidden_sizes=[HIDDEN, HIDDEN])
               for _ in range(4)]
    policy = policy_class(obs_dim=OBS_DIM, action_dim=ACT_DIM, hidden_sizes=[HIDDEN, HIDDEN], k=EXPERTS)
    if initial is not None:
        load(policy, initial["actor"], ACTOR_LAYERS)
        for i, name in enumerate(("critic", "critic", "target", "target")):
            member = {n: {p: v[i % 2] for p, v in layer.items()} for n, layer in initial[name].items()}
            load(critics[i], member, CRITIC_LAYERS)
    env = types.SimpleNamespace(action_space=types.SimpleNamespace(shape=(ACT_DIM,)))
    trainer = pmoe.PMOESACTrainer(env=env, policy=policy, qf1=critics[0], qf2=critics[1],
                                  target_qf1=critics[2], target_qf2=critics[3], discount=GAMMA,
                                  soft_target_tau=TAU, target_update_period=1, policy_lr=LR, qf_lr=LR,
                                  reward_scale=1, use_automatic_entropy_tuning=True, k=EXPERTS)
    return trainer, pmoe


def load(module, flax_layers: dict, names: dict) -> None:
    import torch

    with torch.no_grad():
        for ours, theirs in names.items():
            linear = getattr(module, theirs)
            linear.weight.copy_(torch.as_tensor(flax_layers[ours]["kernel"]).T)
            linear.bias.copy_(torch.as_tensor(flax_layers[ours]["bias"]))


def flax_layers(module, names: dict, get=lambda t: t.detach().numpy().copy()) -> dict:
    """A torch module's Linear layers in purerl's flax layout; `get(tensor) -> numpy` (weights or state)."""
    layers = {ours: getattr(module, theirs) for ours, theirs in names.items()}
    return {ours: {"kernel": get(layer.weight).T.copy(), "bias": get(layer.bias)}
            for ours, layer in layers.items()}


def twin(first, second, get_first=lambda t: t.detach().numpy().copy(), get_second=None) -> dict:
    """Two critics stacked on a leading axis (purerl's EnsembleQ layout)."""
    a = flax_layers(first, CRITIC_LAYERS, get_first)
    b = flax_layers(second, CRITIC_LAYERS, get_second or get_first)
    return {n: {p: np.stack([a[n][p], b[n][p]]) for p in a[n]} for n in a}


def networks(trainer) -> dict:
    return {"actor": flax_layers(trainer.policy, ACTOR_LAYERS), "critic": twin(trainer.qf1, trainer.qf2),
            "target": twin(trainer.target_qf1, trainer.target_qf2)}


def defer_critic_steps(trainer) -> None:
    """The critic-step-order toggle: each critic optimiser's `step` keeps its gradients and runs only after
    the actor's optimiser has stepped, so the actor's backward pass sees the pre-step critics."""
    pending = []

    def deferred(optimizer):
        def step(*args, **kwargs):
            params = [p for group in optimizer.param_groups for p in group["params"]]
            grads = [p.grad.clone() for p in params]
            pending.append((type(optimizer).step.__get__(optimizer), params, grads))
        optimizer.step = step

    deferred(trainer.qf1_optimizer)
    deferred(trainer.qf2_optimizer)
    actor_step = trainer.policy_optimizer.step

    def step_then_critics(*args, **kwargs):
        actor_step(*args, **kwargs)
        while pending:
            step, params, grads = pending.pop(0)
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            step()

    trainer.policy_optimizer.step = step_then_critics


def critic_steps_through_data(trainer) -> None:
    """The critic-step order left as it is, the torch 0.4.1 way: the critic optimisers update each parameter's
    `.data` (shared storage, a version counter of its own), so the actor's later backward pass reads the
    stepped critic weights without current torch's in-place check. (One step only: Adam's state is keyed by
    the `.data` views.)"""
    def through_data(optimizer):
        def step(*args, **kwargs):
            for group in optimizer.param_groups:
                live, views = group["params"], []
                for p in live:
                    view = p.data
                    view.grad = p.grad
                    views.append(view)
                group["params"] = views
                type(optimizer).step(optimizer)
                group["params"] = live
        optimizer.step = step

    through_data(trainer.qf1_optimizer)
    through_data(trainer.qf2_optimizer)


def authors_update(directory: str, inputs: dict, deferred: bool, epsilon: float) -> dict:
    """One float64 `train_from_torch` on purerl's batch with purerl's draws replayed -> what it computed."""
    import torch
    from torch.distributions import Categorical, Normal

    torch.set_default_dtype(torch.float64)
    trainer, pmoe = authors_trainer(directory, inputs["initial"])
    draws = inputs["draws"]
    noise = Replay([draws["actor_noise"], draws["target_noise"]], "normal tensors")
    experts = Replay([draws["target_expert"]], "expert choices")
    Normal.sample = lambda self, sample_shape=(): torch.as_tensor(noise.next(self.loc.shape))
    Categorical.sample = lambda self, sample_shape=(): torch.as_tensor(
        experts.next(self.probs.shape[:-1]), dtype=torch.int64)
    from rlkit.torch import distributions

    distributions.TanhNormal.__init__.__defaults__ = (epsilon,)
    best = []
    functional = pmoe.f

    def one_hot(index, k):
        best.append(index.numpy().copy())
        return functional.one_hot(index, k)

    pmoe.f = types.SimpleNamespace(one_hot=one_hot, mse_loss=functional.mse_loss)
    (defer_critic_steps if deferred else critic_steps_through_data)(trainer)
    batch = inputs["batch"]
    as_tensor = {"observations": "obs", "actions": "action", "next_observations": "next_obs",
                 "rewards": "reward", "terminals": "terminated"}
    tensors = {theirs: torch.as_tensor(batch[ours]) for theirs, ours in as_tensor.items()}
    for column in ("rewards", "terminals"):
        tensors[column] = tensors[column][:, None]
    trainer.train_from_torch(tensors)
    noise.done()
    experts.done()
    stats = trainer.eval_statistics
    out = {"final": networks(trainer), "best_expert": best[0],
           "losses": {"qf1": stats["QF1 Loss"], "qf2": stats["QF2 Loss"], "policy": stats["Policy Loss"],
                      "router": stats["Mixing Coefficient Loss"], "alpha": stats["Alpha Loss"],
                      "alpha_value": stats["Alpha"], "log_pi": stats["Log Pis Mean"],
                      "q": 0.5 * (stats["Q1 Predictions Mean"] + stats["Q2 Predictions Mean"])},
           "log_alpha": trainer.log_alpha.detach().numpy().copy()}
    if deferred:  # Adam's moments (the `.data` variant keys them by throwaway views)
        def moment(optimizer, which):
            return lambda t: optimizer.state[t][which].detach().numpy().copy()

        out["adam"] = {which: {
            "actor": flax_layers(trainer.policy, ACTOR_LAYERS, moment(trainer.policy_optimizer, which)),
            "critic": twin(trainer.qf1, trainer.qf2, moment(trainer.qf1_optimizer, which),
                           moment(trainer.qf2_optimizer, which)),
            "alpha": moment(trainer.alpha_optimizer, which)(trainer.log_alpha)}
            for which in ("exp_avg", "exp_avg_sq")}
    return out


def authors_side(args) -> None:
    if args.task == "init":
        import torch

        torch.set_default_dtype(torch.float64)
        common.save_tree(args.outputs, networks(authors_trainer(args.authors_code)[0]))
    elif args.task == "paired":
        inputs = common.load_tree(args.inputs)
        deferred, epsilon = VARIANTS[args.variant]
        common.save_tree(args.outputs, authors_update(args.authors_code, inputs, deferred, epsilon))
    else:
        authors_speed(args)


def authors_speed(args) -> None:
    """Their training loop's gradient steps (float32, unpatched but for the `.data` critic steps): prints
    updates/s."""
    import torch

    torch.set_num_threads(args.torch_threads)
    np.random.seed(0)
    trainer, _ = authors_trainer(args.authors_code)
    critic_steps_through_data(trainer)
    *_, buffer_class = import_authors(args.authors_code)
    rows = synthetic_batch(args.rows, seed=1)
    buffer = buffer_class(args.rows, OBS_DIM, ACT_DIM, {})
    for i in range(args.rows):
        buffer.add_sample(rows["obs"][i], rows["action"][i], rows["reward"][i], rows["next_obs"][i],
                          rows["terminated"][i], {})
    for _ in range(args.warmup):
        trainer.train(buffer.random_batch(BATCH))
    start = time.perf_counter()
    for _ in range(args.speed_updates):
        trainer.train(buffer.random_batch(BATCH))
    rate = args.speed_updates / (time.perf_counter() - start)
    print(json.dumps({"updates_per_s": rate, "torch_threads": torch.get_num_threads()}))


def run_authors(args, task: str, inputs: str = "", outputs: str = "", extra: list[str] | None = None) -> str:
    command = [args.reference_python, "-m", "benchmarks.reference.pmoe_sac", "--side", "authors",
               "--task", task, "--authors-code", args.authors_code, "--inputs", inputs, "--outputs", outputs,
               *(extra or [])]
    done = subprocess.run(command, cwd=common.REPO, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"purerl: error: the authors' side failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    return done.stdout


# --- the purerl side (purerl venv, jax) ---------------------------------------------------------------------

def purerl_step():
    """PMOE-SAC's own gradient step at the authors' settings -> (policy, learner init, step)."""
    from purerl.agents import pmoe_sac, sac
    from purerl.nn import EnsembleQ

    config = pmoe_sac.Config(num_experts=EXPERTS, hidden=(HIDDEN, HIDDEN), gamma=GAMMA, tau=TAU, actor_lr=LR,
                             critic_lr=LR, alpha_lr=LR, batch_size=BATCH)
    policy = pmoe_sac.mixture_policy(config, ACT_DIM)
    critic = EnsembleQ(2, config.hidden, config.activation)
    init, step = sac.make_gradient_step(config, policy, critic, ACT_DIM)
    return config, policy, init, step


def purerl_draws(policy, actor_params, batch, key) -> dict:
    """The draws purerl's gradient step makes from `key` (the key splits of `sac.make_gradient_step` and
    `pmoe_sac.mixture_policy`): actor noise at s, target noise and target expert k' at s'."""
    import jax
    import jax.numpy as jnp

    actor_key, next_key = jax.random.split(key)
    shape = (BATCH, EXPERTS, ACT_DIM)
    logits = policy.network.apply(actor_params, jnp.asarray(batch["next_obs"]))[2]
    return {"actor_noise": np.asarray(jax.random.normal(actor_key, shape, jnp.float64)),
            "target_noise": np.asarray(jax.random.normal(next_key, shape, jnp.float64)),
            "target_expert": np.asarray(jax.random.categorical(jax.random.fold_in(next_key, 1), logits))}


def pairs_of(learner, metrics, initial: dict, theirs: dict) -> dict:
    """name -> (ours, theirs) for every loss, the temperature, every network tensor and its change, and (where
    recorded) Adam's moments."""
    losses = theirs["losses"]
    share = np.bincount(theirs["best_expert"], minlength=EXPERTS).max() / BATCH
    pairs = {"critic loss (Q1 + Q2)": (metrics["critic_loss"], losses["qf1"] + losses["qf2"]),
             "actor loss (experts + router)": (metrics["actor_loss"], losses["policy"] + losses["router"]),
             "router loss": (metrics["router_loss"], losses["router"]),
             "log pi of the best experts (mean)": (metrics["log_prob"], losses["log_pi"]),
             "alpha loss": (metrics["alpha_loss"], losses["alpha"]),
             "alpha after its step": (metrics["alpha"], losses["alpha_value"]),
             "Q(s, a) (mean of both critics)": (metrics["q"], losses["q"]),
             "best-expert share": (metrics["top_expert_share"], share),
             "log_alpha": (np.reshape(learner.log_alpha, (1,)), theirs["log_alpha"])}
    ours = {"actor": learner.actor_params["params"], "critic": learner.critic_params["params"]["critics"],
            "target": learner.target_params["params"]["critics"]}
    for net, layers in theirs["final"].items():
        for layer, tensors in layers.items():
            for p, value in tensors.items():
                pairs[f"{net}/{layer}.{p}"] = (ours[net][layer][p], value)
                if net != "target":
                    start = initial[net][layer][p]
                    ours_step = np.asarray(ours[net][layer][p]) - start
                    pairs[f"{net}/{layer}.{p} (step)"] = (ours_step, value - start)
    if "adam" in theirs:
        optimisers = {"actor": learner.actor_opt[0], "critic": learner.critic_opt[0],
                      "alpha": learner.alpha_opt[0]}
        for ours_name, theirs_name in (("mu", "exp_avg"), ("nu", "exp_avg_sq")):
            moments = theirs["adam"][theirs_name]
            pairs[f"adam {ours_name}/alpha"] = (np.reshape(getattr(optimisers["alpha"], ours_name), (1,)),
                                                moments["alpha"])
            for net in ("actor", "critic"):
                tree = getattr(optimisers[net], ours_name)["params"]
                tree = tree["critics"] if net == "critic" else tree
                for layer, tensors in moments[net].items():
                    for p, value in tensors.items():
                        pairs[f"adam {ours_name}/{net}/{layer}.{p}"] = (tree[layer][p], value)
    return pairs


def paired_update(args, tmp: Path) -> tuple[dict, list[dict]]:
    """One float64 gradient step on both sides: the toggled pair's differences, and the deviations with each
    one's pair left as it is."""
    import jax
    import jax.numpy as jnp

    from purerl import replay

    _, policy, init, step = purerl_step()
    run_authors(args, "init", outputs=str(tmp / "initial.npz"))
    initial = common.load_tree(tmp / "initial.npz")
    actor = {"params": initial["actor"]}
    batch = synthetic_batch(BATCH)
    key = jax.random.key(args.seed)
    common.save_tree(tmp / "inputs.npz", {"initial": initial, "batch": batch,
                                          "draws": purerl_draws(policy, actor, batch, key)})
    learner = init(actor, {"params": {"critics": initial["critic"]}})
    learner = learner.replace(target_params={"params": {"critics": initial["target"]}})
    def float64(x):
        x = jnp.asarray(x)
        return x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x

    learner = jax.tree.map(float64, learner)
    transition = replay.Transition(**{k: jnp.asarray(v) for k, v in batch.items()},
                                   truncated=jnp.zeros(BATCH, bool))
    transition = transition._replace(terminated=transition.terminated > 0.5)
    final, metrics = jax.jit(step)(learner, transition, key)
    final, metrics = jax.tree.map(np.asarray, (final, metrics))

    results = {}
    for variant in VARIANTS:
        out = tmp / f"authors_{variant}.npz"
        run_authors(args, "paired", str(tmp / "inputs.npz"), str(out), ["--variant", variant])
        results[variant] = common.differences(pairs_of(final, metrics, initial, common.load_tree(out)))
    deviations = [{**deviation, **untoggled(results[deviation["name"]])} for deviation in DEVIATIONS]
    return results["toggled"], deviations


def purerl_timer(chunk: int, rows: int):
    """A timer of purerl's jitted gradient steps (float32, `chunk` replay-sampled steps a call) and its
    compile seconds."""
    import jax
    import jax.numpy as jnp

    from benchmarks import harness
    from purerl import replay

    _, policy, init, step = purerl_step()
    data = synthetic_batch(rows, seed=1)
    transitions = replay.Transition(**{k: jnp.asarray(v, jnp.float32) for k, v in data.items()},
                                    truncated=jnp.zeros(rows, bool))
    transitions = transitions._replace(terminated=transitions.terminated > 0.5)
    buffer = replay.add(replay.init(jax.tree.map(lambda x: x[0], transitions), rows), transitions)
    from purerl.nn import EnsembleQ

    obs0, act0 = jnp.zeros(OBS_DIM), jnp.zeros(ACT_DIM)
    k_actor, k_critic, k_run = jax.random.split(jax.random.key(0), 3)
    critic_params = EnsembleQ(2, (HIDDEN, HIDDEN)).init(k_critic, obs0, act0)
    learner = init(policy.network.init(k_actor, obs0), critic_params)

    def steps(learner, buffer, key):
        def body(learner, step_key):
            sample_key, loss_key = jax.random.split(step_key)
            return step(learner, replay.sample(buffer, sample_key, BATCH), loss_key)

        learner, metrics = jax.lax.scan(body, learner, jax.random.split(key, chunk))
        return learner, metrics["critic_loss"].mean()

    program, compile_s = harness.compile_timed(steps, learner, buffer, k_run)
    holder = {"learner": jax.block_until_ready(program(learner, buffer, k_run)[0]), "key": k_run}

    def timer():
        holder["key"], key = jax.random.split(holder["key"])
        (holder["learner"], _), seconds = harness.run_timed(program, holder["learner"], buffer, key)
        return chunk / seconds

    return timer, compile_s


def authors_timer(args):
    def timer():
        out = run_authors(args, "speed", extra=["--rows", str(args.rows), "--warmup", str(args.warmup),
                                                "--torch-threads", str(args.torch_threads),
                                                "--speed-updates", str(args.speed_updates)])
        return json.loads(out.strip().splitlines()[-1])["updates_per_s"]
    return timer


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--authors-code", required=True, help="a checkout of JieRen98/rlkit-pmoe")
    parser.add_argument("--authors-commit", default="", help="its commit, if the checkout has no .git")
    parser.add_argument("--reference-python", default=str(common.REFERENCE_PYTHON),
                        help="python of the reference venv (make reference-env)")
    parser.add_argument("--seed", type=int, default=0, help="key of purerl's gradient step (its draws)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating speed rounds (0: no speed)")
    parser.add_argument("--rows", type=int, default=20_000, help="stored transitions of the speed rounds")
    parser.add_argument("--chunk", type=int, default=500, help="purerl: gradient steps per jitted call")
    parser.add_argument("--speed-updates", type=int, default=300, help="authors: timed train() calls a round")
    parser.add_argument("--warmup", type=int, default=20, help="authors: untimed train() calls first")
    parser.add_argument("--torch-threads", type=int, default=1, help="authors: torch threads")
    parser.add_argument("--side", choices=("purerl", "authors"), default="purerl", help=argparse.SUPPRESS)
    parser.add_argument("--task", choices=("init", "paired", "speed"), default="paired",
                        help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=tuple(VARIANTS), default="toggled", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", default="", help=argparse.SUPPRESS)
    parser.add_argument("--outputs", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side == "purerl":
        if not (Path(args.authors_code) / "rlkit" / "torch" / "PMOEsac" / "PMOEsac.py").is_file():
            parser.exit(2, f"purerl: error: --authors-code {args.authors_code!r} holds no "
                           "rlkit/torch/PMOEsac/PMOEsac.py (a checkout of JieRen98/rlkit-pmoe)\n")
        common.require_reference_python(parser, args.reference_python)
        if min(args.rounds, args.warmup) < 0 or min(args.chunk, args.speed_updates) < 1 or args.rows < BATCH:
            parser.exit(2, f"purerl: error: need --rounds >= 0, --chunk >= 1, --rows >= {BATCH}, "
                           "--speed-updates >= 1 and --warmup >= 0\n")
        args.authors_code = str(Path(args.authors_code).resolve())
    return args


def main(argv=None) -> None:
    args = parse(argv)
    if args.side == "authors":
        return authors_side(args)
    import dataclasses

    import jax

    from benchmarks import harness  # noqa: F401 (before any jit: the CLI's XLA CPU flags)

    with tempfile.TemporaryDirectory() as tmp, jax.enable_x64(True):
        quantities, deviations = paired_update(args, Path(tmp))
    print("pmoe_sac: one paired float64 gradient step, both deviations toggled; max abs / rel differences:")
    common.print_differences(quantities)
    name, rel = common.worst(quantities)
    left_as_is = common.left_as_is(deviations)
    verdict = (f"{'agrees' if rel <= 1e-6 else 'DIFFERS'}: one float64 PMOE-SAC gradient step matches the "
               f"authors' train_from_torch to {rel:.1e} relative (worst: {name}) with the two deviations "
               f"toggled; each left as it is: {left_as_is}")
    print(verdict)

    speed, compile_s = {}, None
    if args.rounds:
        timer, compile_s = purerl_timer(args.chunk, args.rows)
        rates = common.alternating_rates({"purerl": timer, "authors": authors_timer(args)}, args.rounds)
        speed = common.speed_summary(rates["purerl"], rates["authors"], "updates/s", {
            "batch": BATCH, "experts": EXPERTS, "hidden": [HIDDEN, HIDDEN], "obs_dim": OBS_DIM,
            "act_dim": ACT_DIM, "rows": args.rows, "dtype": "float32", "purerl_steps_per_call": args.chunk,
            "authors_timed_updates": args.speed_updates, "authors_warmup_updates": args.warmup,
            "authors_torch_threads": args.torch_threads, "cpu_count": os.cpu_count()})
        print(f"speed: purerl {speed['purerl']:,.1f} vs authors {speed['authors']:,.1f} updates/s "
              f"(ratio {speed['ratio_purerl_over_authors']})")
    from purerl.agents import pmoe_sac

    config, *_ = purerl_step()
    res = common.result(
        "pmoe_sac", "PMOE-SAC against JieRen98/rlkit-pmoe: one paired float64 gradient step and updates/s",
        authors_repo=AUTHORS_REPO,
        authors_commit=common.authors_commit(args.authors_code, args.authors_commit),
        quantities=quantities, deviations=deviations, speed=speed, verdict=verdict,
        config=dataclasses.asdict(config) if isinstance(config, pmoe_sac.Config) else None,
        compile_s=None if compile_s is None else round(compile_s, 2),
        extra={"obs_dim": OBS_DIM, "action_dim": ACT_DIM, "batch": BATCH, "seed": args.seed})
    print(f"-> {common.write(res)}")


if __name__ == "__main__":
    main()
