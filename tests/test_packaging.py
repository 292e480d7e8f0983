"""Packaging: `purerl --version`, and requirements.lock against pyproject.toml and the installed environment.

`make` installs requirements.lock (exact versions) and then purerl without dependencies, so a package that the
lock misses would be absent from a fresh install even though the developer's environment has it.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from purerl import cli

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def _lock() -> dict[str, str]:
    """requirements.lock as {canonical name: version}; every requirement line must be an exact pin."""
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LOCK_LINE.match(line)
        assert match, f"requirements.lock: not an exact pin: {line!r}"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def _own_requirements() -> list[Requirement]:
    """purerl's dependencies and those of every extra, read from pyproject.toml (the editable install's
    metadata is as old as its last `pip install`)."""
    extras = PYPROJECT.get("optional-dependencies", {}).values()
    specs = [*PYPROJECT["dependencies"], *(spec for group in extras for spec in group)]
    return [Requirement(spec) for spec in specs]


def _installed_closure() -> dict[str, set[str]]:
    """Every distribution that purerl with all its extras needs, through the installed packages' metadata:
    {canonical name: the extras asked of it}."""
    needed: dict[str, set[str]] = {}
    pending = [(req, "") for req in _own_requirements()]
    while pending:
        req, asked_extra = pending.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": asked_extra}):
            continue
        name = canonicalize_name(req.name)
        new_extras = set(req.extras) - needed.get(name, set())
        if name in needed and not new_extras:
            continue
        first_visit = name not in needed
        needed.setdefault(name, set()).update(req.extras)
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue  # reported by the test, which checks every needed name is installed
        for extra in ([""] if first_visit else []) + sorted(new_extras):
            pending.extend((Requirement(spec), extra) for spec in requires)
    return needed


def test_version_flag_prints_the_installed_version(capsys):
    cli.main(["--version"])
    assert capsys.readouterr().out == f"purerl {importlib.metadata.version('purerl')}\n"
    # the installed metadata is this checkout's (a stale editable install would print an old version)
    assert importlib.metadata.version("purerl") == PYPROJECT["version"]


def test_lock_pins_every_package_of_the_dev_install_at_its_installed_version():
    pins = _lock()
    needed = _installed_closure()
    assert "tfp-nightly" in needed, "distrax's unpinned tfp-nightly should be in the closure walked here"
    missing = sorted(set(needed) - set(pins))
    assert not missing, f"requirements.lock misses {missing}: run `make lock`"
    differing = {}
    for name in needed:
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            differing[name] = f"not installed, locked {pins[name]}"
            continue
        if Version(installed) != Version(pins[name]):
            differing[name] = f"installed {installed}, locked {pins[name]}"
    assert not differing, f"this environment is not requirements.lock's (run `make`): {differing}"


def test_pyproject_ranges_admit_the_locked_versions():
    pins = _lock()
    for req in _own_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} (pyproject.toml) is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside pyproject.toml's {req}: run `make lock`"
        )

