"""The token signing key: by default the data directory's, created once, atomically, readable by its owner only;
or a key file the operator made (``--token-key-file``), which replicas behind one load balancer share so that a
token issued by one replica verifies on every other."""

from __future__ import annotations

import re
import secrets
import stat
from pathlib import Path

from ..storage.private import create_file_once, make_private_dir

#: The key file, relative to the data directory. Deleting it (and restarting) revokes every token.
KEY_PATH = Path("auth") / "token-secret"
_KEY = re.compile(rb"[0-9a-f]{64,}")


class KeyFileError(RuntimeError):
    """The signing key file cannot be used; the message names it and what to do."""


def key_path(data_dir: Path, key_file: Path | None = None) -> Path:
    """Where the signing key lives: ``key_file`` when given, else in ``data_dir``."""
    return Path(key_file) if key_file is not None else Path(data_dir) / KEY_PATH


def _create(path: Path) -> None:
    """A new key, written to a temporary file (0600), fsynced and linked into place unless another process won."""
    create_file_once(path, secrets.token_hex(32).encode() + b"\n", 0o600)


def load_signing_key(data_dir: Path, key_file: Path | None = None) -> bytes:
    """The signing key: read from ``key_file`` when given (it must exist: replicas that each made their own key
    would refuse each other's tokens), else the one in ``data_dir`` (created on first use). :class:`KeyFileError`
    when it is unusable."""
    path = key_path(data_dir, key_file)
    if key_file is not None:
        fix = f"write a new key to it, e.g. `openssl rand -hex 32 > {path}`, and give every replica the same file"
    else:
        fix = f"delete {path} to create a new key (this revokes every token issued so far)"
    try:
        if key_file is None:
            make_private_dir(path.parent)
            if not path.exists():
                _create(path)
        elif not path.is_file():
            raise KeyFileError(f"the token signing key file {path} does not exist: {fix}")
        data = path.read_bytes().strip()
    except PermissionError as exc:
        raise KeyFileError(f"cannot read the token signing key {path} ({exc.strerror}): give the server's user "
                           f"access to it, or {fix}") from None
    except OSError as exc:
        raise KeyFileError(f"cannot use the token signing key {path} ({exc.strerror or exc}): {fix}") from None
    if not _KEY.fullmatch(data):
        what = "empty" if not data else "not a key this server wrote"
        raise KeyFileError(f"the token signing key {path} is {what}: {fix}")
    return data


def key_exposed(data_dir: Path, key_file: Path | None = None) -> bool:
    """True when the key file is readable or writable by users other than its owner."""
    try:
        mode = key_path(data_dir, key_file).stat().st_mode
    except OSError:
        return False
    return bool(stat.S_IMODE(mode) & 0o077)
