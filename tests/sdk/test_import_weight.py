"""``import dockyard`` stays light: it loads neither azure-core (even where it is installed) nor the CLI's
typer and rich; azure-core's exception classes still become bases of dockyard's once anything imports them."""

from __future__ import annotations

import subprocess
import sys

from tests.support.peers import require_module


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    return set(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split())


def _top(modules: set[str]) -> set[str]:
    return {m.split(".")[0] if not m.startswith("azure.") else ".".join(m.split(".")[:2]) for m in modules}


def test_import_dockyard_loads_no_azure_core_rich_or_typer() -> None:
    require_module("azure.core", "azure-core")  # the point is that it is installed and still not imported
    loaded = _top(_modules_after("import dockyard\nfrom dockyard import errors, models"))
    assert {"azure.core", "rich", "typer", "click"} & loaded == set()


def test_the_client_loads_no_azure_core_rich_or_typer() -> None:
    loaded = _top(_modules_after("from dockyard import ContainerRegistryClient\nfrom dockyard.aio import "
                                 "ContainerRegistryClient as C"))
    assert {"azure.core", "rich", "typer", "click"} & loaded == set()


def test_azure_core_imported_later_still_catches_dockyard_errors() -> None:
    require_module("azure.core", "azure-core")
    code = """
import dockyard
import sys
assert "azure.core" not in sys.modules
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError
try:
    raise dockyard.ResourceNotFoundError(status_code=404, error_code="BLOB_UNKNOWN")
except ResourceNotFoundError as caught:
    assert isinstance(caught, HttpResponseError) and caught.status_code == 404
assert issubclass(dockyard.errors.InsecureCredentialsError, ServiceRequestError)
print("caught")
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "caught"


def test_httpx_command_line_still_loads_when_asked_for() -> None:
    code = """
import sys
import dockyard
import httpx
assert "click" not in sys.modules and "rich" not in sys.modules
from httpx._main import print_response
assert callable(print_response) and callable(httpx.main)
print("loaded")
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "loaded"
