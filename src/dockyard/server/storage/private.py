"""Owner-only files and directories in the data directory (0700 directories, 0600 files), whatever the umask.

Blobs, manifests and tokens keys are private: nothing the server creates under its data directory is readable by
other local users. Modes are passed to ``mkdir``/``open`` (a umask can only remove bits from them).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Mode of every directory the server creates.
DIR_MODE = 0o700
#: Mode of every file the server creates.
FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700 (existing directories are left as they are)."""
    missing: list[Path] = []
    current = Path(path)
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass


def create_private_file(path: Path, data: bytes = b"") -> None:
    """Create ``path`` (which must not exist) with mode 0600, holding ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def exposure_warning(data_dir: Path) -> str | None:
    """A warning when ``data_dir`` is accessible to group or others (its contents are then readable), else None."""
    mode = stat.S_IMODE(os.stat(data_dir).st_mode)
    if mode & 0o077 == 0:
        return None
    return (
        f"warning: the data directory {data_dir} has mode {mode:04o}: other local users can read its blobs and "
        f"metadata; run `chmod 700 {data_dir}`"
    )


def replace_file(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace (or create) ``path`` atomically with ``data``: a temporary file beside it with ``mode``, fsynced,
    renamed over ``path``, then the directory fsynced. Readers see the old content or the new, never a part."""
    _publish(path, data, mode, os.replace)


def create_file_once(path: Path, data: bytes, mode: int = FILE_MODE) -> bool:
    """Create ``path`` with ``data`` as :func:`replace_file` does, but never over an existing file (another process
    may race to create it: the first one wins). True when this call created it."""
    try:
        _publish(path, data, mode, os.link)
    except FileExistsError:
        return False
    return True


def _publish(path: Path, data: bytes, mode: int, move: Callable[[str, Path], None]) -> None:
    """Write ``data`` to a fsynced temporary file beside ``path``, ``move`` it to ``path``, fsync the directory."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        move(temp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if fd >= 0:
            os.close(fd)
        if os.path.lexists(temp):
            os.unlink(temp)
