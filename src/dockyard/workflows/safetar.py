"""Reading members of an untrusted tar file in place: bounded, without extracting anything.

:class:`TarIndex` scans a seekable tar file once (headers only), refuses what a hostile archive could use
against its reader, and then opens any member as a stream over its byte range — nothing is written to disk,
and no member is held in memory:

* member names are normalised (``./a`` is ``a``); absolute names, ``..`` components, backslashes and names
  given twice are refused;
* only regular files, directories and links are accepted; a link (``docker save`` links repeated layers) is
  followed only to a regular file inside the archive, and only a few links deep;
* the number of members is bounded, and so is every single read the tar parser makes (a PAX or GNU long-name
  header claiming gigabytes is refused instead of read into memory);
* a member whose data runs past the end of the file is refused.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import DockyardError

#: Default bound on the number of members of one archive.
MAX_MEMBERS = 100_000
#: The largest single read the tar parser may make (a PAX or GNU long-name header).
MAX_HEADER_READ = 1024 * 1024
#: How many links may be followed to reach a regular file.
MAX_LINK_DEPTH = 8


class ArchiveError(DockyardError):
    """An archive that is malformed, hostile or not of the expected kind."""


def compression_of(head: bytes) -> str | None:
    """``"gzip"`` or ``"zstd"`` when ``head`` (the first 4 bytes of a stream) starts compressed data, else None."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    return None


def relative_parts(raw: str) -> list[str] | None:
    """The components of a tar member name (``.`` and empty ones dropped), or ``None`` when the name is not a
    relative path inside the archive: empty, absolute, climbing out with ``..``, with backslashes or NUL bytes.
    The one rule for member names, shared by archive reading and layer unpacking."""
    if not raw or "\\" in raw or "\x00" in raw or raw.startswith("/"):
        return None
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return parts


def member_name(raw: str) -> str:
    """The normalised name of a tar member or of a path inside the archive; :class:`ArchiveError` when it is
    absolute, climbs out with ``..``, uses backslashes or is empty."""
    parts = relative_parts(raw)
    if parts is None:
        raise ArchiveError(f"refusing archive member {raw!r}: not a relative path inside the archive")
    return "/".join(parts)


class _BoundedReads(io.RawIOBase):
    """A file wrapper that refuses any single read larger than ``limit`` (the tar parser's header reads)."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        super().__init__()
        self._raw = raw
        self._limit = limit

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self._limit:
            raise ArchiveError(f"refusing a tar header of {size} bytes (the limit is {self._limit})")
        return self._raw.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


@dataclass(frozen=True)
class Member:
    """A regular file inside the archive: where its bytes are."""

    name: str
    offset: int
    size: int


class _RangeReader(io.RawIOBase):
    """A read-only stream over ``size`` bytes of ``path`` starting at ``offset`` (its own file handle)."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        super().__init__()
        self._file = path.open("rb")
        self._file.seek(offset)
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        want = min(len(target), self._left)
        if want <= 0:
            return 0
        data = self._file.read(want)
        if not data:
            raise ArchiveError("the archive ended inside a member (truncated file)")
        target[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


class TarIndex:
    """The members of a tar file, scanned once; :meth:`open` streams one member's bytes.

    Raises :class:`ArchiveError` for a file that is not a tar, or for anything listed in the module docstring.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_members: int = MAX_MEMBERS) -> None:
        self.path = Path(path)
        self._files: dict[str, Member] = {}
        self._links: dict[str, str] = {}
        self._dirs: set[str] = set()
        if not self.path.is_file():
            raise ArchiveError(f"{self.path}: not a regular file")
        file_size = self.path.stat().st_size
        with self.path.open("rb") as raw:
            head = raw.read(4)
            raw.seek(0)
            if compression_of(head) is not None:
                raise ArchiveError(f"{self.path} is a compressed file: decompress it first (gunzip, zstd -d)")
            try:
                with tarfile.open(fileobj=_BoundedReads(raw, MAX_HEADER_READ), mode="r:") as tar:
                    for count, info in enumerate(tar, start=1):
                        if count > max_members:
                            raise ArchiveError(f"{self.path}: more than {max_members} members")
                        self._add(info, file_size)
            except tarfile.TarError as exc:
                raise ArchiveError(f"{self.path}: not a readable tar archive: {exc}") from None

    def _add(self, info: tarfile.TarInfo, file_size: int) -> None:
        name = member_name(info.name)
        if name in self._files or name in self._links:
            raise ArchiveError(f"{self.path}: member {name!r} appears twice")
        if info.isdir():
            self._dirs.add(name)
        elif info.isreg():
            if info.issparse():
                raise ArchiveError(f"refusing archive member {name!r}: a sparse file")
            if info.offset_data + info.size > file_size:
                raise ArchiveError(f"{self.path}: member {name!r} runs past the end of the file")
            self._files[name] = Member(name, info.offset_data, info.size)
        elif info.issym():
            target = info.linkname
            if target.startswith("/"):
                raise ArchiveError(f"refusing archive member {name!r}: a link to the absolute path {target!r}")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            if resolved == ".." or resolved.startswith("../"):
                raise ArchiveError(f"refusing archive member {name!r}: a link to {target!r}, outside the archive")
            self._links[name] = member_name(resolved)
        elif info.islnk():
            self._links[name] = member_name(info.linkname)
        else:
            raise ArchiveError(f"refusing archive member {name!r}: not a regular file, directory or link")

    def names(self) -> Iterator[str]:
        """The names of the regular files and links, in archive order of first sight."""
        yield from self._files
        yield from self._links

    def _find(self, name: str) -> Member | None:
        current = member_name(name)
        for _ in range(MAX_LINK_DEPTH + 1):
            found = self._files.get(current)
            if found is not None:
                return found
            target = self._links.get(current)
            if target is None:
                return None
            current = target
        raise ArchiveError(f"{self.path}: {name!r} is a chain of more than {MAX_LINK_DEPTH} links")

    def member(self, name: str) -> Member:
        """The regular file ``name`` names, following links inside the archive; :class:`ArchiveError` when absent."""
        found = self._find(name)
        if found is None:
            raise ArchiveError(f"{self.path} has no file {name!r}")
        return found

    def has(self, name: str) -> bool:
        """True when ``name`` is a regular file (or a link to one) in the archive (a link loop raises)."""
        return self._find(name) is not None

    def open(self, name: str) -> IO[bytes]:
        """A binary stream over member ``name`` (close it)."""
        member = self.member(name)
        return io.BufferedReader(_RangeReader(self.path, member.offset, member.size), 1024 * 1024)

    def read_small(self, name: str, limit: int) -> bytes:
        """The whole content of member ``name``, refused when larger than ``limit`` bytes."""
        member = self.member(name)
        if member.size > limit:
            raise ArchiveError(f"{self.path}: {name} is {member.size} bytes; the limit is {limit}")
        with self.open(name) as stream:
            return stream.read(member.size)


__all__ = [
    "MAX_HEADER_READ",
    "MAX_LINK_DEPTH",
    "MAX_MEMBERS",
    "ArchiveError",
    "Member",
    "TarIndex",
    "compression_of",
    "member_name",
    "relative_parts",
]
