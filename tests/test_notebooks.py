"""The teaching notebooks run top to bottom, and each .ipynb matches its .py.

Every notebook is a jupytext pair in notebooks/: ``NN_name.py`` (percent
format, the source of truth) and ``NN_name.ipynb`` generated from it and
committed without outputs.  Notebooks assert their own numerical claims, so
executing them is a test of both the teaching material and the library.
Notebooks added later are picked up by the glob.  ``.py`` files whose names
start with an underscore are helpers, not notebooks.
"""
from __future__ import annotations

import os
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
IPYNBS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PY_SOURCES = sorted(p for p in NOTEBOOK_DIR.glob("*.py") if not p.name.startswith("_"))
CELL_TIMEOUT_S = 300


def test_there_are_notebooks():
    assert IPYNBS, f"no notebooks found in {NOTEBOOK_DIR}"


def test_every_py_has_an_ipynb_and_vice_versa():
    py_stems = {p.stem for p in PY_SOURCES}
    nb_stems = {p.stem for p in IPYNBS}
    assert py_stems - nb_stems == set(), (
        f"no .ipynb for {sorted(py_stems - nb_stems)}: run `jupytext --to ipynb notebooks/<name>.py`")
    assert nb_stems - py_stems == set(), (
        f"no .py for {sorted(nb_stems - py_stems)}: run `jupytext --to py:percent notebooks/<name>.ipynb`")


def _cells(notebook):
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


@pytest.mark.parametrize("path", IPYNBS, ids=lambda p: p.name)
def test_ipynb_is_in_sync_with_its_py(path):
    py = path.with_suffix(".py")
    if not py.exists():
        pytest.fail(f"{path.name} has no .py pair")
    from_ipynb, from_py = jupytext.read(path), jupytext.read(py)
    assert _cells(from_ipynb) == _cells(from_py), (
        f"{path.name} is out of date with {py.name}: run `jupytext --to ipynb --update notebooks/{py.name}`")
    raw = nbformat.read(path, as_version=4)
    stale = [i for i, cell in enumerate(raw.cells)
             if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count"))]
    assert not stale, f"{path.name} was committed with outputs (cells {stale}); clear them"


@pytest.mark.parametrize("path", IPYNBS, ids=lambda p: p.name)
def test_notebook_executes(path, monkeypatch):
    # The kernel inherits this environment: the repository root goes first on
    # its path, so the notebooks import this checkout of `autodiff` even when
    # the package is not installed (or is installed from elsewhere).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
