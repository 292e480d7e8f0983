"""Which of the differences left between purerl's PPO and brax's `ppo.train` explain a gap in return?

    python -m benchmarks.ablate_brax_ppo --env hopper --budget 3276800      # purerl as benchmarked
    python -m benchmarks.ablate_brax_ppo --env hopper --budget 3276800 --brax-advantages --adam-eps 1e-8 \
        --brax-network --first-state --brax-entropy                          # every switch as brax

purerl's PPO starts from `bench_brax_trainers.purerl_config` (brax's published settings with purerl's four
brax options), and each switch makes one more piece of `bench_brax_trainers.DIFFERENCES` as brax's:

- `--brax-advantages`: brax's `compute_gae`: advantages r_t + gamma * vs_(t+1) - V(s_t) from the
  lambda-returns vs, and truncated steps masked out of the loss (advantage 0, value target V);
- `--adam-eps`: Adam's epsilon (brax: optax's default, 1e-8; purerl 1e-5);
- `--brax-network`: brax's networks exactly (lecun_uniform kernels, zero biases) instead of purerl's
  orthogonal initialisation;
- `--first-state`: on reset each env returns to its own first initial state, as brax's training wrapper
  does, instead of a fresh random one;
- `--obs-clip` (with `--stats-per-step`): the clip of the normalised observations (brax has none; purerl
  clips at 10);
- `--brax-entropy`: brax's entropy bonus, of the tanh-squashed Normal (one-sample estimate), instead of
  purerl's, of the Normal;
- `--stats-per-step`: a switch the other way, back to purerl's default: the observation statistics take in
  the envs' observations at every env step of the rollout (PPO's `obs_stats_update="per_step"`) instead of
  each update's whole batch before its SGD, as brax's do and the benchmark's (`obs_stats_update=
  "before_sgd"`). The runs recorded before the benchmark took brax's timing have it.

All but the last are probes of purerl's internals, patched in for this process only (the library has no
such options). The seeds train as one vmapped program; every `--eval-every` updates each seed's policy is
scored by purerl's evaluator (`--eval-episodes` episodes, stochastic policy) and its Gaussian's mean std on
the minibatches of the updates since the last point is taken (as brax's `policy_dist_mean_std`), and the
curves are printed and written with the brax side's curve at the same points (from `brax_trainers_<env>.json`,
brax's own run of `bench_brax_trainers --part train --side brax`) to
`benchmarks/results/brax_ppo_ablations_<env>.json`, one run per set of switches and budget; the final points
are compared per seed (`purerl.stats.compare`).

`--side brax` trains brax's own `ppo.train` instead, one seed after another, and records its return (the
shared evaluator, stochastic policy) and its `policy_dist_mean_std` at the same points; with
`--stats-after-sgd` brax updates its observation statistics after each update's SGD rather than before, so
that its loss reads the batch under the statistics that collected it, as purerl's does with
`--stats-per-step`:

    python -m benchmarks.ablate_brax_ppo --env hopper --budget 2293760 --side brax --stats-after-sgd
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from unittest import mock

import numpy as np

from benchmarks import bench_brax_trainers as bench
from purerl import stats
from purerl.envs.wrappers import Wrapper


def brax_advantages(rewards, values, next_values, terminated, done, gamma: float, lam: float):
    """brax's `compute_gae` with `purerl.returns.gae`'s signature: `(advantages, value targets)`.

    Where `gae` gives delta_t + gamma * lam * A_(t+1), brax gives r_t + gamma * vs_(t+1) - V(s_t), vs the
    lambda-returns (= delta_t + gamma * A_(t+1)); and a truncated step has advantage 0 and target V(s_t)."""
    import jax
    import jax.numpy as jnp

    dtype = jnp.result_type(values, jnp.float32)
    not_terminated = 1.0 - jnp.asarray(terminated, dtype)
    kept = 1.0 - jnp.asarray(jnp.logical_and(done, jnp.logical_not(terminated)), dtype)
    deltas = (rewards + gamma * not_terminated * next_values - values) * kept

    def step(next_acc, inputs):
        delta, cont = inputs
        acc = delta + gamma * lam * cont * next_acc
        return acc, acc

    _, acc = jax.lax.scan(step, jnp.zeros_like(deltas[0]), (deltas, not_terminated * kept), reverse=True)
    targets = acc + values
    next_targets = jnp.concatenate([targets[1:], next_values[-1:]])
    return (rewards + gamma * not_terminated * next_targets - values) * kept, targets


class FirstState(Wrapper):
    """Wraps a base env so that a reset returns each env to its own first initial state (brax's
    AutoResetWrapper): the state carries the first observation and state beside the current ones."""

    def reset(self, key, params=None):
        obs, state = self._env.reset(key, params)
        return obs, (state, obs, state)

    def step(self, key, state, action, params=None):
        import jax
        import jax.numpy as jnp

        current, first_obs, first = state
        obs, current, reward, terminated, truncated, info = self._env.step(key, current, action, params)
        done = jnp.logical_or(terminated, truncated)
        current = jax.tree.map(lambda a, b: jnp.where(done, a, b), first, current)
        obs = jnp.where(done, first_obs, obs)
        return obs, (current, first_obs, first), reward, terminated, truncated, info


def brax_network(action_dim: int):
    """brax's default PPO networks (`ppo_networks.make_ppo_networks`): swish MLPs with lecun_uniform kernels
    and zero biases, a 32x4 policy giving a Normal's mean and softplus(x) + 0.001 std, a 256x5 critic."""
    import distrax
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    def mlp(widths, out, x):
        init = nn.initializers.lecun_uniform()
        for width in widths:
            x = nn.swish(nn.Dense(width, kernel_init=init)(x))
        return nn.Dense(out, kernel_init=init)(x)

    # apply(method="policy") and apply(method="value") run one submodule each, as purerl's ActorCritic.
    class Policy(nn.Module):
        @nn.compact
        def __call__(self, obs):
            mean, std = jnp.split(mlp(bench.BRAX_DEFAULTS["policy_hidden"], 2 * action_dim, obs), 2, axis=-1)
            return distrax.MultivariateNormalDiag(mean, jax.nn.softplus(std) + 0.001)

    class Value(nn.Module):
        @nn.compact
        def __call__(self, obs):
            return mlp(bench.BRAX_DEFAULTS["value_hidden"], 1, obs)[..., 0]

    class Network(nn.Module):
        def setup(self):
            self.actor = Policy()
            self.critic = Value()

        def policy(self, obs):
            return self.actor(obs)

        def value(self, obs):
            return self.critic(obs)

        def __call__(self, obs):
            return self.policy(obs), self.value(obs)

    return Network()


def policy_std(params, minibatch, policy):
    """`extra_loss` that adds nothing to the loss and reports the policy's mean Gaussian std on the minibatch
    (averaged over the update: brax's `policy_dist_mean_std` training metric, for the two stds to be
    compared)."""
    return 0.0, {"policy_std": policy.stddev().mean()}


def brax_entropy(ent_coef: float):
    """`extra_loss` that turns purerl's entropy bonus (of the Normal) into brax's (of the tanh-squashed
    Normal, estimated with one reparameterised sample u: the Normal's entropy plus log(1 - tanh(u)^2)),
    by adding -ent_coef * log(1 - tanh(u)^2); it reports the policy std as `policy_std` does. brax draws u
    with the minibatch's own key; here the key is folded from the minibatch's behaviour log-probabilities,
    which differ between minibatches."""
    import jax
    import jax.numpy as jnp

    from purerl.nn import tanh_log_det_jacobian

    def extra_loss(params, minibatch, policy):
        salt = jax.lax.bitcast_convert_type(minibatch[2].sum().astype(jnp.float32), jnp.int32)
        u = policy.sample(seed=jax.random.fold_in(jax.random.PRNGKey(0), salt))
        bonus = tanh_log_det_jacobian(u).sum(-1).mean()
        return -ent_coef * bonus, {**policy_std(params, minibatch, policy)[1], "tanh_log_det": bonus}

    return extra_loss


SWITCHES = ("brax_advantages", "adam_eps", "brax_network", "first_state", "obs_clip", "brax_entropy",
            "stats_per_step")


def label(args) -> str:
    """The run's name: its switches, or "as benchmarked"."""
    parts = [f"{name}={getattr(args, name)}" if name in ("adam_eps", "obs_clip") else name
             for name in SWITCHES if getattr(args, name)]
    return " + ".join(parts) or "as benchmarked"


@contextlib.contextmanager
def patched(args):
    """purerl's PPO with the switches of `args` patched in, for the `with` block only."""
    import optax

    from purerl import envs, rollout
    from purerl.agents import ppo

    def make_env(config):  # rollout.make_env for purerl_config's env (tanh squash, normalised observations)
        env, env_params = rollout.make_base_env(config)
        env = envs.TanhAction(FirstState(env) if args.first_state else env)
        env = envs.EpisodeStats(env)
        if rollout.obs_stats_update(config) == "per_step":
            env = envs.NormalizeObservation(env, clip=args.obs_clip or 10.0, axis_name=rollout.ENV_AXIS)
        return env, env_params

    adam = optax.adam
    with contextlib.ExitStack() as stack:
        if args.brax_advantages:
            stack.enter_context(mock.patch.object(ppo, "gae", brax_advantages))
        if args.adam_eps:
            stack.enter_context(mock.patch.object(
                optax, "adam", lambda lr, eps=None, **kw: adam(lr, eps=args.adam_eps, **kw)))
        if args.first_state or args.obs_clip:
            stack.enter_context(mock.patch.object(ppo, "make_env", make_env))
        yield


def brax_curve(env: str, points: list[int]) -> list[list[float] | None]:
    """brax's own run's per-seed evaluations at `points` env steps (None at a point it did not evaluate, or
    everywhere while that run is not recorded)."""
    path = bench.result_path(env)
    records = []
    if path.exists():
        records = json.loads(path.read_text())["extra"]["parts"].get("train_brax", {}).get("records", [])
    curves = [dict(zip(r["eval_points"], r["eval_curve"], strict=True)) for r in records]
    return [[round(float(c[p]), 1) for c in curves] if curves and all(p in c for c in curves) else None
            for p in points]


def run(args) -> dict:
    """Train `args.seeds` seeds with the switches of `args`; the run's TRAIN result with its curve."""
    import jax

    from purerl.agents import ppo

    hp = bench.BRAX_PPO[args.env]
    config = dataclasses.replace(bench.purerl_config(args.env, args.backend, args.budget, hp),
                                 eval_episodes=args.eval_episodes)
    if args.stats_per_step:
        config = dataclasses.replace(config, obs_stats_update="per_step")
    with patched(args):
        action_dim = bench.peer.brax_env(args.env, args.backend).action_size
        network = brax_network(action_dim) if args.brax_network else None
        extra_loss = brax_entropy(config.ent_coef) if args.brax_entropy else policy_std
        agent = ppo.make_agent(config, network=network, extra_loss=extra_loss)
        seeds = jax.random.split(jax.random.PRNGKey(0), args.seeds)
        state = jax.jit(jax.vmap(agent.init))(seeds)
        eval_keys = jax.random.split(jax.random.PRNGKey(5), args.seeds)
        update, compile_s = harness.compile_timed(jax.vmap(agent.update), state)
        evaluate, eval_compile_s = harness.compile_timed(jax.vmap(agent.evaluate), state, eval_keys)
        points, curve, std_curve, window, start = [], [], [], [], time.perf_counter()
        for i in range(config.num_iterations):
            state, metrics = update(state)
            window.append(metrics["policy_std"])
            if (i + 1) % args.eval_every == 0 or i + 1 == config.num_iterations:
                returns = np.asarray(jax.tree.leaves(evaluate(state, eval_keys))[0], np.float64).mean(axis=-1)
                points.append((i + 1) * config.batch_size)
                curve.append([round(float(x), 1) for x in returns])
                # over the updates since the last point, as brax's training metrics average over its epoch
                std_curve.append([round(float(x), 4) for x in np.mean(np.asarray(window), axis=0)])
                window = []
                elapsed = time.perf_counter() - start
                print(f"{label(args)}: {points[-1]:,} env steps, return per seed "
                      f"{' / '.join(f'{x:,.0f}' for x in curve[-1])}, policy std "
                      f"{' / '.join(f'{x:.3f}' for x in std_curve[-1])} ({elapsed:.0f} s)", flush=True)
    run_s = time.perf_counter() - start
    brax = brax_curve(args.env, points)
    res = harness.result(
        harness.TRAIN, f"brax_ppo_ablations_{args.env}", f"purerl PPO with brax's scheme, {label(args)}",
        algo="ppo", env=args.env, config=dataclasses.asdict(config), budget=config.num_iterations
        * config.batch_size, budget_unit="env steps", seeds=list(range(args.seeds)),
        compile_s=round(compile_s + eval_compile_s, 1), run_s=round(run_s, 1),
        throughput=config.num_iterations * config.batch_size * args.seeds / run_s,
        throughput_unit="env steps/s (all seeds, evaluations included)", per_seed=curve[-1],
        extra={"label": label(args), "switches": {name: getattr(args, name) for name in SWITCHES},
               "eval_points": points, "eval_curve": curve, "eval_episodes": args.eval_episodes,
               "policy_std_curve": std_curve,
               "brax_eval_curve": brax})
    if brax[-1] is not None:
        res["extra"]["final_vs_brax"] = stats.compare(curve[-1], brax[-1])
    return res


def env_steps_per_update(args) -> int:
    """Env steps in one update of brax's settings for `args.env` (one training step of brax's)."""
    return bench.purerl_config(args.env, args.backend, 1, bench.BRAX_PPO[args.env]).batch_size


def brax_hp(args) -> dict:
    """brax's settings for `args.env`; with `--stats-after-sgd` its observation statistics update after each
    update's SGD instead of before it (brax does so on its adaptive-KL path, whose learning rate is pinned
    here to the fixed one: the same Adam, through optax.inject_hyperparams)."""
    hp = dict(bench.BRAX_PPO[args.env])
    if args.stats_after_sgd:
        hp.update(learning_rate_schedule="ADAPTIVE_KL", learning_rate_schedule_min_lr=hp["learning_rate"],
                  learning_rate_schedule_max_lr=hp["learning_rate"])
    return hp


def run_brax(args) -> dict:
    """brax's own `ppo.train` on the same settings and budget, its seeds one after another: its curve under
    the shared evaluator (stochastic policy, `--eval-episodes` episodes) and its `policy_dist_mean_std`, every
    `--eval-every` updates as in `run`; the TRAIN result."""
    hp = brax_hp(args)
    per_update = env_steps_per_update(args)
    updates = args.budget // per_update
    records = [bench.train_brax(args.env, args.backend, updates * per_update, hp, seed,
                                num_evals=updates // args.eval_every + 1, curve_episodes=args.eval_episodes)
               for seed in range(args.seeds)]
    curve = [list(point) for point in zip(*(r["eval_curve"] for r in records), strict=True)]
    std_curve = [[round(e["policy_std"], 4) for e in epochs]
                 for epochs in zip(*(r["epochs"] for r in records), strict=True)]
    for point, stds in zip(records[0]["eval_points"], std_curve, strict=True):
        print(f"brax: {point:,} env steps, policy std {' / '.join(f'{x:.3f}' for x in stds)}")
    speeds = [bench.peer.brax_speed(r) for r in records]
    run_s = sum(s["run_s"] for s in speeds)
    return harness.result(
        harness.TRAIN, f"brax_ppo_ablations_{args.env}", "brax's ppo.train on the same settings", algo="ppo",
        env=args.env, config=hp, budget=updates * per_update, budget_unit="env steps",
        seeds=list(range(args.seeds)), compile_s=max(s["compile_s"] for s in speeds), run_s=round(run_s, 1),
        throughput=sum(s["env_steps_timed"] for s in speeds) / run_s,
        throughput_unit="env steps/s (one seed at a time, evaluations excluded)", per_seed=curve[-1],
        extra={"label": "brax's ppo.train" + ", statistics after SGD" * args.stats_after_sgd,
               "eval_points": records[0]["eval_points"], "eval_curve": curve,
               "eval_episodes": args.eval_episodes, "policy_std_curve": std_curve})


def write(res: dict) -> str:
    """Add (or replace, by label and budget) the run in the env's ablation file; the file lists every run."""
    path = harness.RESULTS / f"{res['name']}.json"
    runs = json.loads(path.read_text())["extra"]["runs"] if path.exists() else []
    key = lambda r: (r["extra"]["label"], r["budget"])
    runs = [r for r in runs if key(r) != key(res)] + [res]
    what = ("purerl PPO with brax's scheme on brax's settings, with brax's remaining differences switched "
            "on, and brax's own ppo.train")
    return harness.write(harness.several_runs(res["name"], what, runs, []), harness.RESULTS)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ablate_brax_ppo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="hopper", help=f"one of {', '.join(bench.BRAX_PPO)}")
    parser.add_argument("--backend", default="spring", help="physics backend")
    parser.add_argument("--budget", type=int, default=3_276_800, help="env steps per seed")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1, one vmapped program")
    parser.add_argument("--eval-every", type=int, default=4, help="updates between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=bench.CURVE_EPISODES, help="episodes per seed")
    parser.add_argument("--brax-advantages", action="store_true", help="brax's advantage form and masking")
    parser.add_argument("--adam-eps", type=float, default=0.0, help="Adam's epsilon (0: purerl's 1e-5)")
    parser.add_argument("--brax-network", action="store_true", help="brax's networks and initialisation")
    parser.add_argument("--first-state", action="store_true", help="reset to each env's first state")
    parser.add_argument("--obs-clip", type=float, default=0.0, help="observation clip (0: purerl's 10)")
    parser.add_argument("--brax-entropy", action="store_true", help="brax's entropy bonus (tanh-Normal)")
    parser.add_argument("--stats-per-step", action="store_true",
                        help="observation statistics updated at every env step (purerl's default)")
    parser.add_argument("--side", choices=("purerl", "brax"), default="purerl",
                        help="brax: train brax's own ppo.train instead (the switches do not apply)")
    parser.add_argument("--stats-after-sgd", action="store_true",
                        help="with --side brax: brax updates its observation statistics after SGD")
    args = parser.parse_args(argv)
    per_update = env_steps_per_update(args) if args.env in bench.BRAX_PPO else 1
    problems = [f"unknown env {args.env!r} (valid: {', '.join(bench.BRAX_PPO)})"] * (
        args.env not in bench.BRAX_PPO)
    problems += [f"budget must hold at least one update of {per_update:,} env steps"] * (
        args.budget < per_update)
    problems += [f"{name} must be positive" for name in ("seeds", "eval_every", "eval_episodes")
                 if getattr(args, name) < 1]
    problems += [f"{name} must not be negative" for name in ("adam_eps", "obs_clip")
                 if getattr(args, name) < 0]
    problems += ["--obs-clip needs --stats-per-step (the clip of the env's normaliser)"] * bool(
        args.obs_clip and not args.stats_per_step)
    problems += ["the switches apply to purerl's side only"] * (
        args.side == "brax" and label(args) != "as benchmarked")
    problems += ["--stats-after-sgd applies to --side brax only"] * (
        args.stats_after_sgd and args.side != "brax")
    # brax splits its training into epochs of equal length, one per point: otherwise it would round each
    # epoch up, train past the budget and score at points other than purerl's
    problems += [f"with --side brax the budget must be a whole number of --eval-every updates "
                 f"({args.eval_every * per_update:,} env steps)"] * (
        args.side == "brax" and args.eval_every > 0 and args.budget % (args.eval_every * per_update) != 0)
    if problems:
        print(f"purerl: error: {problems[0]}", file=sys.stderr)
        raise SystemExit(2)
    res = run_brax(args) if args.side == "brax" else run(args)
    print(f"-> {write(res)}")
    if "final_vs_brax" in res["extra"]:
        diff = res["extra"]["final_vs_brax"]
        low, high = diff["difference_ci"]
        print(f"final return minus brax's: {diff['difference']:,.0f} [{low:,.0f}, {high:,.0f}] "
              f"({diff['verdict']})")


if __name__ == "__main__":
    main()
