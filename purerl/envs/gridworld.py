"""Random grid worlds: the task distribution TA-LPG is meta-trained on (the
`all_vrandlife` distribution of the authors' groove code).

A *level* is sampled once per task and held in a `Level` pytree of fixed-shape arrays (the largest grid and
object count), so levels of different sizes vmap together: a height x width grid (4-10 each) inside a 10 x 10
canvas, 1-5 objects with rewards U(-1, 1) (the first one made non-negative), per-object termination
probability log-U[1e-2, 1] and respawn probability log-U[1e-3, 1e-1], random wall cells, an episode cap
log-U[20, 750] steps and the agent's lifetime log-U[10, 250] updates.

Dynamics: four moves (up, down, left, right); a move into a wall or off the grid leaves the agent in place.
Stepping onto a present object gives its reward, removes it and ends the episode with the object's
termination probability; every absent object reappears with its respawn probability each step. The episode
is truncated (not terminated) at the level's cap. Episodes start at a uniformly drawn free cell with every
object present.

Observation: one-hot of the agent's cell on the 10 x 10 canvas followed by the objects' presence bits, so a
linear agent without bias is tabular in position (the LPG papers' tabular agents) and can still react to
which objects are present. Wall count: the paper's 15, capped at a quarter of the cells so small grids keep
room to move (groove does not say what it does there).
"""

from __future__ import annotations

from dataclasses import dataclass

import chex
import jax
import jax.numpy as jnp

SIZE = 10  # canvas side: the largest grid
MAX_OBJECTS = 5
NUM_ACTIONS = 4
MOVES = jnp.array([[-1, 0], [1, 0], [0, -1], [0, 1]], jnp.int32)
OBS_DIM = SIZE * SIZE + MAX_OBJECTS


@dataclass(frozen=True)
class Distribution:
    """Ranges of the level distribution (defaults: groove's `all_vrandlife`)."""

    min_size: int = 4
    max_size: int = 10
    max_objects: int = 5
    num_walls: int = 15
    episode_cap: tuple[int, int] = (20, 750)
    lifetime: tuple[int, int] = (10, 250)

    def validate(self) -> None:
        if not 2 <= self.min_size <= self.max_size <= SIZE:
            raise ValueError(f"need 2 <= min_size <= max_size <= {SIZE}, "
                             f"got {self.min_size}, {self.max_size}")
        if not 1 <= self.max_objects <= MAX_OBJECTS:
            raise ValueError(f"max_objects must be in [1, {MAX_OBJECTS}], got {self.max_objects}")
        if self.num_walls < 0:
            raise ValueError(f"num_walls must be >= 0, got {self.num_walls}")
        for name in ("episode_cap", "lifetime"):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi:
                raise ValueError(f"{name} must be a range 1 <= low <= high, got {(lo, hi)}")


@chex.dataclass(frozen=True)
class Level:
    blocked: jax.Array  # (SIZE, SIZE) bool: walls and cells outside the grid
    object_cell: jax.Array  # (MAX_OBJECTS, 2) int32
    object_active: jax.Array  # (MAX_OBJECTS,) bool: the level has this object
    object_reward: jax.Array  # (MAX_OBJECTS,)
    object_terminate: jax.Array  # (MAX_OBJECTS,) probability the episode ends when it is collected
    object_respawn: jax.Array  # (MAX_OBJECTS,) per-step probability an absent object reappears
    episode_cap: jax.Array  # () int32, steps before truncation
    lifetime: jax.Array  # () int32, agent updates in this task


@chex.dataclass(frozen=True)
class State:
    cell: jax.Array  # (2,) int32
    present: jax.Array  # (MAX_OBJECTS,) bool
    t: jax.Array  # () int32


def _log_uniform(key, low, high, shape=()):
    return jnp.exp(jax.random.uniform(key, shape, minval=jnp.log(low), maxval=jnp.log(high)))


def _log_uniform_int(key, low: int, high: int):
    """Integer log-uniform on [low, high] (inclusive)."""
    x = _log_uniform(key, low, high + 1.0)
    return jnp.clip(jnp.floor(x), low, high).astype(jnp.int32)


def sample_level(key, dist: Distribution = Distribution()) -> Level:
    keys = jax.random.split(key, 9)
    height, width = jax.random.randint(keys[0], (2,), dist.min_size, dist.max_size + 1)
    rows, cols = jnp.meshgrid(jnp.arange(SIZE), jnp.arange(SIZE), indexing="ij")
    inside = (rows < height) & (cols < width)
    # a random order of the grid's cells: the first MAX_OBJECTS hold objects, the next ones walls
    order = jnp.argsort(jnp.where(inside, jax.random.uniform(keys[1], (SIZE, SIZE)), 2.0).ravel())
    object_cell = jnp.stack(jnp.divmod(order[:MAX_OBJECTS], SIZE), axis=-1).astype(jnp.int32)
    num_walls = jnp.minimum(dist.num_walls, height * width // 4)
    wall_slots = order[MAX_OBJECTS:MAX_OBJECTS + dist.num_walls]
    walls = jnp.zeros(SIZE * SIZE, bool).at[wall_slots].set(jnp.arange(dist.num_walls) < num_walls)
    num_objects = jax.random.randint(keys[2], (), 1, dist.max_objects + 1)
    reward = jax.random.uniform(keys[3], (MAX_OBJECTS,), minval=-1.0, maxval=1.0)
    return Level(
        blocked=~inside | walls.reshape(SIZE, SIZE),
        object_cell=object_cell,
        object_active=jnp.arange(MAX_OBJECTS) < num_objects,
        object_reward=reward.at[0].set(jnp.abs(reward[0])),
        object_terminate=_log_uniform(keys[4], 1e-2, 1.0, (MAX_OBJECTS,)),
        object_respawn=_log_uniform(keys[5], 1e-3, 1e-1, (MAX_OBJECTS,)),
        episode_cap=_log_uniform_int(keys[6], *dist.episode_cap),
        lifetime=_log_uniform_int(keys[7], *dist.lifetime),
    )


def observe(state: State) -> jax.Array:
    position = jax.nn.one_hot(state.cell[0] * SIZE + state.cell[1], SIZE * SIZE)
    return jnp.concatenate([position, state.present.astype(jnp.float32)])


def reset(key, level: Level) -> tuple[jax.Array, State]:
    free = ~level.blocked.ravel()
    index = jax.random.categorical(key, jnp.where(free, 0.0, -jnp.inf))
    state = State(cell=jnp.stack(jnp.divmod(index, SIZE)).astype(jnp.int32),
                  present=level.object_active, t=jnp.zeros((), jnp.int32))
    return observe(state), state


def step(key, state: State, action, level: Level):
    """One step; returns (obs, state, reward, terminated, truncated, final_obs). On episode end the returned
    obs/state are those of a fresh episode and final_obs is the observation the episode ended in."""
    respawn_key, terminate_key, reset_key = jax.random.split(key, 3)
    target = state.cell + MOVES[action]
    inside = jnp.all((target >= 0) & (target < SIZE))
    target_clipped = jnp.clip(target, 0, SIZE - 1)
    free = inside & ~level.blocked[target_clipped[0], target_clipped[1]]
    cell = jnp.where(free, target_clipped, state.cell)
    collected = state.present & jnp.all(level.object_cell == cell, axis=-1)
    reward = jnp.sum(jnp.where(collected, level.object_reward, 0.0))
    terminates = jax.random.uniform(terminate_key, (MAX_OBJECTS,)) < level.object_terminate
    terminated = jnp.any(collected & terminates)
    respawned = ~state.present & (jax.random.uniform(respawn_key, (MAX_OBJECTS,)) < level.object_respawn)
    present = level.object_active & ((state.present & ~collected) | respawned)
    t = state.t + 1
    truncated = ~terminated & (t >= level.episode_cap)
    next_state = State(cell=cell, present=present, t=t)
    final_obs = observe(next_state)
    reset_obs, reset_state = reset(reset_key, level)
    done = terminated | truncated
    out_state = jax.tree.map(lambda a, b: jnp.where(done, a, b), reset_state, next_state)
    return jnp.where(done, reset_obs, final_obs), out_state, reward, terminated, truncated, final_obs
