"""The htpasswd user file: strict parsing (bcrypt only) and reloading when the file changes on disk."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("dockyard.server.auth")

#: A bcrypt hash as ``htpasswd -B`` writes it: ``$2y$<cost>$<22 salt + 31 hash chars>``.
_BCRYPT = re.compile(r"\$2[aby]\$(?P<cost>[0-9]{2})\$[./A-Za-z0-9]{53}")

#: Hash kinds htpasswd can write that are refused, with why (checked in order, by prefix).
_REFUSED = (
    ("$apr1$", "an MD5 ($apr1$) hash"),
    ("{SHA}", "a SHA-1 ({SHA}) hash"),
    ("$1$", "an MD5-crypt ($1$) hash"),
    ("$5$", "a SHA-256-crypt ($5$) hash"),
    ("$6$", "a SHA-512-crypt ($6$) hash"),
    ("$2", "a malformed bcrypt hash"),
    ("$", "an unknown $…$ hash"),
)
_FIX = "only bcrypt is accepted: re-create the user with `htpasswd -B FILE USER`"


class HtpasswdError(ValueError):
    """The htpasswd file cannot be used; the message names the file, the line and why."""


@dataclass(frozen=True)
class User:
    """One htpasswd user: the bcrypt hash and the whole line (its fingerprint binds tokens to it)."""

    name: str
    hashed: bytes
    line: str
    cost: int


def parse_htpasswd(text: str, path: str = "htpasswd") -> dict[str, User]:
    """The users of an htpasswd file; :class:`HtpasswdError` naming the line for anything that is not a bcrypt
    user line (blank lines and ``#`` comments are allowed). An empty result is not an error here."""
    users: dict[str, User] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"htpasswd file {path}, line {number}"
        if ":" not in line:
            raise HtpasswdError(f"{where}: no ':' between user name and password hash")
        name, hashed = line.split(":", 1)
        if not name:
            raise HtpasswdError(f"{where}: empty user name")
        match = _BCRYPT.fullmatch(hashed)
        if match is None:
            kind = next((why for prefix, why in _REFUSED if hashed.startswith(prefix)), None)
            if kind is None:
                kind = "a crypt(3) DES hash" if len(hashed) == 13 else "not a password hash (plain text?)"
            raise HtpasswdError(f"{where}: user {name!r} has {kind}; {_FIX}")
        cost = int(match.group("cost"))
        if not 4 <= cost <= 31:
            raise HtpasswdError(f"{where}: user {name!r} has a bcrypt cost of {cost} (4 to 31 work)")
        if name in users:
            raise HtpasswdError(f"{where}: user {name!r} is already defined on line {lines[name]}")
        users[name] = User(name, hashed.encode(), line, cost)
        lines[name] = number
    return users


def read_htpasswd(path: Path) -> dict[str, User]:
    """:func:`parse_htpasswd` of a file; :class:`HtpasswdError` when it cannot be read or used."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HtpasswdError(f"cannot read htpasswd file {path}: {exc}") from None
    return parse_htpasswd(text, str(path))


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class UserFile:
    """The users of an htpasswd file, re-read when its modification time, size or inode change.

    A file that becomes unusable (deleted, unreadable, a bad line) leaves no users: every login fails until it
    is fixed, so removing a user never fails open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = _signature(path)
        self.users = read_htpasswd(path)

    def changed(self) -> bool:
        """True when the file on disk is not the one loaded (one ``stat``)."""
        return _signature(self.path) != self._seen

    def reload(self) -> None:
        """Read the file again (blocking: call it off the event loop)."""
        seen = _signature(self.path)
        try:
            users = read_htpasswd(self.path)
        except HtpasswdError as exc:
            log.error("%s: every login is refused until it is fixed", exc)
            users = {}
        self.users, self._seen = users, seen
