"""O-DICE against the authors' PyTorch code (maoliyuan/ODICE-Pytorch): a paired float64 update, then speed.

    python -m benchmarks.reference.odice --authors-code /path/to/ODICE-Pytorch

The script runs twice: here under purerl's venv (jax, float64 via x64), and as its authors' side under the
reference venv (`make reference-env`, PyTorch CPU) that it starts itself with `--side authors`. The sides
trade arrays through `.npz` files in a temporary folder:

1. purerl builds its agent on a synthetic dataset (hopper's shapes) and replays its own minibatch draw: the
   batch the agent's first update will sample goes to the authors' side.
2. The authors' side builds their TwinV (LayerNorm) + GaussianPolicy (1024-1024) and `ODICE` exactly as
   `main_odice_rl.py` does (MuJoCo config: lam 0.6, eta 1, lr 2e-4, weight decay 1e-4), in float64, saves the
   initial weights in flax layout, runs ONE `orthogonal_true_g_update` on the batch and saves what it
   computed: the losses it backpropagates (recorded at `Tensor.backward`), the residuals (at `f_star`), the
   policy weights (at `f_prime_inverse`), the combined gradient V's optimiser applies (at `step`) and the
   weights after the update.
3. purerl loads those initial weights into its state and runs one `update` of the agent (the jitted path the
   CLI trains with); the diagnostics (losses, residuals, combined value gradient) come from the agent module's
   own functions on the same weights and batch.

Monkeypatches of the authors' code (at import, their files untouched): `wandb` is a stub module (their module
imports it and logs every 10k steps); nothing else is needed. No random draw is involved beyond the batch (the
policy loss is a log-likelihood of dataset actions).

Deviations, each with its toggle (the result file also holds the pair with each one left as it is): the
LayerNorm epsilon (flax's 1e-6, torch's 1e-5: the authors' LayerNorm modules get 1e-6) and the precision of
their discount (`terminals.float()` makes gamma (1 - d) float32 even in a float64 run: purerl's side runs with
gamma = float32(0.99)).

Speed: updates/s of purerl's `update` (float32, `--updates-per-call` scanned steps per call, the CLI's path)
and of the authors' train-loop step (`sample_batch` + `orthogonal_true_g_update`, float32,
`torch.set_num_threads(1)` as their script sets; also with 2 threads), in alternating rounds; the best of
each. Result:
`benchmarks/results/reference/odice.json`.
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
from benchmarks.reference.offline_pair import (
    ACT_DIM,
    OBS_DIM,
    first_batch,
    float64_state,
    offline_data,
    synthetic_dataset,
    update_timer,
)

AUTHORS_REPO = "maoliyuan/ODICE-Pytorch"
LAM, ETA, GAMMA, LR, WEIGHT_DECAY = 0.6, 1.0, 0.99, 2e-4, 1e-4
FLAX_LN_EPS = 1e-6
GAMMA_FLOAT32 = float(np.float32(GAMMA))
LN_EPS_DEVIATION = {
    "name": "layer_norm_epsilon",
    "what": "LayerNorm epsilon of V: purerl uses flax's default 1e-6, the authors' code torch's 1e-5",
    "toggle": "the authors' LayerNorm modules get eps 1e-6 for the paired update"}
GAMMA_DEVIATION = {
    "name": "discount_precision",
    "what": "their `(1. - terminals.float()) * self.discount` is a float32 tensor, so a float64 run of their "
            "code discounts by float32(0.99); purerl keeps gamma (1 - d) in the rewards' dtype (in float32 "
            "training both are float32(0.99))",
    "toggle": "purerl's paired update runs with gamma = float32(0.99)"}


def untoggled(quantities: dict) -> dict:
    """A deviation's evidence: the pair's differences with that deviation left as it is."""
    name, rel = common.worst(quantities)
    return {"untoggled_worst": {"quantity": name, "max_rel_diff": rel}, "untoggled_quantities": quantities}


# --- the authors' side (reference venv, torch) -------------------------------------------------------------

def module_tree(sequential, get) -> dict:
    """A torch `mlp` (Linear / LayerNorm / activations) as flax params: Dense_i {kernel (in, out), bias},
    LayerNorm_i {scale, bias}; `get(parameter) -> numpy` picks the weights or their gradients."""
    tree, dense, norm = {}, 0, 0
    for layer in sequential:
        kind = type(layer).__name__
        if kind == "Linear":
            tree[f"Dense_{dense}"] = {"kernel": get(layer.weight).T.copy(), "bias": get(layer.bias)}
            dense += 1
        elif kind == "LayerNorm":
            tree[f"LayerNorm_{norm}"] = {"scale": get(layer.weight), "bias": get(layer.bias)}
            norm += 1
    return tree


def stacked(trees: list[dict]) -> dict:
    """Per-head trees -> one tree with a leading head axis (purerl's twin V layout)."""
    first = trees[0]
    if not isinstance(first, dict):
        return np.stack(trees)
    return {k: stacked([t[k] for t in trees]) for k in first}


def import_authors(directory: str):
    """Import their modules with the documented stubs; returns (odice module, policy module, value module)."""
    def ignore(*args, **kwargs):
        return None

    sys.modules.setdefault("wandb", types.SimpleNamespace(log=ignore, init=ignore))
    sys.path.insert(0, directory)
    import odice as their_odice  # noqa: PLC0415 (their module, on their path)
    import policy as their_policy
    import value_functions as their_values
    return their_odice, their_policy, their_values


def authors_agent(directory: str, seed: int, dtype, ln_eps: float | None):
    import torch

    their_odice, their_policy, their_values = import_authors(directory)
    torch.manual_seed(seed)
    vf = their_values.TwinV(OBS_DIM, layer_norm=True, hidden_dim=256, n_hidden=2)
    policy = their_policy.GaussianPolicy(OBS_DIM, ACT_DIM, hidden_dim=1024, n_hidden=2, use_tanh=False)
    vf.to(dtype)
    policy.to(dtype)
    if ln_eps is not None:  # the toggle of the LayerNorm-epsilon deviation
        for m in vf.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.eps = ln_eps
    agent = their_odice.ODICE(vf=vf, policy=policy, max_steps=1_000_000, f_name="Pearson_chi_square",
                              Lambda=LAM, eta=ETA, discount=GAMMA, value_lr=LR, policy_lr=LR,
                              weight_decay=WEIGHT_DECAY, use_twin_v=True)
    return agent, their_odice


def authors_weights(agent, get) -> dict:
    """Their V, target V and policy in purerl's flax layout (V stacked over the twin heads)."""
    return {"value": authors_value(agent.vf, get), "value_target": authors_value(agent.vf_target, get),
            "policy": {"MLP_0": module_tree(agent.policy.net, get), "log_std": get(agent.policy.log_std)}}


def authors_value(twin_v, get) -> dict:
    return stacked([module_tree(twin_v.v1, get), module_tree(twin_v.v2, get)])


def authors_check(args) -> None:
    import torch

    inputs = common.load_tree(Path(args.io) / "in.npz")
    ln_eps = float(inputs["ln_eps"]) if float(inputs["ln_eps"]) > 0 else None
    agent, their_odice = authors_agent(args.authors_code, args.seed, torch.float64, ln_eps)

    def weights(p):
        return p.detach().cpu().numpy().copy()

    initial = authors_weights(agent, weights)
    record = {"losses": [], "f_star": [], "weights": [], "value_grad": None}
    backward, f_star, f_prime_inverse = torch.Tensor.backward, their_odice.f_star, their_odice.f_prime_inverse

    def recording_backward(tensor, *a, **k):
        record["losses"].append(tensor.detach().cpu().numpy().copy())
        return backward(tensor, *a, **k)

    def recording_f_star(residual, name="Pearson_chi_square"):
        record["f_star"].append(residual.detach().cpu().numpy().copy())
        return f_star(residual, name)

    def recording_f_prime_inverse(residual, name="Pearson_chi_square"):
        out = f_prime_inverse(residual, name)
        record["weights"].append(torch.clamp_max(out, their_odice.EXP_ADV_MAX).detach().cpu().numpy().copy())
        return out

    value_step = agent.v_optimizer.step

    def recording_value_step(*a, **k):  # the combined (orthogonal) gradient Adam applies to V
        record["value_grad"] = authors_value(agent.vf, lambda p: p.grad.detach().cpu().numpy().copy())
        return value_step(*a, **k)

    torch.Tensor.backward = recording_backward
    their_odice.f_star, their_odice.f_prime_inverse = recording_f_star, recording_f_prime_inverse
    agent.v_optimizer.step = recording_value_step
    batch = {k: torch.from_numpy(v) for k, v in inputs["batch"].items()}
    try:
        agent.orthogonal_true_g_update(**batch)
    finally:
        torch.Tensor.backward = backward
    forward_loss, backward_loss, linear_loss, policy_loss = record["losses"]
    common.save_tree(Path(args.io) / "out.npz", {
        "initial": initial, "after": authors_weights(agent, weights),
        "losses": {"forward_dual": forward_loss, "backward_dual": backward_loss, "linear": linear_loss,
                   "policy": policy_loss},
        "residual": {"forward": record["f_star"][0], "backward": record["f_star"][1]},
        "policy_weights": record["weights"][0], "grads": {"value": record["value_grad"]}})


def authors_speed(args) -> None:
    """Their train loop's step: `sample_batch(dataset, 256)` + `orthogonal_true_g_update`, float32."""
    import torch

    torch.set_num_threads(args.torch_threads)
    agent, _ = authors_agent(args.authors_code, args.seed, torch.float32, None)
    import util as their_util

    arrays = synthetic_dataset(args.rows, args.seed, np.float64)
    dataset = {k: their_util.torchify(v) for k, v in arrays.items()}
    for _ in range(args.warmup):
        agent.orthogonal_true_g_update(**their_util.sample_batch(dataset, args.batch_size))
    start = time.perf_counter()
    for _ in range(args.updates):
        agent.orthogonal_true_g_update(**their_util.sample_batch(dataset, args.batch_size))
    rate = args.updates / (time.perf_counter() - start)
    print(json.dumps({"updates_per_s": rate}))


# --- the purerl side --------------------------------------------------------------------------------------

def purerl_agent(arrays: dict, batch_size: int, updates_per_iteration: int, gamma: float = GAMMA):
    from purerl.agents import odice

    config = odice.Config(dataset="synthetic", lam=LAM, eta=ETA, gamma=gamma, gradient="orthogonal",
                          twin_v=True, layer_norm=True, value_lr=LR, policy_lr=LR, policy_wd=WEIGHT_DECAY,
                          reward_mode="none", batch_size=batch_size,
                          updates_per_iteration=updates_per_iteration,
                          num_updates=max(updates_per_iteration, 1000))
    return odice.make_agent(config, offline_data(arrays)), config


def run_authors(args, side: str, io: str, extra: list[str] = ()) -> str:
    command = [args.reference_python, "-m", "benchmarks.reference.odice", "--side", "authors", "--task", side,
               "--authors-code", args.authors_code, "--io", io, "--seed", str(args.seed), *extra]
    done = subprocess.run(command, cwd=common.REPO, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"purerl: error: the authors' side failed:\n{done.stderr[-3000:]}")
    return done.stdout


def paired_update(args, ln_eps: float, gamma: float) -> dict:
    """One update on both sides from the same weights and batch -> quantity name -> difference."""
    import jax
    import jax.numpy as jnp

    from purerl.agents import odice

    arrays = synthetic_dataset(args.rows, args.seed, np.float64)
    agent, config = purerl_agent(arrays, 256, 1, gamma)
    state = agent.init(jax.random.key(args.seed))
    batch = first_batch(state, arrays, 256)
    with tempfile.TemporaryDirectory() as io:
        common.save_tree(Path(io) / "in.npz", {"batch": batch, "ln_eps": np.float64(ln_eps or 0.0)})
        run_authors(args, "check", io)
        theirs = common.load_tree(Path(io) / "out.npz")

    def f64(tree):
        return jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), tree)

    init = theirs["initial"]
    state = float64_state(state).replace(policy={"params": f64(init["policy"])},
                                         value={"params": f64(init["value"])},
                                         value_target={"params": f64(init["value_target"])})
    new_state, metrics = jax.jit(agent.update)(state)

    # diagnostics from the agent module's own functions, on the same weights and batch
    _, v_apply = odice.make_value(config.value_hidden, config.layer_norm, 2)
    jbatch = {k: jnp.asarray(v) for k, v in batch.items()}
    g_lin, g_f, g_b, delta_f = odice.value_gradients(v_apply, state.value, state.value_target, jbatch, LAM,
                                                     ETA, gamma)
    value_grad, _ = odice.combine_gradients(g_lin, g_f, g_b, "orthogonal")
    v_s = v_apply(state.value, jbatch["observations"])
    v_next = v_apply(state.value, jbatch["next_observations"])
    vbar_s = v_apply(state.value_target, jbatch["observations"]).min(0)
    vbar_next = v_apply(state.value_target, jbatch["next_observations"]).min(0)
    d_f, d_b = odice.residuals(v_s, v_next, vbar_s, vbar_next, jbatch["rewards"], jbatch["terminals"], gamma)
    pairs = {
        "loss/forward_dual": (LAM * odice.fstar_chi2(d_f).mean(), theirs["losses"]["forward_dual"]),
        "loss/backward_dual": (LAM * ETA * odice.fstar_chi2(d_b).mean(), theirs["losses"]["backward_dual"]),
        "loss/linear": ((1 - LAM) * v_s.mean(), theirs["losses"]["linear"]),
        "loss/policy": (metrics["policy_loss"], theirs["losses"]["policy"]),
        "residual/forward": (d_f, theirs["residual"]["forward"]),
        "residual/backward": (d_b, theirs["residual"]["backward"]),
        "policy_weights": (odice.policy_weights(delta_f), theirs["policy_weights"]),
    }
    after = theirs["after"]
    for group, ours, their in (("value_grad", value_grad["params"], theirs["grads"]["value"]),
                               ("value", new_state.value["params"], after["value"]),
                               ("value_target", new_state.value_target["params"], after["value_target"]),
                               ("policy", new_state.policy["params"], after["policy"])):
        for path, leaf in common.flatten(their).items():
            node = ours
            for part in path.split(common.SEPARATOR):
                node = node[part]
            pairs[f"{group}/{path}"] = (node, leaf)
    return common.differences(pairs)


def authors_rate(args, threads: int):
    def timer() -> float:
        with tempfile.TemporaryDirectory() as io:
            out = run_authors(args, "speed", io, ["--rows", str(args.rows), "--torch-threads", str(threads),
                                                  "--updates", str(args.authors_updates)])
        return json.loads(out.strip().splitlines()[-1])["updates_per_s"]
    return timer


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--authors-code", required=True, help="a checkout of maoliyuan/ODICE-Pytorch")
    parser.add_argument("--authors-commit", default="", help="its commit, if the checkout has no .git")
    parser.add_argument("--reference-python", default=str(common.REFERENCE_PYTHON),
                        help="python of the reference venv (make reference-env)")
    parser.add_argument("--side", choices=["purerl", "authors"], default="purerl", help=argparse.SUPPRESS)
    parser.add_argument("--task", choices=["check", "speed"], default="check", help=argparse.SUPPRESS)
    parser.add_argument("--io", default="", help=argparse.SUPPRESS)
    parser.add_argument("--torch-threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--updates", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the synthetic dataset")
    parser.add_argument("--batch-size", type=int, default=256, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=20, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5, help="alternating speed rounds (0: no speed)")
    parser.add_argument("--updates-per-call", type=int, default=500, help="purerl steps per jitted update")
    parser.add_argument("--calls", type=int, default=2, help="purerl update calls per round")
    parser.add_argument("--authors-updates", type=int, default=300, help="the authors' steps per round")
    parser.add_argument("--out", default="",
                        help="result file (default benchmarks/results/reference/odice.json)")
    args = parser.parse_args(argv)
    if args.side == "authors":
        args.updates = args.updates or args.authors_updates
        (authors_check if args.task == "check" else authors_speed)(args)
        return
    if not (Path(args.authors_code) / "odice.py").is_file():
        parser.exit(2, f"purerl: error: --authors-code {args.authors_code!r} holds no odice.py "
                       f"(a checkout of {AUTHORS_REPO})\n")
    common.require_reference_python(parser, args.reference_python)
    args.authors_code = str(Path(args.authors_code).resolve())

    import jax

    from benchmarks import harness  # noqa: F401 (before jax: the CLI's XLA CPU flags)

    with jax.enable_x64(True):
        quantities = paired_update(args, FLAX_LN_EPS, GAMMA_FLOAT32)
        deviations = [dict(deviation, **untoggled(paired_update(args, *settings)))
                      for deviation, settings in ((LN_EPS_DEVIATION, (0.0, GAMMA_FLOAT32)),
                                                  (GAMMA_DEVIATION, (FLAX_LN_EPS, GAMMA)))]
    print("paired update, float64, both deviations toggled to the authors' behaviour:")
    common.print_differences(quantities)
    name, rel = common.worst(quantities)
    left_as_is = common.left_as_is(deviations)
    verdict = (f"{'agrees' if rel <= 1e-6 else 'DIFFERS'}: one float64 update (V, target V, policy) matches "
               f"the authors' orthogonal_true_g_update to {rel:.1e} relative (worst: {name}) with the two "
               f"deviations toggled; each left as it is: {left_as_is}")
    print(verdict)

    speed, compile_s = None, None
    if args.rounds:
        arrays = synthetic_dataset(args.rows, args.seed, np.float32)
        agent, _ = purerl_agent(arrays, 256, args.updates_per_call)
        timer, compile_s = update_timer(agent, args.seed, args.calls)
        rates = common.alternating_rates({"purerl": timer, "authors": authors_rate(args, 1),
                                          "authors (2 torch threads)": authors_rate(args, 2)}, args.rounds)
        compile_s = round(compile_s, 2)
        speed = common.speed_summary(rates["purerl"], rates["authors"], "updates/s", {
            "batch_size": 256, "obs_dim": OBS_DIM, "act_dim": ACT_DIM, "dtype": "float32",
            "purerl": f"jitted update of {args.updates_per_call} scanned steps, {args.calls} calls per round",
            "authors": f"{args.authors_updates} steps of sample_batch + orthogonal_true_g_update per round, "
                       "torch.set_num_threads(1) as main_odice_rl.py sets",
            "cpu_cores": os.cpu_count()})
        two = max(rates["authors (2 torch threads)"])
        speed["authors_2_threads"] = round(two, 1)
        speed["ratio_purerl_over_authors_2_threads"] = round(max(rates["purerl"]) / two, 3)
        print(f"speed: purerl {speed['purerl']:,.0f}/s, authors {speed['authors']:,.0f}/s "
              f"(2 threads {two:,.0f}/s), ratio {speed['ratio_purerl_over_authors']}")

    if speed is None:
        return
    what = "O-DICE: one paired float64 update and speed against the authors' PyTorch code"
    res = common.result("odice", what,
                        authors_repo=AUTHORS_REPO, authors_commit=common.authors_commit(args.authors_code,
                                                                                        args.authors_commit),
                        quantities=quantities, deviations=deviations, speed=speed, verdict=verdict,
                        compile_s=compile_s)
    if args.out:
        from benchmarks import harness

        path = Path(args.out)
        res["name"] = path.stem
        print(harness.write(res, path.parent))
    else:
        print(common.write(res))


if __name__ == "__main__":
    main()
