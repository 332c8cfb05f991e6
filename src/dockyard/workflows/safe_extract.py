"""Unpacking a directory layer from a registry without trusting it, on every supported Python.

``tarfile``'s own extraction is not used (its ``data`` filter is bypassable on CPython releases before
3.10.18 / 3.11.13 / 3.12.11 / 3.13.4, CVE-2025-4517). Every member is checked here and written by this
module:

* names are relative, without ``..``, and lie under ``<title>/`` (a layer titled ``site`` writes ``site/…`` only);
* regular files, directories, symbolic links and hard links only (no devices, FIFOs or other types);
* a symbolic link's target is relative and, followed through every link of the archive, never leaves
  ``<title>/`` (not even half-way, so chains cannot climb out); links are created after all files, so no
  file is ever written through a link;
* a hard link becomes a copy of a regular file extracted before it (never a link to a file outside);
* modes are masked: no setuid, setgid or sticky bit, no group/other write; owners are never set;
* the unpacked files together hold at most ``max_size`` bytes (a small gzip can inflate without end).

Everything is written into a fresh temporary directory next to the destination and moved into place only
when the whole archive passed; a refused archive leaves nothing behind.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from .safetar import relative_parts

#: How many links one path may pass through while it is resolved (Linux's ``MAXSYMLINKS``).
MAX_LINK_HOPS = 40
#: Mode bits kept from an archive: permissions without group/other write; never setuid/setgid/sticky.
MODE_MASK = 0o755
#: The most bytes one directory layer may unpack to (``dockyard pull --max-unpacked-size``).
MAX_UNPACKED_SIZE = 16 * 1024**3
_COPY_CHUNK = 1024 * 1024


class UnsafePathError(ValueError):
    """A file name or archive from a registry that would write outside where it belongs."""


def check_title(title: str) -> str:
    """``title`` when it is a plain file name (the one path component a layer may write); else an error.

    Refused: empty, ``.``, ``..``, absolute, containing ``/`` or ``\\``, or a NUL byte (and ``:`` on Windows).
    """
    if not title or title in (".", "..") or any(c in title for c in "/\\\0") or (os.name == "nt" and ":" in title):
        raise UnsafePathError(f"refusing file name {title!r} from the registry: expected a plain file name")
    return title


def entry_path(name: str, title: str) -> PurePosixPath:
    """The path of archive member ``name`` relative to the layer's directory ``title``; refuses anything else."""
    parts = relative_parts(name)
    if parts is None:
        raise UnsafePathError(f"refusing archive entry {name!r}: not a relative path inside the layer")
    if parts[0] != title:
        raise UnsafePathError(f"refusing archive entry {name!r}: it is outside the layer's directory {title!r}")
    return PurePosixPath(*parts[1:])


def _resolve(path: PurePosixPath, links: dict[PurePosixPath, str], title: str) -> PurePosixPath:
    """Follow ``path`` (relative to the layer's directory) through the archive's ``links`` as the kernel
    would; refuses a step that leaves the directory, an absolute target, or too many hops."""
    pending = list(path.parts)
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                raise UnsafePathError(f"refusing link in {title!r}: it points outside the layer's directory")
            resolved.pop()
            continue
        current = PurePosixPath(*resolved, part)
        target = links.get(current)
        if target is None:
            resolved.append(part)
            continue
        hops += 1
        if hops > MAX_LINK_HOPS:
            raise UnsafePathError(f"refusing link {current} in {title!r}: too many levels of links")
        if target.startswith("/"):
            raise UnsafePathError(f"refusing link {current} in {title!r}: its target {target!r} is absolute")
        pending = target.split("/") + pending
    return PurePosixPath(*resolved)


class _Budget:
    """The bytes a layer may still unpack to."""

    def __init__(self, limit: int, title: str) -> None:
        self.left = limit
        self.limit = limit
        self.title = title

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise UnsafePathError(
                f"refusing layer {self.title!r}: it unpacks to more than {self.limit} bytes (--max-unpacked-size)"
            )


def _write_file(source: IO[bytes] | None, target: Path, mode: int, budget: _Budget) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as out:
        while source is not None and (chunk := source.read(_COPY_CHUNK)):
            budget.take(len(chunk))
            out.write(chunk)
    os.chmod(target, (mode & MODE_MASK) | 0o600)


def _extract_members(tar: tarfile.TarFile, root: Path, title: str, budget: _Budget) -> None:
    """Write ``tar``'s members under ``root`` (the layer's directory in a fresh temporary directory)."""
    seen: dict[PurePosixPath, str] = {PurePosixPath(): "dir"}
    links: dict[PurePosixPath, str] = {}
    dir_modes: dict[PurePosixPath, int] = {}
    for member in tar:
        rel = entry_path(member.name, title)
        if rel in seen and not (member.isdir() and seen[rel] == "dir"):
            raise UnsafePathError(f"refusing archive entry {member.name!r}: it appears twice")
        for parent in list(rel.parents)[:-1]:
            if seen.get(parent, "dir") != "dir":
                raise UnsafePathError(f"refusing archive entry {member.name!r}: {parent} is not a directory")
        for parent in list(rel.parents)[:-1]:
            seen.setdefault(parent, "dir")
        target = root.joinpath(*rel.parts)
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            dir_modes[rel] = member.mode
            seen[rel] = "dir"
        elif member.isreg():
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_file(tar.extractfile(member), target, member.mode, budget)
            seen[rel] = "file"
        elif member.issym():
            links[rel] = member.linkname
            seen[rel] = "link"
        elif member.islnk():
            source = entry_path(member.linkname, title)
            if seen.get(source) != "file":
                raise UnsafePathError(
                    f"refusing hard link {member.name!r}: its target {member.linkname!r} is not a file of this layer"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            with root.joinpath(*source.parts).open("rb") as original:
                _write_file(original, target, os.stat(root.joinpath(*source.parts)).st_mode, budget)
            seen[rel] = "file"
        else:
            raise UnsafePathError(
                f"refusing archive entry {member.name!r}: device, FIFO and other special files are not unpacked"
            )
    for rel, linkname in links.items():
        if not linkname or "\0" in linkname or linkname.startswith("/"):
            raise UnsafePathError(f"refusing link {rel} in {title!r}: its target {linkname!r} is not a relative path")
        _resolve(rel.parent / linkname, links, title)  # raises when any step leaves the directory
    for rel, linkname in links.items():
        target = root.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(linkname, target)
    for rel, mode in sorted(dir_modes.items(), key=lambda item: -len(item[0].parts)):
        os.chmod(root.joinpath(*rel.parts), (mode & MODE_MASK) | 0o700)


def extract_directory_layer(
    archive: Path, output_dir: Path, title: str, *, replace: bool = False, max_size: int = MAX_UNPACKED_SIZE
) -> Path:
    """Unpack the tar+gzip ``archive`` of directory layer ``title`` to ``output_dir/title``; returns that path.

    Raises :class:`UnsafePathError` (nothing written) for a hostile archive or one whose files hold more than
    ``max_size`` bytes, and when ``output_dir/title`` exists already unless ``replace``.
    """
    check_title(title)
    final = Path(output_dir) / title
    if os.path.lexists(final) and not replace:
        raise UnsafePathError(f"{final} exists; pass --force to replace it")
    scratch = Path(tempfile.mkdtemp(prefix=".dockyard-unpack-", dir=output_dir))
    try:
        root = scratch / title
        root.mkdir()
        try:
            with tarfile.open(archive, mode="r|gz") as tar:
                _extract_members(tar, root, title, _Budget(max_size, title))
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise UnsafePathError(f"refusing layer {title!r}: not a valid tar+gzip archive ({exc})") from None
        except OSError as exc:
            raise UnsafePathError(f"refusing layer {title!r}: cannot unpack it ({exc.strerror or exc})") from None
        if os.path.lexists(final):
            if not replace:
                raise UnsafePathError(f"{final} exists; pass --force to replace it")
            os.rename(final, scratch / ".previous")
        os.rename(root, final)
        return final
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


__all__ = [
    "MAX_LINK_HOPS",
    "MAX_UNPACKED_SIZE",
    "MODE_MASK",
    "UnsafePathError",
    "check_title",
    "entry_path",
    "extract_directory_layer",
]
