"""Which TCP connections a process holds, read from /proc (Linux): a server's accepted sockets, a client's
open connections."""

from __future__ import annotations

import os
from pathlib import Path


def established(pid: int, *, local_port: int | None = None, remote_port: int | None = None) -> int:
    """How many ESTABLISHED TCP connections process ``pid`` holds with that local port (a server's accepted
    connections) or that remote port (a client's connections to a server)."""
    wanted: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
            if fields[3] == "01" and local_port in (None, local) and remote_port in (None, remote):
                wanted.add(fields[9])  # inode
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return len(inodes & wanted)
