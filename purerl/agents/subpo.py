"""SubPO (Prajapat, Mutný, Zeilinger, Krause, ICLR 2024, "Submodular Reinforcement Learning").

The return of a trajectory τ = (s_0, a_0, …, s_{H−1}) is a monotone submodular set function F of the
visited states (coverage, D-optimal design, item collection; `purerl.envs.submodular`). SubPO is
REINFORCE in the history-augmented MDP whose reward is the marginal gain Δ_j = F(s_{j+1} | τ_{0:j}):

    ∇J ≈ mean_b Σ_i ∇log π(a_i | x_i) · (Σ_{j≥i} Δ_j − b_i)      ("reward-to-go of marginal gains", default)

which is unbiased for any policy class. The published code instead weights step i by the *prefix value*
F(τ_{0:i+1}) (`return_mode="prefix_value"`); in expectation that is the myopic gradient Σ_i ∇log π_i · Δ_i.

Variants, all by flags:
- SubPO-M:  `policy_input="markov_time"` — input (s_i, i);
- SubPO-NM: `policy_input="history"`     — input (s_0, …, s_i, −1, …, −1);
- ModPO:    `reward="modular"`           — the same gradient on the code's additive reward (revisits pay).

One epoch = `batch_trajectories` full episodes from the start node, one Adam step on the loss
−mean_{b,i}[log π(a_i|x_i) · w_i / MAX_Ret] − ent_coef · entropy / (epoch + 1). Metrics report the
*submodular* F of the batch for every variant. Defaults (`0` fields) follow the paper's per-env table.

Reference policies (our addition): `reference_values(..., policy="random" | "greedy")` — uniform random
actions, and the model-based one-step greedy argmax_a Δ(next(s, a) | τ) with random tie-breaking.

The continuous ant coverage task of the paper (sec. 4.6) uses A2C instead: `purerl train a2c --env
ant_coverage` (SubPO: marginal-gain reward) or `--env ant_coverage_modular` (ModPO); see `purerl.agents.a2c`
and `purerl.envs.ant_coverage`.

The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/subpo.md`.

Run it: `python -m purerl.agents.subpo --env coverage --num-seeds 5` (same flags as `purerl train subpo`).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from purerl.agent import Agent, check_choices, check_positive, concrete, train_fn
from purerl.envs.submodular import OBJECTIVES, Disc, LogdetForm, SubmodularGridEnv, max_return
from purerl.returns import discounted_returns

# env -> (horizon H, trajectories per epoch B, epochs, Adam lr): the paper code's params/*/subrl_*.yaml
PAPER_SETTINGS = {
    "coverage": (80, 500, 50, 0.01),
    "bimodal": (40, 500, 140, 0.001),
    "gp": (40, 500, 140, 0.001),
    "dopt": (40, 500, 150, 0.001),
    "items": (40, 500, 150, 0.005),
    "two_rooms": (40, 3000, 140, 0.02),
}
ReturnMode = Literal["reward_to_go", "prefix_value", "immediate_gain"]
Baseline = Literal["none", "batch_mean_per_step"]
RETURN_MODES: tuple[str, ...] = typing.get_args(ReturnMode)


@dataclass(frozen=True)
class Config:
    env: str = "coverage"
    """objective / grid world: coverage, bimodal, gp, dopt, items or two_rooms"""
    grid: tuple[int, int] = (0, 0)
    """grid size (rows, cols); (0, 0) = the env's default (30x30, items 7x15, two_rooms 7x14)"""
    horizon: int = 0
    """H, states per trajectory (H-1 actions); 0 = the paper's value for the env"""
    start_node: int = 34
    """start node of every episode (row-major index; 34 in the paper's code)"""
    disc: Disc = "small"
    """coverage disc: small (2x2 block) or large (3x3 block)"""
    instance: int = 0
    """seed of the random env instance (GP weights, D-opt covariance, item locations)"""
    logdet_form: LogdetForm = "set_info_gain"
    """D-optimal objective: set_info_gain (½ logdet(I + K_SS/σ²) on distinct cells) or code (published)"""
    policy_input: Literal["markov_time", "history"] = "markov_time"
    """markov_time (SubPO-M / ModPO: input (s_i, i)) or history (SubPO-NM: visited states so far)"""
    reward: Literal["submodular", "modular"] = "submodular"
    """submodular (marginal gains: SubPO) or modular (the code's additive reward: ModPO)"""
    return_mode: ReturnMode = "reward_to_go"
    """step weight: reward_to_go (unbiased, paper), prefix_value (the code: F(τ_{0:i+1})) or immediate_gain"""
    gain_discount: float = 1.0
    """discount of future gains inside the reward-to-go (1 = unbiased for J; 0 = myopic)"""
    baseline: Baseline = "none"
    """none (the code) or batch_mean_per_step (subtract the batch mean weight of each step)"""
    normalize_by_max_return: bool = True
    """divide the weights by MAX_Ret = 2(H+1) (small disc) or 3(H+2) (large), as the code"""
    obs_encoding: Literal["raw_index", "onehot_xy_time", "visited_mask"] = "raw_index"
    """raw_index (the code: raw node indices and time), onehot_xy_time, or visited_mask (history only)"""
    batch_trajectories: int = 0
    """B, trajectories per epoch (one gradient step each); 0 = the paper's value (500; two_rooms 3000)"""
    epochs: int = 0
    """training epochs; 0 = the paper's value for the env"""
    lr: float = 0.0
    """Adam learning rate; 0 = the paper's value for the env"""
    ent_coef: float = 0.0
    """entropy bonus (divided by epoch + 1, as the code; 0 in every paper config)"""
    stochasticity: float = 0.0
    """probability that a trajectory acts uniformly at random (the code's exploration noise; 0 in paper)"""
    hidden: tuple[int, ...] = (64, 32)
    """policy MLP hidden widths (tanh), PyTorch-default initialisation as the code"""
    eval_episodes: int = 500
    """trajectories per seed in the final evaluation (reports the submodular F of each)"""

    def resolved(self) -> Config:
        """The config with every 0 (= paper default) replaced by the env's value."""
        h, b, e, lr = PAPER_SETTINGS[self.env]
        return dataclasses.replace(
            self,
            horizon=self.horizon or h,
            batch_trajectories=self.batch_trajectories or b,
            epochs=self.epochs or e,
            lr=self.lr or lr,
        )


# --------------------------------------------------------------------------------------------- network
class PolicyMLP(nn.Module):
    """in → hidden (tanh) → 5 logits, with PyTorch-default weights and biases (the code's network)."""

    hidden: tuple[int, ...]
    num_actions: int = 5

    @nn.compact
    def __call__(self, x):
        x = jnp.asarray(x, jnp.float32)
        for i, width in enumerate((*self.hidden, self.num_actions)):
            fan_in = x.shape[-1]
            bound = 1.0 / np.sqrt(fan_in)
            uniform = lambda key, shape, dtype=jnp.float32, b=bound: jax.random.uniform(
                key, shape, dtype, -b, b
            )  # noqa: E731
            x = nn.Dense(width, kernel_init=uniform, bias_init=uniform)(x)
            if i < len(self.hidden):
                x = jnp.tanh(x)
        return x


# --------------------------------------------------------------------------------------------- estimator
def step_weights(
    rewards,
    initial_reward,
    return_mode: str = "reward_to_go",
    gain_discount: float = 1.0,
    baseline: str = "none",
):
    """Weights w_i of ∇log π(a_i|x_i) for a batch of trajectories; `rewards` [B, H−1] are the per-step
    rewards r_j (marginal gains for SubPO), `initial_reward` [B] the reward of s_0 (F({s_0}))."""
    if return_mode == "reward_to_go":
        r = jnp.swapaxes(rewards, 0, 1)
        w = jnp.swapaxes(discounted_returns(r, jnp.zeros(r.shape, bool), gain_discount), 0, 1)
    elif return_mode == "prefix_value":
        w = initial_reward[:, None] + jnp.cumsum(rewards, axis=1)
    elif return_mode == "immediate_gain":
        w = rewards
    else:
        raise ValueError(f"unknown return_mode {return_mode!r}; valid: {', '.join(RETURN_MODES)}")
    if baseline == "batch_mean_per_step":
        w = w - w.mean(axis=0, keepdims=True)
    return w


@struct.dataclass
class Trajectories:
    inputs: jax.Array  # [B, H−1, in] policy inputs x_i
    actions: jax.Array  # [B, H−1]
    gains: jax.Array  # [B, H−1] marginal gains Δ_j
    modular: jax.Array  # [B, H−1] additive rewards of s_{j+1}
    initial_value: jax.Array  # [B] F({s_0})
    initial_modular: jax.Array  # [B] additive reward of s_0
    value: jax.Array  # [B] F(τ)
    nodes: jax.Array  # [B, H] visited nodes


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    key: jax.Array
    epoch: jax.Array


def validate(config: Config) -> None:
    if config.env not in OBJECTIVES:
        raise ValueError(f"env: unknown objective name {config.env!r}; valid: {', '.join(OBJECTIVES)}")
    check_choices(config)
    if config.obs_encoding == "visited_mask" and config.policy_input != "history":
        raise ValueError(
            "obs_encoding='visited_mask' summarises the history: it needs policy_input='history'"
        )
    if concrete(config.horizon) and config.horizon and config.horizon < 2:
        raise ValueError(f"horizon must be >= 2 (H states, H-1 actions), got {config.horizon}")
    counts = (config.horizon, config.batch_trajectories, config.epochs, config.lr)
    if concrete(*counts) and any(count < 0 for count in counts):
        raise ValueError("horizon, batch_trajectories, epochs and lr must be >= 0 (0 = the paper's value)")
    if concrete(config.gain_discount) and not 0.0 <= config.gain_discount <= 1.0:
        raise ValueError(f"gain_discount must lie in [0, 1], got {config.gain_discount}")
    if concrete(config.stochasticity) and not 0.0 <= config.stochasticity <= 1.0:
        raise ValueError(f"stochasticity must lie in [0, 1], got {config.stochasticity}")
    if concrete(config.ent_coef) and config.ent_coef < 0:
        raise ValueError(f"ent_coef must be >= 0, got {config.ent_coef}")
    check_positive(config, "eval_episodes")


def make_env(config: Config) -> SubmodularGridEnv:
    """The grid env of a (resolved) config; raises ValueError for a bad grid, start node, disc or H."""
    return SubmodularGridEnv(
        config.env,
        grid=None if config.grid == (0, 0) else config.grid,
        horizon=config.horizon,
        start_node=config.start_node,
        disc=config.disc,
        instance=config.instance,
        logdet_form=config.logdet_form,
    )


def make_encoder(config: Config, env: SubmodularGridEnv):
    """`encode(pos, t, history, visited) -> x` for one trajectory, and the input size."""
    nx, ny = env.grid
    h = env.horizon
    n = env.num_nodes

    def onehots(pos, t):
        return jnp.concatenate(
            [jax.nn.one_hot(pos // ny, nx), jax.nn.one_hot(pos % ny, ny), jax.nn.one_hot(t, h)]
        )

    if config.obs_encoding == "raw_index":
        if config.policy_input == "markov_time":
            return (lambda pos, t, hist, vis: jnp.stack([pos, t]).astype(jnp.float32)), 2
        return (lambda pos, t, hist, vis: hist.astype(jnp.float32)), h - 1
    if config.obs_encoding == "onehot_xy_time" and config.policy_input == "markov_time":
        return (lambda pos, t, hist, vis: onehots(pos, t)), nx + ny + h
    # history summaries: visited-node mask + one-hot position + one-hot time
    return (
        lambda pos, t, hist, vis: jnp.concatenate([vis.astype(jnp.float32), onehots(pos, t)])
    ), n + nx + ny + h


def make_rollout(env: SubmodularGridEnv, encode, horizon: int):
    """`rollout(choose, key, params, num) -> Trajectories`; `choose(key, x, env_state) -> action` for one
    trajectory. Every trajectory starts at the start node and runs H−1 steps (no auto-reset needed)."""
    steps = horizon - 1

    def rollout(choose, key, env_params, num):
        _, state = jax.vmap(env.reset_env, in_axes=(0, None))(jax.random.split(key, num), env_params)
        hist = jnp.full((num, steps), -1, jnp.int32).at[:, 0].set(state.pos)
        visited = jnp.zeros((num, env.num_nodes), bool).at[jnp.arange(num), state.pos].set(True)
        init_modular = jax.vmap(env.modular_reward, in_axes=(0, None))(state.pos, env_params)
        init_value = state.value

        def step(carry, inputs):
            state, hist, visited = carry
            i, step_key = inputs
            x = jax.vmap(encode, in_axes=(0, None, 0, 0))(state.pos, i, hist, visited)
            action = jax.vmap(choose)(jax.random.split(step_key, num), x, state)
            _, state, gain, _, info = jax.vmap(env.step_env, in_axes=(None, 0, 0, None))(
                step_key, state, action, env_params
            )
            hist = hist.at[:, i + 1].set(state.pos, mode="drop")
            visited = visited.at[jnp.arange(num), state.pos].set(True)
            return (state, hist, visited), (x, action, gain, info["modular_reward"], state.pos)

        (state, _, _), (x, a, g, m, pos) = jax.lax.scan(
            step, (state, hist, visited), (jnp.arange(steps), jax.random.split(key, steps))
        )
        tr = lambda v: jnp.swapaxes(v, 0, 1)  # noqa: E731
        nodes = jnp.concatenate([hist[:, :1], tr(pos)], axis=1)
        return Trajectories(tr(x), tr(a), tr(g), tr(m), init_value, init_modular, state.value, nodes)

    return rollout


def reference_values(config: Config, key: jax.Array, policy: str = "random", num: int | None = None):
    """F of `num` trajectories of a reference policy: "random" (uniform actions) or "greedy" (one-step
    greedy on marginal gains, ties broken uniformly at random). Returns `Trajectories`."""
    config = config.resolved()
    validate(config)
    env = make_env(config)
    env_params = env.default_params
    encode, _ = make_encoder(config, env)
    rollout = make_rollout(env, encode, config.horizon)

    def choose_random(key, x, state):
        return jax.random.randint(key, (), 0, env.num_actions)

    def choose_greedy(key, x, state):
        nxt = env_params.transitions[state.pos]
        gains = jax.vmap(lambda node: env.add(state, node, env_params)[0])(nxt)
        best = gains >= gains.max() - 1e-6
        return jax.random.categorical(key, jnp.where(best, 0.0, -jnp.inf))

    if policy not in ("random", "greedy"):
        raise ValueError(f"unknown reference policy {policy!r}; valid: random, greedy")
    choose = choose_random if policy == "random" else choose_greedy
    return rollout(choose, key, env_params, num or config.batch_trajectories)


def policy_rollout(config: Config, params, key: jax.Array, num: int) -> Trajectories:
    """`num` trajectories of the trained policy with network `params` (e.g. to plot visited cells)."""
    config = config.resolved()
    env = make_env(config)
    encode, _ = make_encoder(config, env)
    network = PolicyMLP(tuple(config.hidden), env.num_actions)
    choose = lambda k, x, state: jax.random.categorical(k, network.apply(params, x))  # noqa: E731
    return make_rollout(env, encode, config.horizon)(choose, key, env.default_params, num)


NO_POLICY_REASON = ("its policy acts on the encoded history of a trajectory on the submodular grid (the "
                    "states visited so far), not on one env observation")
"""Why the agent exposes no `Agent.policy`: `purerl.load(...).act` and `purerl render` say so (`purerl eval`
works)."""


def make_agent(config: Config) -> Agent:
    validate(config)
    config = config.resolved()
    validate(config)
    env = make_env(config)
    env_params = env.default_params
    encode, in_dim = make_encoder(config, env)
    network = PolicyMLP(tuple(config.hidden), env.num_actions)
    optimizer = optax.adam(config.lr)
    rollout = make_rollout(env, encode, config.horizon)
    scale = float(max_return(config.horizon, config.disc)) if config.normalize_by_max_return else 1.0
    num = config.batch_trajectories

    def make_choose(params, explore=None):
        def choose(key, x, state):
            pi_key, rand_key = jax.random.split(key)
            action = jax.random.categorical(pi_key, network.apply(params, x))
            if config.stochasticity > 0:
                explore_now = jax.random.uniform(jax.random.fold_in(rand_key, 1)) < config.stochasticity
                action = jnp.where(explore_now, jax.random.randint(rand_key, (), 0, env.num_actions), action)
            return action

        return choose

    def init(key):
        key, net_key = jax.random.split(key)
        params = network.init(net_key, jnp.zeros((in_dim,)))
        return TrainState(params, optimizer.init(params), key, jnp.zeros((), jnp.int32))

    def loss_fn(params, traj: Trajectories, epoch):
        if config.reward == "submodular":
            rewards, initial = traj.gains, traj.initial_value
        else:
            rewards, initial = traj.modular, traj.initial_modular
        w = step_weights(rewards, initial, config.return_mode, config.gain_discount, config.baseline) / scale
        logits = network.apply(params, traj.inputs)
        pi = distrax.Categorical(logits=logits)
        log_prob = pi.log_prob(traj.actions)
        entropy = pi.entropy().mean()
        pg_loss = -jnp.mean(log_prob * jax.lax.stop_gradient(w))
        return pg_loss - config.ent_coef * entropy / (epoch + 1), (pg_loss, entropy)

    def update(state: TrainState):
        key, roll_key = jax.random.split(state.key)
        traj = rollout(make_choose(state.params), roll_key, env_params, num)
        grads, (pg_loss, entropy) = jax.grad(loss_fn, has_aux=True)(state.params, traj, state.epoch)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        f = traj.value
        metrics = {
            "F_mean": f.mean(),
            "F_max": f.max(),
            "F_median": jnp.median(f),
            "F_min": f.min(),
            "F_over_max_return": f.mean() / max_return(config.horizon, config.disc),
            "modular_return": traj.initial_modular.mean() + traj.modular.sum(1).mean(),
            "episode_return": f.mean(),
            "pg_loss": pg_loss,
            "entropy": entropy,
        }
        return TrainState(params, opt_state, key, state.epoch + 1), metrics

    def evaluate(state: TrainState, key):
        return rollout(make_choose(state.params), key, env_params, config.eval_episodes).value

    return Agent(init, update, evaluate, config.epochs, num * (config.horizon - 1), config)


def make_train(config: Config):
    """`train(key) -> (final TrainState, metrics stacked per epoch)`, fully jittable."""
    return train_fn(make_agent(config))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("subpo")
