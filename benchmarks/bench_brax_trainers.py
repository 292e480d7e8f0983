"""purerl's PPO against brax's own PPO trainer (`brax.training.agents.ppo.train`) on one brax env.

    python -m benchmarks.bench_brax_trainers --env walker2d --part speed    # steps/s, 2 alternating rounds
    python -m benchmarks.bench_brax_trainers --env walker2d --part train --side purerl --seeds 3
    python -m benchmarks.bench_brax_trainers --env walker2d --part train --side brax --seeds 3
    python -m benchmarks.bench_brax_trainers --env walker2d --part backends  # the env alone per backend

Both sides train with brax's published PPO hyperparameters for the env (`BRAX_PPO`; purerl's Config set to
match them field by field in `purerl_config`, the differences that remain in `DIFFERENCES`) on the same
physics backend. `speed` trains both on a short budget, alternating, and times the run apart from the
compile. `train` trains one side at the full budget and scores each seed's final policy with one evaluator
shared by both sides (`evaluate`: stochastic policy, 100 episodes of at most 1000 steps).

A purerl `train` run is resumable (`--out` holds the runner's checkpoints; run the same command again)
and exports a policy snapshot (actor-critic params and observation statistics) at every evaluation point
to `--experts DIR/<env>/`: the final one of the best seed is the expert, the first reaching a third of the
random-to-expert return the medium policy (D4RL's definition); `expert.npz`, `medium.npz` and their JSON.

Each part adds its numbers to `benchmarks/results/brax_trainers_<env>.json` (the parts run as separate
processes, one at a time: the file keeps every part's records and is rebuilt from them on each write).
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import brax_peer as peer
from purerl.logging import write_json

# brax's published PPO settings (its training notebook and README). brax publishes SAC only for hopper, so
# hopper takes walker2d's PPO set. entropy_cost: walker2d's set leaves it at ppo.train's default, 1e-4.
WALKER2D = dict(num_timesteps=7_864_320, reward_scaling=5.0, episode_length=1000, normalize_observations=True,
                action_repeat=1, unroll_length=20, num_minibatches=32, num_updates_per_batch=8,
                discounting=0.997, learning_rate=6e-4, entropy_cost=1e-4, num_envs=128, batch_size=128)
BRAX_PPO = {
    "walker2d": WALKER2D,
    "hopper": WALKER2D,
    "halfcheetah": dict(num_timesteps=50_000_000, reward_scaling=1.0, episode_length=1000,
                        normalize_observations=True, action_repeat=1, unroll_length=20, num_minibatches=32,
                        num_updates_per_batch=8, discounting=0.95, learning_rate=3e-4, entropy_cost=1e-3,
                        num_envs=2048, batch_size=512),
}
SOURCE = {
    "walker2d": "brax's published PPO set for walker2d (training notebook)",
    "hopper": "brax publishes only SAC for hopper: walker2d's published PPO set",
    "halfcheetah": "brax's published PPO set for halfcheetah (training notebook)",
}
# ppo.train's own defaults that the published sets leave unset, and its default networks
BRAX_DEFAULTS = dict(clipping_epsilon=0.3, gae_lambda=0.95, normalize_advantage=True,
                     vf_loss_coefficient=0.5, max_grad_norm=None, learning_rate_schedule=None,
                     bootstrap_on_timeout=False,
                     policy_hidden=(32,) * 4, value_hidden=(256,) * 5, activation="swish",
                     distribution="tanh_normal", policy_std="softplus(network output) + 0.001")
# What purerl's PPO matches of brax's ppo.train by its options (purerl_config), and what still differs.
MATCHED = [
    "policy: the actor outputs the mean and the std of a Normal, std = softplus(x) + 0.001, state-dependent "
    "(brax's default tanh_normal network; its init_noise_std applies only to its 'normal' distribution); "
    "actions are tanh of the sample and the ratio is of the unsquashed sample's probabilities, as in brax "
    "(state_dependent_std=True, action_squash=tanh)",
    "advantages: GAE recomputed for every minibatch with the current critic, within segments of "
    "unroll_length steps of one env, minibatches made of whole segments (recompute_advantages=minibatch, "
    "segment_length=unroll_length)",
    "observation statistics: updated once per training step from the whole batch, before SGD; the rollout "
    "acts under them fixed, and the loss reads the batch under the updated ones while its behaviour "
    "log-probabilities were taken under the previous ones (obs_stats_update=before_sgd). With them updated "
    "at every env step instead, purerl's hopper return at 3.3M steps was 482 below brax's, and brax's own "
    "with its statistics updated after SGD fell to purerl's (`ablate_brax_ppo`)",
]
DIFFERENCES = [
    "initialisation: brax lecun_uniform kernels; purerl orthogonal (sqrt 2 hidden, 0.01 policy head, "
    "1 value), so purerl's std starts at 0.694 in every state, brax's at softplus of a random output",
    "advantage form: brax's is r_t + gamma * vs_(t+1) - V(s_t) with vs the lambda-returns, purerl's the GAE "
    "recursion delta_t + gamma * lambda * A_(t+1); the value targets are the lambda-returns on both sides",
    "truncation: brax masks truncated steps out of the loss (bootstrap_on_timeout=False); purerl "
    "bootstraps them from the final observation",
    "entropy bonus: brax's of the tanh-squashed Normal (one-sample estimate), purerl's of the Normal "
    "(entropy_cost 1e-4 on both)",
    "environment: brax's training wrapper replays each env's first initial state on reset; purerl draws a "
    "fresh random initial state at every reset",
    "Adam epsilon: brax 1e-8 (optax default), purerl 1e-5; no gradient clip on either side (purerl's "
    "max_grad_norm=1e9 never binds)",
    "observation normalisation: purerl clips normalised observations at +-10 and divides by sqrt(var + "
    "1e-8), brax does not clip them and divides by the std clipped to [1e-6, 1e6]; purerl's statistics "
    "start from mean 0, variance 1 with a weight of 1e-4, brax's from none",
]
EVAL_EPISODES = 100
CURVE_EPISODES = 32  # the brax side's evaluations during training (the final one takes EVAL_EPISODES)
MEDIUM_FRACTION = 1 / 3


def purerl_config(env: str, backend: str, budget: int, hp: dict):
    """purerl's PPO Config matched to brax's `ppo.train` with hyperparameters `hp` (see DIFFERENCES)."""
    from purerl.agents import ppo

    unrolls = hp["batch_size"] * hp["num_minibatches"] // hp["num_envs"]  # sequential unrolls per update
    return ppo.Config(
        env=env, brax_backend=backend, total_timesteps=budget, num_envs=hp["num_envs"],
        num_steps=hp["unroll_length"] * unrolls, update_epochs=hp["num_updates_per_batch"],
        num_minibatches=hp["num_minibatches"], lr=hp["learning_rate"], anneal_lr=False,
        gamma=hp["discounting"], gae_lambda=BRAX_DEFAULTS["gae_lambda"],
        clip_eps=BRAX_DEFAULTS["clipping_epsilon"],
        reward_scale=hp["reward_scaling"], clip_value=False, ent_coef=hp["entropy_cost"],
        vf_coef=BRAX_DEFAULTS["vf_loss_coefficient"], max_grad_norm=1e9, normalize_advantages=True,
        hidden=BRAX_DEFAULTS["policy_hidden"], value_hidden=BRAX_DEFAULTS["value_hidden"], activation="silu",
        state_dependent_std=True, action_squash="tanh", recompute_advantages="minibatch",
        segment_length=hp["unroll_length"], normalize_obs=hp["normalize_observations"],
        obs_stats_update="before_sgd",
        max_episode_steps=hp["episode_length"],
        eval_episodes=EVAL_EPISODES)


def random_return(env_name: str, backend: str) -> float:
    import jax

    env = peer.brax_env(env_name, backend)
    act = lambda _, key, obs: jax.random.uniform(key, (len(obs), env.action_size), minval=-1.0, maxval=1.0)
    return float(peer.evaluate(env, act, jax.random.PRNGKey(12345), None, EVAL_EPISODES).mean())


# ------------------------------------------------------------------------------------------------ brax side


def train_brax(env_name: str, backend: str, budget: int, hp: dict, seed: int, num_evals: int,
               curve_episodes: int = CURVE_EPISODES) -> dict:
    """brax's ppo.train for `budget` env steps: per-epoch timing (the first epoch holds the compile), the
    policy's mean return under the shared evaluator after every epoch (`curve_episodes` episodes, 0: none;
    run from brax's `policy_params_fn`, outside its training wall time) and the final policy's returns."""
    import jax
    from brax.training.agents.ppo import train as brax_ppo

    peer.allow_brax_replication()
    env = peer.brax_env(env_name, backend)
    epochs, curve = [], []
    scores = {}  # evaluate(...) compiled once per (deterministic, episodes): its program is then reused

    def score(make_policy, params, key, deterministic=False, episodes=EVAL_EPISODES):
        if (deterministic, episodes) not in scores:
            act = lambda params, key, obs: make_policy(params, deterministic=deterministic)(obs, key)[0]
            scores[deterministic, episodes] = jax.jit(
                lambda params, key: peer.evaluate_program(env, act, episodes)(params, key))
        return np.asarray(scores[deterministic, episodes](params, key), np.float64)

    def record_curve(step, make_policy, params):
        if step > 0 and curve_episodes:  # brax also calls this before training
            returns = score(make_policy, params, jax.random.PRNGKey(seed + 2000 + len(curve)),
                            episodes=curve_episodes)
            curve.append({"env_steps": int(step), "return": round(float(returns.mean()), 1)})
            print(f"brax seed {seed} {step:,} steps: {curve[-1]['return']:.1f}", flush=True)

    kwargs = {k: v for k, v in hp.items() if k != "num_timesteps"}
    make_policy, params, _ = brax_ppo.train(
        environment=env, num_timesteps=budget, seed=seed, num_evals=num_evals,
        run_evals=False, progress_fn=peer.epoch_recorder(epochs), policy_params_fn=record_curve,
        **kwargs)
    returns = {mode: score(make_policy, params, jax.random.PRNGKey(seed + 1000), deterministic).tolist()
               for mode, deterministic in (("stochastic", False), ("deterministic", True))}
    return {"seed": seed, "env_steps": epochs[-1]["env_steps"], "epochs": epochs, "returns": returns,
            "eval_points": [c["env_steps"] for c in curve], "eval_curve": [c["return"] for c in curve],
            "eval_curve_episodes": curve_episodes}


def train_brax_seeds(env_name: str, backend: str, budget: int, hp: dict, seeds: list[int], num_evals: int,
                     out: str) -> list[dict]:
    """`train_brax` for each seed, one after another; each finished seed's record is kept in
    `out/seed<N>.json` (with its budget), so a run cut short resumes at the first unfinished seed."""
    os.makedirs(out, exist_ok=True)
    records = []
    for seed in seeds:
        path = os.path.join(out, f"seed{seed}.json")
        kept = json.loads(open(path).read()) if os.path.exists(path) else {}
        if kept.get("budget") == budget:
            records.append(kept["record"])
        else:
            records.append(train_brax(env_name, backend, budget, hp, seed, num_evals))
            write_json(path, {"budget": budget, "record": records[-1]})
        print(f"brax seed {seed}: {np.mean(records[-1]['returns']['stochastic']):.1f}", flush=True)
    return records


# ---------------------------------------------------------------------------------------------- purerl side


def snapshot_arrays(state) -> dict[str, np.ndarray]:
    """{path: array} of a (seed-batched) TrainState's policy: actor-critic params and the merged observation
    statistics (`purerl.collect`'s snapshot), the leading axis the seeds."""
    import jax

    from purerl.rollout import training_obs_stats

    tree = {"params": state.params, "obs_stats": jax.vmap(training_obs_stats)(state)}
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path, simple=True, separator="/"): np.asarray(x) for path, x in leaves}


def train_purerl(config, seeds: list[int], out: str, experts: str, eval_every: int) -> tuple[dict, object]:
    """Train purerl's PPO on `seeds` through the runner (checkpoints in `out`, resumed when present),
    exporting a snapshot of every seed at each evaluation point to `experts`; final returns under the shared
    evaluator."""
    import jax

    from purerl import checkpoint, runner, sweep
    from purerl.agents import ppo

    agent = ppo.make_agent(config)
    options = runner.RunOptions(num_seeds=len(seeds), seed=seeds[0], out=out, checkpoint_every=eval_every,
                                eval_every=eval_every, progress=False, logger=("csv",))
    ckpt_dir = os.path.join(out, "checkpoints")
    abstract = jax.eval_shape(jax.vmap(agent.init), sweep.seed_keys(seeds))
    os.makedirs(experts, exist_ok=True)

    def snapshot_path(iteration: int) -> str:
        return os.path.join(experts, f"snapshot_{iteration * agent.steps_per_iteration:09d}.npz")

    def callback(budget_done, metrics):
        # the runner checkpoints after this call: the newest checkpoint is the previous evaluation point
        for step in checkpoint.steps(ckpt_dir):
            if not os.path.exists(snapshot_path(step)):
                state = checkpoint.restore(ckpt_dir, abstract, step)[1]
                np.savez(snapshot_path(step), **snapshot_arrays(state))
        print(f"purerl {budget_done:,} steps, eval return per seed "
              f"{np.round(metrics.get('eval/return', [[np.nan]])[:, -1], 1).tolist()}", flush=True)

    resume = out if checkpoint.steps(ckpt_dir) else None
    t0 = time.perf_counter()
    run = runner.run("ppo", agent, options, resume_dir=resume, callback=callback)
    wall_s = time.perf_counter() - t0
    np.savez(snapshot_path(agent.num_iterations), **snapshot_arrays(run.state))
    eval_returns = run.metrics["eval/return"]
    points = [(i + 1) * agent.steps_per_iteration for i in range(eval_returns.shape[1])
              if np.isfinite(eval_returns[0, i])]
    returns = peer.evaluate_purerl(agent, run.state, seeds, EVAL_EPISODES)
    records = []
    for i, seed in enumerate(seeds):
        curve = [float(x) for x in eval_returns[i][np.isfinite(eval_returns[i])]]
        records.append({"seed": seed, "env_steps": config.num_iterations * config.batch_size,
                        "returns": {mode: r[i].tolist() for mode, r in returns.items()},
                        "eval_points": points, "eval_curve": curve})
    timing = {"compile_s": run.compile_s, "run_s": run.run_s, "wall_s": round(wall_s, 1),
              "env_steps_per_s": run.summary.get("env_steps_per_s")}
    return {"records": records, "timing": timing}, agent


def save_experts(env_name: str, backend: str, config, result: dict, experts: str) -> dict:
    """expert.npz = the final snapshot of the best seed, medium.npz = its first snapshot reaching
    random + MEDIUM_FRACTION * (expert - random) on the training run's evaluations; JSON beside each."""
    best = max(result["records"], key=lambda r: np.mean(r["returns"]["stochastic"]))
    index = [r["seed"] for r in result["records"]].index(best["seed"])
    low, high = random_return(env_name, backend), float(np.mean(best["returns"]["stochastic"]))
    target = low + MEDIUM_FRACTION * (high - low)
    curve, points = best["eval_curve"], best["eval_points"]
    medium_at = next((p for p, v in zip(points, curve, strict=True) if v >= target), points[-1])
    chosen = {"expert": points[-1], "medium": medium_at}
    info = {}
    for kind, steps in chosen.items():
        with np.load(os.path.join(experts, f"snapshot_{steps:09d}.npz")) as snap:
            np.savez(os.path.join(experts, f"{kind}.npz"), **{k: v[index] for k, v in snap.items()})
        info[kind] = {
            "file": os.path.join(experts, f"{kind}.npz"), "env": env_name, "brax_backend": backend,
            "seed": best["seed"], "env_steps": steps, "algo": "ppo", "config": dataclasses.asdict(config),
            "command": harness.command_line(), "git_commit": harness.git_commit(),
            "eval_return_at_snapshot": curve[points.index(steps)],
            "eval_points": points, "eval_curve": curve,  # the best seed's training evaluations
            "random_return": low, "expert_return": high, "medium_target": target,
            "format": "npz: params/<flax path> (purerl.agents.ppo.make_network(config, ...) params), "
                      "obs_stats/mean, obs_stats/var, obs_stats/count (RunningMeanStd.merge() of training)"}
        write_json(os.path.join(experts, f"{kind}.json"), info[kind])  # describes the file; not a result
    return info


# ------------------------------------------------------------------------------------------- the result file


def result_path(env: str, results=harness.RESULTS):
    return Path(results) / f"brax_trainers_{env}.json"


def load_parts(env: str, results=harness.RESULTS) -> dict:
    path = result_path(env, results)
    if path.exists():
        return json.loads(path.read_text())["extra"]["parts"]
    return {}


def train_timing(side: str, train: dict) -> dict:
    """compile_s, run_s and env steps/s of a full-budget part: purerl trains its seeds in one vmapped
    program (steps/s of all seeds), brax one seed after another (the seeds' mean)."""
    if side == "purerl":
        timing = train["timing"]
        return {**timing, "unit": "env steps/s (all seeds, one program)"}
    speeds = [peer.brax_speed(r) for r in train["records"]]
    return {k: float(np.mean([x[k] for x in speeds])) for k in ("compile_s", "run_s", "env_steps_per_s")} | {
        "unit": "env steps/s (one seed; seeds run one after another)"}


def build_result(env: str, backend: str, hp: dict, parts: dict) -> dict:
    """The env's result, rebuilt from every part's records: per side a TRAIN result of its seeds'
    stochastic final returns, their comparison, and the speed rounds with the purerl/brax ratio."""
    from purerl import stats

    runs = []
    for side in ("purerl", "brax"):
        train = parts.get(f"train_{side}")
        if not train:
            continue
        per_seed = [float(np.mean(r["returns"]["stochastic"])) for r in train["records"]]
        timing = train_timing(side, train)
        res = harness.result(harness.TRAIN, f"{side}_{env}", f"{side} PPO on brax {env} ({backend})",
                             algo="ppo", env=env, config=train["config"], budget=train["budget"],
                             budget_unit="env steps", seeds=[r["seed"] for r in train["records"]],
                             compile_s=timing["compile_s"], run_s=timing["run_s"],
                             throughput=timing["env_steps_per_s"], throughput_unit=timing["unit"],
                             per_seed=per_seed, extra={"label": side, **train.get("timing", {})})
        res["scores"]["final_return_deterministic"] = stats.summarize(
            [float(np.mean(r["returns"]["deterministic"])) for r in train["records"]])
        runs.append(res)
    comparisons = [harness.compared(runs[0], runs[1], "final return, stochastic policy, 100 episodes")] \
        if len(runs) == 2 else []
    extra = {"backend": backend, "brax_hyperparameters": hp, "hyperparameter_source": SOURCE[env],
             "brax_defaults_used": BRAX_DEFAULTS, "matched": MATCHED, "differences": DIFFERENCES,
             "machine_note": peer.SHARED_MACHINE,
             "evaluation": f"shared evaluator: stochastic policy (and deterministic, reported apart), "
                           f"{EVAL_EPISODES} episodes of at most {peer.EPISODE_STEPS} steps from brax's "
                           "random initial states, on the unwrapped brax env", "parts": parts}
    if "speed" in parts:
        extra["speed"] = parts["speed"]["summary"]
    if "backends" in parts:
        extra["backend_env_steps_per_s"] = {name: row["env_steps_per_s"]
                                            for name, row in parts["backends"]["rows"].items()}
    what = f"purerl PPO vs brax's ppo.train on brax {env} ({backend}): env steps/s and final return"
    if runs:
        return harness.several_runs(f"brax_trainers_{env}", what, runs, comparisons, extra=extra)
    if "speed" in parts:
        speed = parts["speed"]["summary"]
        budget, throughput, unit = speed["budget"], speed["purerl_env_steps_per_s"], "env steps/s (purerl)"
    else:  # only the backends measured so far
        fastest = parts["backends"]["fastest"]
        budget, unit = None, f"env steps/s (the env alone, {fastest})"
        throughput = parts["backends"]["rows"][fastest]["env_steps_per_s"]
    return harness.result(harness.SPEED, f"brax_trainers_{env}", what, algo="ppo", env=env, budget=budget,
                          budget_unit="env steps", throughput=throughput, throughput_unit=unit, extra=extra)


def speed_result(env: str, backend: str = "spring", budget: int = 300_000, rounds: int = 2) -> dict:
    """The env's result with a new speed part (the suite entry of `benchmarks.run`: brax-trainers)."""
    speed = speed_part(env, backend, BRAX_PPO[env], budget, rounds)
    parts = {**load_parts(env), "speed": speed}  # read after the measurement: a train part may have landed
    print(f"env steps/s purerl/brax: {parts['speed']['summary']['ratio_purerl_over_brax']:.2f}", flush=True)
    return build_result(env, backend, BRAX_PPO[env], parts)


# ------------------------------------------------------------------------------------------------- the parts


def backends_part(env: str, backends=("spring", "positional", "generalized"), num_envs: int = 128,
                  steps: int = 100) -> dict:
    """Env steps/s of the brax env alone on each physics backend (random actions, `num_envs` vmapped envs,
    `steps` steps scanned, best of 3 runs, compile apart): the env both trainers step. mjx (MuJoCo's JAX
    port) is left out: it targets accelerators."""
    import jax

    rows = {}
    for backend in backends:
        brax = peer.brax_env(env, backend)

        def run(key, brax=brax):
            def step(state, k):
                action = jax.random.uniform(k, (num_envs, brax.action_size), minval=-1.0, maxval=1.0)
                return jax.vmap(brax.step)(state, action), None

            reset_key, step_key = jax.random.split(key)
            state = jax.vmap(brax.reset)(jax.random.split(reset_key, num_envs))
            return jax.lax.scan(step, state, jax.random.split(step_key, steps))[0].obs.sum()

        timing = harness.timed(run, jax.random.PRNGKey(0), repeats=3)
        rows[backend] = {"compile_s": timing.compile_s, "run_s": timing.run_s_all,
                         "env_steps_per_s": round(num_envs * steps / timing.run_s, 1)}
        print(f"{backend}: {rows[backend]['env_steps_per_s']:,.0f} env steps/s "
              f"(compile {timing.compile_s:.0f} s)", flush=True)
    return {"num_envs": num_envs, "steps": steps, "rows": rows,
            "fastest": max(rows, key=lambda b: rows[b]["env_steps_per_s"])}


def speed_part(env: str, backend: str, hp: dict, budget: int, rounds: int) -> dict:
    """`rounds` alternating rounds of brax then purerl on `budget` steps; steps/s of the run alone."""
    from purerl import runner
    from purerl.agents import ppo

    per_update = hp["batch_size"] * hp["num_minibatches"] * hp["unroll_length"]
    # whole updates, at least two more than brax's compiling epochs (one update per epoch)
    updates = max(peer.BRAX_COMPILING_EPOCHS + 2, budget // per_update)
    budget = updates * per_update
    config = purerl_config(env, backend, budget, hp)
    rows = []
    for r in range(rounds):
        load = os.getloadavg()[0]
        brax = peer.brax_speed(train_brax(env, backend, budget, hp, seed=0, num_evals=updates + 1,
                                          curve_episodes=0))
        run = runner.train_and_evaluate(ppo.make_agent(dataclasses.replace(config, eval_episodes=1)), 1, 0)
        purerl = {"compile_s": run.compile_s, "run_s": run.run_s,
                  "env_steps_per_s": round(budget / run.run_s, 1)}
        rows.append({"round": r, "load_average_before": round(load, 2), "brax": brax, "purerl": purerl})
        print(f"round {r}: brax {brax['env_steps_per_s']:,.0f} steps/s (compile {brax['compile_s']:.0f} s), "
              f"purerl {purerl['env_steps_per_s']:,.0f} steps/s (compile {purerl['compile_s']:.0f} s)",
              flush=True)
    best = {side: max(row[side]["env_steps_per_s"] for row in rows) for side in ("brax", "purerl")}
    summary = {"budget": budget, "rounds": rounds, "brax_env_steps_per_s": best["brax"],
               "purerl_env_steps_per_s": best["purerl"],
               "ratio_purerl_over_brax": round(best["purerl"] / best["brax"], 3),
               "how": "best of the alternating rounds; brax: its epochs (one update each) after the first "
                      "two (which compile), purerl: the runner's run_s of all updates (compile apart)",
               "purerl_config": dataclasses.asdict(config)}
    return {"rows": rows, "summary": summary}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_brax_trainers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="walker2d", help=f"one of {', '.join(BRAX_PPO)}")
    parser.add_argument("--part", default="speed", help="speed, train or backends")
    parser.add_argument("--side", default="purerl", help="train: purerl or brax")
    parser.add_argument("--backend", default="spring", help="physics backend of both sides")
    parser.add_argument("--budget", type=int, default=0,
                        help="env steps per seed (default: speed 300k, train brax's published budget)")
    parser.add_argument("--seeds", type=int, default=3, help="train: seeds 0..N-1")
    parser.add_argument("--rounds", type=int, default=2, help="speed: alternating rounds")
    parser.add_argument("--evals", type=int, default=20, help="train: evaluation points (and snapshots)")
    parser.add_argument("--out", default="/tmp/brax_trainers/runs",
                        help="train: run directories (brax: each finished seed's record)")
    parser.add_argument("--experts", default="/tmp/brax_trainers/experts", help="purerl train: snapshots")
    parser.add_argument("--results", default=str(harness.RESULTS),
                        help="train and backends: the directory of the result file (an accelerator's runs: "
                             "benchmarks/results/<device kind>)")
    args = parser.parse_args(argv)
    problems = [f"unknown env {args.env!r} (valid: {', '.join(BRAX_PPO)})"] * (args.env not in BRAX_PPO)
    problems += [f"unknown part {args.part!r} (valid: speed, train, backends)"] * (
        args.part not in ("speed", "train", "backends"))
    problems += [f"unknown side {args.side!r} (valid: purerl, brax)"] * (args.side not in ("purerl", "brax"))
    problems += [f"unknown backend {args.backend!r} (valid: spring, positional, generalized)"] * (
        args.backend not in ("spring", "positional", "generalized"))
    problems += [f"{k} must be positive" for k in ("seeds", "rounds", "evals") if getattr(args, k) < 1]
    problems += ["budget must be >= 0"] * (args.budget < 0)
    if not problems and args.part == "train":
        hp = BRAX_PPO[args.env]
        per_update = hp["batch_size"] * hp["num_minibatches"] * hp["unroll_length"]
        problems += [f"budget {args.budget:,} is less than one update ({per_update:,} env steps)"] * (
            0 < args.budget < per_update)
    if problems:
        print(f"purerl: error: {problems[0]}", file=sys.stderr)
        raise SystemExit(2)

    hp = BRAX_PPO[args.env]
    if args.part == "backends":
        parts = {**load_parts(args.env, args.results), "backends": backends_part(args.env)}
        res = build_result(args.env, args.backend, hp, parts)
        print(f"-> {harness.write(res, args.results)}", flush=True)
        return
    if args.part == "speed":
        res = speed_result(args.env, args.backend, args.budget or 300_000, args.rounds)
        print(f"-> {harness.write(res)}")
        return
    parts = {}
    per_update = hp["batch_size"] * hp["num_minibatches"] * hp["unroll_length"]
    budget = (args.budget or hp["num_timesteps"]) // per_update * per_update
    seeds = list(range(args.seeds))
    evals = peer.even_epochs(budget // per_update, args.evals)
    if evals != args.evals:
        print(f"{evals} evaluation points (the most, up to --evals {args.evals}, that split the "
              f"{budget // per_update} updates evenly)", flush=True)
    if args.side == "brax":
        start = time.perf_counter()
        records = train_brax_seeds(args.env, args.backend, budget, hp, seeds, evals + 1,
                                   os.path.join(args.out, f"brax_{args.env}"))
        parts["train_brax"] = {"budget": budget, "config": {**hp, "num_timesteps": budget, **BRAX_DEFAULTS},
                               "records": records, "timing": {"wall_s": round(time.perf_counter() - start, 1),
                                                              "speed": [peer.brax_speed(r) for r in records]}}
    else:
        config = purerl_config(args.env, args.backend, budget, hp)
        every = config.num_iterations // evals
        experts = os.path.join(args.experts, args.env)
        trained, _ = train_purerl(config, seeds, os.path.join(args.out, f"purerl_{args.env}"), experts, every)
        trained["experts"] = save_experts(args.env, args.backend, config, trained, experts)
        parts["train_purerl"] = {"budget": budget, "config": dataclasses.asdict(config), **trained}
    parts = {**load_parts(args.env, args.results),
             **{k: v for k, v in parts.items() if k.startswith(f"train_{args.side}")}}
    print(f"-> {harness.write(build_result(args.env, args.backend, hp, parts), args.results)}", flush=True)
    if "train_brax" in parts and "train_purerl" in parts:
        means = {s: np.mean([np.mean(r["returns"]["stochastic"]) for r in parts[f"train_{s}"]["records"]])
                 for s in ("purerl", "brax")}
        print(f"final return purerl/brax: {means['purerl'] / means['brax']:.2f}")


if __name__ == "__main__":
    main()
