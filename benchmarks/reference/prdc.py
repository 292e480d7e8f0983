"""purerl's PRDC against the authors' code (LAMDA-RL/PRDC): a paired float64 update, then speed.

Usage (from the repository root; setup in benchmarks/reference/README.md):
    python -m benchmarks.reference.prdc --authors-code /path/to/PRDC
    -> benchmarks/results/reference/prdc.json

The same two-process check as `benchmarks/reference/td3_bc.py` (PRDC is TD3+BC with another BC target; the
driver, the replayed draws and the monkeypatches are that module's), on their `prdc.PRDC` and
`utils/buffer.ReplayBuffer` built as their `main.py` does: states normalised by the buffer, the search matrix
X = [beta * s, a] of the whole normalised dataset, their scipy KD-tree over it; locomotion settings alpha 2.5,
beta 2.0, k 1. Besides the losses and every parameter tensor, the check compares the search itself: their
KD-tree's query keys (recorded by a proxy around `policy.kd_tree`) against purerl's key (beta s, pi(s)), and
the neighbour purerl finds for their keys with its exact brute-force search and with its kd-leaf tree search.

Speed: purerl's `update` with its CPU default search (`search_mode auto`: the kd-leaf tree from 32k rows)
against their `train()` with its KD-tree query (`workers=-1`), float32, on `--rows` rows.
"""

from __future__ import annotations

import sys

import numpy as np

from benchmarks.reference import td3_bc as family

AUTHORS_REPO = "https://github.com/LAMDA-RL/PRDC"
ALPHA, BETA = 2.5, 2.0  # the authors' README for hopper and walker2d


class RecordingTree:
    """Wraps their KD-tree: every query's keys and the indices it returned are kept in `recorded`."""

    def __init__(self, tree, recorded: dict):
        self.tree, self.recorded = tree, recorded

    def query(self, key, *args, **kwargs):
        dist, idx = self.tree.query(key, *args, **kwargs)
        n = len(self.recorded) // 2
        self.recorded[f"keys_{n}"], self.recorded[f"indices_{n}"] = np.asarray(key), np.asarray(idx)
        return dist, idx


def authors_prdc(authors_code: str, data: dict, float64: bool):
    """Their PRDC and replay buffer on `data` (raw), as their main.py builds them: (policy, buffer)."""
    sys.path.insert(0, authors_code)
    from prdc import PRDC  # their prdc.py (imports scipy, torch and their net/ only)
    from utils.buffer import ReplayBuffer  # their utils/buffer.py

    buffer = ReplayBuffer(family.OBS_DIM, family.ACT_DIM, "cpu", "synthetic", 1, 0)
    buffer.convert_D4RL(data)
    buffer.normalize_states()
    matrix = np.hstack([BETA * buffer.state, buffer.action])
    policy = PRDC(matrix, family.OBS_DIM, family.ACT_DIM, 1.0, "cpu", alpha=ALPHA, beta=BETA, k=1)
    if float64:
        policy.recorded = {}
        policy.kd_tree = RecordingTree(policy.kd_tree, policy.recorded)
    return policy, buffer


def search_pairs(final, metrics, theirs: dict, data: dict) -> dict:
    """The search quantities: their keys vs purerl's, and the neighbours purerl's searches find for them."""
    import jax.numpy as jnp

    from purerl.agents import prdc, td3_bc

    recorded = theirs["recorded"]
    keys, their_idx = recorded["keys_0"], recorded["indices_0"].reshape(-1)
    # purerl's key for the actor step: (beta s, pi(s)) on the second batch, with the actor it had then (the
    # initial one: the first step trains only the critic)
    batch_obs = keys[:, : family.OBS_DIM] / BETA
    actor = family.actor_params(theirs["initial"]["actor"])
    pi = np.asarray(td3_bc.Actor(family.ACT_DIM).apply(actor, jnp.asarray(batch_obs)))
    x = prdc.build_search_matrix(data["observations"], data["actions"], BETA)
    xb, xsqb = prdc.blocked(x, 65536)
    pairs = {"search keys (beta s, pi(s))": (np.concatenate([BETA * batch_obs, pi], 1), keys)}
    for mode in ("exact", "tree"):
        search = prdc.search_fn(prdc.Config(search_mode=mode), x)
        idx = np.asarray(search(xb, xsqb, jnp.asarray(keys, jnp.float32)))
        same = int((idx == their_idx).sum())
        print(f"  {mode} search: {same}/{len(idx)} neighbours equal to their KD-tree's")
        pairs[f"neighbour actions ({mode} search)"] = (data["actions"][idx], data["actions"][their_idx])
    dc = ((pi - data["actions"][their_idx]) ** 2).mean()
    pairs["dc_loss"] = (metrics["dc_loss"], dc)
    return pairs


DEVIATIONS = [{
    "name": "float32 search distances",
    "what": "purerl's search matrix X and distances are float32 (the authors' KD-tree: float64); the "
            "neighbour can differ only where two rows' distances tie within float32 rounding",
    "toggle": None,
    "effect_here": "none: the same neighbours for every query (see the neighbour quantities)"}]


def main(argv=None) -> None:
    args = family.parse(argv, __doc__, "benchmarks.reference.prdc")
    if args.side == "authors":
        return family.authors_paired(args, authors_prdc)
    if args.side == "authors-speed":
        return family.authors_speed(args, authors_prdc)
    from benchmarks import harness  # noqa: F401  (first: the XLA CPU flags of the purerl commands)
    from purerl.agents import prdc

    config = prdc.Config(updates_per_iteration=2, num_updates=2, alpha=ALPHA, beta=BETA,
                         search_mode="exact")
    speed = prdc.Config(updates_per_iteration=args.chunk, num_updates=args.chunk, alpha=ALPHA, beta=BETA)
    family.check(args, "prdc", prdc.make_agent, config, AUTHORS_REPO, deviations=DEVIATIONS,
                 what="PRDC against LAMDA-RL/PRDC: one paired float64 update (2 steps) and updates/s",
                 extra_pairs=search_pairs, speed_config=speed)


if __name__ == "__main__":
    main()
