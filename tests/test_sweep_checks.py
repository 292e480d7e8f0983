"""Every agent's own checks let a swept field through: `--sweep` builds the agent inside the program with the
swept fields as traced values (purerl.config_sweep), after checking every configuration's concrete values.

For every registered agent (on the tiny configs of tests/test_policies.py) and every int or float config
field, the agent is built the way a sweep builds it, vmapped over two values of that field, shapes only
(nothing is compiled, nothing trains). A field may still be refused, when the agent uses it as a Python value
(a shape, a loop count, a branch): the sweep then names it. What must not refuse it is a check of its value,
which the concrete configurations already passed: checks live in functions named `validate*` or `check*`,
and a traced value must get through all of them (`purerl.agent.concrete`).
"""

import dataclasses
import traceback
import typing

import jax
import numpy as np
import pytest
from test_policies import FLAGS, OFFLINE_AGENTS

from purerl import agents, cli, config_sweep
from purerl import data as pdata


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    """A small Pendulum-shaped dataset for the offline agents (their config names a dataset file)."""
    rng = np.random.default_rng(0)
    n = 64
    rows = {"observations": rng.normal(size=(n, 3)).astype(np.float32),
            "actions": rng.uniform(-1, 1, (n, 1)).astype(np.float32), "rewards": np.zeros(n, np.float32),
            "next_observations": rng.normal(size=(n, 3)).astype(np.float32),
            "terminals": np.ones(n, bool), "timeouts": np.zeros(n, bool)}
    path = str(tmp_path_factory.mktemp("sweep_checks") / "pendulum.hdf5")
    pdata.write_hdf5(path, rows, {"env_id": "Pendulum-v1", "episode_length": 200, "purerl_version": "0"})
    return path


def numeric_fields(config, prefix=""):
    """(dotted name, type, value) of every int or float field, nested configs included (as --sweep names
    them)."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            yield from numeric_fields(value, f"{prefix}{field.name}.")
        elif hints[field.name] in (int, float):
            yield f"{prefix}{field.name}", hints[field.name], value


def build_traced(make_agent, config, values: dict[str, np.ndarray]) -> None:
    """Build the agent as a sweep does: vmapped over columns of two values of the fields, shapes only."""
    def build(point):
        make_agent(config_sweep.with_values(config, point))
        return np.zeros(())

    jax.eval_shape(jax.vmap(build, axis_size=2), values)


def test_every_agent_is_covered():
    assert sorted(FLAGS) == sorted(agents.ALGOS)


@pytest.mark.parametrize("algo", sorted(agents.ALGOS))
def test_checks_let_a_swept_field_through(algo, dataset):
    module, config, _, _ = cli._parse(algo, [*FLAGS[algo], *(["--dataset", dataset] if algo in OFFLINE_AGENTS
                                                              else [])])
    build_traced(module.make_agent, config, {})  # the agent itself can be built inside a program
    fields = list(numeric_fields(config))
    assert fields
    refused_by_checks = []
    for name, kind, value in fields:
        other = value * 0.5 if kind is float and value else value + 1  # the values do not matter when traced
        column = np.asarray([value, other], np.float32 if kind is float else np.int32)
        try:
            build_traced(module.make_agent, config, {name: column})
        except Exception as err:
            # refused by name as a Python value (config_sweep's tracing errors), never by another error
            assert isinstance(err, config_sweep._TRACING_ERRORS), f"{algo} {name}: {err!r}"
            where = [frame for frame in traceback.extract_tb(err.__traceback__)
                     if "/purerl/" in frame.filename]
            if where[-1].name.startswith(("validate", "check")):
                refused_by_checks.append(f"{name} ({where[-1].filename.rsplit('/purerl/', 1)[-1]}:"
                                         f"{where[-1].lineno} {where[-1].line})")
    assert not refused_by_checks, f"{algo}: checks refuse traced values of " + "; ".join(refused_by_checks)
