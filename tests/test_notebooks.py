"""The course notebooks: one identical setup cell, committed without outputs, and (opt-in) run top to bottom.

The run is slow (minutes), so it is marked ``notebooks`` and skipped unless ``RUN_NOTEBOOKS=1``::

    RUN_NOTEBOOKS=1 python -m pytest tests/test_notebooks.py -m notebooks

It executes every notebook in quick mode (``CSE_QUICK=1``) with nbclient, in order (later notebooks
reuse the runs saved by earlier ones), checks that each finishes within ``NOTEBOOK_MAX_SECONDS``
(default 180) and writes the executed copies to ``notebooks/executed/`` (git-ignored).
"""

import ast
import json
import os
import re
import time

import pytest

from cse_helpers import course

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK_DIR = os.path.join(ROOT, "notebooks")
NOTEBOOKS = sorted(name for name in os.listdir(NOTEBOOK_DIR) if re.fullmatch(r"\d\d_\w+\.ipynb", name))


def load(name):
    with open(os.path.join(NOTEBOOK_DIR, name), encoding="utf-8") as f:
        return json.load(f)


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def code_cells(notebook):
    return [source(c) for c in notebook["cells"] if c["cell_type"] == "code"]


def test_the_course_has_five_numbered_notebooks():
    assert [name[:2] for name in NOTEBOOKS] == ["00", "01", "02", "03", "04"]


def test_the_setup_cell_is_identical_in_every_notebook():
    setups = {name: code_cells(load(name))[0] for name in NOTEBOOKS}
    first = setups[NOTEBOOKS[0]]
    assert "course.setup(" in first
    for name, cell in setups.items():
        assert cell == first, f"{name}: its first code cell differs from {NOTEBOOKS[0]}'s setup cell"


def test_the_setup_cell_clones_the_repository_named_in_course():
    setup = code_cells(load(NOTEBOOKS[0]))[0]
    assert re.search(r'^REPO_URL = "([^"]+)"', setup, re.M).group(1) == course.REPO_URL
    assert "google.colab" in setup and "course.setup(seed=42)" in setup


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_without_outputs(name):
    for cell in load(name)["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, f"{name}: strip the outputs"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_opens_with_a_title_and_its_own_colab_link(name):
    first = load(name)["cells"][0]
    assert first["cell_type"] == "markdown" and source(first).startswith(f"# {int(name[:2])}.")
    assert "colab.research.google.com/github/" in source(first) and f"/notebooks/{name})" in source(first)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_code_is_valid_python(name):
    for cell in code_cells(load(name)):
        ast.parse(cell)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("notebook-runs"))


@pytest.mark.notebooks
@pytest.mark.skipif(os.environ.get("RUN_NOTEBOOKS") != "1", reason="slow: set RUN_NOTEBOOKS=1 to run the notebooks")
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_quick_mode(name, runs_dir, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("CSE_QUICK", "1")
    monkeypatch.setenv("CSE_RUNS_DIR", runs_dir)  # shared by the notebooks of this session, in order
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(os.path.join(NOTEBOOK_DIR, name), as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": NOTEBOOK_DIR}})
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        seconds = time.perf_counter() - start
        os.makedirs(os.path.join(NOTEBOOK_DIR, "executed"), exist_ok=True)
        nbformat.write(notebook, os.path.join(NOTEBOOK_DIR, "executed", name))
        print(f"{name}: {seconds:.1f} s")
    limit = float(os.environ.get("NOTEBOOK_MAX_SECONDS", "180"))
    assert seconds < limit, f"{name} took {seconds:.0f} s in quick mode (limit {limit:.0f} s)"
