"""PRDC (Ran, Li, Zhang, Zhang & Yu, ICML 2023, "Policy Regularization with Dataset Constraint for Offline
RL").

TD3+BC with the behaviour-cloning target replaced by the action of the dataset sample nearest to (beta*s,
pi(s)) in the joint metric ||(beta*s) (+) a||_2 (read against LAMDA-RL/PRDC):
  key_b = [beta s_b, pi(s_b)] (no gradient),  j_b = argmin_i ||key_b - X_i||,  X_i = [beta s_i, a_i] (every i)
  L_pi = -lam mean Q1(s, pi(s)) + mean (pi(s) - a_{j_b})^2,  lam = alpha / mean|Q1| (no gradient).
Critic, target smoothing, delays (one actor step after every 2 critic steps, on the second critic step's
batch), Polyak targets and state normalisation are TD3+BC's: this module reuses
`purerl.agents.td3_bc.make_agent` with a `bc_target` hook. Every search mode but `fast` is exact (k = 1 only):
- `exact`: a blocked brute-force scan inside jit (`nearest_index`); X stays one un-batched operand under vmap
  over seeds (the seed axis folds into the query rows). The GPU's choice: one big matmul per block.
- `tree`: the rows grouped into kd-tree leaves (`build_leaf_index`, on the host, once); a query scans only the
  leaves whose bounding box is nearer than the best row of its own leaf (`nearest_index_tree`). On the 2-core
  CPU it is 8x faster than the brute force at 123k rows and 2.6-4.5x at 1M (real hopper rows; per-leaf loop
  steps, not arithmetic, dominate it).
- `auto` (default): tree on the CPU for datasets of 32k rows or more, exact otherwise.
- `fast` (approximate, `nearest_index_fast`): low-precision block scores, the `fast_candidates`
  best rows per block by `lax.top_k` (merged into a running top-k), then an exact fp32 re-rank by subtraction.
The antmaze reward transform
r' = reward_scale * r + reward_shift (10000 r - 1 in the reference) is unusual; it is applied after loading.
Per-dataset alpha/beta: `PRESETS` and `config_for(dataset)`.

Run it: `purerl train prdc --dataset Pendulum-v1-medium-replay --num-updates 100000`.

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/prdc.md`.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from purerl import offline
from purerl.agent import Agent, concrete, train_fn
from purerl.agents import td3_bc


@dataclass(frozen=True)
class Config(td3_bc.Config):
    alpha: float = 2.5
    """Q/constraint trade-off: lam = alpha / mean|Q| (40 halfcheetah, 2.5 hopper/walker2d, 7.5 antmaze)"""
    beta: float = 2.0
    """state scale of the joint search key (beta s, a); large beta: TD3+BC (2.0 locomotion, 7.5 antmaze)"""
    k: int = 1
    """which nearest neighbour is the target (only 1 is supported, as used everywhere in the reference)"""
    policy_freq: int = 2
    """critic steps per actor step (only 2, TD3's value, is supported)"""
    reward_scale: float = 1.0
    """rewards become reward_scale * r + reward_shift (antmaze preset: 10000, -1)"""
    reward_shift: float = 0.0
    """see reward_scale"""
    search_block: int = 65536
    """dataset rows per block of the brute-force nearest-neighbour scan (memory: batch * block * 4 bytes)"""
    search_mode: Literal["auto", "exact", "tree", "fast"] = "auto"
    """nearest-neighbour search, all exact except fast: exact (brute force over every row, fp32 HIGHEST
    precision matmuls; the GPU's choice), tree (kd-tree leaves with box bounds, scanning only the leaves that
    can hold the neighbour; the CPU's choice, benchmarks/results/prdc_odice_speed_hopper_1000000.json), auto
    (tree on the CPU from TREE_MIN_ROWS = 32k rows, exact otherwise) or fast (low-precision block scores,
    top-`fast_candidates` per block, exact fp32 re-rank by subtraction)"""
    tree_leaf_size: int = 256
    """tree mode: rows per kd-tree leaf (smaller: tighter bounds, fewer rows scanned, more leaves to bound)"""
    fast_candidates: int = 32
    """fast mode: candidates kept per block (and overall) for the exact re-rank"""
    fast_precision: Literal["default", "bf16"] = "default"
    """fast mode: score precision, default (fp32 inputs, Precision.DEFAULT: TF32 on recent NVIDIA GPUs, plain
    fp32 on CPU) or bf16 (bf16 inputs, fp32 sums). "default" is the default: on the 2-core CPU bf16 was no
    faster (benchmarks/results/nn_search_speed.json), and there fast mode is 1.2-1.5x SLOWER than exact (the
    same fp32 matmul plus top_k, which costs more than argmin): fast mode can only pay off where low-precision
    matmuls are faster (GPU tensor cores; not measured here)"""


# Per-dataset hyperparameters of the authors' README.
PRESETS: dict[str, dict[str, float]] = {
    "prdc-halfcheetah": {"alpha": 40.0, "beta": 2.0},
    "prdc-locomotion": {"alpha": 2.5, "beta": 2.0},
    "prdc-antmaze": {"alpha": 7.5, "beta": 7.5, "reward_scale": 10000.0, "reward_shift": -1.0},
}


def preset_name(dataset: str) -> str:
    """The preset of a dataset: halfcheetah -> prdc-halfcheetah, antmaze -> prdc-antmaze, else locomotion."""
    name = dataset.lower()
    if "halfcheetah" in name:
        return "prdc-halfcheetah"
    if "antmaze" in name:
        return "prdc-antmaze"
    return "prdc-locomotion"


def config_for(dataset: str, **overrides) -> Config:
    """Config with the per-dataset alpha/beta (and antmaze reward transform) of `PRESETS`, then overrides."""
    return Config(dataset=dataset, **{**PRESETS[preset_name(dataset)], **overrides})


# --- the nearest-neighbour search (pure functions, tested against numpy brute force) ---------------------


def build_search_matrix(observations: jax.Array, actions: jax.Array, beta: float) -> jax.Array:
    """X = [beta * s, a] (N, obs_dim + act_dim), from the (normalised) dataset."""
    return jnp.concatenate(
        [beta * jnp.asarray(observations, jnp.float32), jnp.asarray(actions, jnp.float32)], 1
    )


def blocked(x: jax.Array, block: int) -> tuple[jax.Array, jax.Array]:
    """Pad X to a multiple of the block (C = min(block, N)) and reshape to (num_blocks, C, D); also the
    squared norms (num_blocks, C) with +inf on the pad rows (never selected)."""
    n, d = x.shape
    c = min(block, n)
    nb = -(-n // c)
    pad = nb * c - n
    xsq = jnp.concatenate([(x * x).sum(1), jnp.full((pad,), jnp.inf, x.dtype)])
    xp = jnp.concatenate([x, jnp.zeros((pad, d), x.dtype)])
    return xp.reshape(nb, c, d), xsq.reshape(nb, c)


def block_scores(
    queries: jax.Array, xblk: jax.Array, xsq: jax.Array, precision: str = "highest"
) -> jax.Array:
    """score_{m,i} = ||X_i||^2 - 2 <y_m, X_i> for one block (M, C), fp32 out. precision: highest (fp32, no
    TF32), default (fp32 inputs, the backend's default matmul precision) or bf16 (bf16 inputs, fp32 sums)."""
    if precision == "bf16":
        dot = jnp.matmul(
            queries.astype(jnp.bfloat16), xblk.T.astype(jnp.bfloat16), preferred_element_type=jnp.float32
        )
    else:
        p = jax.lax.Precision.HIGHEST if precision == "highest" else jax.lax.Precision.DEFAULT
        dot = jnp.matmul(queries, xblk.T, precision=p)
    return xsq[None, :] - 2.0 * dot


def nearest_index(xb: jax.Array, xsqb: jax.Array, queries: jax.Array) -> jax.Array:
    """Exact nearest row of X for each query (M, D) -> (M,) int32 indices into the unpadded X.

    Scans the blocks with score_i = ||X_i||^2 - 2 <y, X_i> (||y||^2 is constant per query), HIGHEST precision;
    a strict "<" across blocks and argmin's first-index rule inside a block keep the lowest index on ties."""
    c = xb.shape[1]
    m = queries.shape[0]

    def body(carry, blk):
        best_v, best_j, b = carry
        scores = block_scores(queries, *blk)
        j = jnp.argmin(scores, axis=1)
        v = jnp.take_along_axis(scores, j[:, None], 1)[:, 0]
        better = v < best_v
        return (
            jnp.where(better, v, best_v),
            jnp.where(better, b * c + j.astype(jnp.int32), best_j),
            b + 1,
        ), None

    init = (jnp.full((m,), jnp.inf, queries.dtype), jnp.zeros((m,), jnp.int32), jnp.zeros((), jnp.int32))
    (_, best_j, _), _ = jax.lax.scan(body, init, (xb, xsqb))
    return best_j


def nearest_index_fast(
    xb: jax.Array, xsqb: jax.Array, queries: jax.Array, candidates: int = 32, precision: str = "default"
) -> jax.Array:
    """Approximate-then-exact nearest row of X for each query (M, D) -> (M,) int32 (the `fast` search mode).

    Per block: low-precision scores (`block_scores` with `precision`), the `candidates` best rows by
    `lax.top_k` of the negated score, merged with the running top-k of the earlier blocks. Then the candidates
    are re-ranked with exact fp32 ||y - X_i||^2 computed by subtraction (pad rows excluded) and the argmin is
    returned, the lower index on ties. Exact whenever the true neighbour survives the low-precision top-k."""
    nb, c, d = xb.shape
    m = queries.shape[0]
    k = min(candidates, c)

    def body(carry, blk):
        best_v, best_j, b = carry
        v, j = jax.lax.top_k(-block_scores(queries, *blk, precision=precision), k)
        v, pos = jax.lax.top_k(jnp.concatenate([best_v, v], 1), k)
        j = jnp.take_along_axis(jnp.concatenate([best_j, b * c + j.astype(jnp.int32)], 1), pos, 1)
        return (v, j, b + 1), None

    init = (
        jnp.full((m, k), -jnp.inf, jnp.float32),
        jnp.zeros((m, k), jnp.int32),
        jnp.zeros((), jnp.int32),
    )
    (_, cand, _), _ = jax.lax.scan(body, init, (xb, xsqb))
    x = xb.reshape(nb * c, d)
    dist = ((queries[:, None, :] - x[cand]) ** 2).sum(-1)  # exact fp32, by subtraction
    dist = jnp.where(jnp.isinf(xsqb.reshape(-1)[cand]), jnp.inf, dist)  # never a pad row
    best = dist.min(1, keepdims=True)
    return jnp.where(dist == best, cand, jnp.iinfo(jnp.int32).max).min(1)


class LeafIndex(NamedTuple):
    """X's rows grouped into the leaves of a kd-tree (`build_leaf_index`), for `nearest_index_tree`."""

    points: jax.Array  # (L, D, S) the rows of each leaf, transposed; pad rows are +inf (never the nearest)
    rows: jax.Array  # (L, S) int32 their row numbers in X; pad rows hold N
    lo: jax.Array  # (D, L) each leaf's bounding box: lower corner
    hi: jax.Array  # (D, L) upper corner


def build_leaf_index(x, leaf_size: int) -> LeafIndex:
    """Split X's rows at the median of their widest dimension, recursively, until every group holds at most
    `leaf_size` rows (the leaves of a balanced kd-tree); built once on the host, O(N log N)."""
    x = np.asarray(x, np.float32)
    n, d = x.shape
    groups = [np.arange(n)]
    while max(len(g) for g in groups) > leaf_size:
        halves = []
        for g in groups:
            pts = x[g]
            order = np.argpartition(pts[:, np.argmax(pts.max(0) - pts.min(0))], len(g) // 2)
            halves += [g[order[: len(g) // 2]], g[order[len(g) // 2 :]]]
        groups = halves
    size = max(len(g) for g in groups)
    rows = np.full((len(groups), size), n, np.int32)
    points = np.full((len(groups), d, size), np.inf, np.float32)
    lo, hi = np.empty((d, len(groups)), np.float32), np.empty((d, len(groups)), np.float32)
    for leaf, g in enumerate(groups):
        g = np.sort(g)
        pts = x[g]
        rows[leaf, : len(g)], points[leaf, :, : len(g)] = g, pts.T
        lo[:, leaf], hi[:, leaf] = pts.min(0), pts.max(0)
    return LeafIndex(*map(jnp.asarray, (points, rows, lo, hi)))


# A leaf is searched when its box's lower bound is within this relative margin of the best distance found in
# the query's first leaf: fp32 rounding of the bound and of the distances (~D * 6e-8 relative) must not drop
# the leaf holding the true neighbour.
BOUND_MARGIN = 1e-5


@jax.custom_batching.custom_vmap
def nearest_index_tree(index: LeafIndex, queries: jax.Array) -> jax.Array:
    """Exact nearest row of X for each query (M, D) -> (M,) int32, scanning only the kd leaves that can hold
    it.

    1. A lower bound of the squared distance from each query to each leaf's box, (M, L).
    2. Scan each query's lowest-bound leaf: its best squared distance is an upper bound of the answer.
    3. Scan every other (query, leaf) pair whose lower bound is within that upper bound, one pair per
       while_loop step (a contiguous slice of the leaf table; a gather of many leaves is far slower on CPU).
    Distances are fp32 by subtraction; ties go to the lower row number, as in the brute-force search. The cost
    follows the number of pairs: for queries near the data a few leaves each instead of all N rows; for
    queries far from every row (an untrained actor) up to a few percent of N. Under vmap (seeds) the batched
    queries are folded into one query set, so the leaf table is never batched and the loop runs once."""
    points, rows, lo, hi = index
    num_leaves = points.shape[0]
    m = queries.shape[0]
    gap = jnp.maximum(jnp.maximum(lo[None] - queries[:, :, None], queries[:, :, None] - hi[None]), 0.0)
    bound = (gap * gap).sum(1)  # (M, L)

    def scan_leaf(i, leaf):
        dist = ((points[leaf] - queries[i][:, None]) ** 2).sum(0)  # (S,)
        v = dist.min()
        return v, jnp.where(dist == v, rows[leaf], jnp.iinfo(jnp.int32).max).min()

    first = jnp.argmin(bound, 1)
    best_v, best_j = jax.vmap(scan_leaf)(jnp.arange(m), first)
    todo = (bound <= best_v[:, None] * (1.0 + BOUND_MARGIN)).at[jnp.arange(m), first].set(False)
    rank = jnp.cumsum(todo.ravel(), dtype=jnp.int32)  # rank[p]: number of pairs to scan up to flat position p

    def body(carry):
        k, best_v, best_j = carry
        flat = jnp.searchsorted(rank, k + 1)  # the flat position of the (k+1)-th pair
        i, leaf = flat // num_leaves, flat % num_leaves
        v, j = scan_leaf(i, leaf)
        better = (v < best_v[i]) | ((v == best_v[i]) & (j < best_j[i]))
        return (
            k + 1,
            best_v.at[i].set(jnp.where(better, v, best_v[i])),
            best_j.at[i].set(jnp.where(better, j, best_j[i])),
        )

    _, _, best_j = jax.lax.while_loop(lambda carry: carry[0] < rank[-1], body, (0, best_v, best_j))
    return best_j


@nearest_index_tree.def_vmap
def _nearest_index_tree_vmap(axis_size, in_batched, index, queries):
    """vmap over query batches with one shared index: search all the batches' queries at once."""
    index_batched, queries_batched = in_batched
    if any(jax.tree.leaves(index_batched)):  # a different index per batch element: one search after another
        index = jax.tree.map(
            lambda x, b: x if b else jnp.broadcast_to(x, (axis_size, *x.shape)), index, index_batched
        )
        queries = queries if queries_batched else jnp.broadcast_to(queries, (axis_size, *queries.shape))
        return jax.lax.map(lambda args: nearest_index_tree(*args), (index, queries)), True
    if not queries_batched:
        return nearest_index_tree(index, queries), False
    flat = nearest_index_tree(index, queries.reshape(-1, queries.shape[-1]))
    return flat.reshape(queries.shape[:-1]), True


# Below this many rows the brute-force scan is as fast as the tree search on the 2-core CPU (5k rows: 2.0 vs
# 2.4 ms per 256 queries, 20k: 4.2 vs 4.7, 50k: 27 vs 8.4, 123k: 85 vs 10; real hopper rows, policy actions
# ~0.6 from the data's).
TREE_MIN_ROWS = 32_768


def resolved_search_mode(config: Config, rows: int) -> str:
    """auto -> tree on the CPU for datasets of at least `TREE_MIN_ROWS` rows (where the brute-force scan is
    compute-bound), exact otherwise and on accelerators (one big matmul per block)."""
    if config.search_mode == "auto":
        return "tree" if jax.default_backend() == "cpu" and rows >= TREE_MIN_ROWS else "exact"
    return config.search_mode


def search_fn(config: Config, x: jax.Array | None = None):
    """The (xb, xsqb, queries) -> indices search of the config's search_mode; tree mode (and auto) build the
    kd-tree index from the (unblocked) search matrix `x`."""
    if x is None and config.search_mode in ("tree", "auto"):
        raise ValueError(f"search_mode {config.search_mode} needs the search matrix x to build its index")
    mode = resolved_search_mode(config, 0 if x is None else x.shape[0])
    if mode == "fast":
        return functools.partial(
            nearest_index_fast, candidates=config.fast_candidates, precision=config.fast_precision
        )
    if mode == "tree":
        index = build_leaf_index(x, config.tree_leaf_size)
        return lambda xb, xsqb, queries: nearest_index_tree(index, queries)
    return nearest_index


def constraint_target(
    pi: jax.Array,
    obs: jax.Array,
    xb: jax.Array,
    xsqb: jax.Array,
    actions: jax.Array,
    beta: float,
    search=nearest_index,
):
    """The dataset-constraint target a_hat = a_{j}, j = argmin_i ||[beta s, pi] - X_i|| (no gradient to pi or
    X), with the index, the neighbour row of X and the query. `search`: `nearest_index` or a fast-mode
    partial."""
    pi, obs = jax.lax.stop_gradient(pi), jax.lax.stop_gradient(obs)
    xb, xsqb = jax.lax.stop_gradient(xb), jax.lax.stop_gradient(xsqb)
    query = jnp.concatenate([beta * obs, pi], 1)
    idx = search(xb, xsqb, query)
    neighbour = xb.reshape(-1, xb.shape[-1])[idx]
    return jax.lax.stop_gradient(actions[idx]), idx, neighbour, query


# --- the agent --------------------------------------------------------------------------------------


def validate(config: Config) -> None:
    td3_bc.validate(config)
    if concrete(config.beta) and not config.beta > 0:
        raise ValueError(f"beta must be positive (the state scale of the search key), got {config.beta}")
    if concrete(config.k) and config.k != 1:
        raise ValueError(f"k must be 1 (the reference queries the single nearest neighbour), got {config.k}")
    if concrete(config.policy_freq) and config.policy_freq != 2:
        raise ValueError(
            f"policy_freq must be 2 (TD3+BC's fixed critic/actor pairing), got {config.policy_freq}"
        )
    if concrete(config.fast_candidates) and config.fast_candidates < 1:
        raise ValueError(f"fast_candidates must be >= 1, got {config.fast_candidates}")
    if concrete(config.tree_leaf_size) and config.tree_leaf_size < 1:
        raise ValueError(f"tree_leaf_size must be >= 1, got {config.tree_leaf_size}")
    if concrete(config.search_block) and config.search_block < 1:
        raise ValueError(f"search_block must be positive, got {config.search_block}")


def make_agent(config: Config, data: offline.OfflineData | None = None) -> Agent:
    """PRDC; `data` (from `purerl.offline.prepare`) may be passed to reuse a loaded dataset."""
    validate(config)
    if data is None:
        data = offline.prepare(
            config.dataset, config.env, config.view, config.normalize_states,
            brax_backend=config.brax_backend, eval_env=config.eval_env,
        )
    offline.require_keys(data.data, "observations", "actions", "rewards", "next_observations", "terminals")
    if config.reward_scale != 1.0 or config.reward_shift != 0.0:
        rewards = config.reward_scale * data.data["rewards"] + config.reward_shift
        data = dataclasses.replace(data, data={**data.data, "rewards": rewards})
    actions = data.data["actions"]
    x = build_search_matrix(data.data["observations"], actions, config.beta)
    xb, xsqb = blocked(x, config.search_block)
    search = search_fn(config, x)

    def bc_target(pi, batch):
        obs = batch["observations"]
        a_hat, _, neighbour, query = constraint_target(pi, obs, xb, xsqb, actions, config.beta, search)
        dist = jnp.sqrt(jnp.maximum(((query - neighbour) ** 2).sum(1), 0.0))
        same_state = jnp.all(neighbour[:, : obs.shape[1]] == query[:, : obs.shape[1]], axis=1)
        return a_hat, {
            "dc_loss": ((pi - a_hat) ** 2).mean(),
            "nn_distance": dist.mean(),
            "same_state_fraction": same_state.mean(),
        }

    return td3_bc.make_agent(config, data, bc_target=bc_target)


def make_train(config: Config, data: offline.OfflineData | None = None):
    """`train(key) -> (final TrainState, metrics stacked per iteration)`, fully jittable."""
    return train_fn(make_agent(config, data))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("prdc")
