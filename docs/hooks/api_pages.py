"""mkdocs hook: one API reference page per module of the purerl package, rendered by mkdocstrings.

The pages are generated at build time from the package's files (a page holds `::: purerl.<module>`), so a new
module gets its page, and its place under "API reference" in the navigation, without anyone writing one.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

PACKAGE = "purerl"
OVERVIEW = "api/index.md"  # hand-written: how the modules layer


def _modules(root: Path) -> list[str]:
    """Every module and package of PACKAGE, dotted, sorted (a package by its __init__.py)."""
    names = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)


def _page(module: str) -> str:
    return f"api/{module}.md"


def _root(config) -> Path:
    return Path(config.config_file_path).parent


def on_config(config):
    """Append "API reference" to the navigation: the overview, the top-level modules, then each subpackage."""
    top_level, subpackages = [], {}
    for module in _modules(_root(config)):
        parts = module.split(".")
        if len(parts) <= 2 and not (_root(config) / PACKAGE / parts[-1]).is_dir():
            top_level.append({module: _page(module)})
        else:
            subpackages.setdefault(".".join(parts[:2]), []).append({module: _page(module)})
    sections = [{package: pages} for package, pages in subpackages.items()]
    config.nav = [*(config.nav or []), {"API reference": [OVERVIEW, *top_level, *sections]}]
    return config


def on_files(files: Files, config) -> Files:
    for module in _modules(_root(config)):
        files.append(File.generated(config, _page(module), content=f"::: {module}\n"))
    return files
