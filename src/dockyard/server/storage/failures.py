"""Which storage condition made a write fail: a full disk, a read-only filesystem or an exhausted quota."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

#: The conditions a write can meet that are the storage's, not the request's, and what they mean.
CONDITIONS = {
    "ENOSPC": "no space left on the registry's storage",
    "EROFS": "the registry's storage is read-only",
    "EDQUOT": "the registry's storage quota is exhausted",
}
_ERRNOS = {errno.ENOSPC: "ENOSPC", errno.EROFS: "EROFS", errno.EDQUOT: "EDQUOT"}


def _probe(data_dir: Path) -> str | None:
    """The condition the data directory's filesystem is in right now (for SQLite's errno-less I/O errors)."""
    try:
        info = os.statvfs(data_dir)
    except OSError:
        return None
    if info.f_flag & os.ST_RDONLY:
        return "EROFS"
    if info.f_bavail == 0 or info.f_favail == 0:
        return "ENOSPC"
    return None


def storage_condition(exc: BaseException, data_dir: Path) -> str | None:
    """``ENOSPC``, ``EROFS`` or ``EDQUOT`` when ``exc`` is a write the storage refused, else ``None``."""
    if isinstance(exc, OSError):
        return _ERRNOS.get(exc.errno or 0)
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        if "disk is full" in text:
            return "ENOSPC"
        if "readonly" in text or "read-only" in text:
            return "EROFS"
        if "disk i/o error" in text:
            return _probe(data_dir)
    return None
