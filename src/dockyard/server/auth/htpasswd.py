"""The htpasswd user file: strict parsing (bcrypt only) and reloading when the file changes on disk."""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .watch import DirectoryWatch

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


#: Seconds between ``stat`` calls of a watched htpasswd file when inotify reports nothing (``--htpasswd-recheck``).
RECHECK_SECONDS = 1.0


class UserFile:
    """The users of an htpasswd file, re-read when its modification time, size or inode change.

    Whether it changed is one ``stat``. Once :meth:`watch` runs on the server's event loop, an inotify watch of its
    directory (:class:`.watch.DirectoryWatch`) says when to look: a change made on this host is seen by the next
    request as before, and the file is still looked at every ``recheck`` seconds for changes inotify cannot
    report (a network file system written from another host). Without a watch, every call looks.

    A file that becomes unusable (deleted, unreadable, a bad line) leaves no users: every login fails until it
    is fixed, so removing a user never fails open."""

    def __init__(self, path: Path, recheck: float = RECHECK_SECONDS) -> None:
        self.path = path
        self.recheck = recheck
        self._seen = _signature(path)
        self.users = read_htpasswd(path)
        #: A look found the file changed and :meth:`reload` has not caught up yet.
        self._stale = False
        self._watching = False
        self._watch: DirectoryWatch | None = None
        self._next_look = 0.0

    def watch(self) -> bool:
        """Watch the file from the running event loop (see the class); False when it cannot be watched, or
        ``recheck`` is 0 (look every time)."""
        if self.recheck > 0 and self._watch is None:
            self._watching = True
            self._watch = DirectoryWatch.start(self.path)
        return self._watch is not None

    def unwatch(self) -> None:
        """Stop watching (on the loop that started it): every call looks again."""
        self._watching = False
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def changed(self) -> bool:
        """True when the file on disk is not the one loaded (a ``stat``, skipped while the watch saw nothing and
        the last one is less than ``recheck`` seconds old). Call it on the loop that started the watch."""
        watch = self._watch
        if watch is not None and not self._stale and watch.quiet():
            now = time.monotonic()
            if now < self._next_look:
                return False
            self._next_look = now + self.recheck
        elif self._watching and (watch is None or not watch.active):
            watch = self._rewatch()
        if watch is not None:
            watch.clear()  # before the stat: a change while it runs marks the watch again
        self._stale = _signature(self.path) != self._seen
        return self._stale

    def _rewatch(self) -> DirectoryWatch | None:
        """A new watch in place of one that gave up (its directory was replaced): tried at most once per
        ``recheck`` seconds; every call looks at the file meanwhile."""
        now = time.monotonic()
        if now < self._next_look:
            return None
        self._next_look = now + self.recheck
        if self._watch is not None:
            self._watch.close()
        self._watch = DirectoryWatch.start(self.path, again=True)
        return self._watch

    def reload(self) -> None:
        """Read the file again (blocking: call it off the event loop)."""
        seen = _signature(self.path)
        try:
            users = read_htpasswd(self.path)
        except HtpasswdError as exc:
            log.error("%s: every login is refused until it is fixed", exc)
            users = {}
        self.users, self._seen, self._stale = users, seen, False
