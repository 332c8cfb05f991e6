"""Directories as artifact layers: reproducible tar+gzip packing (as ORAS does); unpacking is in safe_extract."""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..oci.digest import Hasher


class _HashingWriter:
    """A write-only file object that hashes what passes through (the uncompressed tar stream)."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.hasher = Hasher()

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()


def _normalize(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def pack_directory(source: Path, destination: Path) -> str:
    """Write ``source`` as a gzip-compressed tar to ``destination``; return the digest of the uncompressed tar.

    Entries are named ``<basename>/…`` (what ``oras push DIR`` does) and carry no owner or time, so the same
    tree always packs to the same bytes.
    """
    source = Path(source)
    with destination.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        # typeshed types GzipFile as no BinaryIO, and wants read/seek/tell of a tar file object even in stream
        # mode, which only writes: both objects do all that ``w|`` calls.
        writer = _HashingWriter(gz)  # type: ignore[arg-type]
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for path in [source, *sorted(source.rglob("*"))]:
                arcname = PurePosixPath(source.name, *path.relative_to(source).parts)
                tar.add(path, arcname=str(arcname), recursive=False, filter=_normalize)
    return writer.hasher.digest


def file_digest(path: Path) -> tuple[str, int]:
    """The sha256 digest and size of a file, read in 1 MiB pieces."""
    hasher = Hasher()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            hasher.update(chunk)
    return hasher.digest, hasher.size


__all__ = ["file_digest", "pack_directory"]
