"""Start-up of the console script: building the app imports no workflow, layout or server code."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import sys
import dockyard.cli.app
print("\\n".join(sorted(sys.modules)))
"""


def test_building_the_app_imports_only_what_help_needs() -> None:
    modules = set(subprocess.run([sys.executable, "-c", _PROBE], check=True, capture_output=True, text=True)
                  .stdout.split())
    assert "dockyard.cli.copy" in modules and "dockyard.cli.purge" in modules  # the commands are registered
    heavy = sorted(m for m in modules if m.startswith(("dockyard.workflows.", "dockyard.layout", "dockyard.server")))
    assert heavy == ["dockyard.workflows.progress"]  # the no-op progress reporter, nothing else


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

    assert "tag" in {group.name for group in main.app.registered_groups}
