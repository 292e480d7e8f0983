"""The notebooks' sources are the percent-format .py files in notebooks/; each .ipynb beside one holds the
same cells plus their executed outputs. A cell edited in one file but not synced into the other fails here."""

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
