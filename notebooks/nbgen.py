"""Shared by the notebook generators (`make_*_notebook.py`): write a notebook, keeping the saved outputs of
the cells whose source did not change, and optionally execute only the new or edited code cells.

Full-mode runs of the notebooks take minutes to hours on a 2-core CPU; regenerating one after editing a single
cell should not throw the other cells' recorded outputs away. Cells run with `--execute-new` must be
self-contained (they run on their own, in order, in a fresh kernel started in notebooks/).
"""

from __future__ import annotations

import os

import nbformat as nbf

KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def write_notebook(cells: list, path: str, execute_new: bool = False, timeout: int = 600) -> None:
    nb = nbf.v4.new_notebook(cells=cells, metadata=dict(KERNEL))
    if os.path.exists(path):  # keep the saved outputs (and ids, metadata) of unchanged cells
        old = nbf.read(path, as_version=4)
        nb.metadata = old.metadata
        saved = {(c.cell_type, c.source): c for c in old.cells}
        for cell in nb.cells:
            prev = saved.get((cell.cell_type, cell.source))
            if prev is not None:
                cell.id, cell.metadata = prev.get("id", cell.get("id")), prev.metadata
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = prev.outputs, prev.execution_count
    if execute_new:
        from nbclient import NotebookClient

        new = [c for c in nb.cells if c.cell_type == "code" and not c.outputs]
        part = nbf.v4.new_notebook(cells=new, metadata=nb.metadata)
        resources = {"metadata": {"path": os.path.dirname(path)}}
        NotebookClient(part, timeout=timeout, resources=resources).execute()
        count = max([c.execution_count or 0 for c in nb.cells if c.cell_type == "code"], default=0)
        for cell, done in zip(new, part.cells, strict=True):
            count += 1
            cell.outputs, cell.execution_count = done.outputs, count
            for out in cell.outputs:
                if "execution_count" in out:
                    out["execution_count"] = count
    nbf.write(nb, path)
    print(f"wrote {path}")
