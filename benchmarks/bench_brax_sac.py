"""purerl's SAC against brax's own SAC trainer (`brax.training.agents.sac.train`) on a brax env: env steps/s.

    python -m benchmarks.bench_brax_sac --env hopper          # 2 alternating rounds, prints the ratio last
    python -m benchmarks.bench_brax_sac --env walker2d --rounds 3 --epochs 8

Both sides train with brax's published SAC hyperparameters for the env (`BRAX_SAC`, from brax's training
notebook; purerl's Config set to match them field by field in `purerl_config`, the differences that remain in
`DIFFERENCES`), on the same physics backend and budget: brax's prefill of `min_replay_size` env steps, then
`epochs` epochs of `STEPS_PER_EPOCH` training steps, each one step of all `num_envs` envs followed by
`grad_updates_per_step` gradient steps on batches of `batch_size`. purerl runs one iteration per brax epoch
(`rollout_steps = STEPS_PER_EPOCH`, `utd = grad_updates_per_step / num_envs`).

Timed: the steady training rate, compile and prefill apart. brax: its epochs after the first two (which
compile, `brax_peer.brax_speed`). purerl: its iterations after the last one that holds prefill steps, timed
between the runner's per-iteration callbacks (the runner compiles ahead of time, before the first one).
Each round runs brax, then purerl, in this process; the ratio is of the fastest rounds.

The returns at brax's published budget (hopper: 6,553,600 env steps and 3.3M gradient steps of batch 512)
are out of reach of this 2-core CPU (both trainers run about 130 such gradient steps/s here: some 7 hours
per seed and side). `--part returns` compares the final returns at a budget that fits (`--budget`, default
100,352 env steps: the prefill and 90 epochs), with brax's hyperparameters on both sides: brax's seeds one
after another, purerl's in one vmapped program, every final policy scored by the same evaluator
(`brax_peer.evaluate`, EVAL_EPISODES episodes; the deterministic policy, tanh of the mean, as purerl's SAC
evaluates, and the sampled one). Each side's finished seeds are kept in
`benchmarks/results/brax_sac_<env>_returns/`, so a cut run resumes.

The results: `benchmarks/results/brax_sac_<env>.json` (speed), `brax_sac_<env>_returns.json` (returns).
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import dataclasses
import json
import math
import os
import sys
import time

import numpy as np

from benchmarks import brax_peer as peer
from purerl import stats
from purerl.logging import write_json

# brax's published SAC settings (its training notebook: hopper, and walker2d in the versions that train it
# with SAC rather than PPO).
BRAX_SAC = {
    "hopper": dict(num_timesteps=6_553_600, reward_scaling=30.0, episode_length=1000,
                   normalize_observations=True, action_repeat=1, discounting=0.997, learning_rate=6e-4,
                   num_envs=128, batch_size=512, grad_updates_per_step=64, max_devices_per_host=1,
                   max_replay_size=1_048_576, min_replay_size=8192),
    "walker2d": dict(num_timesteps=7_864_320, reward_scaling=5.0, episode_length=1000,
                     normalize_observations=True, action_repeat=1, discounting=0.997, learning_rate=6e-4,
                     num_envs=128, batch_size=128, grad_updates_per_step=32, max_devices_per_host=1,
                     max_replay_size=1_048_576, min_replay_size=8192),
}
# sac.train's own settings that the published sets leave at their defaults, and its default networks
BRAX_DEFAULTS = dict(tau=0.005, alpha_learning_rate=3e-4, initial_alpha=1.0,
                     target_entropy="-0.5 * action_size", hidden=(256, 256), activation="relu",
                     distribution="tanh_normal")
DIFFERENCES = [
    "observation normalisation: both sides standardise observations with running statistics of every "
    "observation acted on (purerl: normalize_obs=True); purerl clips the standardised values to +-10, brax "
    "does not clip",
    "truncated transitions: brax drops them from the critic loss; purerl bootstraps them from the final "
    "observation",
    "prefill: brax fills min_replay_size transitions with its initial policy; purerl with uniform random "
    "actions (and learns once at the last prefill step, when the stored transitions reach learning_starts)",
    "replay: brax samples the batches of all grad_updates_per_step gradient steps at once, purerl one batch "
    "per gradient step (the same number of transitions)",
    "losses: brax's temperature loss is alpha * (-log pi - target entropy) (purerl: log alpha * ...), its "
    "critic loss 0.5 * mean over both critics (purerl: the sum of both critics' mean squared errors); Adam "
    "normalises the scale",
    "networks: brax lecun_uniform kernels and std = softplus(output) + 0.001; purerl flax's lecun_normal "
    "trunks, output heads uniform in +-1e-3 (actor) and +-3e-3 (critics), log std clipped to [-20, 2]",
    "the timed budget caps both replay buffers at the budget (purerl caps its buffer at total_timesteps; "
    "brax's max_replay_size is set to the same)",
]
STEPS_PER_EPOCH = 8  # training steps (one env step of all envs + its gradient steps) per brax epoch
RETURNS_EPOCHS = 90  # --part returns: the default budget, budget_for(hp, 90) = 100,352 env steps on hopper
RETURNS_SEEDS = (0, 1, 2)
RETURNS_BRAX_EPOCHS = 10  # brax's epochs (and evaluations) in --part returns
EVAL_EPISODES = 100


def purerl_config(env: str, backend: str, budget: int, hp: dict, normalize_obs: bool = True):
    """purerl's SAC Config matched to brax's `sac.train` with hyperparameters `hp` (see DIFFERENCES);
    `normalize_obs=False` is the ablation without brax's observation normalisation."""
    from purerl.agents import sac

    return sac.Config(
        env=env, brax_backend=backend, total_timesteps=budget, num_envs=hp["num_envs"],
        rollout_steps=STEPS_PER_EPOCH, utd=hp["grad_updates_per_step"] / hp["num_envs"],
        buffer_size=hp["max_replay_size"], batch_size=hp["batch_size"], learning_starts=hp["min_replay_size"],
        gamma=hp["discounting"], tau=BRAX_DEFAULTS["tau"], actor_lr=hp["learning_rate"],
        critic_lr=hp["learning_rate"], alpha_lr=BRAX_DEFAULTS["alpha_learning_rate"],
        init_alpha=BRAX_DEFAULTS["initial_alpha"], target_entropy_scale=0.5,
        reward_scale=hp["reward_scaling"], hidden=BRAX_DEFAULTS["hidden"], activation="relu",
        max_episode_steps=hp["episode_length"], eval_episodes=1, normalize_obs=normalize_obs)


def budget_for(hp: dict, epochs: int) -> int:
    """brax's prefill plus `epochs` epochs of STEPS_PER_EPOCH training steps, in env steps."""
    return hp["min_replay_size"] + epochs * STEPS_PER_EPOCH * hp["num_envs"]


def train_brax(env: str, backend: str, budget: int, hp: dict, epochs: int) -> dict:
    """brax's sac.train for `budget` env steps in `epochs` epochs: its epochs (env steps and wall time) and
    their timing (brax_peer.brax_speed; its compile_s holds the prefill too)."""
    from brax.training.agents.sac import train as brax_sac

    peer.allow_brax_replication()
    record = []
    settings = {**hp, "max_replay_size": min(hp["max_replay_size"], budget)}
    del settings["num_timesteps"]
    brax_sac.train(environment=peer.brax_env(env, backend), num_timesteps=budget, seed=0,
                   num_evals=epochs + 1, num_eval_envs=1, progress_fn=peer.epoch_recorder(record), **settings)
    prefill = math.ceil(hp["min_replay_size"] / hp["num_envs"]) * hp["num_envs"]
    return {**peer.brax_speed({"epochs": record}, prefill), "epochs": record}


def steady_window(config, stamps: list[tuple[int, float]]) -> dict:
    """purerl's steady training rate from the runner's per-iteration callbacks `stamps` [(env steps done,
    time)]: the iterations after the last one that holds a prefill step (an env step of all envs that does
    not learn: the first that learns is the one whose stored transitions reach learning_starts)."""
    prefill_steps = max(0, math.ceil(config.learning_starts / config.num_envs) - 1)  # steps of all envs
    start = max(1, math.ceil(prefill_steps / config.rollout_steps))  # the last iteration holding one
    (steps_0, t_0), (steps_1, t_1) = stamps[start - 1], stamps[-1]
    if steps_1 <= steps_0:
        raise ValueError("the budget holds no iteration after the prefill")
    return {"run_s": round(t_1 - t_0, 2), "env_steps_timed": steps_1 - steps_0,
            "env_steps_per_s": round((steps_1 - steps_0) / (t_1 - t_0), 1)}


def train_purerl(config) -> dict:
    """purerl's SAC through the runner, one iteration per chunk; the steady rate (steady_window)."""
    from purerl import runner
    from purerl.agents import sac

    stamps = []
    run = runner.train_and_evaluate(sac.make_agent(config), 1, 0, chunk_iterations=1,
                                    callback=lambda done, _: stamps.append((done, time.perf_counter())))
    return {"compile_s": round(run.compile_s, 2), **steady_window(config, stamps)}


def speed_result(env: str, backend: str = "spring", epochs: int = 6, rounds: int = 2) -> dict:
    """`rounds` alternating rounds of brax then purerl; the result with the purerl/brax ratio."""
    hp = BRAX_SAC[env]
    budget = budget_for(hp, epochs)
    config = purerl_config(env, backend, budget, hp)
    rows = []
    for r in range(rounds):
        load = os.getloadavg()[0]
        brax = train_brax(env, backend, budget, hp, epochs)
        purerl = train_purerl(config)
        rows.append({"round": r, "load_average_before": round(load, 2), "brax": brax, "purerl": purerl})
        print(f"round {r}: brax {brax['env_steps_per_s']:,.1f} env steps/s "
              f"(compile and prefill {brax['compile_s']:.0f} s), "
              f"purerl {purerl['env_steps_per_s']:,.1f} env steps/s (compile {purerl['compile_s']:.0f} s)",
              flush=True)
    best = {side: max(row[side]["env_steps_per_s"] for row in rows) for side in ("brax", "purerl")}
    grad_steps = hp["grad_updates_per_step"] / hp["num_envs"]
    summary = {"budget": budget, "epochs": epochs, "rounds": rounds, "brax_env_steps_per_s": best["brax"],
               "purerl_env_steps_per_s": best["purerl"],
               "purerl_gradient_steps_per_s": round(best["purerl"] * grad_steps, 1),
               "brax_gradient_steps_per_s": round(best["brax"] * grad_steps, 1),
               "ratio_purerl_over_brax": round(best["purerl"] / best["brax"], 3),
               "how": "best of the alternating rounds; steady training rate, compile and prefill apart "
                      f"(brax: its epochs after the first {peer.BRAX_COMPILING_EPOCHS}, purerl: its "
                      "iterations after the prefill)"}
    what = f"purerl SAC vs brax's sac.train on brax {env} ({backend}): steady env steps/s"
    return harness.result(harness.SPEED, f"brax_sac_{env}", what, algo="sac", env=env,
                          config=dataclasses.asdict(config), budget=budget, budget_unit="env steps",
                          seeds=[0],
                          compile_s=min(row["purerl"]["compile_s"] for row in rows),
                          run_s=min(row["purerl"]["run_s"] for row in rows), throughput=best["purerl"],
                          throughput_unit="env steps/s (purerl, steady training)",
                          extra={"backend": backend, "brax_hyperparameters": hp,
                                 "brax_defaults_used": BRAX_DEFAULTS, "differences": DIFFERENCES,
                                 "machine_note": peer.SHARED_MACHINE, "rows": rows, "speed": summary})


def epochs_in(hp: dict, budget: int) -> int:
    """The whole epochs after the prefill in `budget` env steps (budget_for's inverse)."""
    return (budget - hp["min_replay_size"]) // (STEPS_PER_EPOCH * hp["num_envs"])


def brax_final_policy(env: str, backend: str, budget: int, hp: dict, seed: int, epochs: int) -> dict:
    """brax's sac.train for `budget` env steps from `seed`: its timing and its final policy's returns under
    the shared evaluator, deterministic and sampled (its own evaluations, one episode per epoch, are kept
    as its curve)."""
    import jax
    from brax.training.agents.sac import train as brax_sac

    peer.allow_brax_replication()
    brax_env = peer.brax_env(env, backend)
    record, curve = [], []
    record_epoch = peer.epoch_recorder(record)

    def progress(step, metrics):
        record_epoch(step, metrics)
        if "eval/episode_reward" in metrics and step > 0:
            curve.append({"env_steps": int(step), "return": round(float(metrics["eval/episode_reward"]), 1)})

    settings = {**hp, "max_replay_size": min(hp["max_replay_size"], budget)}
    del settings["num_timesteps"]
    # brax evaluates one 1000-step episode after each of its epochs: at most RETURNS_BRAX_EPOCHS of them
    brax_epochs = peer.even_epochs(epochs * STEPS_PER_EPOCH, RETURNS_BRAX_EPOCHS)
    make_policy, params, _ = brax_sac.train(environment=brax_env, num_timesteps=budget, seed=seed,
                                            num_evals=brax_epochs + 1, num_eval_envs=1, progress_fn=progress,
                                            **settings)
    prefill = math.ceil(hp["min_replay_size"] / hp["num_envs"]) * hp["num_envs"]
    returns = {}
    for mode, deterministic in (("deterministic", True), ("stochastic", False)):
        act = lambda params, key, obs, d=deterministic: make_policy(params, deterministic=d)(obs, key)[0]
        returns[mode] = peer.evaluate(brax_env, act, jax.random.PRNGKey(seed + 1000), params,
                                      EVAL_EPISODES).tolist()
    return {"seed": seed, "env_steps": record[-1]["env_steps"], "returns": returns, "own_eval_curve": curve,
            **peer.brax_speed({"epochs": record}, prefill)}


def purerl_final_policies(config, seeds: tuple[int, ...]) -> list[dict]:
    """purerl's SAC on `seeds` in one vmapped program (the runner's): each seed's final policy's returns
    under the shared evaluator, deterministic and sampled."""
    from purerl import runner
    from purerl.agents import sac

    agent = sac.make_agent(config)
    run = runner.train_and_evaluate(agent, len(seeds), seeds[0])
    returns = peer.evaluate_purerl(agent, run.state, list(seeds), EVAL_EPISODES)
    return [{"seed": seed, "env_steps": config.total_timesteps,
             "returns": {mode: r[i].tolist() for mode, r in returns.items()},
             "compile_s": run.compile_s, "run_s_all_seeds": run.run_s, "seeds_in_program": len(seeds)}
            for i, seed in enumerate(seeds)]


def returns_dir(env: str):
    return harness.RESULTS / f"brax_sac_{env}_returns"


def as_json(config) -> dict:
    """A Config as it reads back from a JSON file (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def kept(path, budget: int, config=None):
    """A side's record kept at `path` for this budget (and, for purerl, this Config), else None."""
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["budget"] == budget and (config is None or saved.get("config") == as_json(config)):
            return saved["records"]
    return None


def purerl_records(path, budget: int, config, seeds: tuple[int, ...], train: bool = True) -> list[dict]:
    """purerl's records of `seeds` at `path`: those kept for this budget and config, and, with `train`, the
    missing seeds trained in one vmapped program (they must be consecutive) and kept beside them."""
    have = {record["seed"]: record for record in kept(path, budget, config) or []}
    missing = [seed for seed in seeds if seed not in have]
    if missing and train:
        if missing != list(range(missing[0], missing[0] + len(missing))):
            raise ValueError(f"purerl trains consecutive seeds in one program; missing {missing}")
        have.update({record["seed"]: record for record in purerl_final_policies(config, tuple(missing))})
        write_json(path, {"budget": budget, "config": as_json(config),
                          "records": [have[seed] for seed in sorted(have)]})
    return [have[seed] for seed in seeds if seed in have]


# purerl's runs at --part returns: the matched config, and the ablation without observation normalisation
PURERL_RUNS = {"purerl": ("purerl_seeds.json", True), "purerl_raw_obs": ("purerl_raw_obs_seeds.json", False)}


def returns_result(env: str, backend: str, budget: int, seeds: tuple[int, ...] = RETURNS_SEEDS,
                   ablation: bool = False) -> dict:
    """Both sides' final returns at `budget`, resumable per brax seed and per purerl program, and their
    difference with a bootstrap CI over seeds (`purerl.stats`). The ablation without observation
    normalisation is reported on the seeds it has kept; with `ablation`, its missing seeds train too."""
    hp = BRAX_SAC[env]
    epochs = epochs_in(hp, budget)
    folder = returns_dir(env)
    folder.mkdir(parents=True, exist_ok=True)
    brax_records = []
    for seed in seeds:
        path = folder / f"brax_seed{seed}.json"
        record = kept(path, budget)
        if record is None:
            record = [brax_final_policy(env, backend, budget, hp, seed, epochs)]
            write_json(path, {"budget": budget, "records": record})
        brax_records += record
        print(f"brax seed {seed}: {np.mean(record[0]['returns']['deterministic']):.1f}", flush=True)
    records = {"brax": brax_records}
    for run, (name, normalize_obs) in PURERL_RUNS.items():
        run_config = purerl_config(env, backend, budget, hp, normalize_obs)
        train = normalize_obs or ablation
        records[run] = purerl_records(folder / name, budget, run_config, seeds, train)
        print(f"{run}: {[round(float(np.mean(r['returns']['deterministic'])), 1) for r in records[run]]}",
              flush=True)
    config, matched = purerl_config(env, backend, budget, hp), records["purerl"]
    ablation_seeds = [record["seed"] for record in records["purerl_raw_obs"]]
    summary = {}
    for mode in ("deterministic", "stochastic"):
        per_seed = {side: [round(float(np.mean(r["returns"][mode])), 1) for r in side_records]
                    for side, side_records in records.items()}
        summary[mode] = {**per_seed, "purerl_minus_brax": stats.compare(per_seed["purerl"], per_seed["brax"])}
        if ablation_seeds:  # the matched run on the ablation's seeds
            on_seeds = [value for record, value in zip(matched, per_seed["purerl"], strict=True)
                        if record["seed"] in ablation_seeds]
            summary[mode]["normalised_minus_raw_obs"] = {
                "seeds": ablation_seeds, **stats.compare(on_seeds, per_seed["purerl_raw_obs"])}
    what = f"purerl SAC vs brax's sac.train on brax {env} ({backend}): final returns at {budget:,} env steps"
    first = matched[0]  # the timing of the program that trained seed 0 (a shared CPU: not a speed record)
    return harness.result(harness.TRAIN, f"brax_sac_{env}_returns", what, algo="sac", env=env,
                          config=dataclasses.asdict(config), budget=budget, budget_unit="env steps",
                          seeds=list(seeds), compile_s=first["compile_s"], run_s=first["run_s_all_seeds"],
                          throughput=first["seeds_in_program"] * budget / first["run_s_all_seeds"],
                          throughput_unit="env steps/s (purerl, all seeds; a shared CPU)",
                          per_seed=summary["deterministic"]["purerl"],
                          comparison={"measure": "final return, deterministic policy, purerl minus brax",
                                      **summary["deterministic"]["purerl_minus_brax"]},
                          extra={"backend": backend, "brax_hyperparameters": hp, "epochs": epochs,
                                 "brax_defaults_used": BRAX_DEFAULTS, "differences": DIFFERENCES,
                                 "evaluator": f"brax_peer.evaluate: {EVAL_EPISODES} episodes of at most "
                                              f"{peer.EPISODE_STEPS} steps per seed and policy",
                                 "brax_records": brax_records, "purerl_records": matched,
                                 "purerl_raw_obs_records": records["purerl_raw_obs"],
                                 "returns": summary, "machine_note": peer.SHARED_MACHINE})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_brax_sac", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="hopper", help=f"one of {', '.join(BRAX_SAC)}")
    parser.add_argument("--backend", default="spring", help="physics backend of both sides")
    parser.add_argument("--epochs", type=int, default=6,
                        help=f"training epochs of {STEPS_PER_EPOCH} training steps after the prefill (the "
                             f"first {peer.BRAX_COMPILING_EPOCHS} of brax's are not timed)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument("--part", choices=("speed", "returns"), default="speed",
                        help="speed: steady env steps/s; returns: final returns at --budget, "
                             f"{len(RETURNS_SEEDS)} seeds per side")
    parser.add_argument("--budget", type=int, default=0,
                        help=f"--part returns: env steps per seed, the prefill plus whole epochs (default: "
                             f"{RETURNS_EPOCHS} epochs)")
    parser.add_argument("--seeds", type=int, default=len(RETURNS_SEEDS),
                        help="--part returns: seeds 0..N-1 per side (kept seeds are not trained again)")
    parser.add_argument("--ablation", action="store_true",
                        help="--part returns: also train purerl's missing seeds without observation "
                             "normalisation (otherwise the kept ones are reported)")
    args = parser.parse_args(argv)
    problems = [f"unknown env {args.env!r} (valid: {', '.join(BRAX_SAC)})"] * (args.env not in BRAX_SAC)
    problems += [f"unknown backend {args.backend!r} (valid: spring, positional, generalized)"] * (
        args.backend not in ("spring", "positional", "generalized"))
    problems += [f"epochs must be at least {peer.BRAX_COMPILING_EPOCHS + 1}"] * (
        args.epochs <= peer.BRAX_COMPILING_EPOCHS)
    problems += ["rounds must be positive"] * (args.rounds < 1)
    problems += ["seeds must be at least 2 (a CI needs them)"] * (args.seeds < 2)
    if not problems and args.part == "returns":
        hp = BRAX_SAC[args.env]
        args.budget = args.budget or budget_for(hp, RETURNS_EPOCHS)
        epochs = epochs_in(hp, args.budget)
        least = peer.BRAX_COMPILING_EPOCHS + 1
        problems += [f"budget {args.budget:,} is not the prefill ({hp['min_replay_size']:,}) plus at least "
                     f"{least} whole epochs of {STEPS_PER_EPOCH * hp['num_envs']:,} env steps, e.g. "
                     f"{budget_for(hp, max(epochs, least)):,}"] * (
            epochs <= peer.BRAX_COMPILING_EPOCHS or budget_for(hp, epochs) != args.budget)
    if problems:
        print(f"purerl: error: {problems[0]}", file=sys.stderr)
        raise SystemExit(2)
    if args.part == "returns":
        res = returns_result(args.env, args.backend, args.budget, tuple(range(args.seeds)), args.ablation)
        print(f"-> {harness.write(res)}")
        for mode, row in res["extra"]["returns"].items():
            diff, (low, high) = row["purerl_minus_brax"], row["purerl_minus_brax"]["difference_ci"]
            print(f"{mode}: purerl {row['purerl']}, brax {row['brax']}; purerl minus brax "
                  f"{diff['difference']:.1f} [{low:.1f}, {high:.1f}]; purerl without observation "
                  f"normalisation {row['purerl_raw_obs']}", flush=True)
        return
    res = speed_result(args.env, args.backend, args.epochs, args.rounds)
    print(f"-> {harness.write(res)}")
    print(f"env steps/s purerl/brax: {res['extra']['speed']['ratio_purerl_over_brax']:.2f}")


if __name__ == "__main__":
    main()
