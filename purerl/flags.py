"""Command-line flags from config dataclasses (tyro), and the one-line error of every command for bad input.

Bad input gets exactly one line on stderr, `purerl: error: <what and how to fix>`, and exit status 2, before
anything is compiled or written. tyro reports parse errors (unknown flags, values of the wrong type, missing
values) in a framed, multi-line panel; `parse` turns that panel into the same single line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import sys
from typing import NoReturn, TypeVar

T = TypeVar("T")

_FRAME = "╭╮╰╯│─ "


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `purerl: error: message` and exit with `code` (2: bad input)."""
    print(f"purerl: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def from_dict(cls: type[T], values: dict) -> T:
    """Rebuild a frozen config dataclass from its JSON dict (lists back to tuples; unknown keys dropped), as a
    run directory's config.json stores it."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names})


def parse(cls: type[T], argv: list[str], prog: str, description: str = "", default: T | None = None) -> T:
    """`cls` filled from `argv`: one flag per field, documented by the field's docstring (`--help`).

    A parse error exits through `fail` with tyro's message on one line and a pointer to `--help`."""
    import tyro

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.cli(cls, args=argv, prog=prog, description=description, default=default)
    except SystemExit as stop:
        if not stop.code:  # --help
            raise
        fail(f"{_panel_message(captured.getvalue())} (see `{prog} --help`)")


def _panel_message(panel: str) -> str:
    """The message of a tyro error panel: its first paragraph, unwrapped, without the frame."""
    lines = [line.strip(_FRAME) for line in panel.splitlines()[1:]]  # the first line is the title bar
    message: list[str] = []
    for line in lines:
        if not line:
            if message:
                break
            continue
        if set(line) <= set(_FRAME + "-"):  # a rule (drawn with "-" where the output is not UTF-8) ends the
            if message:  # message, or comes before it
                break
            continue
        message.append(line)
    return " ".join(message) or panel.strip() or "could not parse the flags"

