"""Editing an htpasswd file (``dockyard user add|delete|list``): bcrypt lines, atomic rewrites, other lines kept.

The file is parsed with the server's own :func:`~.htpasswd.parse_htpasswd` before and after every change, so the
CLI never writes a file the server would refuse, and never edits one it would refuse either.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import bcrypt

from ..storage.private import FILE_MODE, replace_file
from .htpasswd import HtpasswdError, User, parse_htpasswd

#: bcrypt cost of new passwords (``htpasswd -B``'s default is 5; 12 is today's usual choice).
DEFAULT_COST = 12
#: A user name: printable, no ``:`` (the separator), no white space.
_NAME = re.compile(r"[^\s:]{1,128}")
#: bcrypt uses at most this many bytes of a password; longer ones would be silently cut.
MAX_PASSWORD_BYTES = 72


def check_user_name(name: str) -> str:
    """``name`` when it can be an htpasswd user; :class:`ValueError` otherwise."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid user name {name!r}: 1 to 128 characters, no ':' and no white space")
    return name


def check_password(password: str) -> str:
    """``password`` when bcrypt can hold it whole; :class:`ValueError` otherwise."""
    if not password:
        raise ValueError("the password is empty")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise ValueError(f"the password is longer than bcrypt's {MAX_PASSWORD_BYTES} bytes")
    return password


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise HtpasswdError(f"cannot read htpasswd file {path}: {exc}") from None


def read_users(path: Path) -> dict[str, User]:
    """The users of ``path`` as the server reads them (none when the file does not exist)."""
    return parse_htpasswd(_read(path), str(path))


def _line_name(line: str) -> str | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#") or ":" not in stripped:
        return None
    return stripped.split(":", 1)[0]


def _write(path: Path, lines: list[str]) -> None:
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    parse_htpasswd(text, str(path))  # never write what the server would refuse
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = FILE_MODE
    replace_file(path, text.encode(), mode)


def add_user(path: Path, name: str, password: str, cost: int = DEFAULT_COST) -> bool:
    """Set ``name``'s password in ``path`` (created 0600 when missing): its line is replaced in place, or appended.
    True when the user was new."""
    check_user_name(name)
    check_password(password)
    text = _read(path)
    parse_htpasswd(text, str(path))
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()
    new_line = f"{name}:{hashed}\n"
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if _line_name(line) == name:
            lines[index] = new_line
            _write(path, lines)
            return False
    _write(path, [*lines, new_line])
    return True


def delete_user(path: Path, name: str) -> None:
    """Remove ``name``'s line from ``path``; :class:`KeyError` when there is no such user."""
    text = _read(path)
    parse_htpasswd(text, str(path))
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if _line_name(line) != name]
    if len(kept) == len(lines):
        raise KeyError(name)
    _write(path, kept)
