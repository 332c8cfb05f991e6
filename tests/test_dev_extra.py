"""Every third-party module the tests import is declared by the ``dev`` extra, so ``pip install -e '.[dev]'`` in a
fresh venv is all the test suite needs."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

TESTS = Path(__file__).resolve().parent
LOCAL = {"tests", "dockyard", "benchmarks", "__future__"}


def imported_modules() -> dict[str, set[str]]:
    """Top-level module -> the test files that import it (anywhere in the file, also inside functions)."""
    found: dict[str, set[str]] = {}
    for path in TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(TESTS.parent)))
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dev_distributions() -> set[str]:
    """What ``pip install -e '.[dev]'`` asks for: the base dependencies and the ``dev`` extra (which includes
    ``server``)."""
    wanted = set()
    for requirement in metadata.requires("dockyard") or []:
        name, _, marker = requirement.partition(";")
        if not marker.strip() or re.search(r"""extra\s*==\s*['"]dev['"]""", marker):
            match = re.match(r"[A-Za-z0-9_.-]+", name.strip())
            assert match, requirement
            wanted.add(_normal(match.group(0)))
    return wanted


def imported_modules_in_fresh_interpreter() -> dict[str, list[str]]:
    """:func:`imported_modules`, computed by a fresh interpreter: CPython 3.11.7's ``ast.parse`` can fail with
    "AST constructor recursion depth mismatch" in a process where an earlier test hit a RecursionError
    (python/cpython#106905), which the hostile-input tests do on purpose."""
    script = (
        "import json, tests.test_dev_extra as t; "
        "print(json.dumps({k: sorted(v) for k, v in t.imported_modules().items()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=TESTS.parent, capture_output=True, text=True, check=True, timeout=120
    )
    found: dict[str, list[str]] = json.loads(result.stdout)
    return found


def test_every_test_import_is_declared_in_the_dev_extra() -> None:
    declared = dev_distributions()
    providers = metadata.packages_distributions()
    undeclared = {}
    for module, files in sorted(imported_modules_in_fresh_interpreter().items()):
        if module in LOCAL or module in sys.stdlib_module_names:
            continue
        if not {_normal(d) for d in providers.get(module, [])} & declared:
            undeclared[module] = sorted(files)
    assert not undeclared, f"imported by tests but not declared in the dev extra of pyproject.toml: {undeclared}"
