"""The package's import layers, walked with `ast` (no import is executed).

Layers point one way: commands (the CLI, dataset collection) -> agents -> library (envs, nn, returns, replay,
natural gradient, data I/O, runner, sweep, ...). A library module imports no agent and no command; an agent
imports library modules and other agents only where it extends them, and never a command.

The package does not obey this everywhere yet. What it breaks today is listed below as known debt, so that the
test fails on any *new* violation, and also when a listed one is gone (then delete its entry: the list only
shrinks). Imports inside functions are counted per module the same way; the CLI's are deliberate (they keep
`purerl --help` fast) and not counted.
"""

import ast
import pathlib
from collections import Counter

ROOT = pathlib.Path(__file__).resolve().parent.parent / "purerl"
COMMANDS = {"purerl.cli", "purerl.data.collect"}
LAZY_BY_DESIGN = {"purerl.cli"}

# (importer, imported) pairs that break the layers today.
KNOWN_LAYER_DEBT = {
    # every agent's `python -m purerl.agents.<algo>` entry calls the CLI
    *{(f"purerl.agents.{a}", "purerl.cli") for a in (
        "a2c", "bc", "harpg", "hnpg", "iql", "npg_igt", "odice", "pg", "pmoe_ppo", "pmoe_sac", "ppo", "prdc",
        "sac", "subpo", "td3_bc", "trpo")},
    ("purerl.agents.ppo", "purerl.agents.lpo"),  # PPO carries LPO's drift objective (and LPO imports PPO)
    ("purerl.agents.pmoe_ppo", "purerl.agents.pmoe_sac"),  # borrows pmoe_sac's expert choice and metrics
    ("purerl.agents.a2c", "purerl.agents.ppo"),  # borrows PPO internals
    ("purerl.data", "purerl.data.collect"),  # the data package re-exports the collect command
    ("purerl.data.cache", "purerl.data.collect"),
}
# The agents an agent extends (and so may import).
EXTENDS = {
    "purerl.agents.bc": {"purerl.agents.td3_bc"},
    "purerl.agents.prdc": {"purerl.agents.td3_bc"},
    "purerl.agents.pmoe_sac": {"purerl.agents.sac"},
    "purerl.agents.pmoe_ppo": {"purerl.agents.ppo"},
    "purerl.agents.lpo": {"purerl.agents.ppo"},
    "purerl.agents.cdsa": {"purerl.agents.td3_bc", "purerl.agents.iql"},  # corrects a trained base agent
}
# Imports of purerl modules inside functions, per module (outside the CLI).
KNOWN_INNER_IMPORTS = {
    "purerl.agents.cdsa": 10, "purerl.agents.lpg": 3, "purerl.agents.lpo": 3, "purerl.agents.ppo": 1,
    "purerl.agents.td3_bc": 1, "purerl.data.cache": 1, "purerl.data.collect": 9, "purerl.envs": 4,
    "purerl.envs.ant_coverage": 1, "purerl.meta": 1, "purerl.offline": 5, "purerl.pg_estimators": 1,
}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def purerl_imports(path: pathlib.Path):
    """(imported module, inside a function?) for every import of a purerl module in the file."""
    tree = ast.parse(path.read_text())
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        for name in names:
            if name.startswith("purerl"):
                yield name, id(node) in inside


def layer(module: str) -> int:
    return 2 if module in COMMANDS else 1 if module.startswith("purerl.agents.") else 0


def test_layers_point_one_way_apart_from_known_debt():
    found = set()
    for importer, path in MODULES.items():
        for imported, _ in purerl_imports(path):
            too_high = layer(imported) > layer(importer)
            sideways = (layer(importer) == layer(imported) == 1 and imported != importer
                        and imported not in EXTENDS.get(importer, ()))
            if too_high or sideways:
                found.add((importer, imported))
    assert found - KNOWN_LAYER_DEBT == set(), "new imports against the layers"
    assert KNOWN_LAYER_DEBT - found == set(), "paid debt: remove these entries from KNOWN_LAYER_DEBT"


def test_no_new_imports_inside_functions():
    counts = Counter()
    for importer, path in MODULES.items():
        if importer not in LAZY_BY_DESIGN:
            counts.update(importer for _, inner in purerl_imports(path) if inner)
    grown = {m: (n, KNOWN_INNER_IMPORTS.get(m, 0)) for m, n in counts.items() if n > KNOWN_INNER_IMPORTS.get(m, 0)}
    shrunk = {m: (counts.get(m, 0), n) for m, n in KNOWN_INNER_IMPORTS.items() if counts.get(m, 0) < n}
    assert not grown, f"imports moved inside functions (module: (now, known)): {grown}"
    assert not shrunk, f"fewer imports inside functions than listed; lower KNOWN_INNER_IMPORTS: {shrunk}"
