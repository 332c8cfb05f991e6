"""Start-up of the console script: building the app imports no command module, a command imports its own
module alone (and neither pydantic nor rich's console for output to a pipe), and the lazy command index lists
exactly the commands the modules register."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import typer

import dockyard.cli
from dockyard.cli.app import COMMANDS
from dockyard.cli.lazy import load_module_commands

#: Command modules (every module of the package with a ``register`` function).
COMMAND_MODULES = sorted(set(COMMANDS.values()))

_PROBE = """
import sys
import dockyard.cli.app
print("\\n".join(sorted(sys.modules)))
"""


def _modules(probe: str, *args: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", probe, *args], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def test_building_the_app_imports_no_command_module() -> None:
    modules = _modules(_PROBE)
    assert "dockyard.cli.app" in modules
    loaded = sorted(m for m in COMMAND_MODULES if f"dockyard.cli.{m}" in modules)
    assert loaded == []
    heavy = sorted(m for m in modules if m.startswith(("dockyard.workflows", "dockyard.layout", "dockyard.server",
                                                       "dockyard._sync", "pydantic", "rich.")))
    assert heavy == []


_COMMAND_PROBE = """
import sys
from dockyard.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("\\n".join(sorted(sys.modules)), file=sys.stderr)
"""


def test_a_command_imports_its_own_module_only() -> None:
    """``tag list`` with no registry: parsed, run, failed; only the ``tag`` module (and the ``repo`` and
    ``locks`` modules it uses) loaded; no pydantic, and no rich console for a table to a pipe."""
    proc = subprocess.run([sys.executable, "-c", _COMMAND_PROBE, "-o", "table", "tag", "list", "library/hello",
                           "--orderby", "time_desc"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert "no registry given" in proc.stderr
    modules = set(proc.stderr.split())
    assert "dockyard.cli.tag" in modules
    others = sorted(m for m in COMMAND_MODULES if f"dockyard.cli.{m}" in modules and m not in ("tag", "repo"))
    assert others == []
    assert not {m for m in modules if m.startswith(("pydantic", "rich.console", "rich.table"))}


_VERSION_PROBE = """
import sys
from dockyard.cli.main import main
try:
    main(["--version"])
except SystemExit as exit:
    assert exit.code == 0, exit.code
print("loaded:", " ".join(sorted(m for m in ("typer", "click", "rich", "httpx", "azure.core") if m in sys.modules)))
"""


def test_version_answers_before_the_command_line_framework_loads() -> None:
    from dockyard import __version__

    out = subprocess.run([sys.executable, "-c", _VERSION_PROBE], check=True, capture_output=True, text=True).stdout
    assert [line.strip() for line in out.splitlines()] == [f"dockyard {__version__}", "loaded:"]


def test_the_app_is_still_there_for_whoever_asks_for_it() -> None:
    from dockyard.cli import main

    command = typer.main.get_command(main.app)
    assert "tag" in command.commands  # type: ignore[attr-defined]
    assert "list" in command.commands["tag"].commands  # type: ignore[attr-defined]


def test_the_command_index_lists_exactly_what_the_modules_register() -> None:
    """Each module registers the commands the index names for it, no more, no fewer; every module of the
    package that registers commands is in the index."""
    for module in COMMAND_MODULES:
        registered = set(load_module_commands(f"dockyard.cli.{module}"))
        indexed = {name for name, owner in COMMANDS.items() if owner == module}
        assert registered == indexed, module
    registering = sorted(
        info.name for info in pkgutil.iter_modules(dockyard.cli.__path__)
        if hasattr(importlib.import_module(f"dockyard.cli.{info.name}"), "register")
    )
    assert registering == COMMAND_MODULES


def test_the_root_group_lists_the_index_and_suggests_from_it() -> None:
    command = typer.main.get_command(importlib.import_module("dockyard.cli.app").app)
    assert command.list_commands(None) == list(COMMANDS)  # type: ignore[arg-type]
    assert command.get_command(None, "nope") is None  # type: ignore[arg-type]
