"""Shared machinery of the stochastic policy-gradient agents (`pg`, `npg_igt`, `harpg`).

Fatkhullin, Barakat, Kireeva, He, "Stochastic Policy Gradient Methods: Improved Sample Complexity for
Fisher-non-degenerate Policies", ICML 2023.

Everything works on a *flat* parameter vector θ and a `logp_fn(θ, obs, action) -> log π_θ(a|s)` that
broadcasts over leading axes. Trajectories are a flat batch of steps (`Episodes`) with a segment id per
step (which trajectory it belongs to) and a mask (1 on steps of complete trajectories).

- per-trajectory surrogate  Φ(τ,θ) = Σ_t log π_θ(a_t|s_t) G_t,  G_t = γ^t (Σ_{h≥t} γ^{h-t} r_h − b(s_t))
  (G_t held constant), GPOMDP gradient g = ∇Φ  (`gpomdp`);
- directional score c_i = ∇log p(τ_i|θ)·v of each trajectory by one forward-mode pass (`directional_scores`);
- Hessian-vector product  B̂v = (1/N) Σ_i [∇²Φ_i v + ∇Φ_i c_i]  by forward-over-reverse autodiff
  (`hessian_vector`, paper form; `form="garage_code"` reproduces the published code's biased estimate);
- garage's linear-feature baseline as a closed-form ridge fit (`linear_features`, `fit_linear_baseline`);
- the step-size / momentum schedules of the paper's table as pure functions of the iteration counter;
- a fixed-horizon episodic rollout (`episodic_rollout`) and the config fields the three agents share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from purerl import envs
from purerl.agent import check_choices, check_positive, concrete
from purerl.envs.brax import BraxBackend
from purerl.evaluation import Policy, make_evaluate
from purerl.nn import Activation, PGPolicy
from purerl.returns import discounted_returns

# ---------------------------------------------------------------------------------------------------------
# Schedules (the paper's table; docs/algorithms/npg_igt_harpg.md): base * (2 / (t + 2)) ** exponent,
# t = 0, 1, 2, ... the iteration counter.
# ---------------------------------------------------------------------------------------------------------

Method = Literal["pg", "npg", "npg_momentum", "npg_igt", "harpg", "nharpg"]  # each agent file runs some
# method -> (step-size exponent, momentum exponent or None, normalized step)
SCHEDULES: dict[str, tuple[float, float | None, bool]] = {
    "pg": (2.0 / 3.0, None, False),
    "npg": (2.0 / 3.0, None, True),
    "npg_momentum": (1.0, 2.0 / 3.0, True),
    "npg_igt": (1.0, 4.0 / 5.0, True),
    "harpg": (0.5, 1.0, False),
    "nharpg": (1.0, 1.0, True),
}


def float_dtype():
    """float32, or float64 in an x64 run (the float64 check against the authors' code): the dtype of the
    schedules, rewards and baseline features, so that a float64 run is not rounded to float32 there."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def initial_step_sizes(config) -> tuple[jax.Array, jax.Array]:
    """(γ0, η0) of `config` as state values in the run's float dtype (in the state, a sweep can vmap them)."""
    return jnp.asarray(config.gamma_0, float_dtype()), jnp.asarray(config.eta_0, float_dtype())


def schedule(base, exponent: float, t) -> jax.Array:
    """base * (2 / (t + 2)) ** exponent (t = iteration counter, starting at 0)."""
    return base * (2.0 / (jnp.asarray(t, float_dtype()) + 2.0)) ** exponent


def step_size(method: str, gamma_0, t, step_exp: float | None = None) -> jax.Array:
    """γ_t of the paper's table (or with the exponent `step_exp` when given)."""
    return schedule(gamma_0, SCHEDULES[method][0] if step_exp is None else step_exp, t)


def momentum(method: str, eta_0, t, mom_exp: float | None = None) -> jax.Array:
    """η_t of the paper's table (or with the exponent `mom_exp` when given); 1 for momentum-free methods."""
    exponent = SCHEDULES[method][1] if mom_exp is None else mom_exp
    if exponent is None:
        return jnp.ones_like(jnp.asarray(eta_0, float_dtype()))
    return schedule(eta_0, exponent, t)


def normalized_step(direction: jax.Array, gamma_t, norm_eps: float = 0.0) -> jax.Array:
    """γ_t d / (‖d‖ + norm_eps), and a zero step when that denominator is 0."""
    denom = jnp.linalg.norm(direction) + norm_eps
    return jnp.where(denom > 0, gamma_t / jnp.where(denom > 0, denom, 1.0), 0.0) * direction


# ---------------------------------------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------------------------------------


class Episodes(NamedTuple):
    """A flat batch of M steps belonging to trajectories 0..num_segments-1 (padding steps have mask 0)."""

    obs: jax.Array  # [M, *obs_shape]
    action: jax.Array  # [M, ...]
    reward: jax.Array  # [M]
    mask: jax.Array  # [M] 1.0 on steps of complete trajectories
    time: jax.Array  # [M] step index inside its trajectory (t of γ^t)
    segment: jax.Array  # [M] trajectory id in [0, num_segments)
    reward_to_go: jax.Array  # [M] Σ_{h≥t} γ^{h-t} r_h inside the trajectory
    num_episodes: jax.Array  # scalar: number of complete trajectories N


def surrogate_weights(ep: Episodes, baseline_values, discount: float, gamma_t_prefactor: bool = True):
    """G_t = γ^t (reward-to-go − b(s_t)) (or without γ^t: the published code), zero on padding steps."""
    adv = ep.reward_to_go - baseline_values
    if gamma_t_prefactor:
        adv = adv * discount ** ep.time.astype(adv.dtype)
    return jax.lax.stop_gradient(adv * ep.mask)


def _denominator(ep: Episodes, normalization: str):
    if normalization == "per_trajectory":
        return jnp.maximum(ep.num_episodes, 1).astype(ep.reward.dtype)
    if normalization == "per_step_mean":
        return jnp.maximum(ep.mask.sum(), 1.0)
    raise ValueError(f"unknown pg_normalization {normalization!r}; valid: per_trajectory, per_step_mean")


def surrogate(logp_fn: Callable, theta, ep: Episodes, weights, normalization: str = "per_trajectory"):
    """Φ̄(θ) = (1/N) Σ_i Φ(τ_i, θ) (per_trajectory) or the mean over valid steps (per_step_mean)."""
    return (logp_fn(theta, ep.obs, ep.action) * weights).sum() / _denominator(ep, normalization)


def gpomdp(logp_fn: Callable, theta, ep: Episodes, weights, normalization: str = "per_trajectory"):
    """ĝ = ∇Φ̄(θ): the batch GPOMDP gradient estimate (ascent direction)."""
    return jax.grad(surrogate, argnums=1)(logp_fn, theta, ep, weights, normalization)


def directional_scores(logp_fn: Callable, theta, ep: Episodes, v, num_segments: int):
    """c_i = ∇_θ log p(τ_i|θ) · v for every trajectory i (one jvp; zero for unused segment ids)."""
    step_c = jax.jvp(lambda th: logp_fn(th, ep.obs, ep.action) * ep.mask, (theta,), (v,))[1]
    return jax.ops.segment_sum(step_c, ep.segment, num_segments=num_segments)


def hessian_vector(
    logp_fn: Callable,
    theta,
    ep: Episodes,
    weights,
    v,
    num_segments: int,
    form: str = "paper",
    normalization: str = "per_trajectory",
):
    """B̂v, the Hessian-aided correction of (N)-HARPG (ascent convention, estimates ∇²J(θ) v).

    paper:       (1/N) Σ_i [∇²Φ_i v + ∇Φ_i (∇log p_i · v)]   (unbiased; mean of per-trajectory products)
    garage_code: ∇²Φ̄ v − ∇Φ̄ (∇ℓ̄ · v) with ℓ̄ the batch-normalised log-likelihood: the published code's
                 product of means with the wrong sign on the score term (biased;
                 docs/algorithms/npg_igt_harpg.md).
    """
    denom = _denominator(ep, normalization)

    def phi_bar(th):
        return (logp_fn(th, ep.obs, ep.action) * weights).sum() / denom

    if form == "paper":
        c = jax.lax.stop_gradient(directional_scores(logp_fn, theta, ep, v, num_segments))
        c_step = c[ep.segment]  # each step carries its trajectory's directional score

        def objective(th):
            score_term = (logp_fn(th, ep.obs, ep.action) * weights * c_step).sum() / denom
            return jax.jvp(phi_bar, (th,), (v,))[1] + score_term

    elif form == "garage_code":

        def ell_bar(th):
            return (logp_fn(th, ep.obs, ep.action) * ep.mask).sum() / denom

        c_bar = jax.lax.stop_gradient(jax.jvp(ell_bar, (theta,), (v,))[1])

        def objective(th):
            return jax.jvp(phi_bar, (th,), (v,))[1] - phi_bar(th) * c_bar

    else:
        raise ValueError(f"unknown hvp_form {form!r}; valid: paper, garage_code")
    return jax.grad(objective)(theta)


# ---------------------------------------------------------------------------------------------------------
# Linear-feature baseline (garage LinearFeatureBaseline)
# ---------------------------------------------------------------------------------------------------------


def linear_features(obs, time):
    """[clip(o,±10), clip(o,±10)², k, k², k³, 1] with k = time / 100."""
    o = jnp.clip(obs.reshape(obs.shape[0], -1).astype(float_dtype()), -10.0, 10.0)
    k = (time.astype(float_dtype()) / 100.0)[:, None]
    return jnp.concatenate([o, o**2, k, k**2, k**3, jnp.ones_like(k)], axis=1)


def baseline_dim(obs_size: int) -> int:
    return 2 * obs_size + 4


def fit_linear_baseline(features, targets, mask, reg_coeff: float = 1e-5):
    """Ridge fit of targets on features over masked rows; retries with 10x the ridge (5 tries) on NaN."""
    x = features * mask[:, None]
    xtx = x.T @ x
    xty = x.T @ (targets * mask)
    eye = jnp.eye(xtx.shape[0], dtype=xtx.dtype)

    def attempt(i, carry):
        coeffs, found = carry
        sol = jnp.linalg.solve(xtx + reg_coeff * 10.0**i * eye, xty)
        ok = jnp.all(jnp.isfinite(sol)) & ~found
        return jnp.where(ok, sol, coeffs), found | ok

    coeffs, found = jax.lax.fori_loop(0, 5, attempt, (jnp.zeros_like(xty), jnp.array(False)))
    return jnp.where(found, coeffs, 0.0)


# ---------------------------------------------------------------------------------------------------------
# Shared config, policy and episodic rollout of the three agents
# ---------------------------------------------------------------------------------------------------------

# Episode length used by the paper's code per env (CartPole 200 as in its runner; brax = MuJoCo-v2 limits).
MAX_EPISODE_LENGTH = {"CartPole-v1": 200, "Acrobot-v1": 500, "reacher": 50, "halfcheetah": 500,
                      "swimmer": 500}


@dataclass(frozen=True)
class PGConfig:
    """Fields shared by the pg, npg_igt and harpg agents (each agent file subclasses this)."""

    env: str = "CartPole-v1"
    """environment name (`purerl list` shows them all)"""
    method: Method = "pg"
    """which method of the agent file to run"""
    gamma_0: float = 0.1
    """γ0: base step size of the schedule γ_t = γ0 (2/(t+2))^step_exp"""
    eta_0: float = 1.0
    """η0: base momentum of the schedule η_t = η0 (2/(t+2))^mom_exp (unused by pg/npg)"""
    step_exp: float = -1.0
    """step-size exponent; negative = the method's value in the paper's table"""
    mom_exp: float = -1.0
    """momentum exponent; negative = the method's value in the paper's table"""
    batch_steps: int = 5000
    """env steps per iteration: ceil(batch_steps / max_episode_length) envs, each run for one horizon"""
    num_iters: int = 100
    """iterations (policy updates)"""
    discount: float = 0.99
    """discount factor γ of the objective"""
    baseline: Literal["linear_feature", "none"] = "linear_feature"
    """state baseline: linear_feature (garage, fitted after each update) or none"""
    hidden: tuple[int, ...] = (32, 32)
    """policy hidden layer widths (paper code: 32,32 for CartPole/Acrobot, 64,64 for MuJoCo)"""
    activation: Activation = "tanh"
    """policy hidden activation"""
    init_std: float = 1.0
    """initial standard deviation of the Gaussian policy (continuous actions)"""
    pg_normalization: Literal["per_trajectory", "per_step_mean"] = "per_trajectory"
    """per_trajectory: (1/N) Σ_i ∇Φ_i (paper); per_step_mean: mean over all valid steps (published code)"""
    gamma_t_prefactor: bool = True
    """weight step t by γ^t (paper); False drops it as the published code does"""
    norm_eps: float = 0.0
    """added to ‖d‖ in normalized steps (0: exact normalisation, zero step when d = 0)"""
    max_episode_length: int = 0
    """episode horizon H; 0 = the paper code's value for the env (CartPole 200, Acrobot 500, brax:
    docs/algorithms/npg_igt_harpg.md)"""
    brax_backend: BraxBackend = "generalized"
    """physics backend for brax envs"""
    eval_episodes: int = 32
    """episodes per seed in `evaluate` (deterministic mean / argmax action, as garage evaluates)"""

    @property
    def horizon(self) -> int:
        return self.max_episode_length or MAX_EPISODE_LENGTH.get(self.env, 1000)

    @property
    def num_envs(self) -> int:
        return -(-self.batch_steps // self.horizon)

    def exponents(self) -> tuple[float | None, float | None]:
        """(step_exp, mom_exp) with the table's values filled in."""
        step, mom, _ = SCHEDULES[self.method]
        return (self.step_exp if self.step_exp >= 0 else step, self.mom_exp if self.mom_exp >= 0 else mom)


def validate_config(config: PGConfig) -> None:
    """Clear ValueErrors naming the field, before anything compiles; the methods an agent file runs are
    the choices of its Config's `method`."""
    check_choices(config)
    envs.check_name(config.env)
    check_positive(config, "gamma_0", "eta_0", "batch_steps", "num_iters", "eval_episodes")
    if concrete(config.max_episode_length) and config.max_episode_length < 0:
        raise ValueError(f"max_episode_length must be >= 0, got {config.max_episode_length}")
    if concrete(config.discount) and not 0.0 <= config.discount <= 1.0:
        raise ValueError(f"discount must lie in [0, 1], got {config.discount}")
    if concrete(config.eta_0) and config.eta_0 > 1.0:
        raise ValueError(f"eta_0 must lie in (0, 1], got {config.eta_0}")
    if concrete(config.norm_eps) and config.norm_eps < 0:
        raise ValueError(f"norm_eps must be >= 0, got {config.norm_eps}")


class PolicyFns(NamedTuple):
    init: Callable[[jax.Array], jax.Array]  # key -> flat θ
    logp: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]  # (θ, obs, action) -> log π
    sample: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]  # (θ, key, obs) -> action
    mode: Callable[[jax.Array, jax.Array], jax.Array]  # (θ, obs) -> deterministic action
    obs_shape: tuple[int, ...]


def make_env(config: PGConfig):
    kwargs: dict[str, Any] = {"max_steps_in_episode": config.horizon}
    if config.env in envs.BRAX_ENVS:
        kwargs["backend"] = config.brax_backend
    env, env_params = envs.make(config.env, **kwargs)
    if not envs.is_discrete(env, env_params):
        env = envs.ClipAction(env)
    return env, env_params


def make_policy(config: PGConfig, env, env_params) -> PolicyFns:
    discrete = envs.is_discrete(env, env_params)
    obs_shape = tuple(env.observation_space(env_params).shape)
    net = PGPolicy(
        action_dim=envs.action_dim(env, env_params),
        discrete=discrete,
        hidden=config.hidden,
        activation=config.activation,
        init_std=config.init_std,
        obs_ndim=len(obs_shape),
    )
    _, unravel = ravel_pytree(net.init(jax.random.PRNGKey(0), jnp.zeros(obs_shape)))

    def init(key):
        return ravel_pytree(net.init(key, jnp.zeros(obs_shape)))[0]

    def logp(theta, obs, action):
        return net.apply(unravel(theta), obs).log_prob(action)

    def sample(theta, key, obs):
        return net.apply(unravel(theta), obs).sample(seed=key)

    def mode(theta, obs):
        return net.apply(unravel(theta), obs).mode()

    return PolicyFns(init, logp, sample, mode, obs_shape)


class RolloutStats(NamedTuple):
    episode_return: jax.Array  # mean undiscounted return of the complete episodes
    episode_length: jax.Array
    num_episodes: jax.Array


def episodic_rollout(env, env_params, sample_fn, theta, key, num_envs: int, horizon: int, discount: float,
                     first_episode_only: bool = False):
    """`num_envs` fresh envs run for `horizon` steps each (auto-reset inside); returns (Episodes, stats).

    Every env finishes its first episode within the horizon (truncation at H ends it: the objective is
    the H-step return, so truncated episodes are not bootstrapped). The segment still running when the
    horizon ends is incomplete and masked out; with `first_episode_only` only each env's first episode is
    kept (exactly `num_envs` trajectories, used for the Hessian batch). Cost: num_envs * horizon steps.
    """
    reset_key, run_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_envs), env_params)

    def step(carry, step_key):
        obs, state, t = carry
        act_key, env_key = jax.random.split(step_key)
        action = jax.vmap(sample_fn, in_axes=(None, 0, 0))(theta, jax.random.split(act_key, num_envs), obs)
        next_obs, state, reward, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(env_key, num_envs), state, action, env_params
        )
        done = terminated | truncated
        out = (obs, action, reward.astype(float_dtype()), done, t)
        return (next_obs, state, jnp.where(done, 0, t + 1)), out

    init = (obs, state, jnp.zeros(num_envs, jnp.int32))
    _, (obs, action, reward, done, time) = jax.lax.scan(step, init, jax.random.split(run_key, horizon))
    # [T, E] -> episode bookkeeping per env
    reward_to_go = discounted_returns(reward, done, discount)
    done_i = done.astype(jnp.int32)
    episode_index = jnp.cumsum(done_i, axis=0) - done_i  # dones strictly before this step
    complete = episode_index < done_i.sum(axis=0)[None, :]
    if first_episode_only:
        complete = complete & (episode_index == 0)
    mask = complete.astype(jnp.float32)
    segment = jnp.arange(num_envs)[None, :] * horizon + episode_index
    num_episodes = (done & complete).sum()
    ends = (done & complete).astype(jnp.float32)
    # undiscounted episode returns / lengths of the complete episodes
    undiscounted = discounted_returns(reward, done, 1.0)
    starts = (time == 0) & complete
    denom = jnp.maximum(num_episodes, 1)
    stats = RolloutStats(
        episode_return=(undiscounted * starts).sum() / denom,
        episode_length=((time + 1) * ends).sum() / denom,
        num_episodes=num_episodes,
    )

    def flat(x):  # [T, E, ...] -> [E*T, ...] (env-major, so segments are contiguous)
        x = jnp.swapaxes(x, 0, 1)
        return x.reshape((-1,) + x.shape[2:])

    episodes = Episodes(
        obs=flat(obs), action=flat(action), reward=flat(reward), mask=flat(mask), time=flat(time),
        segment=flat(segment), reward_to_go=flat(reward_to_go), num_episodes=num_episodes,
    )
    return episodes, stats


class PGCore(NamedTuple):
    """What the three agent files share: env, policy, rollouts, baseline, evaluation."""

    env: Any
    env_params: Any
    policy: PolicyFns
    num_segments: int
    rollout: Callable  # (θ, key) -> (Episodes, RolloutStats): the main batch
    hessian_rollout: Callable  # (θ, key, num_envs) -> (Episodes, RolloutStats): first episodes only
    weights: Callable  # (Episodes, baseline coeffs) -> G_t
    fit_baseline: Callable  # (Episodes) -> baseline coeffs
    baseline_init: jax.Array
    gradient: Callable  # (θ, Episodes, G) -> ĝ
    evaluate: Callable  # (state, key) -> returns [eval_episodes], acting as `acting` (the mode)
    acting: Policy  # how a state with θ at `.theta` acts (final evaluation, purerl.load, purerl render)


def make_core(config: PGConfig) -> PGCore:
    env, env_params = make_env(config)
    policy = make_policy(config, env, env_params)
    obs_size = 1
    for n in policy.obs_shape:
        obs_size *= n
    horizon = config.horizon

    def rollout(theta, key):
        return episodic_rollout(env, env_params, policy.sample, theta, key, config.num_envs, horizon,
                                config.discount)

    def hessian_rollout(theta, key, num_envs):
        return episodic_rollout(env, env_params, policy.sample, theta, key, num_envs, horizon,
                                config.discount, first_episode_only=True)

    def weights(ep, coeffs):
        b = linear_features(ep.obs, ep.time) @ coeffs if config.baseline == "linear_feature" else 0.0
        return surrogate_weights(ep, b, config.discount, config.gamma_t_prefactor)

    def fit_baseline(ep):
        return fit_linear_baseline(linear_features(ep.obs, ep.time), ep.reward_to_go, ep.mask)

    def gradient(theta, ep, g_weights):
        return gpomdp(policy.logp, theta, ep, g_weights, config.pg_normalization)

    def act_fn(state, deterministic: bool):
        def act(key, obs):
            return policy.mode(state.theta, obs) if deterministic else policy.sample(state.theta, key, obs)

        return act

    acting = Policy(env, env_params, act_fn, deterministic_evaluation=True)  # garage evaluates the mode
    return PGCore(
        env, env_params, policy, config.num_envs * horizon, rollout, hessian_rollout, weights, fit_baseline,
        jnp.zeros(baseline_dim(obs_size)), gradient, make_evaluate(acting, config.eval_episodes), acting,
    )


def hyper_sweep(agent, keys, gamma_0s, eta_0s):
    """Train on the whole grid gamma_0s x eta_0s x seeds as ONE vmapped program (γ0, η0 live in the state).

    Returns (final states, metrics) with leading axes [len(gamma_0s), len(eta_0s), len(keys)]; grid point
    (i, j, k) equals a run with Config(gamma_0=gamma_0s[i], eta_0=eta_0s[j]) and key keys[k].
    """

    def run(key, gamma_0, eta_0):
        state = agent.init(key).replace(gamma_0=jnp.float32(gamma_0), eta_0=jnp.float32(eta_0))
        return jax.lax.scan(lambda s, _: agent.update(s), state, None, length=agent.num_iterations)

    over_seeds = jax.vmap(run, in_axes=(0, None, None))
    over_eta = jax.vmap(over_seeds, in_axes=(None, None, 0))
    over_gamma = jax.vmap(over_eta, in_axes=(None, 0, None))
    return jax.jit(over_gamma)(keys, jnp.asarray(gamma_0s, jnp.float32), jnp.asarray(eta_0s, jnp.float32))
