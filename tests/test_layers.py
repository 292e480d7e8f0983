"""The package's import layers, walked with `ast` (no import is executed).

Layers point one way: commands (the CLI, dataset collection) -> agents -> library (envs, nn, returns, replay,
rollout, drift, mixture, natural gradient, data I/O, runner, sweep, ...). A library module imports no agent
and no command; an agent imports library modules and, at most, the agents it extends (`EXTENDS`), never a
command.

An `if __name__ == "__main__":` block is a command: it never runs on import, so the imports inside it (every
agent's `python -m purerl.agents.<algo>` entry calls `purerl.cli.agent_main`) belong to the command layer and
are allowed. Imports of purerl modules inside functions are not allowed outside the CLI and `purerl.load`,
whose lazy imports are deliberate (they keep `purerl --help` fast and `import purerl` free of jax).

Known exceptions are listed below, each with its reason; the test fails on any new violation, and also when a
listed one is gone (then delete its entry: the lists only shrink).
"""

import ast
import pathlib
from collections import Counter

ROOT = pathlib.Path(__file__).resolve().parent.parent / "purerl"
COMMANDS = {"purerl.cli", "purerl.collect"}
# `purerl.load` (purerl/__init__.py) imports purerl.saved when called: `import purerl` must not start jax
LAZY_BY_DESIGN = {"purerl.cli", "purerl"}

# (importer, imported) pairs that break the layers today, each with its reason.
KNOWN_LAYER_DEBT: set[tuple[str, str]] = set()
# The agents an agent extends (and so may import, by their public names).
EXTENDS = {
    "purerl.agents.prdc": {"purerl.agents.td3_bc"},
    "purerl.agents.pmoe_sac": {"purerl.agents.sac"},
    "purerl.agents.pmoe_ppo": {"purerl.agents.ppo"},
    "purerl.agents.lpo": {"purerl.agents.ppo"},  # meta-trains PPO's drift
    "purerl.agents.cdsa": {"purerl.agents.td3_bc", "purerl.agents.iql"},  # corrects a trained base agent
}
# Imports of purerl modules inside functions, per module (outside the CLI), each with its reason.
KNOWN_INNER_IMPORTS: dict[str, int] = {}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def is_main_block(node: ast.AST) -> bool:
    """`if __name__ == "__main__":`"""
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__" and len(test.comparators) == 1
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value == "__main__")


def purerl_imports(path: pathlib.Path):
    """(imported module, inside a function?) for every import of a purerl module in the file, outside its
    `if __name__ == "__main__":` block (command layer, see the module docstring)."""
    tree = ast.parse(path.read_text())
    inside, main_block = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside.update(id(n) for n in ast.walk(node) if n is not node)
        if is_main_block(node):
            main_block.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        for name in names:
            if name.startswith("purerl") and id(node) not in main_block:
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
    grown = {m: (n, KNOWN_INNER_IMPORTS.get(m, 0)) for m, n in counts.items()
             if n > KNOWN_INNER_IMPORTS.get(m, 0)}
    shrunk = {m: (counts.get(m, 0), n) for m, n in KNOWN_INNER_IMPORTS.items() if counts.get(m, 0) < n}
    assert not grown, f"imports moved inside functions (module: (now, known)): {grown}"
    assert not shrunk, f"fewer imports inside functions than listed; lower KNOWN_INNER_IMPORTS: {shrunk}"


def private_uses(path: pathlib.Path):
    """`_name`s that the file takes from other purerl modules: imported by name, or read as `module._name`."""
    tree = ast.parse(path.read_text())
    modules = set()  # local names bound to purerl modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("purerl"):
            for alias in node.names:
                if alias.name.startswith("_"):
                    yield f"{node.module}.{alias.name}"
                elif f"{node.module}.{alias.name}" in MODULES:
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules.update(a.asname for a in node.names if a.name.startswith("purerl") and a.asname)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            yield f"{node.value.id}.{node.attr}"


def test_modules_use_only_each_others_public_names():
    found = {importer: sorted(set(private_uses(path))) for importer, path in MODULES.items()}
    assert {m: names for m, names in found.items() if names} == {}
