"""Command line: `purerl list`, `purerl train <algo> [flags]`, `purerl train --resume DIR`.

Flags of `train` come from the agent's Config dataclass (one flag per field, documented by the field's
docstring) plus the run options of `purerl.runner.RunOptions` (seeds, devices, output, checkpoints).
`python -m purerl.agents.<algo> [flags]` is the same as `purerl train <algo> [flags]`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import traceback
from typing import Annotated

from purerl.cpu import with_cpu_flags
from purerl.flags import fail as _fail  # light: no jax import (keeps `purerl --help` fast)
from purerl.flags import from_dict as _from_dict

# Every other purerl module is imported inside the command that needs it: `purerl --help` and bad-input errors
# never import jax, and a multi-process run joins jax.distributed before any agent module starts JAX.

USAGE = """usage: purerl <command> [args]

commands:
  --version                    the installed purerl's version
  list                         algorithms and environments
  train <algo> [flags]         train an agent over vmapped seeds (purerl train <algo> --help for flags)
  train cdsa --base B --dataset D  base offline agent vs +CDSA test-time correction (purerl train cdsa --help)
  train --resume DIR [flags]   continue the run in DIR from its last checkpoint (agent flags such as --lr or
                               --total-timesteps may change, if the train state keeps its shapes)
  collect --env E --kinds K,.. generate D4RL-style offline datasets (purerl collect --help)
  meta-train lpo [flags]       meta-train a learned PPO drift (LPO / TA-LPO) with OpenAI-ES
  meta-train lpg [flags]       meta-train a learned policy-gradient rule (TA-LPG) on random grid worlds
  eval RUN_DIR [flags]         evaluate a saved run's checkpoint: mean return per seed and over seeds, with
                               95% CIs (--checkpoint N, --episodes E, --env ENV, --seed S, --json)
  render RUN_DIR --out FILE    one episode of a saved run's policy: a GIF, or brax's HTML viewer (.html)
  plot RUN_DIR... [--metric M] learning curves of finished runs, seed mean with a 95% bootstrap band
  compare RUN_DIR... [--out F] mean, median, IQM, optimality gap and probability of improvement of runs'
                               final returns, with stratified-bootstrap CIs (purerl compare --help)
"""


@contextlib.contextmanager
def _exit_at_once_on_error(process_id: int):
    """In a process of a multi-process run, any error ends this process at once, its last line the error.

    A normal exit would run `jax.distributed`'s shutdown barrier, which waits minutes for the other
    processes (they sit in a collective, waiting for this one) and then aborts natively. `os._exit` skips
    it: the others see the process gone (the worker parent stops them; on a cluster the coordination
    service's heartbeat timeout ends them)."""
    try:
        yield
    except SystemExit as stop:  # _fail has printed its one line
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(stop.code if isinstance(stop.code, int) else 1)
    except BaseException as err:  # noqa: BLE001 -- report anything, then leave without the barrier
        traceback.print_exc()
        print(f"purerl: error: process {process_id}: {type(err).__name__}: {err}".rstrip(), file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def _parse(algo: str, argv: list[str]):
    """Parse `argv` into (agent module, agent Config, RunOptions, --sweep flags) with tyro; flags are not
    prefixed."""
    import tyro

    from purerl import agents, flags
    from purerl.config_sweep import SweepOptions
    from purerl.runner import RunOptions

    module = agents.get(algo)

    # Built at run time (the agent's Config is only known now); name="" drops the flag prefixes.
    Args = dataclasses.make_dataclass(
        "Args",
        [
            ("config", Annotated[module.Config, tyro.conf.arg(name="")]),
            ("run", Annotated[RunOptions, tyro.conf.arg(name="")]),
            ("grid", Annotated[SweepOptions, tyro.conf.arg(name="")]),
        ],
        frozen=True,
    )

    args = flags.parse(Args, argv, prog=f"purerl train {algo}",
                       description=(module.__doc__ or "").strip().split("\n")[0])
    return module, args.config, args.run, args.grid.sweep


def train(algo: str, argv: list[str]) -> dict | None:
    try:
        _limit_cpu_threads(_cpu_threads_flag(argv))  # before JAX creates its CPU client
        process = _join_processes(argv)  # must come before anything touches a device
    except ValueError as err:
        _fail(str(err))
    if process is None:
        return _train(algo, argv, multi_process=False)
    with _exit_at_once_on_error(process.process_id):
        return _train(algo, argv, multi_process=True)


def _train(algo: str, argv: list[str], multi_process: bool) -> dict | None:
    from purerl import config_sweep, runner, sweep, workers

    try:
        module, config, options, sweep_flags = _parse(algo, argv)
        if multi_process:
            options = _all_devices(options)
        agent = module.make_agent(config)  # validates the config before anything is compiled
        if sweep_flags:  # every configuration of the grid x every seed, one program (purerl.config_sweep)
            if getattr(config, "eval_env", ""):
                raise ValueError("--sweep evaluates inside one compiled program; a gymnasium --eval-env runs "
                                 "on the host (train each configuration as its own run)")
            config_sweep.check_options(options)
            agent = config_sweep.swept_agent(module.make_agent, config,
                                             config_sweep.parse_grid(sweep_flags, config))
        if options.process_id == 0:
            runner.check_out_dir(options.out, options.overwrite)
        runner.check_options(options)
        num_workers = workers.count(options)
        if num_workers == 1:
            sweep.check_devices(options.num_seeds, options.num_devices)
    except ValueError as err:
        _fail(str(err))
    if num_workers > 1:  # the seeds are split over local processes (purerl.workers); worker 0 writes
        _exit_if_failed(workers.run(["train", algo, *_without_flag(argv, "--workers"), "--workers",
                                     str(num_workers)], num_workers, options.cpu_threads))
        return _saved_summary(options.out)
    result = _run(runner, algo, agent, options)
    if options.process_id == 0:
        (config_sweep.print_summary if sweep_flags else _print_summary)(result.summary, options.out)
    return result.summary


def _run(runner, algo, agent, options, resume_dir=None):
    from purerl import checkpoint, config_sweep

    try:
        if isinstance(agent, config_sweep.Sweep):
            return config_sweep.run(algo, agent, options)
        return runner.run(algo, agent, options, resume_dir=resume_dir)
    except runner.TrainingDiverged as err:  # not a usage error: exit status 1
        print(f"purerl: error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except checkpoint.CheckpointMismatch as err:  # --resume of a checkpoint that does not fit
        _fail(str(err))


def _without_flag(argv: list[str], flag: str) -> list[str]:
    """`argv` without `flag VALUE` / `flag=VALUE`."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def _exit_if_failed(code: int) -> None:
    if code:
        raise SystemExit(code)


def _saved_summary(out: str | None) -> dict | None:
    path = os.path.join(out, "summary.json") if out else None
    if path and os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    return None


def _cpu_threads_flag(argv: list[str]) -> int:
    """The value of --cpu-threads in `argv` (0 if absent or not a number: tyro reports a bad value later)."""
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--cpu-threads", default="0")
    flags, _ = parser.parse_known_args(argv)
    try:
        return int(flags.cpu_threads)
    except ValueError:
        return 0


def _limit_cpu_threads(threads: int) -> None:
    """--cpu-threads (purerl.cpu.limit_threads), refused once JAX's CPU client runs with another pool."""
    from purerl.cpu import THREADS_ENV, limit_threads

    if threads > 0 and "jax" in sys.modules and os.environ.get(THREADS_ENV) != str(threads):
        from jax._src import xla_bridge  # private: whether the backends exist has no public query

        if getattr(xla_bridge, "backends_are_initialized", lambda: False)():
            raise ValueError("--cpu-threads takes effect when JAX starts, and JAX has started in this Python "
                             "process: run `purerl train` in a fresh process")
    limit_threads(threads)


def _join_processes(argv: list[str]):
    """Multi-host runs: join jax.distributed before JAX initialises its backend (so before the agent
    modules are imported). The flags are read here and again, with the others, by tyro. Returns the
    process flags of a multi-process run, else None."""
    import argparse

    from purerl.runner import RunOptions

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--num-processes", type=int, default=RunOptions.num_processes)
    parser.add_argument("--process-id", type=int, default=RunOptions.process_id)
    parser.add_argument("--coordinator", default=RunOptions.coordinator)
    parser.add_argument("--distributed-timeout", type=int, default=RunOptions.distributed_timeout)
    flags, _ = parser.parse_known_args(argv)
    if flags.num_processes == 1:
        return None
    if flags.num_processes < 1 or not 0 <= flags.process_id < flags.num_processes:
        raise ValueError(
            f"process_id must lie in [0, num_processes); got {flags.process_id} of {flags.num_processes}"
        )
    from purerl import compile_once, sweep

    sweep.init_distributed(flags.coordinator, flags.num_processes, flags.process_id,
                           flags.distributed_timeout)
    compile_once.enable()  # local worker processes: process 0 compiles, the others load its programs
    return flags


def _all_devices(options):
    """A multi-host run shards the seed axis over every process's devices."""
    import jax

    if options.num_devices == 1:
        options = dataclasses.replace(options, num_devices=jax.device_count())
    if options.num_devices != jax.device_count():
        raise ValueError(
            f"a multi-host run shards over all {jax.device_count()} devices; "
            f"got num_devices={options.num_devices}"
        )
    return options


def resume(directory: str, argv: list[str]) -> dict | None:
    try:
        process = _join_processes(argv)  # a worker process of a resumed multi-worker run
    except ValueError as err:
        _fail(str(err))
    if process is None:
        return _resume(directory, argv, process)
    with _exit_at_once_on_error(process.process_id):
        return _resume(directory, argv, process)


def _resume(directory: str, argv: list[str], process) -> dict | None:
    from purerl import agents, runner, workers

    try:
        saved = runner.load_run_config(directory)
        if "sweep" in saved:
            raise ValueError(f"cannot resume: {directory!r} is one configuration of a sweep, and sweeps keep "
                             "no checkpoints")
        module = agents.get(saved["algo"])
        config = _from_dict(module.Config, saved["config"])
        options = _from_dict(runner.RunOptions, saved["run"])
        if process is None and options.workers <= 1:  # in this process (worker processes get theirs)
            _limit_cpu_threads(options.cpu_threads)
        agent = module.make_agent(config)
        runner.check_options(options, directory)
        if argv and process is None:  # flags change the agent's config from here on (e.g. after divergence)
            agent = _change_on_resume(module, agent, argv, directory, saved)
    except ValueError as err:
        _fail(str(err))
    if process is not None:
        options = dataclasses.replace(options, process_id=process.process_id, coordinator=process.coordinator)
    elif options.num_processes > 1 and options.num_processes == options.workers:  # run by local workers
        _exit_if_failed(workers.run(["train", "--resume", directory], options.workers, options.cpu_threads))
        return _saved_summary(directory)
    result = _run(runner, saved["algo"], agent, options, resume_dir=directory)
    if options.process_id == 0:
        _print_summary(result.summary, directory)
    return result.summary


def _change_on_resume(module, agent, argv: list[str], directory: str, saved: dict):
    """The agent with `argv` applied to the saved config, recorded in the run's config.json.

    Only the agent's flags can change (the seeds, devices and outputs are the run's own), and only in ways
    that keep the shapes of the train state, so that the checkpoint still fits: learning rates,
    coefficients, the budget (`--total-timesteps` extends a run). Checked before anything is written."""
    import jax

    from purerl import checkpoint, flags
    from purerl.logging import write_json

    config = flags.parse(module.Config, argv, prog=f"purerl train --resume {directory}", default=agent.config)
    before = dataclasses.asdict(agent.config)
    changed = {k: v for k, v in dataclasses.asdict(config).items() if v != before[k]}
    new_agent = module.make_agent(config)
    key = jax.random.PRNGKey(0)
    old_shapes, new_shapes = jax.eval_shape(agent.init, key), jax.eval_shape(new_agent.init, key)
    if jax.tree.structure(old_shapes) != jax.tree.structure(new_shapes) or jax.tree.leaves(old_shapes) != \
            jax.tree.leaves(new_shapes):
        raise ValueError(f"{', '.join(changed)} cannot change on --resume: it changes the shapes of the "
                         "train state, so the checkpoint no longer fits (start a new run instead)")
    latest = checkpoint.latest(os.path.join(directory, "checkpoints"))
    if latest is None:
        raise ValueError(f"cannot resume: {directory!r} has no checkpoint")
    if latest >= new_agent.num_iterations:
        raise ValueError(f"the run has already done {latest} of {new_agent.num_iterations} iterations; "
                         "raise the budget to continue it")
    history = [*saved.get("changed_on_resume", []), {"from_iteration": latest, "flags": list(argv),
                                                      "changed": changed}]
    write_json(os.path.join(directory, "config.json"),
               dict(saved, config=dataclasses.asdict(config), changed_on_resume=history))
    return new_agent


def _print_summary(summary: dict, out: str | None) -> None:
    from purerl.agent import ENV_STEPS  # lazily, as every jax-importing module here (fast `purerl --help`)

    per_seed = " ".join(f"{r:.1f}" for r in summary["final_return_per_seed"])
    unit = summary["budget_unit"]
    budget, throughput = (summary[k] for k in (("total_timesteps", "env_steps_per_s") if unit == ENV_STEPS
                                               else ("total_updates", "updates_per_s")))
    print(
        f"{summary['algo']}{' on ' + summary['env'] if summary['env'] else ''}: "
        f"{summary['num_seeds']} seed(s) x {budget} {unit}\n"
        f"  final return (mean of {summary['eval_episodes']} episodes per seed): "
        f"mean {summary['final_return_mean']:.1f}"
        f"  min {summary['final_return_min']:.1f}  max {summary['final_return_max']:.1f}\n"
        f"  per seed: {per_seed}\n"
        + _score_line(summary) +
        f"  compile {summary['compile_s']:.1f} s, run {summary['run_s']:.1f} s, "
        f"{throughput:,.0f} {unit}/s"
        + (f"\n  outputs in {out}" if out else "")
    )


def _score_line(summary: dict) -> str:
    """The D4RL-normalised scores of a run evaluated in a gymnasium env (`--eval-env`), or why it has none."""
    if "eval_env" not in summary:
        return ""
    if summary["final_score_mean"] is None:
        return f"  in {summary['eval_env']}: {summary['score_note']}\n"
    refs = summary["reference_returns"]
    per_seed = " ".join(f"{s:.1f}" for s in summary["final_score_per_seed"])
    return (f"  D4RL-normalised score in {summary['eval_env']}: mean {summary['final_score_mean']:.1f}, per "
            f"seed {per_seed} (reference returns {refs['min']:.1f} .. {refs['max']:.1f})\n")


def list_all() -> None:
    from purerl import agents, envs

    print("algorithms: " + ", ".join(agents.ALGOS))
    print("environments: " + ", ".join(envs.names()))


def agent_main(algo: str, argv: list[str] | None = None) -> None:
    """Entry point of `python -m purerl.agents.<algo>`."""
    train(algo, list(sys.argv[1:] if argv is None else argv))


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "jax" not in sys.modules:  # XLA reads its flags once, when jax starts (purerl.cpu says why these)
        os.environ["XLA_FLAGS"] = with_cpu_flags(os.environ.get("XLA_FLAGS", ""))
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    if argv[0] == "--version":  # the installed distribution's metadata, as pip sees it (no jax import)
        from importlib.metadata import version

        print(f"purerl {version('purerl')}")
        return
    command, rest = argv[0], argv[1:]
    if command == "list":
        list_all()
    elif command == "collect":  # offline datasets (purerl.collect)
        from purerl.collect import main as collect_main

        collect_main(rest)
    # learned objectives (purerl.agents.lpo) and update rules (purerl.agents.lpg)
    elif command == "meta-train":
        methods = {"lpo": "purerl.agents.lpo", "lpg": "purerl.agents.lpg"}
        if not rest or rest[0] not in methods:
            _fail(f"meta-train needs the method: purerl meta-train {{{'|'.join(methods)}}} [flags]")
        import importlib

        importlib.import_module(methods[rest[0]]).meta_train_main(rest[1:])
    elif command in ("plot", "compare"):  # statistics of finished run directories (purerl.compare)
        from purerl import compare

        (compare.plot_main if command == "plot" else compare.compare_main)(rest)
    elif command in ("eval", "render"):  # saved runs (purerl.saved)
        from purerl import saved

        (saved.eval_main if command == "eval" else saved.render_main)(rest)
    elif command == "train":
        if rest and rest[0] == "--resume":
            if len(rest) < 2:
                _fail("--resume needs the run directory")
            resume(rest[1], rest[2:])
        elif not rest or rest[0].startswith("-"):
            _fail("train needs an algorithm name: purerl train <algo> [flags] (see `purerl list`)")
        elif rest[0] == "cdsa":  # not an Agent: wraps a trained base agent (purerl.agents.cdsa.main)
            from purerl.agents.cdsa import main as cdsa_main

            cdsa_main(rest[1:])
        else:
            from purerl import agents

            try:
                agents.check_algo(rest[0])
            except ValueError as err:
                _fail(str(err))
            train(rest[0], rest[1:])
    else:
        _fail(f"unknown command {command!r}; valid commands: list, train, collect, meta-train, plot, "
              "compare, eval, render")


if __name__ == "__main__":
    main()
