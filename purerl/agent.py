"""The agent contract shared by every algorithm in `purerl.agents`.

An agent is built from its Config by `make_agent(config) -> Agent`:

- `init(key) -> state`: a pytree holding everything the run needs (params, optimiser, env, key);
- `update(state) -> (state, metrics)`: one iteration, pure and jittable; metrics is a dict of scalars;
- `evaluate(state, key) -> returns`: undiscounted returns of `eval_episodes` fresh episodes of the
  current policy (jittable; not part of the timed training run);
- `policy` (optional, `purerl.evaluation.Policy`): the evaluation env and the action for one observation,
  which saved runs act with (`purerl.load`, `purerl render`); None where the agent does not expose it yet.

`make_train(config)` is then simply `init` followed by a `lax.scan` of `update`; the runner
(`purerl.runner`) instead scans `update` in jitted chunks so it can show progress, log and checkpoint
between chunks without changing a single number.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jax

from purerl.evaluation import Policy

ENV_STEPS = "env steps"  # interactions with the environment, per seed
UPDATES = "updates"  # gradient updates on a fixed dataset, per seed


@dataclass(frozen=True)
class Agent:
    init: Callable[[jax.Array], Any]
    update: Callable[[Any], tuple[Any, dict[str, jax.Array]]]
    evaluate: Callable[[Any, jax.Array], jax.Array]
    num_iterations: int
    # budget units per iteration and seed (env steps, unless `budget_unit` says otherwise)
    steps_per_iteration: int
    config: Any
    # what the budget counts: ENV_STEPS (online agents) or UPDATES (offline agents)
    budget_unit: str = ENV_STEPS
    policy: Policy | None = None  # how the trained agent acts (purerl.load, purerl render); None: not exposed


def train_fn(agent: Agent) -> Callable[[jax.Array], tuple[Any, dict[str, jax.Array]]]:
    """`train(key) -> (final_state, metrics stacked over iterations)`, one pure function."""

    def train(key):
        state = agent.init(key)
        return jax.lax.scan(lambda s, _: agent.update(s), state, None, length=agent.num_iterations)

    return train


def check_positive(config: Any, *names: str) -> None:
    """Raise a ValueError naming the first config field that is not > 0 (traced values are skipped)."""
    for name in names:
        value = getattr(config, name)
        if not is_traced(value) and not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")


def is_traced(value: Any) -> bool:
    """Whether a config value is a traced array: a field swept inside one program (purerl.config_sweep), whose
    concrete values were checked when each configuration was built on its own. Checks skip it."""
    return isinstance(value, jax.core.Tracer)


def concrete(*values: Any) -> bool:
    """Whether none of `values` is traced: a check of config values runs only when this holds (`if
    concrete(config.tau) and not 0 < config.tau <= 1: raise ...`). A traced value is a swept field whose every
    value was checked when its configuration was built on its own (purerl.config_sweep)."""
    return not any(is_traced(value) for value in values)


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_choices(config: Any, prefix: str = "") -> None:
    """Raise a ValueError naming the first field of the config dataclass (or of a dataclass nested in it)
    whose value is not one of the choices of its `Literal[...]` type, or, for a `tuple[Literal[...], ...]`,
    whose items are not. The command line refuses such values already (tyro lists the choices in `--help`);
    this checks configs built in Python the same way."""
    types = _field_types(type(config))
    for field in dataclasses.fields(config):
        name, value, kind = prefix + field.name, getattr(config, field.name), types[field.name]
        if dataclasses.is_dataclass(value):
            check_choices(value, prefix=f"{name}.")
            continue
        items = (value,)
        if typing.get_origin(kind) is tuple and typing.get_args(kind)[1:] == (...,):  # tuple[X, ...]
            kind, items = typing.get_args(kind)[0], tuple(value)
        if typing.get_origin(kind) is not Literal:
            continue
        choices = typing.get_args(kind)
        for item in items:
            if item not in choices:
                listed = ", ".join(str(choice) if choice != "" else "''" for choice in choices)
                raise ValueError(f"{name} must be one of {listed}, got {item!r}")

