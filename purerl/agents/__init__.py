"""Agent registry: algorithm name -> module. Each module defines `Config`, `make_agent` and `make_train`."""

from __future__ import annotations

import importlib
from types import ModuleType

ALGOS: dict[str, str] = {
    "pg": "purerl.agents.pg", "npg_igt": "purerl.agents.npg_igt", "harpg": "purerl.agents.harpg",
    "ppo": "purerl.agents.ppo",
    "pmoe_ppo": "purerl.agents.pmoe_ppo",
    "trpo": "purerl.agents.trpo", "hnpg": "purerl.agents.hnpg",
    "sac": "purerl.agents.sac",
    "pmoe_sac": "purerl.agents.pmoe_sac",
    "subpo": "purerl.agents.subpo", "a2c": "purerl.agents.a2c",
    "td3_bc": "purerl.agents.td3_bc", "iql": "purerl.agents.iql", "bc": "purerl.agents.bc",
    "prdc": "purerl.agents.prdc", "odice": "purerl.agents.odice",
}


def check_algo(name: str) -> None:
    if name not in ALGOS:
        raise ValueError(f"unknown algorithm {name!r}; valid algorithms: {', '.join(ALGOS)}")


def get(name: str) -> ModuleType:
    """The agent module for `name` (imported on first use)."""
    check_algo(name)
    return importlib.import_module(ALGOS[name])
