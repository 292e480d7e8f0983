"""One environment interface: `make(name, **kwargs) -> (env, env_params)`.

Every environment speaks gymnax 1.0's functional API (auto-reset inside `step`, `terminated` and
`truncated` separate, pre-reset observation in `info["final_observation"]`). Names:

- gymnax classic control and MinAtar, e.g. ``CartPole-v1``, ``Breakout-MinAtar``;
- brax continuous control, e.g. ``hopper`` (1000-step time limit; ``backend=`` picks the physics);
- purerl's own environments, added with :func:`register`.

Keyword arguments that name a field of the env's params (e.g. ``max_steps_in_episode=200``) override
that field; the rest go to the environment's constructor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from purerl import deferred_imports
from purerl.envs.ant_coverage import make_ant_coverage
from purerl.envs.brax import BRAX_ENVS, BraxEnv  # brax itself is imported on the first BraxEnv
from purerl.envs.comblock import CombinationLock
from purerl.envs.submodular import SubmodularGridEnv
from purerl.envs.wrappers import (  # noqa: F401  (re-exported)
    ClipAction,
    EpisodeStats,
    NormalizeObservation,
    RescaleAction,
    TanhAction,
    action_dim,
    is_discrete,
)

deferred_imports.release()  # gymnax is imported now (by the modules above): back to real imports for users

GYMNAX_ENVS = (
    "CartPole-v1",
    "Acrobot-v1",
    "Pendulum-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Breakout-MinAtar",
    "SpaceInvaders-MinAtar",
    "Asterix-MinAtar",
    "Freeway-MinAtar",
)


def _make_gymnax(name: str) -> Callable[..., Any]:
    def factory(**kwargs):
        import gymnax

        return gymnax.make(name, **kwargs)[0]

    return factory


def _make_brax(name: str) -> Callable[..., Any]:
    def factory(**kwargs):
        return BraxEnv(name, **kwargs)

    return factory


_REGISTRY: dict[str, Callable[..., Any]] = {}


def register(name: str, factory: Callable[..., Any]) -> None:
    """Register `factory(**constructor_kwargs) -> env` under `name` (an env with the gymnax API)."""
    _REGISTRY[name] = factory


for _name in GYMNAX_ENVS:
    register(_name, _make_gymnax(_name))

for _name in BRAX_ENVS:
    register(_name, _make_brax(_name))


def _make_submodular(objective: str) -> Callable[..., Any]:
    def factory(**kwargs):
        return SubmodularGridEnv(objective, **kwargs)

    return factory


# SubPO grid worlds (purerl.envs.submodular); names submodular-<objective>
_SUBMODULAR = ("coverage", "bimodal", "gp", "dopt", "items", "two_rooms")
SUBMODULAR_ENVS = tuple(f"submodular-{o}" for o in _SUBMODULAR)
for _name in SUBMODULAR_ENVS:
    register(_name, _make_submodular(_name.removeprefix("submodular-")))


def _make_comblock(**kwargs):
    return CombinationLock(**kwargs)


register("comblock", _make_comblock)


def _make_ant_coverage(reward: str) -> Callable[..., Any]:
    def factory(**kwargs):
        return make_ant_coverage(reward, **kwargs)

    return factory


# SubPO's continuous coverage task (purerl.envs.ant_coverage): brax ant + a 100x100 coverage mask
ANT_COVERAGE_ENVS = ("ant_coverage", "ant_coverage_modular")
register("ant_coverage", _make_ant_coverage("submodular"))
register("ant_coverage_modular", _make_ant_coverage("modular"))


def names() -> list[str]:
    """All registered environment names."""
    return list(_REGISTRY)


def check_name(name: str) -> None:
    """Raise a ValueError listing the valid names if `name` is not registered."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown env {name!r}; valid envs: {', '.join(_REGISTRY)}")


def make(name: str, **kwargs) -> tuple[Any, Any]:
    """Build the environment `name`; returns `(env, env_params)`."""
    check_name(name)
    param_fields = _param_fields(name) if kwargs else set()
    env = _REGISTRY[name](**{k: v for k, v in kwargs.items() if k not in param_fields})
    params = env.default_params
    param_kwargs = {k: v for k, v in kwargs.items() if k in param_fields}
    return env, (params.replace(**param_kwargs) if param_kwargs else params)


_PARAM_FIELDS: dict[str, set[str]] = {}


def _param_fields(name: str) -> set[str]:
    """Field names of the env's params dataclass (read once from a default-constructed env)."""
    if name not in _PARAM_FIELDS:
        _PARAM_FIELDS[name] = {f.name for f in dataclasses.fields(_REGISTRY[name]().default_params)}
    return _PARAM_FIELDS[name]
