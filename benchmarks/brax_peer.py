"""brax's own trainers (`brax.training.agents.ppo` / `sac`, shipped with purerl's brax dependency) as peers:
what `bench_brax_trainers` (PPO) and `bench_brax_sac` (SAC) share to run and time them beside purerl's agents.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SHARED_MACHINE = ("2-core CPU shared with other engineers' jobs (load average often 4-10): every time is an "
                  "upper bound; the ratio is of alternating rounds on the same load")
BRAX_COMPILING_EPOCHS = 2  # brax's training epoch compiles on its first call and again on its second one
EPISODE_STEPS = 1000  # the shared evaluator's episode limit (brax's episode_length in the published sets)


def brax_env(env: str, backend: str):
    """The brax env purerl wraps (`purerl.envs.brax.BraxEnv`), built the same way: both sides step it."""
    from purerl.envs.brax import BraxEnv

    return BraxEnv(env, backend).brax_env


def allow_brax_replication() -> None:
    """brax 0.14.2's trainers replicate their state with `jax.device_put_replicated`, which this jax (0.10)
    has removed (the name raises a deprecation error): give them a stacked copy per device, laid out as pmap
    lays out its outputs (so that the training epoch, fed its own outputs next, is not compiled twice)."""
    import jax
    import jax.numpy as jnp

    try:
        jax.device_put_replicated  # noqa: B018  (present in older jax)
        return
    except AttributeError:
        pass

    def device_put_replicated(x, devices):
        stacked = jax.tree.map(lambda a: jnp.stack([a] * len(devices)), x)
        return jax.pmap(lambda tree: tree, devices=devices)(stacked)

    jax.device_put_replicated = device_put_replicated


def epoch_recorder(epochs: list[dict]) -> Callable[[int, dict], None]:
    """A `progress_fn` for brax's trainers that appends each training epoch's env steps, steps/s and the
    trainer's cumulative training wall time to `epochs`, with PPO's policy std (calls without training
    metrics, such as SAC's evaluation before training, are skipped)."""
    def progress_fn(step, metrics):
        if "training/walltime" in metrics:
            epochs.append({"env_steps": int(step), "sps": float(metrics["training/sps"]),
                           "walltime": float(metrics["training/walltime"])})
            if "training/policy_dist_mean_std" in metrics:  # PPO's: the mean over the epoch's minibatches
                epochs[-1]["policy_std"] = float(metrics["training/policy_dist_mean_std"])

    return progress_fn


def brax_speed(record: dict, prefill_steps: int = 0) -> dict:
    """Steady steps/s of the epochs after the BRAX_COMPILING_EPOCHS first ones, and those epochs' surplus
    over that rate (their compiles). (With jax 0.10 and brax 0.14.2 the second call of the pmapped training
    epoch compiles again: the first two epochs each hold a compile, the later ones none.) SAC's first epoch
    also holds its replay prefill, `prefill_steps` env steps (counted, and timed, with it): its surplus is
    then the compiles and the prefill together."""
    epochs = record["epochs"]
    times = np.diff([0.0] + [e["walltime"] for e in epochs])
    steps = np.diff([prefill_steps] + [e["env_steps"] for e in epochs])
    warm = BRAX_COMPILING_EPOCHS
    run_s = float(times[warm:].sum())
    rate = steps[warm:].sum() / run_s
    return {"compile_s": round(float(times[:warm].sum() - steps[:warm].sum() / rate), 2),
            "run_s": round(run_s, 2), "env_steps_timed": int(steps[warm:].sum()),
            "env_steps_per_s": round(float(rate), 1)}


def even_epochs(steps: int, most: int) -> int:
    """The number of epochs (and evaluation points) to ask a brax trainer for: the largest divisor of its
    `steps` (PPO: updates; SAC: steps of all envs after the prefill) up to `most`. brax's ppo.train and
    sac.train split their training into num_evals - 1 epochs of ceil(steps / (num_evals - 1)) steps each,
    so any other count trains past the budget (96 updates in 20 epochs: 100 updates)."""
    return max(d for d in range(1, min(steps, most) + 1) if steps % d == 0)


def evaluate_program(env, act, episodes: int):
    """`run(policy, key) -> returns [episodes]`: the undiscounted returns of `episodes` episodes (at most
    EPISODE_STEPS steps, from brax's random initial states) of `act(policy, key, obs batch) -> action
    batch`, its actions clipped to [-1, 1], on the unwrapped brax `env`; traceable (not yet jitted)."""
    import jax
    import jax.numpy as jnp

    def run(policy, key):
        reset_key, step_key = jax.random.split(key)
        state = jax.vmap(env.reset)(jax.random.split(reset_key, episodes))

        def step(carry, k):
            state, total, alive = carry
            state = jax.vmap(env.step)(state, jnp.clip(act(policy, k, state.obs), -1.0, 1.0))
            total = total + jnp.where(alive, state.reward, 0.0)  # a fallen walker's physics may go non-finite
            return (state, total, alive & (state.done < 0.5)), None

        carry = (state, jnp.zeros(episodes), jnp.ones(episodes, bool))
        (_, total, _), _ = jax.lax.scan(step, carry, jax.random.split(step_key, EPISODE_STEPS))
        return total

    return run


def evaluate(env, act, key, policy, episodes: int, over_seeds: bool = False) -> np.ndarray:
    """`evaluate_program`'s returns, one evaluator for both sides of a comparison. `over_seeds`: `policy` and
    `key` carry a leading seed axis (one compiled program for all)."""
    import jax

    run = evaluate_program(env, act, episodes)
    return np.asarray(jax.jit(jax.vmap(run) if over_seeds else run)(policy, key), np.float64)


def evaluate_purerl(agent, state, seeds: list[int], episodes: int) -> dict[str, np.ndarray]:
    """The final policies of a purerl agent's seed-batched `state` under the shared evaluator: {"stochastic",
    "deterministic"} -> returns [seeds, episodes], each seed's episodes from PRNGKey(seed + 1000)."""
    import jax

    env = brax_env(agent.config.env, agent.config.brax_backend)
    keys = jax.vmap(lambda s: jax.random.PRNGKey(s + 1000))(np.asarray(seeds))
    returns = {}
    for mode, deterministic in (("stochastic", False), ("deterministic", True)):
        act = lambda state, key, obs, d=deterministic: agent.policy.act_fn(state, d)(key, obs)
        returns[mode] = evaluate(env, act, keys, state, episodes, over_seeds=True)
    return returns
