"""The notebooks' sources are the percent-format .py files in notebooks/; each .ipynb beside one holds the
same cells plus their executed outputs. A cell edited in one file but not synced into the other fails here."""

import importlib.util
import os
import types
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(p for p in NOTEBOOKS.glob("*.py") if p.name != "conftest.py")  # conftest: nbmake's settings


def cells(notebook):
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def test_every_notebook_has_its_source():
    assert SOURCES, "no notebook sources found"
    assert {p.stem for p in NOTEBOOKS.glob("*.ipynb")} == {p.stem for p in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_cells_equal_the_py_source(source):
    paired = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert cells(paired) == cells(jupytext.read(source)), f"run: jupytext --sync notebooks/{source.name}"


def load_notebook_conftest():
    spec = importlib.util.spec_from_file_location("notebooks_conftest", NOTEBOOKS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("smoke, suffix, flagged", [("1", ".ipynb", True), ("1", ".py", False),
                                                    ("0", ".ipynb", False)])
def test_smoke_notebook_kernels_alone_get_the_fast_compile_flag(monkeypatch, smoke, suffix, flagged):
    conftest = load_notebook_conftest()
    monkeypatch.setenv("PURERL_NOTEBOOK_SMOKE", smoke)
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    item = types.SimpleNamespace(path=NOTEBOOKS / f"pmoe{suffix}")
    call = conftest.pytest_runtest_call(item)
    next(call)  # the item runs here: nbmake's kernel starts with this environment
    during = os.environ["XLA_FLAGS"]
    with pytest.raises(StopIteration):
        call.send(None)
    assert (conftest.SMOKE_XLA_FLAG in during) == flagged
    assert during.startswith("--xla_cpu_multi_thread_eigen=false")
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false"  # restored for the other tests
