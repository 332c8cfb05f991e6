"""What ``pyproject.toml`` promises: one version source, uvicorn with only what ``dockyard serve`` uses, upper
bounds on the releases whose private APIs are subclassed, HTTP/2 as an extra, a Python floor the pins allow."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

import tomllib

import dockyard

ROOT = Path(__file__).resolve().parent.parent
PROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
TOOL: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
#: The parts of a requirement string: name, extras, version specifiers, marker.
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:\[([^\]]*)\])?\s*([^;]*)(?:;(.*))?$")


def requirements(group: str | None = None) -> dict[str, tuple[set[str], str]]:
    """Name -> (extras, version specifiers) of the core dependencies, or of the optional group ``group``."""
    found = {}
    for line in PROJECT["dependencies"] if group is None else PROJECT["optional-dependencies"][group]:
        match = _REQUIREMENT.match(line)
        assert match, line
        name, extras, spec, _ = match.groups()
        found[name.lower()] = ({e.strip() for e in (extras or "").split(",") if e.strip()}, spec.replace(" ", ""))
    return found


def test_the_version_is_written_once() -> None:
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert TOOL["hatch"]["version"]["path"] == "src/dockyard/__init__.py"
    assert dockyard.__version__ == metadata.version("dockyard")


def test_uvicorn_comes_with_what_the_server_uses_and_nothing_else() -> None:
    server = requirements("server")
    extras, spec = server["uvicorn"]
    assert not extras, "uvicorn[standard] brings watchfiles, websockets, python-dotenv and pyyaml, all unused"
    assert "<" in spec, "server/connection.py subclasses uvicorn's httptools protocol: bound the tested releases"
    assert "httptools" in server and "uvloop" in server
    assert not {"watchfiles", "websockets", "python-dotenv", "pyyaml"} & set(server)


def test_typer_is_bounded_where_its_internals_are_used() -> None:
    _, spec = requirements()["typer"]
    assert "<" in spec, "cli/helpstyle.py subclasses typer's parameter classes and imports typer._click"


def test_http2_is_an_extra() -> None:
    extras, _ = requirements()["httpx"]
    assert "http2" not in extras and "h2" not in requirements()
    assert "h2" in requirements("http2")


def test_the_python_floor_is_the_one_the_pinned_releases_need() -> None:
    floor = PROJECT["requires-python"]
    assert floor == ">=3.11"
    for name in ("typer", "starlette", "uvicorn"):
        needed = metadata.metadata(name)["Requires-Python"] or ""
        assert needed.replace(" ", "") in {">=3.8", ">=3.9", ">=3.10", ">=3.11"}, (name, needed)
