"""Submodular grid environments (Prajapat et al., ICLR 2024, "Submodular Reinforcement Learning").

The return of a trajectory is a monotone submodular set function F of the *set* of states it visits; the
per-step reward is the marginal gain Δ_j = F(s_{j+1} | τ_{0:j}), so Σ_j Δ_j = F(τ) − F({s_0}) telescopes.
An episode has H states s_0..s_{H-1} and H−1 actions (the published code's convention).

Grid: nx × ny, node n ↔ (row n // ny, col n % ny); deterministic moves, 5 actions
(0 stay, 1 col+1, 2 row+1, 3 col−1, 4 row−1); a move off the grid or through a wall is a stay.
Every episode starts at node `start_node` (34 in the paper's code).

Objectives (all with incremental marginal gains, computed in O(1) or O(H²) per step):

- ``coverage`` / ``bimodal`` / ``gp`` (30×30) and ``two_rooms`` (7×14, walls): weighted coverage,
  F(S) = Σ_{c ∈ ∪_{n∈S} D(n)} w(c) with D(n) the 2×2 block with n top-left ("small" disc) or the 3×3
  block ("large"). Weights: constant 1, a bimodal sigmoid field, or one GP sample (regenerated from
  `instance`; the paper's pickled instances cannot be loaded here).
- ``dopt`` (30×30): D-optimal design / information gain F(S) = ½ logdet(I + K_SS/σ²) on the set of
  distinct visited cells, K the posterior covariance of a GP conditioned on 5 random points.
  ``logdet_form="code"`` instead reproduces the published code's F_code(τ) = ½ logdet(K_ττ + 1e-6 I)
  + 9.965784·|τ| over the visited *sequence with repeats* (not a set function).
- ``items`` (7×15): item collection, F(S) = Σ_k min(|L_k ∩ S|, D_k) (six item types; max F = 21).

`step` returns the marginal gain as the reward and the additive (ModPO) reward of the code in
`info["modular_reward"]`; `state.value` is F of the visited set so far. Use `make_submodular(...)` or
`purerl.envs.make("submodular-<objective>", ...)`.
"""

from __future__ import annotations

import typing
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

OBJECTIVES = ("coverage", "bimodal", "gp", "dopt", "items", "two_rooms")
LogdetForm = Literal["set_info_gain", "code"]
Disc = Literal["small", "large"]
LOGDET_FORMS: tuple[str, ...] = typing.get_args(LogdetForm)
DISCS: tuple[str, ...] = typing.get_args(Disc)
NUM_ACTIONS = 5
# (d_row, d_col) of actions 0 stay, 1 col+1, 2 row+1, 3 col-1, 4 row-1
MOVES = ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0))
DEFAULT_GRID = {
    "coverage": (30, 30),
    "bimodal": (30, 30),
    "gp": (30, 30),
    "dopt": (30, 30),
    "items": (7, 15),
    "two_rooms": (7, 14),
}
DEFAULT_HORIZON = {"coverage": 80, "bimodal": 40, "gp": 40, "dopt": 40, "items": 40, "two_rooms": 40}
ITEM_COUNTS = (18, 14, 13, 16, 18, 14)  # |L_k|: cells holding an item of type k
ITEM_DEMANDS = (3, 2, 3, 4, 6, 3)  # D_k
GP_NOISE = 1e-3  # observation noise of the GP used for weights / D-optimal design (= σ² of the set form)
CODE_JITTER = 1e-6  # the code's logdet jitter
CODE_CONST = 9.965784  # the code's per-element constant in F_code (≈ -log2(1e-3))


# --------------------------------------------------------------------------------------------- geometry
def two_rooms_walls(nx: int, ny: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocked moves of the two-rooms map: `h[r, c]` blocks (r,c)↔(r,c+1), `v[r, c]` blocks (r,c)↔(r+1,c),
    `diag[r, c]` drops the diagonal disc neighbour (r+1,c+1) of (r,c)."""
    h = np.zeros((nx, ny), bool)
    v = np.zeros((nx, ny), bool)
    diag = np.zeros((nx, ny), bool)
    for r in (0, 1, 4, 5, 6):
        h[r, 3:10] = True
    for r in (0, 1, 3, 4, 5):
        v[r, 4:10] = True
    diag[0:2, 4:10] = True
    diag[4:6, 3:10] = True
    diag[3, 3:9] = True
    diag[0, 3] = True
    return h, v, diag


def transition_table(nx: int, ny: int, walls=None) -> np.ndarray:
    """`[N, 5]` next node for every node and action (off-grid or walled moves stay)."""
    h, v, _ = walls if walls is not None else (np.zeros((nx, ny), bool),) * 3
    table = np.zeros((nx * ny, NUM_ACTIONS), np.int32)
    for r in range(nx):
        for c in range(ny):
            n = r * ny + c
            for a, (dr, dc) in enumerate(MOVES):
                r2, c2 = r + dr, c + dc
                ok = 0 <= r2 < nx and 0 <= c2 < ny
                if ok and dc != 0:
                    ok = not h[r, min(c, c2)]
                if ok and dr != 0:
                    ok = not v[min(r, r2), c]
                table[n, a] = r2 * ny + c2 if ok else n
    return table


def disc_masks(nx: int, ny: int, disc: str = "small", walls=None) -> np.ndarray:
    """`[N, N]` bool: cells covered by standing on each node ("small": the 2×2 block with the node top-left,
    right/down neighbours blocked by walls and dropped diagonals removed; "large": union of small discs)."""
    h, v, diag = walls if walls is not None else (np.zeros((nx, ny), bool),) * 3
    n_cells = nx * ny
    masks = np.zeros((n_cells, n_cells), bool)
    for r in range(nx):
        for c in range(ny):
            n = r * ny + c
            masks[n, n] = True
            if c + 1 < ny and not h[r, c]:
                masks[n, n + 1] = True
            if r + 1 < nx and not v[r, c]:
                masks[n, n + ny] = True
            if r + 1 < nx and c + 1 < ny and not diag[r, c]:
                masks[n, n + ny + 1] = True
    if disc == "large":
        masks = (masks.astype(np.int32) @ masks.astype(np.int32)) > 0
    return masks


def _coords(nx: int, ny: int) -> np.ndarray:
    rows, cols = np.divmod(np.arange(nx * ny), ny)
    return np.stack([rows, cols], -1) * 0.1 + 1.0


def matern52(
    x: np.ndarray, y: np.ndarray, lengthscale: float = 1.0, outputscale: float = np.log(2.0)
) -> np.ndarray:
    """Matérn-5/2 kernel (GPyTorch default outputscale softplus(0) = log 2)."""
    d = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)) / lengthscale
    s = np.sqrt(5.0) * d
    return outputscale * (1.0 + s + s**2 / 3.0) * np.exp(-s)


def _gp_posterior(nx: int, ny: int, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance on the grid of a zero-mean GP conditioned on zero targets at `points`."""
    x = _coords(nx, ny)
    k_xx = matern52(x, x)
    k_xp = matern52(x, points)
    k_pp = matern52(points, points) + GP_NOISE * np.eye(len(points))
    cov = k_xx - k_xp @ np.linalg.solve(k_pp, k_xp.T)
    return np.zeros(len(x)), 0.5 * (cov + cov.T)


def coverage_weights(kind: str, nx: int, ny: int, instance: int = 0) -> np.ndarray:
    """Cell weights: "constant" 1; "bimodal" sigmoid(u_col · u_row); "gp" one GP sample regenerated from
    `instance` (shifted by +3 if its min > −3, else by −min so every weight is ≥ 0)."""
    if kind in ("coverage", "two_rooms", "constant"):
        return np.ones(nx * ny)
    if kind == "bimodal":
        rows, cols = np.divmod(np.arange(nx * ny), ny)
        u_r, u_c = np.linspace(-1, 1, nx), np.linspace(-1, 1, ny)
        return 1.0 / (1.0 + np.exp(-u_c[cols] * u_r[rows]))
    if kind == "gp":
        rng = np.random.default_rng(instance)
        mean, cov = _gp_posterior(nx, ny, rng.uniform(0, 10, (1, 2)))
        chol = np.linalg.cholesky(cov + 1e-6 * np.eye(len(cov)))
        w = mean + chol @ rng.standard_normal(len(cov))
        return w + 3.0 if w.min() > -3.0 else w - w.min()
    raise ValueError(f"no coverage weights for objective {kind!r}")


def dopt_kernel(nx: int, ny: int, instance: int = 0) -> np.ndarray:
    """GP posterior covariance on the grid after 5 random zero observations in [0,10]² (from `instance`)."""
    rng = np.random.default_rng(1000 + instance)
    return _gp_posterior(nx, ny, rng.uniform(0, 10, (5, 2)))[1]


def item_types(nx: int, ny: int, instance: int = 0) -> np.ndarray:
    """`[N]` item type per cell (−1 = no item); disjoint random locations with |L_k| = ITEM_COUNTS."""
    n = nx * ny
    if sum(ITEM_COUNTS) > n:
        raise ValueError(f"items need at least {sum(ITEM_COUNTS)} cells, the grid has {n}")
    perm = np.random.default_rng(2000 + instance).permutation(n)
    types = -np.ones(n, np.int32)
    start = 0
    for k, count in enumerate(ITEM_COUNTS):
        types[perm[start : start + count]] = k
        start += count
    return types


# --------------------------------------------------------------------------------------------- env
@struct.dataclass
class SubmodularParams:
    transitions: jax.Array  # [N, 5] int32
    discs: jax.Array  # [N, N] bool (coverage); [1, 1] otherwise
    weights: jax.Array  # [N] float32 cell weights (coverage)
    item_type: jax.Array  # [N] int32, -1 = none (items)
    demands: jax.Array  # [K] int32 (items)
    kernel: jax.Array  # [N, N] float32 GP covariance (dopt); [1, 1] otherwise
    start: int = 34  # start node (set through the constructor's validated start_node)
    max_steps_in_episode: int = 79  # H - 1 actions


@struct.dataclass
class SubmodularState:
    pos: jax.Array
    time: jax.Array
    visited: jax.Array  # [N] bool: covered cells (coverage) or visited nodes (items, dopt)
    counts: jax.Array  # [K] int32 collected items per type (items)
    chol: jax.Array  # [H, H] padded Cholesky factor of K_SS + noise·I (dopt)
    chosen: jax.Array  # [H] int32 nodes in the Cholesky factor (dopt)
    size: jax.Array  # number of rows used in chol
    value: jax.Array  # F of the visited set so far


class SubmodularGridEnv(environment.Environment):
    """Grid walk whose reward is the marginal gain of a submodular objective (see module docstring)."""

    def __init__(
        self,
        objective: str = "coverage",
        grid: tuple[int, int] | None = None,
        horizon: int | None = None,
        start_node: int = 34,
        disc: str = "small",
        instance: int = 0,
        logdet_form: str = "set_info_gain",
    ):
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; valid objectives: {', '.join(OBJECTIVES)}")
        if disc not in DISCS:
            raise ValueError(f"unknown disc {disc!r}; valid: {', '.join(DISCS)}")
        if logdet_form not in LOGDET_FORMS:
            raise ValueError(f"unknown logdet_form {logdet_form!r}; valid: {', '.join(LOGDET_FORMS)}")
        nx, ny = tuple(grid) if grid is not None else DEFAULT_GRID[objective]
        if nx < 1 or ny < 1:
            raise ValueError(f"grid must have positive sides, got {(nx, ny)}")
        horizon = DEFAULT_HORIZON[objective] if horizon is None else int(horizon)
        if horizon < 2:
            raise ValueError(f"horizon must be >= 2 (H states, H-1 actions), got {horizon}")
        if not 0 <= start_node < nx * ny:
            raise ValueError(
                f"start_node {start_node} lies outside the {nx}x{ny} grid (nodes 0..{nx * ny - 1})"
            )
        self.objective, self.grid, self.horizon = objective, (nx, ny), horizon
        self.start_node, self.disc, self.instance, self.logdet_form = start_node, disc, instance, logdet_form
        self.num_nodes = nx * ny

    @property
    def name(self) -> str:
        return f"submodular-{self.objective}"

    @property
    def is_coverage(self) -> bool:
        return self.objective in ("coverage", "bimodal", "gp", "two_rooms")

    @property
    def default_params(self) -> SubmodularParams:
        nx, ny = self.grid
        walls = two_rooms_walls(nx, ny) if self.objective == "two_rooms" else None
        one = jnp.zeros((1, 1), jnp.float32)
        n = self.num_nodes
        return SubmodularParams(
            transitions=jnp.asarray(transition_table(nx, ny, walls)),
            discs=jnp.asarray(disc_masks(nx, ny, self.disc, walls)) if self.is_coverage else one.astype(bool),
            weights=jnp.asarray(coverage_weights(self.objective, nx, ny, self.instance), jnp.float32)
            if self.is_coverage
            else jnp.ones(n, jnp.float32),
            item_type=jnp.asarray(item_types(nx, ny, self.instance))
            if self.objective == "items"
            else -jnp.ones(n, jnp.int32),
            demands=jnp.asarray(ITEM_DEMANDS, jnp.int32),
            kernel=jnp.asarray(dopt_kernel(nx, ny, self.instance), jnp.float32)
            if self.objective == "dopt"
            else one,
            start=self.start_node,
            max_steps_in_episode=self.horizon - 1,
        )

    # ---- objective: incremental marginal gain and modular reward
    def empty_state(self, params: SubmodularParams) -> SubmodularState:
        h = self.horizon
        dtype = params.kernel.dtype
        return SubmodularState(
            pos=jnp.asarray(params.start, jnp.int32),
            time=jnp.zeros((), jnp.int32),
            visited=jnp.zeros(self.num_nodes, bool),
            counts=jnp.zeros(len(ITEM_DEMANDS), jnp.int32),
            chol=jnp.eye(h, dtype=dtype),
            chosen=jnp.zeros(h, jnp.int32),
            size=jnp.zeros((), jnp.int32),
            value=jnp.zeros((), params.weights.dtype),
        )

    def add(
        self, state: SubmodularState, node: jax.Array, params: SubmodularParams
    ) -> tuple[jax.Array, SubmodularState]:
        """Add `node` to the visited set: returns (marginal gain Δ(node | set), new state)."""
        if self.is_coverage:
            new = params.discs[node] & ~state.visited
            gain = jnp.sum(jnp.where(new, params.weights, 0.0))
            state = state.replace(visited=state.visited | params.discs[node])
        elif self.objective == "items":
            k = params.item_type[node]
            kk = jnp.maximum(k, 0)
            hit = (k >= 0) & ~state.visited[node] & (state.counts[kk] < params.demands[kk])
            gain = hit.astype(params.weights.dtype)
            counts = state.counts.at[kk].add(((k >= 0) & ~state.visited[node]).astype(jnp.int32))
            state = state.replace(visited=state.visited.at[node].set(True), counts=counts)
        else:  # dopt: rank-one Cholesky extension of K_SS + noise·I
            code = self.logdet_form == "code"
            noise = CODE_JITTER if code else GP_NOISE
            idx = jnp.arange(self.horizon)
            k_s = jnp.where(idx < state.size, params.kernel[state.chosen, node], 0.0)
            v = jax.scipy.linalg.solve_triangular(state.chol, k_s, lower=True)
            schur = jnp.maximum(params.kernel[node, node] - jnp.sum(v * v), 0.0)
            fresh = jnp.logical_or(code, ~state.visited[node])
            if code:
                gain = 0.5 * jnp.log(schur + noise) + CODE_CONST
            else:
                gain = jnp.where(fresh, 0.5 * jnp.log1p(schur / noise), 0.0)
            row = jnp.where(idx < state.size, v, 0.0).at[state.size].set(jnp.sqrt(schur + noise))
            chol = jnp.where(fresh, state.chol.at[state.size].set(row), state.chol)
            state = state.replace(
                chol=chol,
                chosen=jnp.where(fresh, state.chosen.at[state.size].set(node), state.chosen),
                size=state.size + fresh.astype(jnp.int32),
                visited=state.visited.at[node].set(True),
            )
        gain = gain.astype(state.value.dtype)
        return gain, state.replace(value=state.value + gain)

    def modular_reward(self, node: jax.Array, params: SubmodularParams) -> jax.Array:
        """The code's additive (ModPO) reward for standing on `node` (repeats count every time)."""
        if self.is_coverage:
            return jnp.sum(jnp.where(params.discs[node], params.weights, 0.0))
        if self.objective == "items":
            return (params.item_type[node] >= 0).astype(params.weights.dtype)
        return 0.5 * jnp.log2(params.kernel[node, node] + CODE_JITTER) + CODE_CONST

    # ---- gymnax API
    def observe(self, key, state, action, params):
        return self.get_obs(state)

    def get_obs(self, state, params=None, key=None):
        return jnp.stack([state.pos, state.time]).astype(jnp.float32)

    def reset_env(self, key, params):
        state = self.empty_state(params)
        _, state = self.add(state, state.pos, params)
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        node = params.transitions[state.pos, action]
        modular = self.modular_reward(node, params)
        gain, state = self.add(state, node, params)
        state = state.replace(pos=node, time=state.time + 1)
        info = {"modular_reward": modular, "value": state.value}
        return self.get_obs(state), state, gain, jnp.zeros((), bool), info

    def is_terminated(self, state, params):
        return jnp.zeros((), bool)

    def action_space(self, params=None):
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params=None):
        return spaces.Box(0.0, float(max(self.num_nodes, self.horizon)), (2,), jnp.float32)

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS


def make_submodular(objective: str = "coverage", **kwargs) -> SubmodularGridEnv:
    return SubmodularGridEnv(objective, **kwargs)


# --------------------------------------------------------------------------------------------- batch F
def set_value(env: SubmodularGridEnv, params: SubmodularParams, nodes: jax.Array) -> jax.Array:
    """F of a visited sequence `nodes` computed from scratch (no incremental state): the reference that
    the env's marginal gains must telescope to. Repeats are ignored except by `logdet_form="code"`."""
    nodes = jnp.asarray(nodes, jnp.int32)
    if env.objective == "dopt" and env.logdet_form == "code":
        k = params.kernel[nodes[:, None], nodes[None, :]] + CODE_JITTER * jnp.eye(
            len(nodes), dtype=params.kernel.dtype
        )
        return 0.5 * jnp.linalg.slogdet(k)[1] + CODE_CONST * len(nodes)
    return mask_value(env, params, jnp.zeros(env.num_nodes, bool).at[nodes].set(True))


def mask_value(env: SubmodularGridEnv, params: SubmodularParams, member: jax.Array) -> jax.Array:
    """F of the set given as a bool mask `member` [N] (set forms only), from scratch."""
    if env.is_coverage:
        covered = jnp.any(params.discs & member[:, None], axis=0)
        return jnp.sum(jnp.where(covered, params.weights, 0.0))
    if env.objective == "items":
        hits = (
            jnp.zeros(len(ITEM_DEMANDS), jnp.int32)
            .at[jnp.maximum(params.item_type, 0)]
            .add((member & (params.item_type >= 0)).astype(jnp.int32))
        )
        return jnp.sum(jnp.minimum(hits, params.demands)).astype(params.weights.dtype)
    if env.logdet_form == "code":
        raise ValueError("logdet_form='code' is not a set function: use set_value on the visited sequence")
    mask = member.astype(params.kernel.dtype)
    m = (
        jnp.eye(env.num_nodes, dtype=params.kernel.dtype)
        + params.kernel * mask[:, None] * mask[None, :] / GP_NOISE
    )
    return 0.5 * jnp.linalg.slogdet(m)[1]


def max_return(horizon: int, disc: str = "small") -> int:
    """The code's normaliser MAX_Ret (the coverage bound with unit weights): 2(H+1) small, 3(H+2) large."""
    return 2 * (horizon + 1) if disc == "small" else 3 * (horizon + 2)


def env_kwargs(env: Any) -> dict[str, Any]:
    return dict(
        objective=env.objective,
        grid=env.grid,
        horizon=env.horizon,
        start_node=env.start_node,
        disc=env.disc,
        instance=env.instance,
        logdet_form=env.logdet_form,
    )
