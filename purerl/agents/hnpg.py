"""HNPG (Zhou, Sekhari, Song, Sun, ICLR 2024, "Offline Data Enhanced On-Policy Policy Gradient with
Provable Guarantees") on the continuous combination lock (`purerl.envs.comblock`).

An on-policy natural-gradient (TRPO) actor whose critic is fitted on *two* losses: a TD (fitted-Q) loss on
a fixed offline ε-greedy expert dataset and a Monte-Carlo regression loss on fresh rollouts; the TRPO step
is then taken on the union of on-policy and offline states. As in the authors' code, policies π_h and
critics Q_h are non-stationary (one network per timestep h), stored as stacked pytrees with leading axis H.

One iteration (defaults = the authors' code):
1. roll out E = ⌈batch_steps / H⌉ full episodes with the current π (every episode lasts exactly H steps);
2. per h, draw n_off (= N_on // H) offline transitions with replacement from buffer h;
3. critic, backward in time (reverse `lax.scan`, h = H−1..0): a fresh Adam fits Q_h for `critic_steps`
   full-batch steps on mean_on (Q_h(s,a) − G)² + mean_off (Q_h(s,a) − r − Q_{h+1}(s', a'))²,
   a' ~ π_{h+1}(s'), with the Q_{h+1} just fitted (γ = 1; G is the Monte-Carlo return to go);
4. advantages: on-policy GAE(γ=1, λ) with V_h(s) = mean of Q_h(s, a) over `v_samples` a ~ π_h(s);
   offline states get A = Q_h(s, ã) − V_h(s) for one fresh ã ~ π_h(s);
5. actor: for every h at once (`vmap` over h), one TRPO step (`purerl.natural_gradient.policy_step`) on
   on-policy ∪ offline states. `hybrid=False` drops the offline data from both the critic and the actor
   (pure on-policy TRPO with per-timestep Q critics).

The image-based lock (CLIP embeddings of CIFAR-100) is not included: no embedding source is available
offline. The method, defaults, measured results and what is not reproduced yet: `docs/algorithms/hnpg.md`.

Run it: `python -m purerl.agents.hnpg --horizon 10 --num-iters 150 --num-seeds 3`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from purerl.agent import Agent, check_choices, check_positive, concrete, train_fn
from purerl.envs.comblock import (
    CombinationLock,
    OfflineData,
    collect_offline,
    make_params,
    offline_transition,
)
from purerl.natural_gradient import policy_step, trpo_kwargs
from purerl.returns import gae


@dataclass(frozen=True)
class Config:
    horizon: int = 50
    """lock horizon H (episode length); the authors' README runs H = 50"""
    action_dim: int = 10
    """lock action dimension A (number of discrete choices behind the softmax)"""
    temperature: float = 0.1
    """softmax temperature τ turning the continuous action into a discrete choice"""
    obs_noise: float = 0.1
    """observation noise standard deviation σ"""
    p_switch: float = 0.5
    """probability of swapping A <-> B after a correct action"""
    p_anti_r: float = 0.5
    """probability of the anti-reward at the end of a failed episode"""
    anti_r: float = 0.1
    """size of the anti-reward"""
    reward_mode: Literal["terminal_only", "anti_at_failure"] = "terminal_only"
    """terminal_only (the code) or anti_at_failure (non-default: anti-reward paid at the failing step)"""
    offline_episodes: int = 50_000
    """episodes in the offline ε-greedy expert dataset"""
    offline_eps: float | None = None
    """ε of the offline behaviour policy; None means 1/H"""
    offline_batch_per_h: int = 0
    """offline transitions drawn per timestep and iteration; 0 means N_on // H (N_on = on-policy steps)"""
    offline_counterfactual: float = 0.0
    """probability that an offline transition is a branch with a random one-hot action from its state
    (`comblock.offline_transition`): data the authors' ε-greedy collector never holds; 0 = as published"""
    hybrid: bool = True
    """use the offline data (HNPG); False gives on-policy TRPO with the same per-timestep Q critics"""
    batch_steps: int = 1000
    """on-policy env steps per iteration (rounded up to whole episodes of H steps)"""
    num_iters: int = 1500
    """training iterations"""
    max_kl: float = 0.01
    """TRPO trust-region size (mean KL of the full step's quadratic model)"""
    damping: float = 0.1
    """Fisher damping δ"""
    cg_iters: int = 10
    """conjugate-gradient iterations"""
    cg_tol: float = 1e-10
    """conjugate gradient freezes once the squared residual is below this"""
    ls_backtracks: int = 10
    """line-search fractions tried: 0.5^k, k = 0..ls_backtracks-1"""
    ls_accept_ratio: float = 0.1
    """line search accepts when actual / expected improvement exceeds this"""
    gae_lambda: float = 0.97
    """GAE λ of the on-policy advantages (γ = 1)"""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics (a fresh Adam every iteration)"""
    critic_steps: int = 30
    """full-batch Adam steps per critic and iteration"""
    v_samples: int = 10
    """actions sampled to estimate V_h(s) = E_{a~π_h} Q_h(s, a)"""
    policy_hidden: tuple[int, ...] = (16, 16)
    """hidden widths of each per-timestep policy (tanh)"""
    critic_hidden: tuple[int, ...] = (64, 64)
    """hidden widths of each per-timestep Q network (tanh)"""
    eval_episodes: int = 30
    """episodes of the stochastic policy in evaluate()"""

    @property
    def episodes_per_iter(self) -> int:
        return math.ceil(self.batch_steps / self.horizon)

    @property
    def steps_per_iter(self) -> int:
        return self.episodes_per_iter * self.horizon

    @property
    def offline_batch(self) -> int:
        return self.offline_batch_per_h or self.steps_per_iter // self.horizon


def validate(config: Config) -> None:
    if concrete(config.horizon) and config.horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {config.horizon}")
    if concrete(config.batch_steps, config.horizon) and config.batch_steps < config.horizon:
        raise ValueError(
            f"batch_steps = {config.batch_steps} is less than one episode (horizon = {config.horizon})"
        )
    if config.offline_eps is not None and not 0.0 <= config.offline_eps <= 1.0:
        raise ValueError(f"offline_eps must lie in [0, 1], got {config.offline_eps}")
    check_choices(config)
    check_positive(config, "max_kl", "damping", "cg_iters", "ls_backtracks", "critic_lr", "critic_steps")
    check_positive(config, "v_samples", "num_iters", "offline_episodes", "eval_episodes", "temperature")
    check_positive(config, "action_dim")
    if concrete(config.offline_counterfactual) and not 0.0 <= config.offline_counterfactual <= 1.0:
        raise ValueError(f"offline_counterfactual must lie in [0, 1], got {config.offline_counterfactual}")
    if concrete(config.offline_batch_per_h) and config.offline_batch_per_h < 0:
        raise ValueError(f"offline_batch_per_h must be >= 0, got {config.offline_batch_per_h}")
    if concrete(config.gae_lambda) and not 0.0 <= config.gae_lambda <= 1.0:
        raise ValueError(f"gae_lambda must lie in [0, 1], got {config.gae_lambda}")


# ---- networks (PyTorch-default init as the authors' code; output layer weights x0.1, bias 0) ------------


class TorchDense(nn.Module):
    features: int
    out_layer: bool = False

    @nn.compact
    def __call__(self, x):
        bound = 1.0 / math.sqrt(x.shape[-1])
        uniform = lambda key, shape: jax.random.uniform(key, shape, jnp.float32, -bound, bound)  # noqa: E731
        kernel = self.param(
            "kernel",
            lambda k, s: uniform(k, s) * (0.1 if self.out_layer else 1.0),
            (x.shape[-1], self.features),
        )
        bias = self.param(
            "bias", lambda k, s: jnp.zeros(s) if self.out_layer else uniform(k, s), (self.features,)
        )
        return x @ kernel + bias


class TorchMLP(nn.Module):
    hidden: tuple[int, ...]
    out: int

    @nn.compact
    def __call__(self, x):
        for width in self.hidden:
            x = jnp.tanh(TorchDense(width)(x))
        return TorchDense(self.out, out_layer=True)(x)


class GaussianPolicy(nn.Module):
    """π_h(a|s) = N(mean(s), diag(exp(log_std))²), state-independent log_std initialised at 0."""

    action_dim: int
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs):
        mean = TorchMLP(self.hidden, self.action_dim)(obs)
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return mean, jnp.broadcast_to(log_std, mean.shape)


class QNetwork(nn.Module):
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs, action):
        return TorchMLP(self.hidden, 1)(jnp.concatenate([obs, action], -1))[..., 0]


# ---- state ----------------------------------------------------------------------------------------------


class Rollout(struct.PyTreeNode):
    obs: jax.Array  # (H, E, d)
    action: jax.Array  # (H, E, A)
    reward: jax.Array  # (H, E)
    success: jax.Array  # (H, E) bool (true only at the final step of a successful episode)
    alive: jax.Array  # (H, E) bool: latent still in A/B after step t


@struct.dataclass
class TrainState:
    policy: Any  # stacked over h (leading axis H)
    q: Any  # stacked over h
    env_params: Any  # holds this seed's lock
    offline: OfflineData
    key: jax.Array
    iteration: jax.Array


def make_env(config: Config) -> CombinationLock:
    return CombinationLock(config.horizon, config.action_dim, config.reward_mode)


def make_agent_and_parts(config: Config) -> tuple[Agent, dict[str, Any]]:
    """The agent plus its building blocks (rollout, fit_critics, critic_pass, actor_step, ...) for tests
    and notebooks."""
    validate(config)
    horizon = config.horizon
    env = make_env(config)
    policy_net = GaussianPolicy(config.action_dim, tuple(config.policy_hidden))
    q_net = QNetwork(tuple(config.critic_hidden))
    num_envs, n_off = config.episodes_per_iter, config.offline_batch
    critic_opt = optax.adam(config.critic_lr)
    hs = jnp.arange(horizon)

    def init(key):
        key, lock_key, data_key, pi_key, q_key = jax.random.split(key, 5)
        env_params = make_params(
            env,
            lock_key,
            p_switch=config.p_switch,
            p_anti_r=config.p_anti_r,
            anti_r=config.anti_r,
            noise=config.obs_noise,
            temperature=config.temperature,
        )
        offline = collect_offline(env, env_params, data_key, config.offline_episodes, config.offline_eps)
        dummy_obs, dummy_act = jnp.zeros((env.dim,)), jnp.zeros((config.action_dim,))
        policy = jax.vmap(lambda k: policy_net.init(k, dummy_obs))(jax.random.split(pi_key, horizon))
        q = jax.vmap(lambda k: q_net.init(k, dummy_obs, dummy_act))(jax.random.split(q_key, horizon))
        return TrainState(policy, q, env_params, offline, key, jnp.zeros((), jnp.int32))

    def rollout(policy, env_params, key, episodes):
        """`episodes` full episodes; step t acts with π_t."""
        reset_key, run_key = jax.random.split(key)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(reset_key, episodes), env_params
        )

        def step(carry, inputs):
            obs, env_state = carry
            params_t, step_key = inputs
            act_key, env_key = jax.random.split(step_key)
            mean, log_std = policy_net.apply(params_t, obs)
            action = mean + jnp.exp(log_std) * jax.random.normal(act_key, mean.shape)
            # every episode lasts exactly H steps, so the env is stepped without its auto-reset
            next_obs, next_state, reward, _, info = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(
                jax.random.split(env_key, episodes), env_state, action, env_params
            )
            alive = next_state.z < 2  # latent still in A/B after this step (at the last step: success)
            return (next_obs, next_state), Rollout(obs, action, reward, info["success"], alive)

        _, traj = jax.lax.scan(step, (obs, env_state), (policy, jax.random.split(run_key, horizon)))
        return traj

    def value(q_params, pi_params, obs, key):
        """V_h(s) = mean over v_samples actions a ~ π_h(s) of Q_h(s, a)."""
        mean, log_std = policy_net.apply(pi_params, obs)
        noise = jax.random.normal(key, (config.v_samples,) + mean.shape)
        actions = mean + jnp.exp(log_std) * noise
        return jax.vmap(lambda a: q_net.apply(q_params, obs, a))(actions).mean(0)

    def offline_batch(offline, env_params, key):
        """n_off transitions per timestep, sampled with replacement: arrays with leading axes (H, n_off)."""
        idx = jax.random.randint(key, (horizon, n_off), 0, offline.z.shape[0])
        per_h = lambda h, i: offline_transition(  # noqa: E731
            env, env_params, offline, i, h, config.offline_counterfactual
        )
        return jax.vmap(lambda h, ids: jax.vmap(lambda i: per_h(h, i))(ids))(hs, idx)

    def critic_pass(q, key, next_action, next_inputs, off=None, online=None, backward=True):
        """One pass over h fitting every Q_h (stacked, leading axis H) with a fresh Adam (`critic_lr`,
        `critic_steps` full-batch steps) on the sum of the terms given:
          online = (obs, action, return-to-go), leading axes (H, N):  mean (Q_h(s, a) − G)²;
          off = `offline_batch(...)` (obs, action, reward, next_obs, done):  mean (Q_h(s, a) − y)² with
            y = r + Q_{h+1}(s', a') (y = r at h = H−1), a' = next_action(next_inputs[h], s', key_h) where
            key_h = split(key, H)[h] and next_inputs is any pytree with leading axis H.
        backward=True (the agent): h = H−1..0, each target uses the Q_{h+1} fitted just before.
        backward=False (forward order, kept to test that the order matters): h = 0..H−1, every target
        uses the unfitted Q_{h+1} of `q`.
        Returns (fitted stacked Q, final loss_on per h, final loss_off per h); an absent term's loss is 0."""
        if off is None and online is None:
            raise ValueError("critic_pass needs offline data, on-policy data or both")
        unfitted_next = None if backward else jax.tree.map(lambda x: jnp.roll(x, -1, axis=0), q)

        def per_h(q_next, inputs):
            h, q_h, q_next_unfitted, next_in, on, o, k = inputs
            if not backward:
                q_next = q_next_unfitted
            if o is not None:
                o_obs, o_act, o_rew, o_next, _ = o
                next_act = next_action(next_in, o_next, k)
                bootstrap = jnp.where(h == horizon - 1, 0.0, q_net.apply(q_next, o_next, next_act))
                y_off = jax.lax.stop_gradient(o_rew + bootstrap)

            def losses(q_params):
                loss_on = loss_off = jnp.zeros(())
                if on is not None:
                    obs, act, ret = on
                    loss_on = jnp.mean((q_net.apply(q_params, obs, act) - ret) ** 2)
                if o is not None:
                    loss_off = jnp.mean((q_net.apply(q_params, o_obs, o_act) - y_off) ** 2)
                if on is None:
                    return loss_off, (loss_on, loss_off)
                if o is None:
                    return loss_on, (loss_on, loss_off)
                return loss_on + loss_off, (loss_on, loss_off)

            def adam_step(carry, _):
                params, opt_state = carry
                grads, parts = jax.grad(losses, has_aux=True)(params)
                updates, opt_state = critic_opt.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), parts

            (q_new, _), parts = jax.lax.scan(
                adam_step, (q_h, critic_opt.init(q_h)), None, length=config.critic_steps
            )
            _, final_parts = losses(q_new)
            return q_new, (q_new, final_parts)

        q_last = jax.tree.map(lambda x: x[-1], q)
        inputs = (hs, q, unfitted_next, next_inputs, online, off, jax.random.split(key, horizon))
        _, (q_new, (loss_on, loss_off)) = jax.lax.scan(per_h, q_last, inputs, reverse=backward)
        return q_new, loss_on, loss_off

    def sample_action(pi_params, obs, key):
        mean, log_std = policy_net.apply(pi_params, obs)
        return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)

    def fit_critics(state: TrainState, traj: Rollout, off, key):
        """Backward in time: Q_{H-1} first, each Q_h's TD target uses the Q_{h+1} fitted just before and
        a' ~ π_{h+1}(s'); plus the Monte-Carlo loss on the rollout (`hybrid=False`: that loss only)."""
        returns_to_go = jnp.cumsum(traj.reward[::-1], 0)[::-1]  # γ = 1
        next_policy = jax.tree.map(
            lambda x: jnp.roll(x, -1, axis=0), state.policy
        )  # π_{h+1} (h = H-1: unused)
        online = (traj.obs, traj.action, returns_to_go)
        return critic_pass(state.q, key, sample_action, next_policy, off if config.hybrid else None, online)

    def dist(pi_params, obs):
        mean, log_std = policy_net.apply(pi_params, obs)
        return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))

    def actor_step(pi_params, obs, actions, advantages):
        """One TRPO step of π_h on the given states (used for every h through vmap)."""
        return policy_step(dist, pi_params, obs, actions, advantages, **trpo_kwargs(config))

    def update(state: TrainState):
        key, roll_key, off_key, critic_key, v_key, off_act_key = jax.random.split(state.key, 6)
        traj = rollout(state.policy, state.env_params, roll_key, num_envs)
        off = offline_batch(state.offline, state.env_params, off_key)
        q, loss_on, loss_off = fit_critics(state, traj, off, critic_key)

        # on-policy GAE (γ = 1, episode ends after step H-1) with V_h from the freshly fitted critics
        v_keys = jax.random.split(v_key, (2, horizon))
        values = jax.vmap(value)(q, state.policy, traj.obs, v_keys[0])  # (H, E)
        next_values = jnp.concatenate([values[1:], jnp.zeros_like(values[:1])], 0)
        last = jnp.broadcast_to((hs == horizon - 1)[:, None], values.shape)
        adv_on, _ = gae(traj.reward, values, next_values, last, last, 1.0, config.gae_lambda)

        if config.hybrid:
            off_obs = off[0]

            def offline_advantage(q_h, pi_h, obs, k_act, k_v):
                mean, log_std = policy_net.apply(pi_h, obs)
                act = mean + jnp.exp(log_std) * jax.random.normal(k_act, mean.shape)
                return act, q_net.apply(q_h, obs, act) - value(q_h, pi_h, obs, k_v)

            off_actions, adv_off = jax.vmap(offline_advantage)(
                q, state.policy, off_obs, jax.random.split(off_act_key, horizon), v_keys[1]
            )
            obs_all = jnp.concatenate([traj.obs, off_obs], 1)
            act_all = jnp.concatenate([traj.action, off_actions], 1)
            adv_all = jnp.concatenate([adv_on, adv_off], 1)
        else:
            obs_all, act_all, adv_all = traj.obs, traj.action, adv_on
        policy, stats = jax.vmap(actor_step)(state.policy, obs_all, act_all, adv_all)

        episode_return = traj.reward.sum(0)
        reach = traj.alive.sum(0)
        metrics = {
            "episode_return": episode_return.mean(),
            "success": traj.success.any(0).astype(jnp.float32).mean(),
            "max_reach": reach.max().astype(jnp.float32),
            "mean_reach": reach.mean().astype(jnp.float32),
            "critic_loss_on": loss_on.mean(),
            "critic_loss_off": loss_off.mean(),
            "surrogate_before": stats["surrogate_before"].mean(),
            "surrogate_after": stats["surrogate_after"].mean(),
            "step_accepted": stats["step_accepted"].mean(),
            "kl": stats["kl"].mean(),
        }
        new_state = TrainState(policy, q, state.env_params, state.offline, key, state.iteration + 1)
        return new_state, metrics

    def evaluate(state: TrainState, key):
        """Undiscounted returns of `eval_episodes` stochastic-policy episodes (success = return 1)."""
        return rollout(state.policy, state.env_params, key, config.eval_episodes).reward.sum(0)

    agent = Agent(init, update, evaluate, config.num_iters, config.steps_per_iter, config)
    parts = {
        "rollout": rollout,
        "fit_critics": fit_critics,
        "critic_pass": critic_pass,
        "actor_step": actor_step,
        "offline_batch": offline_batch,
        "value": value,
        "env": env,
        "policy_net": policy_net,
        "q_net": q_net,
    }
    return agent, parts


NO_POLICY_REASON = ("its policy is one network per step h of an episode, acting in a lock whose "
                    "combination is drawn per seed and kept in the train state, so no one env and "
                    "observation-to-action map stands for a seed")
"""Why the agent exposes no `Agent.policy`: `purerl.load(...).act` and `purerl render` say so (`purerl eval`
works)."""


def make_agent(config: Config) -> Agent:
    return make_agent_and_parts(config)[0]


def good_action_probability(parts: dict, n_obs: int = 32, n_act: int = 16):
    """Diagnostic, jitted: `f(policy, env_params, key) -> (seeds, H)` for stacked policies and lock params
    with a leading seed axis. Entry (i, h) is the probability that the lock decodes an action drawn from π_h
    into the good action, averaged over fresh observations of both on-lock states (A and B). The success rate
    is the product over h, so it stays at 0 until every π_h is right; this shows which π_h already are."""
    env, policy_net = parts["env"], parts["policy_net"]

    def per_seed(policy, env_params, key):
        lock = env.lock(env_params)

        def per_h(pi_h, h, key):
            obs_key, act_key = jax.random.split(key)
            z = jnp.arange(n_obs) % 2
            obs = jax.vmap(lambda k, z_: env.observe(k, z_, h, env_params))(
                jax.random.split(obs_key, n_obs), z
            )
            mean, log_std = policy_net.apply(pi_h, obs)
            act = mean + jnp.exp(log_std) * jax.random.normal(act_key, (n_act, *mean.shape))
            probs = jax.nn.softmax(act / env_params.temperature, axis=-1)  # the env's categorical decoding
            return jnp.take_along_axis(probs, lock[z, h][None, :, None], axis=-1).mean()

        return jax.vmap(per_h)(policy, jnp.arange(env.horizon), jax.random.split(key, env.horizon))

    return jax.jit(jax.vmap(per_seed, in_axes=(0, 0, None)))


def one_hot_value_gap(parts: dict, n_obs: int = 32):
    """Diagnostic, jitted: `f(q, env_params, key) -> (seeds, H)` for stacked critics and lock params with a
    leading seed axis. Entry (i, h) is Q_h(s, e_good) minus the mean of Q_h(s, e_k) over the wrong one-hot
    actions k, averaged over fresh observations of both on-lock states (A and B): near 0 means Q_h cannot
    tell the good action from a wrong one, so the offline advantages give π_h no direction."""
    env, q_net = parts["env"], parts["q_net"]
    one_hots = jnp.eye(env.num_actions)

    def per_seed(q, env_params, key):
        lock = env.lock(env_params)

        def per_h(q_h, h, key):
            z = jnp.arange(n_obs) % 2
            obs = jax.vmap(lambda k, z_: env.observe(k, z_, h, env_params))(jax.random.split(key, n_obs), z)
            copies = lambda s: jnp.broadcast_to(s, (env.num_actions, s.shape[-1]))  # noqa: E731  (one per e_k)
            values = jax.vmap(lambda s: q_net.apply(q_h, copies(s), one_hots))(obs)  # (n_obs, A)
            good = jax.nn.one_hot(lock[z, h], env.num_actions, dtype=bool)  # (n_obs, A)
            wrong_mean = jnp.where(good, 0.0, values).sum(-1) / (env.num_actions - 1)
            return (jnp.where(good, values, 0.0).sum(-1) - wrong_mean).mean()

        return jax.vmap(per_h)(q, jnp.arange(env.horizon), jax.random.split(key, env.horizon))

    return jax.jit(jax.vmap(per_seed, in_axes=(0, 0, None)))


def make_train(config: Config):
    """`train(key) -> (final TrainState, metrics stacked per iteration)`, fully jittable."""
    return train_fn(make_agent(config))


if __name__ == "__main__":
    from purerl.cli import agent_main

    agent_main("hnpg")
