"""Requests a registry under test logged: docker-registry's combined log lines, or the JSON lines of dockyard's
``--access-log`` (``workdir/access.log``), as (method, path, status)."""

from __future__ import annotations

import json
import re

from tests.support.servers import DistributionServer, DockyardServer

_ACCESS = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/[0-9.]+" (\d{3})')
#: Methods that write (uploads, mounts, manifest PUTs, deletes).
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def logged_requests(server: DistributionServer | DockyardServer, path_contains: str = "") -> list[tuple[str, str, int]]:
    """(method, path, status) of every request ``server`` logged whose path contains ``path_contains``."""
    found: list[tuple[str, str, int]] = []
    if isinstance(server, DistributionServer):
        for match in _ACCESS.finditer(server.log()):
            method, path, status = match.group(1), match.group(2), int(match.group(3))
            if path_contains in path:
                found.append((method, path, status))
        return found
    for line in (server.workdir / "access.log").read_text().splitlines():
        entry = json.loads(line)
        if path_contains in entry["path"]:
            found.append((entry["method"], entry["path"], int(entry["status"])))
    return found


def count(requests: list[tuple[str, str, int]], method: str, path_contains: str) -> int:
    """How many of ``requests`` are ``method`` on a path containing ``path_contains``."""
    return sum(1 for m, p, _ in requests if m == method and path_contains in p)
