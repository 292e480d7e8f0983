"""purerl's SubPO (SubPO-M, SubPO-NM, ModPO) against the authors' code (manish-pra/non-additive-RL).

Usage (from the repository root; setup in benchmarks/reference/README.md):
    python -m benchmarks.reference.subpo --authors-code /path/to/non-additive-RL
    -> benchmarks/results/reference/subpo.json

Two processes. This one (purerl's venv, jax) drives; the authors' side runs their training script `main.py`
itself (its epoch loop is the algorithm: rollout, step weights, loss, Adam step) in the reference venv,
started as `python -m benchmarks.reference.subpo --side authors ...`; they exchange `.npz` files.

1. Paired update, float64 on both sides, one per variant (their `type`: M = SubPO-M, NM = SubPO-NM,
   SRL = ModPO), on the unit-weight 30x30 coverage grid with their `params/coverage/subrl_<type>.yaml`
   (H 80, 500 trajectories, Adam 0.01) run for one epoch. purerl draws its policy's initial weights and one
   epoch's actions; their `policy` network gets those weights (flax Dense (in, out) -> torch Linear
   (out, in)) and their sampler replays those actions. Compared: the visited nodes, the step weights
   w_i / MAX_Ret, log pi(a_i | x_i), the entropy, the loss, F of every trajectory, the gradient of every
   tensor (purerl's from Adam's first moment, mu / (1 - beta1), exact after one step), and every tensor and
   its change after the Adam step. The entropy coefficient is 0.01 (0 in their configs) so that term is
   checked too.
2. Speed: epochs/min at their coverage setting (float32, both sides' defaults, SubPO-M): purerl's jitted
   `update` (rollout of 500 trajectories + Adam step) against their epoch loop; alternating rounds, best of
   each. Their rate is taken between the first and the last epoch's `wandb.log` call (no start-up cost).

Deviation, toggled for the paired update: their step weight is the prefix value F(s_0..s_{i+1})
(`marginal_return`), purerl's default the reward-to-go of marginal gains (unbiased; docs/algorithms/subpo.md).
The paired update runs purerl with `return_mode="prefix_value"`; the default's weights are also reported
against theirs, to show that the difference is that choice alone. Second deviation, also toggled: purerl's
grid environments keep cell weights, F and the gains in float32 even in a float64 run (unit weights make
them exact integers, but w_i / MAX_Ret is then rounded to float32, ~1e-8 relative, which Adam's first step
g / (|g| + eps) magnifies where a gradient entry is near eps); the paired update casts the environment's
params to float64, and the float32 run's differences are reported too.

Monkeypatches on the authors' side (their files are never edited): modules their imports name but this
setting never uses are stubs (`wandb`, whose `log` records the time of each epoch; `gpytorch`, `botorch`,
`dill`, `matplotlib`); `yaml.load` overrides `alg.epochs`, `alg.ent_coef` and `common.batch_size` of the
file it reads; `sys.argv` and the working directory are set as their script expects (a `subrl` folder
holding the checkout). For the paired update only: `torch.set_default_dtype(float64)`, `torch.Tensor.float`
keeps float64 (their script casts its inputs and returns to float32), their `utils.network.policy` loads
purerl's initial weights after its own initialisation, and `torch.distributions.Categorical.sample` returns
purerl's actions step by step.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import runpy
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

from benchmarks.reference import common
from benchmarks.reference.td3_bc import Replay, jax_to_numpy, run_authors, verdict_of

AUTHORS_REPO = "https://github.com/manish-pra/non-additive-RL"
VARIANTS = {  # their `type` -> (purerl's name, Config fields)
    "M": ("SubPO-M", {"policy_input": "markov_time", "reward": "submodular"}),
    "NM": ("SubPO-NM", {"policy_input": "history", "reward": "submodular"}),
    "SRL": ("ModPO", {"policy_input": "markov_time", "reward": "modular"}),
}
PAIRED_ENT_COEF = 0.01
ADAM_BETA1 = 0.9  # optax's and torch's default


# --- the authors' side (reference venv, torch) ----------------------------------------------------------

def stub_unused_modules(epoch_times: list[float]) -> None:
    """Stub modules for what their imports name but the coverage runs never use; `wandb.log` records the
    time of each call (one per epoch)."""
    wandb = types.ModuleType("wandb")
    wandb.init = lambda *a, **k: None
    wandb.log = lambda *a, **k: epoch_times.append(time.perf_counter())
    wandb.finish = lambda *a, **k: None
    wandb.Image = lambda *a, **k: None
    gpytorch, kernels = types.ModuleType("gpytorch"), types.ModuleType("gpytorch.kernels")
    kernels.ScaleKernel = kernels.MaternKernel = object
    gpytorch.kernels = kernels
    botorch, models = types.ModuleType("botorch"), types.ModuleType("botorch.models")
    models.SingleTaskGP = object
    botorch.models = models
    matplotlib, pyplot = types.ModuleType("matplotlib"), types.ModuleType("matplotlib.pyplot")
    matplotlib.pyplot = pyplot
    dill = types.ModuleType("dill")
    sys.modules.update({"wandb": wandb, "gpytorch": gpytorch, "gpytorch.kernels": kernels, "botorch": botorch,
                        "botorch.models": models, "matplotlib": matplotlib, "matplotlib.pyplot": pyplot,
                        "dill": dill})


def override_config(epochs: int, batch: int, ent_coef: float | None) -> None:
    """`yaml.load` returns the file's params with these fields replaced (None: keep the file's)."""
    import yaml

    load = yaml.load

    def overriding_load(stream, Loader):  # noqa: N803  (yaml's argument name)
        params = load(stream, Loader=Loader)
        params["alg"]["epochs"] = epochs
        params["common"]["batch_size"] = batch
        if ent_coef is not None:
            params["alg"]["ent_coef"] = ent_coef
        return params

    yaml.load = overriding_load


def run_their_script(authors_code: str, variant: str) -> dict:
    """Run their `main.py` as `python main.py -param coverage/subrl_<variant>` (it opens
    `subrl/params/...` relative to the working directory); returns the script's globals at its end."""
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(authors_code, Path(tmp) / "subrl")
        cwd, argv = os.getcwd(), sys.argv
        os.chdir(tmp)
        sys.argv = ["main.py", "-param", f"coverage/subrl_{variant}", "-env", "0"]
        try:
            return runpy.run_path(str(Path(authors_code) / "main.py"), run_name="__main__")
        finally:
            os.chdir(cwd)
            sys.argv = argv


def patch_for_paired_update(inputs: dict) -> Replay:
    """float64, purerl's initial weights and purerl's actions (module docstring); returns the replay."""
    import torch
    import utils.network  # their module (the checkout is on sys.path)

    torch.set_default_dtype(torch.float64)
    torch.Tensor.float = lambda self, *a, **k: self.to(torch.float64)
    layers = common.linear_pairs(inputs["params"])
    their_init = utils.network.policy.__init__

    def init_with_purerl_weights(self, *args, **kwargs):
        their_init(self, *args, **kwargs)
        linears = [m for m in self.modules() if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for module, (w, b) in zip(linears, layers, strict=True):
                module.weight.copy_(torch.as_tensor(w))
                module.bias.copy_(torch.as_tensor(b))

    utils.network.policy.__init__ = init_with_purerl_weights  # their class stays (their super() names it)
    actions = inputs["actions"]  # [H-1, B]
    replay = Replay([actions[i] for i in range(actions.shape[0])], "action steps")
    torch.distributions.Categorical.sample = lambda self, *shape: torch.as_tensor(
        replay.next(self.probs.shape[:-1]), dtype=torch.int64)
    return replay


def authors_paired(args) -> None:
    import torch

    sys.path.insert(0, args.authors_code)  # their `utils` package
    inputs = common.load_tree(args.inputs)
    stub_unused_modules([])
    override_config(epochs=1, batch=int(inputs["batch"]), ent_coef=float(inputs["ent_coef"]))
    replay = patch_for_paired_update(inputs)
    g = run_their_script(args.authors_code, args.variant)
    replay.done()
    linears = [m for m in g["agent"].modules() if isinstance(m, torch.nn.Linear)]
    optimiser_state = g["optim"].state
    numpy = lambda t: t.detach().cpu().numpy().copy()  # noqa: E731
    log_prob, weights = g["log_prob"], g["batch_return"]
    common.save_tree(args.outputs, {
        "loss": numpy(g["J_obj"]),
        "pg_term": numpy(torch.mean(log_prob * weights)),  # the first term of their J_obj, before the minus
        "entropy": numpy(g["policy_dist"].entropy().mean()),
        "log_prob": numpy(log_prob), "weights": numpy(weights),
        "nodes": np.stack([numpy(s) for s in g["mat_state"]]),  # [H, B]
        "F": numpy(g["obj"]), "max_return": np.asarray(g["MAX_Ret"]),
        "final": {f"l{i}": {"weight": numpy(m.weight), "bias": numpy(m.bias)} for i, m in enumerate(linears)},
        "grad": {f"l{i}": {"weight": numpy(m.weight.grad), "bias": numpy(m.bias.grad)}
                 for i, m in enumerate(linears)},
        "adam_exp_avg": {f"l{i}": {"weight": numpy(optimiser_state[m.weight]["exp_avg"]),
                                   "bias": numpy(optimiser_state[m.bias]["exp_avg"])}
                         for i, m in enumerate(linears)},
    })


def authors_speed(args) -> None:
    """Their script, unpatched but for the stubs and the epoch count, float32; prints epochs/min."""
    import torch

    sys.path.insert(0, args.authors_code)  # their `utils` package
    torch.manual_seed(0)
    epoch_times: list[float] = []
    stub_unused_modules(epoch_times)
    override_config(epochs=args.speed_epochs, batch=args.batch, ent_coef=None)
    run_their_script(args.authors_code, args.variant)
    rate = (len(epoch_times) - 1) / (epoch_times[-1] - epoch_times[0])
    print(json.dumps({"epochs_per_min": 60 * rate, "torch_threads": torch.get_num_threads()}))


# --- the purerl side (purerl venv, jax) -----------------------------------------------------------------

def paired_config(variant: str, batch: int, return_mode: str = "prefix_value"):
    from purerl.agents import subpo

    return subpo.Config(env="coverage", batch_trajectories=batch, epochs=1, ent_coef=PAIRED_ENT_COEF,
                        return_mode=return_mode, **VARIANTS[variant][1])


def float_leaves_to_float64(tree):
    import jax
    import jax.numpy as jnp

    def cast(x):
        floating = hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)
        return jnp.asarray(x, jnp.float64) if floating else x

    return jax.tree.map(cast, tree)


@contextlib.contextmanager
def float64_environment():
    """purerl's grid environments keep their cell weights, values and gains in float32; inside this block
    their params are float64 (the deviation's toggle for the paired update)."""
    from purerl.envs.submodular import SubmodularGridEnv

    default_params = SubmodularGridEnv.default_params
    SubmodularGridEnv.default_params = property(lambda env: float_leaves_to_float64(default_params.fget(env)))
    try:
        yield
    finally:
        SubmodularGridEnv.default_params = default_params


def purerl_epoch(config):
    """purerl's first epoch in float64: (initial params, trajectories of the epoch, state after `update`,
    metrics, the agent's pieces). The trajectories are rolled out again from the key and the choice rule
    `update` uses (subpo.make_agent: the state's key split once, each step's key split into the policy's
    draw and the unused exploration draw); the comparison of F and the loss shows they are the same."""
    import jax

    from purerl.agents import subpo

    resolved = config.resolved()
    agent = subpo.make_agent(config)
    env = subpo.make_env(resolved)
    encode, _ = subpo.make_encoder(resolved, env)
    network = subpo.PolicyMLP(tuple(resolved.hidden), env.num_actions)
    state = float_leaves_to_float64(agent.init(jax.random.key(0)))
    _, roll_key = jax.random.split(state.key)
    choose = lambda k, x, s: jax.random.categorical(  # noqa: E731
        jax.random.split(k)[0], network.apply(state.params, x))
    rollout = subpo.make_rollout(env, encode, resolved.horizon)
    traj = jax.jit(rollout, static_argnums=(0, 3))(choose, roll_key, env.default_params,
                                                     resolved.batch_trajectories)
    final, metrics = jax.jit(agent.update)(state)
    return state.params, traj, final, metrics, (resolved, network)


def our_step_quantities(traj, params, resolved, network, return_mode: str):
    """purerl's step weights w_i / MAX_Ret and log pi(a_i | x_i), [B, H-1]."""
    import distrax

    from purerl.agents import subpo
    from purerl.envs.submodular import max_return

    if resolved.reward == "submodular":
        rewards, initial = traj.gains, traj.initial_value
    else:
        rewards, initial = traj.modular, traj.initial_modular
    weights = subpo.step_weights(rewards, initial, return_mode) / max_return(resolved.horizon, resolved.disc)
    log_prob = distrax.Categorical(logits=network.apply(params, traj.inputs)).log_prob(traj.actions)
    return np.asarray(weights), np.asarray(log_prob)


def our_side(variant: str, batch: int, float64_env: bool) -> dict:
    """purerl's paired epoch of one variant (float64; the env's values float64 too if `float64_env`)."""
    import jax

    with jax.enable_x64(True), (float64_environment() if float64_env else contextlib.nullcontext()):
        params, traj, final, metrics, (resolved, network) = purerl_epoch(paired_config(variant, batch))
        params = jax_to_numpy(params)
        weights, log_prob = our_step_quantities(traj, params, resolved, network, "prefix_value")
        rtg_weights, _ = our_step_quantities(traj, params, resolved, network, "reward_to_go")
        return {"params": params, "traj": jax_to_numpy(traj), "metrics": jax_to_numpy(metrics),
                "final": jax_to_numpy(final.params), "mu": jax_to_numpy(final.opt_state[0].mu),
                "weights": weights, "log_prob": log_prob, "rtg_weights": rtg_weights}


def step_major(x):
    """purerl's [B, H-1] -> their [(H-1) B] (their script stacks the batch step after step)."""
    return np.asarray(x).T.reshape(-1)


def paired_quantities(name: str, ours: dict, theirs: dict) -> dict:
    """name -> (ours, theirs) for one variant's paired epoch."""
    traj, metrics = ours["traj"], ours["metrics"]
    pairs = {
        f"{name}: visited nodes": (traj.nodes.T, theirs["nodes"]),
        f"{name}: step weights w_i / MAX_Ret": (step_major(ours["weights"]), theirs["weights"]),
        f"{name}: log pi(a_i | x_i)": (step_major(ours["log_prob"]), theirs["log_prob"]),
        f"{name}: F of each trajectory": (traj.value, theirs["F"]),
        f"{name}: pg term mean(log pi * w)": (-metrics["pg_loss"], theirs["pg_term"]),
        f"{name}: entropy": (metrics["entropy"], theirs["entropy"]),
        f"{name}: loss": (metrics["pg_loss"] - PAIRED_ENT_COEF * metrics["entropy"], theirs["loss"]),
    }
    final, mu = common.linear_pairs(ours["final"]["params"]), common.linear_pairs(ours["mu"]["params"])
    start = common.linear_pairs(ours["params"]["params"])
    for i, ((w, b), (mw, mb), (w0, b0)) in enumerate(zip(final, mu, start, strict=True)):
        for p, after, moment, initial in (("weight", w, mw, w0), ("bias", b, mb, b0)):
            layer, their = f"l{i}.{p}", theirs["final"][f"l{i}"][p]
            pairs[f"{name}: gradient {layer}"] = (moment / (1 - ADAM_BETA1), theirs["grad"][f"l{i}"][p])
            pairs[f"{name}: Adam first moment {layer}"] = (moment, theirs["adam_exp_avg"][f"l{i}"][p])
            pairs[f"{name}: {layer} after the step"] = (after, their)
            pairs[f"{name}: {layer} step"] = (after - initial, their - initial)
    return pairs


def check_variant(args, variant: str, tmp: Path) -> tuple[dict, dict]:
    """One paired epoch: name -> (ours, theirs) with both deviations toggled, and name -> difference for
    each deviation left as it is."""
    name = VARIANTS[variant][0]
    inputs, outputs = tmp / f"inputs_{variant}.npz", tmp / f"outputs_{variant}.npz"
    ours = our_side(variant, args.batch, float64_env=True)
    common.save_tree(inputs, {"params": ours["params"]["params"], "actions": ours["traj"].actions.T,
                              "batch": args.batch, "ent_coef": PAIRED_ENT_COEF})
    run_authors(args, "authors", str(inputs), str(outputs), extra=["--variant", variant])
    theirs = common.load_tree(outputs)
    pairs = paired_quantities(name, ours, theirs)
    float32_env = common.differences(paired_quantities(name, our_side(variant, args.batch, False), theirs))
    worst_name, worst_rel = common.worst(float32_env)
    left_as_is = {
        f"{name}: reward_to_go weights vs theirs": common.difference(step_major(ours["rtg_weights"]),
                                                                     theirs["weights"]),
        f"{name}: float32 env, worst ({worst_name.split(': ', 1)[1]})": float32_env[worst_name],
        f"{name}: float32 env, step weights": float32_env[f"{name}: step weights w_i / MAX_Ret"],
        f"{name}: float32 env, loss": float32_env[f"{name}: loss"],
    }
    return pairs, left_as_is


def purerl_speed_timer(batch: int):
    """A timer (epochs/min) of purerl's jitted SubPO-M `update` at their coverage setting (float32), and its
    compile seconds."""
    import jax

    from benchmarks import harness
    from purerl.agents import subpo

    agent = subpo.make_agent(subpo.Config(env="coverage", batch_trajectories=batch))
    state = jax.jit(agent.init)(jax.random.key(0))
    program, compile_s = harness.compile_timed(agent.update, state)
    holder = {"state": jax.block_until_ready(program(state)[0])}  # warm-up call

    def timer(epochs: int = 3):
        start = time.perf_counter()
        for _ in range(epochs):
            holder["state"] = program(holder["state"])[0]
        jax.block_until_ready(holder["state"])
        return 60 * epochs / (time.perf_counter() - start)

    return timer, compile_s


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors-code", required=True, help="a checkout of the authors' repository")
    parser.add_argument("--authors-commit", default="", help="its commit (default: git rev-parse HEAD there)")
    parser.add_argument("--reference-python", default=str(common.REFERENCE_PYTHON),
                        help="python of the reference venv (make reference-env)")
    parser.add_argument("--batch", type=int, default=500, help="trajectories per epoch (their configs: 500)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating speed rounds (0: no speed)")
    parser.add_argument("--speed-epochs", type=int, default=4, help="authors: epochs per speed round (>= 2)")
    parser.add_argument("--side", choices=("purerl", "authors", "authors-speed"), default="purerl",
                        help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=tuple(VARIANTS), default="M", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    parser.add_argument("--outputs", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.module = "benchmarks.reference.subpo"
    if args.side == "purerl":
        if not os.path.isfile(os.path.join(args.authors_code, "main.py")):
            parser.exit(2, f"purerl: error: --authors-code {args.authors_code!r} has no main.py\n")
        common.require_reference_python(parser, args.reference_python)
        if args.batch < 1 or args.rounds < 0 or args.speed_epochs < 2:
            parser.exit(2, "purerl: error: need --batch >= 1, --rounds >= 0 and --speed-epochs >= 2\n")
        args.authors_code = os.path.abspath(args.authors_code)
    return args


def main(argv=None) -> None:
    args = parse(argv)
    if args.side == "authors":
        return authors_paired(args)
    if args.side == "authors-speed":
        return authors_speed(args)
    from benchmarks import harness  # noqa: F401  (first: the XLA CPU flags of the purerl commands)

    pairs, deviation_report = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in VARIANTS:
            variant_pairs, report = check_variant(args, variant, Path(tmp))
            pairs.update(variant_pairs)
            deviation_report.update(report)
    quantities = common.differences(pairs)
    print("subpo: paired float64 update, max abs / rel differences:")
    common.print_differences(quantities)
    print("each deviation left as it is (purerl's default):")
    common.print_differences(deviation_report)
    deviations = [
        {"name": "step weights: reward-to-go of marginal gains",
         "what": "purerl's default weights step i by the gains that follow it (unbiased); their code by the "
                 "prefix value F(s_0..s_{i+1}) (in expectation the myopic gradient)",
         "toggle": "return_mode='prefix_value'",
         "left_as_is": {k: v for k, v in deviation_report.items() if "reward_to_go" in k}},
        {"name": "float32 environment values",
         "what": "purerl's grid environments hold cell weights, F and the gains in float32 (also under x64), "
                 "so w_i / MAX_Ret is rounded to float32; Adam's first step g / (|g| + eps) magnifies that "
                 "where a gradient entry is near eps",
         "toggle": "the env's params cast to float64 (float64_environment in this script)",
         "left_as_is": {k: v for k, v in deviation_report.items() if "float32 env" in k}},
    ]

    speed, compile_s = {}, None
    if args.rounds:
        ours_timer, compile_s = purerl_speed_timer(args.batch)

        def authors_timer():
            out = run_authors(args, "authors-speed", "", extra=["--variant", "M", "--batch", str(args.batch),
                                                              "--speed-epochs", str(args.speed_epochs)])
            return json.loads(out.strip().splitlines()[-1])["epochs_per_min"]

        rates = common.alternating_rates({"purerl": ours_timer, "authors": authors_timer}, args.rounds)
        speed = common.speed_summary(rates["purerl"], rates["authors"], "epochs/min", {
            "variant": "SubPO-M", "env": "coverage 30x30", "horizon": 80, "trajectories": args.batch,
            "dtype": "float32", "seeds": 1, "authors_epochs_per_round": args.speed_epochs,
            "cpu_count": os.cpu_count()})
        print(f"speed: purerl {speed['purerl']:,.1f} vs authors {speed['authors']:,.1f} epochs/min "
              f"(ratio {speed['ratio_purerl_over_authors']})")
    res = common.result(
        "subpo", "SubPO-M, SubPO-NM and ModPO against manish-pra/non-additive-RL: one paired float64 epoch "
        "each (coverage) and epochs/min",
        authors_repo=AUTHORS_REPO,
        authors_commit=common.authors_commit(args.authors_code, args.authors_commit),
        quantities=quantities, deviations=deviations, speed=speed,
        verdict=verdict_of(quantities, 1e-6, deviations),
        config=dataclasses.asdict(paired_config("M", args.batch)),
        compile_s=None if compile_s is None else round(compile_s, 2),
        extra={"paired_variants": {v: n for v, (n, _) in VARIANTS.items()},
               "paired_ent_coef": PAIRED_ENT_COEF})
    print(res["extra"]["verdict"])
    print(f"-> {common.write(res)}")


if __name__ == "__main__":
    main()
