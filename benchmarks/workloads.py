"""Workloads that several benchmarks time: a synthetic offline dataset, offline agents' updates, SAC's
gradient step. Timings come from the harness's timer: `harness.timed`, or for a donated train state stepped
chunk after chunk (`time_offline_updates`) its pieces `harness.compile_timed` and `harness.run_timed`."""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import jax
import numpy as np

from purerl import data as pdata
from purerl import replay
from purerl.agents import get
from purerl.sweep import seed_keys


def synthetic_file(path: str, rows: int, obs_dim: int = 11, act_dim: int = 3) -> None:
    """A D4RL-layout dataset of `rows` random rows with hopper's shapes (an update's cost does not depend on
    the data's content)."""
    rng = np.random.default_rng(0)
    d = {"observations": rng.normal(size=(rows, obs_dim)).astype(np.float32),
         "actions": rng.uniform(-1, 1, (rows, act_dim)).astype(np.float32),
         "rewards": rng.normal(size=rows).astype(np.float32),
         "next_observations": rng.normal(size=(rows, obs_dim)).astype(np.float32),
         "terminals": rng.random(rows) < 0.001, "timeouts": np.zeros(rows, bool)}
    d["timeouts"][999::1000] = True
    pdata.write_hdf5(path, d, {"env_id": "hopper", "episode_length": 1000, "purerl_version": "0"},
                     overwrite=True)


def time_offline_updates(module, path: str, seeds: int, updates: int, chunks: int, stages=(0,),
                         **overrides) -> dict:
    """Compile `update` (`updates` gradient steps per call, `seeds` vmapped) apart from running it, then time
    `chunks` calls. With several `stages` (gradient steps done before each timed group; untimed calls fill
    the gaps) the cost is also measured later in training, for costs that depend on the policy (PRDC's tree
    search); the top-level keys are the first stage's."""
    config = module.Config(dataset=path, num_updates=updates * chunks, updates_per_iteration=updates,
                           brax_backend="spring", **overrides)
    agent = module.make_agent(config)
    state = jax.block_until_ready(jax.jit(jax.vmap(agent.init))(seed_keys(range(seeds))))
    update, compile_s = harness.compile_timed(jax.vmap(agent.update), state, donate_argnums=(0,))
    done, timed = 0, []
    for stage in stages:
        while done < stage:
            (state, _), _ = harness.run_timed(update, state)
            done += updates
        times = []
        for _ in range(chunks):
            (state, _), seconds = harness.run_timed(update, state)
            times.append(seconds)
        best = min(times)
        timed.append({"after_updates": stage, "call_s": [round(x, 3) for x in times],
                      "updates_per_s_per_seed": round(updates / best, 1),
                      "updates_per_s_all_seeds": round(seeds * updates / best, 1)})
        done += updates * chunks
    first = {k: v for k, v in timed[0].items() if k != "after_updates"}
    return {"seeds": seeds, "updates_per_call": updates, "calls": chunks, "compile_s": round(compile_s, 2),
            **first, **({"stages": timed} if len(stages) > 1 else {})}


def sac_grad_steps_per_s(algo: str, steps: int, **overrides) -> dict:
    """Gradient steps/s of one SAC-family agent's gradient step on a fixed replay batch (Pendulum-v1 shapes,
    batch 256, 256x256 nets): compile apart, one untimed warm-up call, best of 3 timed calls."""
    module = get(algo)
    config = module.Config(env="Pendulum-v1", batch_size=256, hidden=(256, 256), **overrides)
    agent = module.make_agent(config)
    state = agent.init(jax.random.PRNGKey(0))
    one_row = jax.tree.map(lambda x: x[0], state.buffer.data)
    buffer = replay.add(state.buffer,
                        jax.tree.map(lambda x: np.repeat(np.asarray(x)[None], 1000, 0), one_row))
    step = module.gradient_step_fn(config)

    def many(learner, key):
        def body(learner, k):
            sample_key, loss_key = jax.random.split(k)
            return step(learner, replay.sample(buffer, sample_key, config.batch_size), loss_key)

        return jax.lax.scan(body, learner, jax.random.split(key, steps))[0]

    timing = harness.timed(many, state.learner, jax.random.PRNGKey(1), repeats=3, warmup=True)
    return {"algo": algo, "overrides": overrides, "grad_steps": steps, "compile_s": timing.compile_s,
            "run_s_best": timing.run_s, "run_s_all": timing.run_s_all,
            "grad_steps_per_s": steps / timing.run_s}
