"""IQL against the authors' JAX code (ikostrikov/implicit_q_learning): one paired float64 update, then speed.

    python -m benchmarks.reference.iql --authors-code /path/to/implicit_q_learning

Their code is JAX/flax/optax too, so both sides run in ONE process under purerl's venv (no reference venv):
their `learner.py`, `actor.py`, `critic.py`, `value_net.py`, `policy.py` and `common.py` are imported from the
checkout, with these documented shims (their files untouched):
- `jax.tree_multimap` (removed from jax in 0.3.16) is `jax.tree.map`;
- `common.Model.create` unpacks `variables.pop('params')` as a (rest, params) pair, which only a flax < 0.7
  FrozenDict returns; the shim takes `variables['params']` and sets the same fields (step 1, the optimiser
  state `tx.init(params)`);
- `policy._sample_actions` names a `distribution` argument it does not have in `static_argnames`, which jax
  now rejects: while their modules are imported, `jax.jit` drops static argument names a function lacks;
- `dataset_utils` imports `d4rl` and `gym` at the top for its D4RL loader: both are stub modules (only its
  `Dataset.sample`, their train loop's minibatch draw, is used), and `tqdm` is a pass-through where missing.
Their `tensorflow_probability.substrates.jax` (the actor's Gaussian) is the real one, installed with distrax.

The check (float64 via x64 on both sides): their `Learner` is built as `train_offline.py` builds it (MuJoCo
config: expectile 0.7, temperature 3, lr 3e-4, cosine actor schedule over max_steps); its initial weights go
into purerl's state (layouts mapped); the batch is the one purerl's first update draws (replayed from its key)
and goes to their `Learner.update` as a `Batch` (masks = 1 - terminals). Dropout is off in their MuJoCo
config, so no other random draw is involved. Compared: the losses and means both return, every updated
parameter tensor (actor, critics, V) and the target critics.

Speed: updates/s of purerl's `update` (float32, `--updates-per-call` scanned steps per call, the CLI's path)
and of their train loop's step (`Dataset.sample(256)` + `Learner.update`, one jitted call per step), float32,
alternating rounds in the same process; the best of each. Result: `benchmarks/results/reference/iql.json`.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import sys
import time
import types
from pathlib import Path

import numpy as np

from benchmarks.reference import common
from benchmarks.reference import offline_pair as pair

AUTHORS_REPO = "ikostrikov/implicit_q_learning"
EXPECTILE, TEMPERATURE, LR, GAMMA, TAU, MAX_STEPS = 0.7, 3.0, 3e-4, 0.99, 0.005, 1_000_000
INITIALISATION = {
    "name": "initialisation",
    "what": "their Dense layers are all orthogonal with gain sqrt(2); purerl's critics (nn.QNetwork) use "
            "flax's lecun-normal hidden layers and a U(-3e-3, 3e-3) output layer, and its V output layer has "
            "gain 1",
    "toggle": "none needed for the paired update, which starts both sides from the authors' initial weights; "
              "it changes where training starts, not the update"}
AUTHORS_MODULES = ("common", "policy", "value_net", "actor", "critic", "learner", "dataset_utils")


# --- the authors' side ------------------------------------------------------------------------------------

def import_authors(directory: str) -> types.SimpleNamespace:
    """Their modules, imported from `directory` with the shims of the module docstring."""
    import jax

    clash = [name for name in AUTHORS_MODULES if name in sys.modules]
    if clash:
        raise RuntimeError(f"modules named like the authors' are already imported: {clash}")
    if not hasattr(jax, "tree_multimap"):
        jax.tree_multimap = jax.tree.map
    sys.modules.setdefault("d4rl", types.ModuleType("d4rl"))
    # named in type annotations only
    sys.modules.setdefault("gym", types.SimpleNamespace(Env=object, spaces=types.SimpleNamespace(Box=object)))
    try:
        import tqdm  # noqa: F401
    except ImportError:  # a progress bar is all dataset_utils wants of it
        sys.modules["tqdm"] = types.SimpleNamespace(tqdm=lambda iterable, *a, **k: iterable)
    sys.path.insert(0, directory)
    jit = jax.jit

    def lenient_jit(fun=None, *, static_argnames=(), **kwargs):
        if fun is None:
            return functools.partial(lenient_jit, static_argnames=static_argnames, **kwargs)
        names = inspect.signature(fun).parameters
        return jit(fun, static_argnames=[n for n in static_argnames if n in names], **kwargs)

    jax.jit = lenient_jit
    try:
        import common as their_common  # noqa: I001 (their modules, from their checkout)
        import dataset_utils
        import learner
    finally:
        jax.jit = jit

    def create(cls, model_def, inputs, tx=None):
        params = model_def.init(*inputs)["params"]
        return cls(step=1, apply_fn=model_def, params=params, tx=tx,
                   opt_state=tx.init(params) if tx is not None else None)

    their_common.Model.create = classmethod(create)
    return types.SimpleNamespace(common=their_common, learner=learner, dataset_utils=dataset_utils)


def authors_learner(authors, seed: int):
    """Their Learner as `train_offline.py` makes it (MuJoCo config), from one observation and action."""
    observation, action = np.zeros((1, pair.OBS_DIM), np.float32), np.zeros((1, pair.ACT_DIM), np.float32)
    return authors.learner.Learner(seed, observation, action, actor_lr=LR, value_lr=LR, critic_lr=LR,
                                   hidden_dims=(256, 256),
                                   discount=GAMMA, tau=TAU, expectile=EXPECTILE, temperature=TEMPERATURE,
                                   dropout_rate=None, max_steps=MAX_STEPS, opt_decay_schedule="cosine")


def as_float64(learner) -> None:
    """Their models in float64: parameters cast, optimiser states rebuilt (all zeros at step 1, so exact)."""
    import jax
    import jax.numpy as jnp

    for name in ("actor", "critic", "value", "target_critic"):
        model = getattr(learner, name)
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), model.params)
        opt_state = model.tx.init(params) if model.tx is not None else None
        setattr(learner, name, model.replace(params=params, opt_state=opt_state))


def to_purerl(learner) -> dict:
    """Their parameters in purerl's layouts: actor {MLP_0: Dense_0..2, log_std}, critics stacked on a leading
    axis under `critics`, V {Dense_0..2}."""
    import jax
    import jax.numpy as jnp

    actor = learner.actor.params
    trunk = dict(actor["MLP_0"])
    critic_params = lambda model: {"critics": jax.tree.map(  # noqa: E731
        lambda a, b: jnp.stack([a, b]), dict(model.params["Critic_0"]["MLP_0"]),
        dict(model.params["Critic_1"]["MLP_0"]))}
    mean_head = {f"Dense_{len(trunk)}": actor["Dense_0"]}
    return {"actor": {"MLP_0": {**trunk, **mean_head}, "log_std": actor["log_stds"]},
            "critic": critic_params(learner.critic), "critic_target": critic_params(learner.target_critic),
            "value": dict(learner.value.params["MLP_0"])}


# --- the purerl side --------------------------------------------------------------------------------------

def purerl_agent(arrays: dict, updates_per_iteration: int):
    from purerl.agents import iql

    config = iql.Config(dataset="synthetic", expectile=EXPECTILE, beta=TEMPERATURE, actor_lr=LR, critic_lr=LR,
                        value_lr=LR, gamma=GAMMA, tau=TAU, num_updates=MAX_STEPS, batch_size=256,
                        updates_per_iteration=updates_per_iteration)
    return iql.make_agent(config, pair.offline_data(arrays))


def paired_update(authors, learner, args) -> dict:
    """One update on both sides (call under x64) from `learner`'s initial weights (built in float32, as their
    code builds it; tfp rejects its float32/float64 mix when it is built under x64)."""
    import jax

    arrays = pair.synthetic_dataset(args.rows, args.seed, np.float64)
    agent = purerl_agent(arrays, 1)
    state = agent.init(jax.random.key(args.seed))
    batch = pair.first_batch(state, arrays, 256)

    as_float64(learner)
    initial = to_purerl(learner)
    state = pair.float64_state(state).replace(**{name: {"params": tree} for name, tree in initial.items()})
    new_state, metrics = jax.jit(agent.update)(state)

    their_batch = authors.common.Batch(observations=batch["observations"], actions=batch["actions"],
                                       rewards=batch["rewards"], masks=1.0 - batch["terminals"],
                                       next_observations=batch["next_observations"])
    info = learner.update(their_batch)
    after = to_purerl(learner)
    pairs = {
        "loss/value": (metrics["value_loss"], info["value_loss"]),
        "loss/actor": (metrics["actor_loss"], info["actor_loss"]),
        "loss/critic": (metrics["critic_loss"], info["critic_loss"]),
        "mean/v": (metrics["v"], info["v"]),
        "mean/q": (metrics["q"], (info["q1"] + info["q2"]) / 2),
    }
    for group, tree in after.items():
        for path, leaf in common.flatten(tree).items():
            node = getattr(new_state, group)["params"]
            for part in path.split(common.SEPARATOR):
                node = node[part]
            pairs[f"{group}/{path}"] = (node, leaf)
    return common.differences(pairs)


def authors_rate(authors, args):
    """Their train loop's step: `Dataset.sample(256)` + `Learner.update` (float32)."""
    import jax

    arrays = pair.synthetic_dataset(args.rows, args.seed, np.float32)
    dataset = authors.dataset_utils.Dataset(arrays["observations"], arrays["actions"], arrays["rewards"],
                                            1.0 - arrays["terminals"], arrays["terminals"],
                                            arrays["next_observations"], size=args.rows)
    np.random.seed(args.seed)
    learner = authors_learner(authors, args.seed)
    for _ in range(20):
        learner.update(dataset.sample(256))
    jax.block_until_ready(learner.actor.params)

    def timer() -> float:
        start = time.perf_counter()
        for _ in range(args.authors_updates):
            learner.update(dataset.sample(256))
        jax.block_until_ready((learner.actor.params, learner.critic.params, learner.value.params))
        return args.authors_updates / (time.perf_counter() - start)
    return timer


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--authors-code", required=True, help="a checkout of ikostrikov/implicit_q_learning")
    parser.add_argument("--authors-commit", default="", help="its commit, if the checkout has no .git")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the synthetic dataset")
    parser.add_argument("--rounds", type=int, default=5, help="alternating speed rounds (0: no speed)")
    parser.add_argument("--updates-per-call", type=int, default=1000, help="purerl steps per jitted update")
    parser.add_argument("--calls", type=int, default=2, help="purerl update calls per round")
    parser.add_argument("--authors-updates", type=int, default=1000, help="the authors' steps per round")
    args = parser.parse_args(argv)
    if not (Path(args.authors_code) / "learner.py").is_file():
        parser.exit(2, f"purerl: error: --authors-code {args.authors_code!r} holds no learner.py "
                       f"(a checkout of {AUTHORS_REPO})\n")
    directory = str(Path(args.authors_code).resolve())

    import jax

    authors = import_authors(directory)
    learner = authors_learner(authors, args.seed)
    with jax.enable_x64(True):
        quantities = paired_update(authors, learner, args)
    print("paired update, float64:")
    common.print_differences(quantities)
    name, rel = common.worst(quantities)
    verdict = (f"{'agrees' if rel <= 1e-6 else 'DIFFERS'}: one float64 update (V, actor, critics, target "
               f"critics) matches the authors' Learner.update to {rel:.1e} relative (worst: {name}); no "
               "deviation needed a toggle (the initialisation differs, outside the update)")
    print(verdict)
    if not args.rounds:
        return
    agent = purerl_agent(pair.synthetic_dataset(args.rows, args.seed, np.float32), args.updates_per_call)
    timer, compile_s = pair.update_timer(agent, args.seed, args.calls)
    rates = common.alternating_rates({"purerl": timer, "authors": authors_rate(authors, args)}, args.rounds)
    speed = common.speed_summary(rates["purerl"], rates["authors"], "updates/s", {
        "batch_size": 256, "obs_dim": pair.OBS_DIM, "act_dim": pair.ACT_DIM, "dtype": "float32",
        "purerl": f"jitted update of {args.updates_per_call} scanned steps, {args.calls} calls per round",
        "authors": f"{args.authors_updates} steps of Dataset.sample + Learner.update per round (one jitted "
                   "call per step, as train_offline.py)", "same_process": True, "cpu_cores": os.cpu_count()})
    print(f"speed: purerl {speed['purerl']:,.0f}/s, authors {speed['authors']:,.0f}/s, "
          f"ratio {speed['ratio_purerl_over_authors']}")
    res = common.result("iql", "IQL: one paired float64 update and speed against the authors' JAX code",
                        authors_repo=AUTHORS_REPO,
                        authors_commit=common.authors_commit(directory, args.authors_commit),
                        quantities=quantities, deviations=[INITIALISATION], speed=speed, verdict=verdict,
                        compile_s=round(compile_s, 2))
    print(common.write(res))


if __name__ == "__main__":
    main()
