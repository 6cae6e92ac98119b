"""The package's map (``cse_helpers/__init__.py``) names every module and folder, and the layout keeps its promises:
maintainer tools are not imported by the teaching core or by the notebooks."""

import ast
import json
import os
import re

import cse_helpers
from cse_helpers.constants import PACKAGE_DIR, REPO_ROOT


def modules():
    for folder, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py") and name != "__init__.py":
                yield os.path.relpath(os.path.join(folder, name), PACKAGE_DIR)


def test_the_map_names_every_module():
    doc = cse_helpers.__doc__
    missing = []
    for path in modules():
        parts = path[:-3].split(os.sep)
        name = parts[-1]
        if not re.search(rf"``{re.escape(name)}``", doc):
            missing.append(path)
        if len(parts) > 1 and f"``{parts[0]}/``" not in doc:
            missing.append(parts[0] + "/")
    assert not missing, f"cse_helpers/__init__.py's map does not name: {sorted(set(missing))}"


def imported_modules(source: str) -> set[str]:
    """The cse_helpers modules a Python source imports (absolute or relative, resolved loosely by name)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_no_notebook_and_no_core_module_imports_a_maintainer_tool():
    offenders = []
    for path in modules():
        if path.startswith("tools" + os.sep) or path == "course.py":  # course.py builds tiny models for tests
            continue
        with open(os.path.join(PACKAGE_DIR, path), encoding="utf-8") as f:
            if any("tools" in name.split(".") for name in imported_modules(f.read())):
                offenders.append(path)
    notebooks = os.path.join(REPO_ROOT, "notebooks")
    for name in sorted(os.listdir(notebooks)):
        if name.endswith(".ipynb"):
            with open(os.path.join(notebooks, name), encoding="utf-8") as f:
                cells = json.load(f)["cells"]
            code = "\n".join(line for c in cells if c["cell_type"] == "code"
                             for line in "".join(c["source"]).splitlines() if not line.lstrip().startswith(("%", "!")))
            if any("tools" in module.split(".") for module in imported_modules(code)):
                offenders.append(name)
    assert not offenders, f"these import cse_helpers.tools (maintainer tools): {offenders}"
