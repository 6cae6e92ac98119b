"""Installing the course on Google Colab: the project, its requirements and a CJK font, never Colab's torch.

The notebooks' setup cell calls :func:`install_on_colab` through :func:`cse_helpers.course.setup`
(only on Colab, or with ``install=True``). :func:`install_commands` returns what it runs, so the
commands can be read and tested without running them.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys

from ..constants import REPO_ROOT

# What Colab ships itself and the setup cell never installs there: its CUDA build of torch, and the
# Jupyter front end with the ipywidgets version that front end renders.
NEVER_INSTALL = ("torch", "torchvision", "torchaudio", "jupyterlab", "notebook", "ipywidgets")


def in_colab() -> bool:
    """True inside Google Colab (its kernel imports ``google.colab``; its VMs set COLAB_RELEASE_TAG)."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def requirement_name(line: str) -> str:
    """The normalised project name of a requirement line: ``"Jupyter_Lab>=4  # x"`` -> ``"jupyter-lab"``."""
    name = re.split(r"[<>=!~;\[ @]", line.split("#", 1)[0].strip(), maxsplit=1)[0].strip()
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements_to_install(requirements: list[str]) -> list[str]:
    """The requirement lines to pip-install on Colab: comments, blanks and :data:`NEVER_INSTALL` removed."""
    keep = []
    for line in requirements:
        line = line.split("#", 1)[0].strip()
        if line and requirement_name(line) not in NEVER_INSTALL:
            keep.append(line)
    return keep


def _project_requirements(repo_dir: str) -> list[str]:
    path = os.path.join(repo_dir, "requirements.txt")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    try:  # an installed distribution carries the same list in its metadata
        return [r for r in importlib.metadata.requires("cse-helpers") or [] if "extra ==" not in r]
    except importlib.metadata.PackageNotFoundError:
        return []


def installed_versions() -> dict[str, str]:
    """``{name: version}`` of the installed distributions, as ``import`` would find them (first on sys.path)."""
    versions = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version)
    return versions


FONT_PACKAGE = "fonts-noto-cjk"
FONT_COMMAND = f"apt-get install -y -qq {FONT_PACKAGE} || (apt-get update -qq && apt-get install -y -qq {FONT_PACKAGE})"


def install_commands(repo_dir: str = REPO_ROOT, font: bool = True, constraints: str | None = None) -> list[list[str]]:
    """The commands :func:`install_on_colab` runs (returned, so they can be read and tested).

    1. the project itself from its checkout ``repo_dir``, without its dependencies (``--no-deps``: pip
       would otherwise be free to replace Colab's CUDA torch); skipped when ``repo_dir`` is not a
       checkout (the course was installed from a wheel);
    2. the requirements minus :data:`NEVER_INSTALL` (already satisfied ones are left alone);
    3. with ``font``, a CJK font (Debian's ``fonts-noto-cjk``), so Chinese tick labels in figures are
       not drawn as boxes; the package lists are refreshed only if the first try fails.

    ``constraints``: a pip constraints file (``-c``) that pins what the runtime already has.
    """
    pip = [sys.executable, "-m", "pip", "install", "-q"] + (["-c", constraints] if constraints else [])
    commands = []
    if os.path.isfile(os.path.join(repo_dir, "pyproject.toml")):
        commands.append(pip + ["--no-deps", "-e", repo_dir])
    requirements = requirements_to_install(_project_requirements(repo_dir))
    if requirements:
        commands.append(pip + requirements)
    if font:
        commands.append(["bash", "-c", FONT_COMMAND])
    return commands


def install_on_colab(repo_dir: str = REPO_ROOT, run=subprocess.run, constraints: str | None = None) -> None:
    """Install the project, its requirements (never :data:`NEVER_INSTALL`) and a CJK font; only call this on Colab.

    What the runtime has of :data:`NEVER_INSTALL` is pinned with a pip constraints file (written to
    ``constraints``, default: a temporary file), so a requirement that would need another torch
    stops with pip's error instead of replacing Colab's. Prints what was installed and what was kept.
    The font is skipped when matplotlib already finds one (a second notebook in the same session).
    """
    import tempfile

    from . import plots

    before = installed_versions()
    kept = {name: before[name] for name in NEVER_INSTALL if name in before}
    if constraints is None:
        constraints = os.path.join(tempfile.mkdtemp(prefix="cse_helpers-"), "keep.txt")
    with open(constraints, "w", encoding="utf-8") as f:
        f.write("".join(f"{name}=={version}\n" for name, version in kept.items()))
    for command in install_commands(repo_dir, font=plots.find_cjk_font() is None, constraints=constraints):
        result = run(command, capture_output=True, text=True)
        if result.returncode != 0:
            if command[-1] == FONT_COMMAND:  # a missing font only makes figures uglier
                print(f"Could not install {FONT_PACKAGE}; Chinese labels in figures may show as boxes.")
                continue
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    print(install_report(before, installed_versions(), kept, repo_dir))
    plots.use_cjk_font(refresh=True)


def install_report(before: dict, after: dict, kept: dict, repo_dir: str) -> str:
    """What :func:`install_on_colab` changed, in words: the course, new or upgraded packages, what was kept."""
    lines = []
    if os.path.isfile(os.path.join(repo_dir, "pyproject.toml")):
        lines.append(f"Installed the course: cse-helpers {after.get('cse-helpers', '?')} from {repo_dir} (editable).")
    changed = [f"{name} {after[name]}" + (f" (was {before[name]})" if name in before else "")
               for name in sorted(after) if name != "cse-helpers" and before.get(name) != after[name]]
    lines.append("Installed: " + ", ".join(changed) + "." if changed else
                 "Nothing else installed: every requirement was already there in range.")
    if kept:
        lines.append("Kept as the runtime has them: " + ", ".join(f"{n} {v}" for n, v in kept.items()) + ".")
    return "\n".join(lines)
