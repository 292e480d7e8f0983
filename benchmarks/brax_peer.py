"""brax's own trainers (`brax.training.agents.ppo` / `sac`, shipped with purerl's brax dependency) as peers:
what `bench_brax_trainers` (PPO) and `bench_brax_sac` (SAC) share to run and time them beside purerl's agents.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SHARED_MACHINE = ("2-core CPU shared with other engineers' jobs (load average often 4-10): every time is an "
                  "upper bound; the ratio is of alternating rounds on the same load")
BRAX_COMPILING_EPOCHS = 2  # brax's training epoch compiles on its first call and again on its second one


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
