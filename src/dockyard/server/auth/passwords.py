"""Password checks: bcrypt off the event loop, the same cost for unknown users, a short cache of successes."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections import OrderedDict

import anyio
import anyio.to_thread
import bcrypt

from .htpasswd import User

#: Seconds a successful check is remembered (keyed by user, password and hash line: a new password misses).
VERIFIED_FOR = 60.0
#: Most successful checks remembered at once.
VERIFIED_MAX = 4096


def _cache_key(name: str, password: str, user: User) -> bytes:
    return hashlib.sha256(b"\0".join((name.encode(), password.encode(), user.line.encode()))).digest()


class PasswordChecker:
    """Checks passwords against htpasswd users. Unknown users cost one bcrypt comparison against a dummy hash
    of the users' highest cost, so a wrong user name takes as long as a wrong password."""

    def __init__(self) -> None:
        self._dummy: tuple[int, bytes] | None = None
        self._verified: OrderedDict[bytes, float] = OrderedDict()
        self._slots: anyio.CapacityLimiter | None = None

    def remembered(self, name: str, password: str, user: User | None) -> bool:
        """True when this exact user, password and hash line passed a check in the last :data:`VERIFIED_FOR` s."""
        if user is None:
            return False
        key = _cache_key(name, password, user)
        until = self._verified.get(key)
        if until is None:
            return False
        if until < time.monotonic():
            self._verified.pop(key, None)
            return False
        return True

    def prepare(self, cost: int) -> None:
        """Make the dummy hash for ``cost`` rounds now (blocking), so no request pays for it."""
        self._dummy_hash(cost)

    def _dummy_hash(self, cost: int) -> bytes:
        if self._dummy is None or self._dummy[0] != cost:
            self._dummy = (cost, bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=cost)))
        return self._dummy[1]

    def check(self, name: str, password: str, user: User | None, cost: int) -> bool:
        """Blocking bcrypt check of ``password`` for ``user`` (``None``: unknown, checked against the dummy hash
        of ``cost`` rounds). Successes are remembered."""
        hashed = user.hashed if user is not None else self._dummy_hash(cost)
        try:
            ok = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            ok = False
        if not ok or user is None:
            return False
        self._verified[_cache_key(name, password, user)] = time.monotonic() + VERIFIED_FOR
        while len(self._verified) > VERIFIED_MAX:
            try:
                self._verified.popitem(last=False)
            except KeyError:
                break
        return True

    async def check_async(self, name: str, password: str, user: User | None, cost: int) -> bool:
        """:meth:`check` in a worker thread, at most one per CPU at a time (the event loop stays free)."""
        if self._slots is None:
            self._slots = anyio.CapacityLimiter(max(1, os.cpu_count() or 1))
        return await anyio.to_thread.run_sync(self.check, name, password, user, cost, limiter=self._slots)
