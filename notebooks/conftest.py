"""The test suite runs every notebook through nbmake in smoke mode (`make test`, PURERL_NOTEBOOK_SMOKE=1).

A smoke run exists to go through each cell's code; its numbers are not read. On a CPU most of its time is XLA
compiling the notebook's one live program, so each notebook's kernel compiles with XLA's backend optimisation
off (`SMOKE_XLA_FLAG`: about half the compile time of a PPO program). Only the kernel gets the flag: this
process's environment is restored after each notebook, so the other tests compile as they always do.
"""

import os

import pytest

SMOKE_XLA_FLAG = "--xla_backend_optimization_level=0"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """nbmake starts a notebook's kernel, which inherits this environment, while the item runs."""
    smoke_notebook = os.environ.get("PURERL_NOTEBOOK_SMOKE") == "1" and item.path.suffix == ".ipynb"
    if not smoke_notebook:
        return (yield)
    saved = os.environ.get("XLA_FLAGS")
    os.environ["XLA_FLAGS"] = f"{saved or ''} {SMOKE_XLA_FLAG}".strip()
    try:
        return (yield)
    finally:
        if saved is None:
            del os.environ["XLA_FLAGS"]
        else:
            os.environ["XLA_FLAGS"] = saved
