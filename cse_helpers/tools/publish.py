"""Publish the course at its public address: one command writes the address everywhere it appears.

    python -m cse_helpers.tools.publish --repo-url https://github.com/OWNER/NAME [--branch main]
    python -m cse_helpers.tools.publish --check     # lists every place, fails if they disagree

The address of the course's Git repository appears in four kinds of places, all written by this command:

- ``cse_helpers/course.py``: ``REPO_URL``, the address the package knows;
- the setup cell of every notebook: ``REPO_URL = "..."`` (the package is not installed yet when it
  runs: on Colab this is what it clones);
- the "Open in Colab" badge of every notebook's title cell, which opens that notebook from GitHub:
  ``https://colab.research.google.com/github/OWNER/NAME/blob/BRANCH/notebooks/FILE.ipynb``;
- ``pyproject.toml``: ``Repository`` under ``[project.urls]``.

Colab opens notebooks from GitHub only, so the address must be ``https://github.com/OWNER/NAME``.
A notebook can still fetch the course from any other Git URL: set ``CSE_REPO_URL`` before its setup
cell. Until the course is published every place holds :data:`cse_helpers.course.PLACEHOLDER_URL`.
Only those lines change; the notebooks keep their outputs (none), ids and formatting.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys

from ..constants import REPO_ROOT
from ..course import PLACEHOLDER_URL

GITHUB_URL = re.compile(r"^https://github\.com/(?P<owner>[A-Za-z0-9-]+)/(?P<name>[A-Za-z0-9._-]+?)(?:\.git)?/?$")
# REPO_URL = "..." at the start of a line: course.py and the notebooks' setup cell
REPO_URL_LINE = re.compile(r'^(REPO_URL = ")([^"]*)(")', re.M)
BADGE_LINK = re.compile(r"https://colab\.research\.google\.com/github/(?P<owner>[^/\s)]+)/(?P<name>[^/\s)]+)"
                        r"/blob/(?P<branch>[^/\s)]+)/notebooks/(?P<file>[^/\s)]+\.ipynb)")
PROJECT_URLS_LINE = re.compile(r'(^\[project\.urls\][^\[]*?^Repository = ")([^"]*)(")', re.M | re.S)


def github_url(url: str) -> str:
    """``url`` as ``https://github.com/OWNER/NAME`` (a trailing ``.git`` or ``/`` dropped), or a ValueError."""
    match = GITHUB_URL.match(url.strip())
    if not match:
        raise ValueError(f"--repo-url {url!r}: give the course's GitHub address, https://github.com/OWNER/NAME "
                         "(Colab opens notebooks from GitHub only). To fetch the course in a notebook from another "
                         "Git URL, set CSE_REPO_URL before its setup cell instead.")
    return f"https://github.com/{match['owner']}/{match['name']}"


def badge_link(repo_url: str, notebook: str, branch: str = "main") -> str:
    """The "Open in Colab" link of ``notebook`` (a file name in ``notebooks/``) in the repository ``repo_url``."""
    return f"https://colab.research.google.com/github/{github_url(repo_url)[len('https://github.com/'):]}" \
           f"/blob/{branch}/notebooks/{notebook}"


def notebook_paths(root: str = REPO_ROOT) -> list[str]:
    """The course notebooks (``notebooks/*.ipynb``, not the executed copies), in order."""
    return sorted(glob.glob(os.path.join(root, "notebooks", "*.ipynb")))


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _title_and_setup(notebook: dict, path: str) -> tuple[dict, dict]:
    """The title cell (the first, markdown) and the setup cell (the first code cell) of a notebook."""
    cells = notebook["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    if not cells or cells[0]["cell_type"] != "markdown" or not code:
        raise ValueError(f"{path}: expected a markdown title cell first and a setup code cell.")
    return cells[0], code[0]


def addresses(root: str = REPO_ROOT) -> list[tuple[str, str]]:
    """``(place, repository URL)`` for every place that names the repository (see the module's docstring).

    A place where the address is missing is listed with the URL ``"(missing)"``; a badge that opens
    another notebook than its own is listed with that notebook's name appended.
    """
    rel = lambda path: os.path.relpath(path, root)  # noqa: E731
    found = []
    course_py = os.path.join(root, "cse_helpers", "course.py")
    match = REPO_URL_LINE.search(_read(course_py))
    found.append((f"{rel(course_py)}: REPO_URL", match.group(2) if match else "(missing)"))
    pyproject = os.path.join(root, "pyproject.toml")
    match = PROJECT_URLS_LINE.search(_read(pyproject))
    found.append((f"{rel(pyproject)}: [project.urls] Repository", match.group(2) if match else "(missing)"))
    for path in notebook_paths(root):
        title, setup = _title_and_setup(json.loads(_read(path)), rel(path))
        match = REPO_URL_LINE.search(_source(setup))
        found.append((f"{rel(path)}: setup cell", match.group(2) if match else "(missing)"))
        badges = list(BADGE_LINK.finditer(_source(title)))
        for badge in badges or [None]:
            if badge is None:
                found.append((f"{rel(path)}: Colab badge", "(missing)"))
                continue
            url = f"https://github.com/{badge['owner']}/{badge['name']}"
            if badge["file"] != os.path.basename(path):
                url += f" (opens {badge['file']})"
            found.append((f"{rel(path)}: Colab badge", url))
    return found


def disagreements(root: str = REPO_ROOT) -> list[str]:
    """The places whose address differs from ``REPO_URL`` in ``cse_helpers/course.py`` (empty: all agree)."""
    places = addresses(root)
    expected = places[0][1]
    return [f"{place}: {url} (course.py says {expected})" for place, url in places[1:] if url != expected]


def _write_notebook(path: str, notebook: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:  # the formatting of nbformat and Jupyter: indent 1, UTF-8
        f.write(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def _replace_once(pattern: re.Pattern, text: str, value: str, where: str) -> str:
    new, count = pattern.subn(lambda m: m.group(1) + value + m.group(3), text, count=1)
    if count != 1:
        raise ValueError(f"{where}: found no line {pattern.pattern!r} to write the address into.")
    return new


def publish(repo_url: str, root: str = REPO_ROOT, branch: str = "main") -> list[str]:
    """Write ``repo_url`` (a GitHub address) into every place of :func:`addresses`; returns the files changed.

    Everything is checked before anything is written, so a notebook without a setup line or a badge
    leaves all files as they were.
    """
    repo_url = github_url(repo_url)
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", branch):
        raise ValueError(f"--branch {branch!r}: not a branch name.")
    new_files = {}
    course_py = os.path.join(root, "cse_helpers", "course.py")
    new_files[course_py] = _replace_once(REPO_URL_LINE, _read(course_py), repo_url, course_py)
    pyproject = os.path.join(root, "pyproject.toml")
    new_files[pyproject] = _replace_once(PROJECT_URLS_LINE, _read(pyproject), repo_url,
                                         f"{pyproject} ([project.urls])")
    notebooks = {}
    for path in notebook_paths(root):
        notebook = json.loads(_read(path))
        title, setup = _title_and_setup(notebook, path)
        setup["source"] = _replace_once(REPO_URL_LINE, _source(setup), repo_url, f"{path}, setup cell")
        title_text, count = BADGE_LINK.subn(badge_link(repo_url, os.path.basename(path), branch), _source(title))
        if count == 0:
            raise ValueError(f"{path}: its title cell has no 'Open in Colab' badge link to write the address into.")
        title["source"] = title_text
        for cell in (title, setup):  # Jupyter's own layout of a source: a list of lines
            cell["source"] = cell["source"].splitlines(keepends=True)
        notebooks[path] = notebook
    changed = []
    for path, text in new_files.items():
        if text != _read(path):
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            changed.append(path)
    for path, notebook in notebooks.items():
        if json.loads(_read(path)) != notebook:
            _write_notebook(path, notebook)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cse_helpers.tools.publish", description=__doc__.split("\n")[0])
    parser.add_argument("--repo-url", help="the course's GitHub address, https://github.com/OWNER/NAME "
                                           f"({PLACEHOLDER_URL} marks it unpublished)")
    parser.add_argument("--branch", default="main", help="the branch the Colab badges open (default: main)")
    parser.add_argument("--check", action="store_true", help="list the places and fail if they disagree")
    parser.add_argument("--root", default=REPO_ROOT, help="the checkout to write into (default: this one)")
    args = parser.parse_args(argv)
    if not args.repo_url and not args.check:
        parser.error("give --repo-url URL to publish, or --check to compare the places")
    if args.repo_url:
        try:
            changed = publish(args.repo_url, args.root, args.branch)
        except ValueError as error:
            parser.error(str(error))
        print(f"Wrote {github_url(args.repo_url)} into {len(changed)} file(s):")
        print("\n".join(f"  {os.path.relpath(path, args.root)}" for path in changed) or "  (all already said so)")
    for place, url in addresses(args.root):
        print(f"{place}: {url}")
    problems = disagreements(args.root)
    if problems:
        print("These places disagree with cse_helpers/course.py:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
