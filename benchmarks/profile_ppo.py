"""Where PPO's time goes on a CPU, at the rejax comparison's setting (CartPole-v1, 8 vmapped seeds, 4 envs x
128 steps, 4 epochs x 4 minibatches).

  python -m benchmarks.profile_ppo [--num-seeds 8] [--iterations 10]

Two measurements of one iteration (`ppo.make_agent(...).update`, vmapped over the seeds):
- parts, timed without a profiler (the fastest of 5 repeats): the whole iteration, its rollout, one minibatch
  step (gradient and Adam), and one of the minibatch step's 64x64 dense products next to a large product
  (the core's attainable rate);
- every XLA operation of `--iterations` iterations, traced with `jax.profiler` and summed per operation,
  the dense products (dots, and the library fusions built around them) apart. The profiler adds a little
  time to every operation, which inflates the thousands of tiny ones (the traced sum exceeds the iteration)
  but not the few long dense products.

Writes benchmarks/results/ppo_cpu_profile.json; prints the dense products' share of the iteration last.
"""

from __future__ import annotations

from benchmarks import harness  # isort: skip  (first: it sets the XLA CPU flags before jax is imported)

import argparse
import collections
import gzip
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

from benchmarks.harness import SPEED
from purerl.agents import ppo
from purerl.rollout import make_env, make_rollout

CONFIG = ppo.Config()  # CartPole-v1, purejaxrl's setting: what bench_vs_rejax trains


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_ppo",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--num-seeds", type=int, default=8, help="vmapped seeds (default: 8)")
    parser.add_argument("--iterations", type=int, default=10, help="iterations traced (default: 10)")
    args = parser.parse_args(argv)
    problems = [f"--{k.replace('_', '-')} must be positive" for k in ("num_seeds", "iterations")
                if getattr(args, k) < 1]
    if problems:
        print(f"purerl: error: {problems[0]}", file=sys.stderr)
        raise SystemExit(2)
    return args


def per_call_ms(fn, *args, calls: int = 20, repeats: int = 5) -> float:
    """Milliseconds per call of the compiled `fn(*args)`: the fastest of `repeats` runs of `calls` calls."""
    program, _ = harness.compile_timed(fn, *args)
    jax.block_until_ready(program(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = program(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e3


def timed_parts(num_seeds: int) -> dict:
    """The iteration and its parts, in ms, and the dense products' rates in GFLOP/s."""
    agent = ppo.make_agent(CONFIG)
    states = jax.jit(jax.vmap(agent.init))(jax.random.split(jax.random.key(0), num_seeds))
    env, env_params = make_env(CONFIG)
    network = ppo.make_network(CONFIG, env, env_params)
    rollout, _ = make_rollout(network, env, env_params, CONFIG.num_envs, CONFIG.num_steps)

    minibatch = CONFIG.batch_size // CONFIG.num_minibatches
    obs = jax.random.normal(jax.random.key(1), (num_seeds, minibatch, 4))
    actions = jax.random.randint(jax.random.key(2), (num_seeds, minibatch), 0, 2)
    optimizer = optax.flatten(optax.chain(optax.clip_by_global_norm(CONFIG.max_grad_norm), optax.adam(1e-3)))

    def loss(params, obs, actions):  # the network's part of PPO's loss: both heads, forward and backward
        pi, value = network.apply(params, obs)
        return pi.log_prob(actions).mean() + (value**2).mean()

    def minibatch_step(params, opt_state, obs, actions):
        updates, opt_state = optimizer.update(jax.grad(loss)(params, obs, actions), opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    hidden = jnp.ones((num_seeds, minibatch, 64))
    weights = jnp.ones((num_seeds, 64, 64))
    small_ms = per_call_ms(lambda x, w: jnp.einsum("sbi,sio->sbo", x, w), hidden, weights, calls=500)
    big_x, big_w = jnp.ones((4096, 256)), jnp.ones((256, 256))
    big_ms = per_call_ms(lambda x, w: x @ w, big_x, big_w, calls=50)
    steps = CONFIG.update_epochs * CONFIG.num_minibatches
    return {
        "iteration_ms": per_call_ms(lambda s: jax.vmap(agent.update)(s)[0], states),
        "rollout_ms": per_call_ms(lambda s: jax.vmap(rollout)(s.params, s.env_state, s.obs, s.key), states),
        "minibatch_step_ms": per_call_ms(jax.vmap(minibatch_step), states.params, states.opt_state, obs,
                                         actions, calls=200),
        "minibatch_steps_per_iteration": steps,
        "dense_64x64_ms": small_ms,
        "dense_64x64_gflops": round(2 * num_seeds * minibatch * 64 * 64 / small_ms / 1e6, 1),
        "dense_4096x256x256_gflops": round(2 * 4096 * 256 * 256 / big_ms / 1e6, 1),
    }


def dense_operations(hlo: str) -> set[str]:
    """Names of the compiled module's operations that compute a dense product: dots, and fusions whose
    computation holds one (the matrix-multiply library fusions)."""
    blocks = re.split(r"\n(?=\S)", hlo)  # one block per computation
    with_dot = {m.group(1) for block in blocks if " dot(" in block
                for m in [re.match(r"(?:ENTRY )?%?([\w.-]+)", block)] if m}
    dense = set(re.findall(r"%([\w.-]+) = \S+ dot\(", hlo))
    for name, called in re.findall(r"%([\w.-]+) = .*? fusion\(.*?calls=%([\w.-]+)", hlo):
        if called in with_dot:
            dense.add(name)
    return dense


def traced(num_seeds: int, iterations: int) -> dict:
    """Per-operation times of `iterations` traced iterations (ms per iteration), by kind."""
    agent = ppo.make_agent(CONFIG)
    update = jax.jit(jax.vmap(agent.update))
    states = jax.jit(jax.vmap(agent.init))(jax.random.split(jax.random.key(0), num_seeds))
    compiled = update.lower(states).compile()
    hlo = compiled.as_text()
    operations = set(re.findall(r"%([\w.-]+) = ", hlo))
    containers = set(re.findall(r"%([\w.-]+) = [^\n]*? (?:while|call|conditional)\(", hlo))
    dense = dense_operations(hlo)
    states, _ = update(states)
    jax.block_until_ready(states)
    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
        for _ in range(iterations):
            states, _ = update(states)
        jax.block_until_ready(states)
        jax.profiler.stop_trace()
        trace_file = next(Path(trace_dir).rglob("*.trace.json.gz"))
        events = json.load(gzip.open(trace_file))["traceEvents"]
    total_us, calls = collections.Counter(), collections.Counter()
    for event in events:
        name = event.get("name")
        if event.get("ph") == "X" and name in operations and name not in containers:
            total_us[name] += event.get("dur", 0)
            calls[name] += 1
    ms = {name: us / iterations / 1e3 for name, us in total_us.items()}
    dense_ms = sum(t for name, t in ms.items() if name in dense)
    return {
        "traced_operations_ms_per_iteration": round(sum(ms.values()), 2),  # inflated by the profiler
        "dense_products_ms_per_iteration": round(dense_ms, 2),
        "top_operations": [
            {"name": name, "ms_per_iteration": round(t, 3), "calls_per_iteration": calls[name] // iterations,
             "dense_product": name in dense}
            for name, t in sorted(ms.items(), key=lambda kv: -kv[1])[:15]
        ],
    }


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    parts = timed_parts(args.num_seeds)
    profile = traced(args.num_seeds, args.iterations)
    steps_per_s = args.num_seeds * CONFIG.batch_size / (parts["iteration_ms"] / 1e3)
    # The dense products are few and long (0.05-0.12 ms each), so the profiler's cost per operation barely
    # shows in their times: their share of the untraced iteration is the measure.
    profile["dense_products_share_of_iteration"] = round(
        profile["dense_products_ms_per_iteration"] / parts["iteration_ms"], 3)
    what = (f"PPO CartPole-v1, one iteration at {args.num_seeds} vmapped seeds: its parts timed, and every "
            "XLA operation traced")
    res = harness.result(
        SPEED, "ppo_cpu_profile", what, algo="ppo", env=CONFIG.env,
        config={"num_seeds": args.num_seeds, "num_envs": CONFIG.num_envs, "num_steps": CONFIG.num_steps,
                "update_epochs": CONFIG.update_epochs, "num_minibatches": CONFIG.num_minibatches,
                "hidden": list(CONFIG.hidden)},
        seeds=list(range(args.num_seeds)), run_s=round(parts["iteration_ms"] / 1e3, 5),
        throughput=steps_per_s, throughput_unit="env steps/s (all seeds)",
        extra={"parts": parts, "profile": profile})
    path = harness.write(res)
    print(json.dumps(parts, indent=1))
    for op in profile["top_operations"]:
        print(f"  {op['ms_per_iteration']:7.3f} ms  x{op['calls_per_iteration']:<4d} {op['name']}"
              f"{'  (dense product)' if op['dense_product'] else ''}")
    print(f"wrote {path}")
    share = profile["dense_products_share_of_iteration"]
    print(f"dense products: {profile['dense_products_ms_per_iteration']} ms of the "
          f"{parts['iteration_ms']:.1f} ms iteration ({100 * share:.0f}%), at {parts['dense_64x64_gflops']} "
          f"GFLOP/s (a large product: {parts['dense_4096x256x256_gflops']})")


if __name__ == "__main__":
    main()
