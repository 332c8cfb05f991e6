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
