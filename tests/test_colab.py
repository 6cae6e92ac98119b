"""Colab: the course's address in one place (cse_helpers.tools.publish), and the setup cell on a simulated Colab
runtime.

The simulation is a Python environment that has what Colab ships (torch, transformers, Jupyter: this
environment's packages) but not the course, plus an importable ``google.colab``; the notebook runs in an
empty working folder with ``CSE_REPO_URL`` pointing at a ``file://`` Git repository made from this
working tree (uncommitted changes included). pip may not use an index (``PIP_NO_INDEX=1``) and
``apt-get`` is a stub, so the test is offline and changes nothing outside its temporary folder.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from cse_helpers import course
from cse_helpers.constants import REPO_ROOT
from cse_helpers.tools import publish
from cse_helpers.tools.run_course import execute_notebook

ROOT = REPO_ROOT
NOTEBOOK_0 = os.path.join(ROOT, "notebooks", "00_text_matching.ipynb")


def setup_cell(path: str = NOTEBOOK_0) -> str:
    with open(path, encoding="utf-8") as f:
        cell = next(c for c in json.load(f)["cells"] if c["cell_type"] == "code")
    return "".join(cell["source"])


# ---- one home for the address ---------------------------------------------------------------------

def test_every_place_names_the_repository_of_course_py():
    places = publish.addresses(ROOT)
    notebooks = publish.notebook_paths(ROOT)
    assert len(notebooks) >= 5 and len(places) == 2 + 2 * len(notebooks)  # course.py, pyproject, 2 per notebook
    assert publish.disagreements(ROOT) == []
    assert {url for _, url in places} == {course.REPO_URL}


def _copy_places(root, dest):
    """The files publish writes, copied from ``root`` to ``dest`` (a checkout's layout)."""
    for rel in ["cse_helpers/course.py", "pyproject.toml"] + [
            os.path.relpath(p, root) for p in publish.notebook_paths(root)]:
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copyfile(os.path.join(root, rel), os.path.join(dest, rel))


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_publish_writes_the_address_everywhere_and_changes_nothing_else(tmp_path):
    _copy_places(ROOT, tmp_path)
    originals = {p: _read(p) for p in publish.notebook_paths(str(tmp_path))}
    changed = publish.publish("https://github.com/cse-learner/simcse-course.git/", str(tmp_path), branch="v1")
    assert len(changed) == 2 + len(originals)
    url = "https://github.com/cse-learner/simcse-course"
    assert {u for _, u in publish.addresses(str(tmp_path))} == {url} and publish.disagreements(str(tmp_path)) == []
    assert f'\nRepository = "{url}"\n' in _read(tmp_path / "pyproject.toml")
    assert f'\nREPO_URL = "{url}"\n' in _read(tmp_path / "cse_helpers" / "course.py")
    for path, original in originals.items():
        before, after = json.loads(original), json.loads(_read(path))
        name = os.path.basename(path)
        assert f"(https://colab.research.google.com/github/cse-learner/simcse-course/blob/v1/notebooks/{name})" in \
            "".join(after["cells"][0]["source"])
        setup = setup_cell(path)
        assert f'REPO_URL = "{url}"  #' in setup and setup.count(url) == 1
        differing = [i for i, (a, b) in enumerate(zip(before["cells"], after["cells"])) if a != b]
        first_code = next(i for i, c in enumerate(before["cells"]) if c["cell_type"] == "code")
        assert differing == [0, first_code] and len(before["cells"]) == len(after["cells"])
        assert {k: v for k, v in before.items() if k != "cells"} == {k: v for k, v in after.items() if k != "cells"}
    publish.publish(course.REPO_URL, str(tmp_path))  # and back: byte for byte what it was
    assert {p: _read(p) for p in originals} == originals
    assert publish.publish(course.REPO_URL, str(tmp_path)) == []  # nothing to do


@pytest.mark.parametrize("url", ["git@github.com:me/course.git", "https://gitlab.com/me/course",
                                 "file:///tmp/course", "https://github.com/me", "github.com/me/course"])
def test_publish_refuses_an_address_colab_cannot_open(url, tmp_path, capsys):
    _copy_places(ROOT, tmp_path)
    before = _read(tmp_path / "cse_helpers" / "course.py")
    with pytest.raises(SystemExit) as stop:
        publish.main(["--repo-url", url, "--root", str(tmp_path)])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert f"--repo-url {url!r}: give the course's GitHub address, https://github.com/OWNER/NAME" in error
    assert "CSE_REPO_URL" in error and _read(tmp_path / "cse_helpers" / "course.py") == before


def test_publish_writes_nothing_when_a_notebook_has_no_badge(tmp_path):
    _copy_places(ROOT, tmp_path)
    last = publish.notebook_paths(str(tmp_path))[-1]
    notebook = json.loads(_read(last))
    notebook["cells"][0]["source"] = ["# A title without a badge\n"]
    with open(last, "w", encoding="utf-8") as f:
        json.dump(notebook, f)
    before = {p: _read(p) for p in [tmp_path / "pyproject.toml", *publish.notebook_paths(str(tmp_path))]}
    with pytest.raises(ValueError, match=f"{os.path.basename(last)}: its title cell has no 'Open in Colab' badge"):
        publish.publish("https://github.com/me/course", str(tmp_path))
    assert {p: _read(p) for p in before} == before
    assert publish.disagreements(str(tmp_path)) == [
        f"notebooks/{os.path.basename(last)}: Colab badge: (missing) (course.py says {course.REPO_URL})"]


def test_check_lists_the_places_and_fails_on_a_disagreement(tmp_path, capsys):
    _copy_places(ROOT, tmp_path)
    assert publish.main(["--check", "--root", str(tmp_path)]) == 0
    assert f"pyproject.toml: [project.urls] Repository: {course.REPO_URL}" in capsys.readouterr().out
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(_read(pyproject).replace(course.REPO_URL, "https://github.com/someone/else"))
    assert publish.main(["--check", "--root", str(tmp_path)]) == 1
    assert "pyproject.toml: [project.urls] Repository: https://github.com/someone/else" in capsys.readouterr().err


# ---- a simulated Colab runtime ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A Python like Colab's: this environment's packages (torch included) but not the course, and
    ``google.colab`` imported at start-up; ``apt-get`` and the kernel spec point at stubs in the folder."""
    home = tmp_path_factory.mktemp("colab")
    venv = home / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    preinstalled = os.path.dirname(os.path.dirname(torch.__file__))
    # A path line adds the directory without running its .pth files, so the course's editable install
    # in this environment stays invisible there.
    with open(os.path.join(site, "colab_preinstalled.pth"), "w") as f:
        f.write(preinstalled + "\n")
    os.makedirs(os.path.join(site, "google", "colab"))
    with open(os.path.join(site, "google", "colab", "__init__.py"), "w") as f:
        f.write('"""A stand-in for Colab\'s google.colab, which its kernel imports at start-up."""\n')
    with open(os.path.join(site, "zz_colab_kernel.pth"), "w") as f:
        f.write("import google.colab\n")
    bin_dir = home / "bin"
    bin_dir.mkdir()
    apt_get = bin_dir / "apt-get"
    apt_get.write_text(f'#!/bin/sh\necho "apt-get $*" >> {home / "apt-get.log"}\nexit 100\n')
    apt_get.chmod(0o755)
    kernel = home / "jupyter" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (simulated Colab)", "language": "python"}))
    probe = subprocess.run([python, "-c", "import importlib.util, sys, torch; print('google.colab' in sys.modules, "
                                          "importlib.util.find_spec('cse_helpers'), torch.__version__)"],
                           capture_output=True, text=True, cwd=home, env=_clean_env(), check=True)
    assert probe.stdout.split() == ["True", "None", torch.__version__]  # Colab-like, and no course in sight
    return {"home": home, "python": python, "site": site, "path": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "jupyter_path": str(home / "jupyter")}


def _clean_env(**extra):
    """This process's environment without anything that would point Python at the course."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CSE_", "PYTHON", "JUPYTER", "PIP_"))}
    return {**env, **extra}


@pytest.fixture(scope="module")
def course_repository(tmp_path_factory):
    """A Git repository of the working tree as it is now: its tracked and untracked, not ignored files."""
    if not os.path.isdir(os.path.join(ROOT, ".git")) or shutil.which("git") is None:
        pytest.skip("needs git and a Git checkout of the course")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    repo = tmp_path_factory.mktemp("origin") / "course"
    for rel in filter(None, listed):
        if os.path.isfile(os.path.join(ROOT, rel)):  # (a file deleted but not yet committed is left out)
            os.makedirs(os.path.dirname(repo / rel), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), repo / rel)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "init.defaultBranch=main"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "the working tree"]):
        subprocess.run(git + command, cwd=repo, check=True)
    return repo


@pytest.mark.slow  # a virtual environment, a Git clone, the setup cell run
def test_on_colab_the_setup_cell_stops_with_what_to_do_when_the_course_is_not_published(colab, tmp_path):
    assert setup_cell().count(f'REPO_URL = "{course.PLACEHOLDER_URL}"') == 1
    run = subprocess.run([colab["python"], "-c", setup_cell()], cwd=tmp_path, capture_output=True, text=True,
                         env=_clean_env(PATH=colab["path"]))
    assert run.returncode == 1 and "Cloning" not in run.stdout
    error = run.stderr.strip().splitlines()[-1]
    assert error.startswith("RuntimeError: This copy of the course does not say where the course is published")
    assert "%env CSE_REPO_URL=" in error and "cse-course/" in error and "pip install cse_helpers-*.whl" in error
    assert os.listdir(tmp_path) == []


@pytest.mark.slow  # a virtual environment, a Git clone, the setup cell run
def test_on_colab_the_setup_cell_names_a_repository_it_cannot_clone(colab, tmp_path):
    missing = (tmp_path / "no-such-repository").as_uri()
    work = tmp_path / "content"
    work.mkdir()
    run = subprocess.run([colab["python"], "-c", setup_cell()], cwd=work, capture_output=True, text=True,
                         env=_clean_env(PATH=colab["path"], CSE_REPO_URL=missing))
    assert run.returncode == 1 and f"Cloning {missing} into cse-course/" in run.stdout
    assert f"RuntimeError: git clone {missing} failed (check CSE_REPO_URL or REPO_URL):" in run.stderr
    assert "does not appear to be a git repository" in run.stderr  # git's own reason comes with it


@pytest.mark.slow  # a virtual environment, a Git clone, the setup cell run
def test_on_colab_the_setup_cell_fetches_and_installs_the_course_and_notebook_0_runs(
        colab, course_repository, tmp_path, monkeypatch):
    work = tmp_path / "content"  # Colab's empty working folder; the notebook runs in it
    work.mkdir()
    shutil.copyfile(NOTEBOOK_0, work / "00_text_matching.ipynb")
    url = course_repository.as_uri()
    for name in [k for k in os.environ if k.startswith(("CSE_", "PYTHON", "JUPYTER", "PIP_"))]:
        monkeypatch.delenv(name)
    for name, value in {"CSE_REPO_URL": url, "CSE_QUICK": "1", "CSE_RUNS_DIR": str(tmp_path / "runs"),
                        "JUPYTER_PATH": colab["jupyter_path"], "PATH": colab["path"],
                        "PIP_NO_INDEX": "1",  # offline: everything the course needs must already be there
                        "PIP_NO_BUILD_ISOLATION": "0"}.items():  # (pip's spelling of "no build isolation")
        monkeypatch.setenv(name, value)
    out = tmp_path / "executed.ipynb"
    execute_notebook(str(work / "00_text_matching.ipynb"), str(out), timeout=300)

    import nbformat

    cells = [c for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"]
    printed = "".join(o.get("text", "") for o in cells[0].outputs if o.output_type == "stream")
    clone = str(work / "cse-course")
    assert f"Cloning {url} into cse-course/" in printed
    assert f"Installed the course: cse-helpers 0.1.0 from {clone} (editable)." in printed
    assert f"Kept as the runtime has them: torch {torch.__version__}" in printed
    assert f"model: {clone}/cse_helpers/default_model" in printed  # the fetched copy is the one in use
    assert "mode: quick" in printed and all(c.execution_count for c in cells)
    # pip installed the course into the Colab environment, and nothing of torch
    installed = os.listdir(colab["site"])
    assert any(name.startswith("cse_helpers-0.1.0.dist-info") for name in installed)
    assert not [name for name in installed if name.lower().startswith("torch")]
    check = subprocess.run([colab["python"], "-c", "import cse_helpers, torch; print(cse_helpers.__file__); "
                                                   "print(torch.__file__)"], capture_output=True, text=True,
                           cwd=tmp_path, env=_clean_env(), check=True).stdout.split()
    assert check == [os.path.join(clone, "cse_helpers", "__init__.py"), torch.__file__]  # a new kernel finds it too
