"""Writing a downloaded blob to a file: temp file, positional writes, in-order hashing, atomic rename.

A write that lands right where the hash stands is hashed straight from the caller's buffer (still in the core's
cache); bytes written ahead of it (a later part of a parallel download) are read back from the page cache when
the hash gets there.

Local file work only (no network): shared by the sync and async ``download_blob_to_file``.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

from ..errors import DigestValidationError
from ..oci.digest import Hasher, parse_digest

#: The largest single write into a file, by the SDK's downloads and the server's upload bodies alike. Linux (ext4
#: with large folios) gives a write its own folio of up to the write's size; folios of 1 MiB and more come out of
#: the 2 MiB free blocks that a VM's free page reporting hands back to its host, and the first touch of such memory
#: faults in the host: on the benchmark machine writing 256 MiB in 1 MiB pieces cost 0.37-0.6 CPU-s instead of
#: 0.04 in most rounds, in 512 KiB pieces 0.04-0.05 in every round (the server's 4 MiB ``writev`` batches:
#: 0.18-0.58 CPU-s per 256 MiB, against 0.04-0.06 in 512 KiB calls).
PAGE_CACHE_WRITE = 512 * 1024

#: Read-back size for hashing bytes written ahead: 1 MiB stays in the core's cache between the read and the hash
#: (4 MiB cost 3-10% more CPU per GiB in ``download_blob_to_file`` on the benchmark machine).
HASH_READ = 1024 * 1024


class FileSink:
    """A temp file next to ``path`` that becomes ``path`` only after the content verified."""

    def __init__(self, path: str | os.PathLike[str], digest: str) -> None:
        self.path = Path(path)
        self.digest = digest
        self.hasher = Hasher(parse_digest(digest).algorithm)
        self.temp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:12]}.part")
        self.fd = os.open(self.temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self.hashed = 0
        #: How many of the hashed bytes were read back from the file (the rest were hashed as they were written).
        self.read_back = 0
        self.size = 0
        self._buffer = bytearray(HASH_READ)
        self._hashing = threading.Lock()

    def write(self, data: bytes | memoryview, offset: int) -> None:
        """Write ``data`` at ``offset`` (safe from several threads: ``pwrite`` does not share a file position);
        hash it from ``data`` when it continues the bytes hashed so far and nobody else is hashing."""
        view = memoryview(data)
        start = offset
        while view:
            written = os.pwrite(self.fd, view[:PAGE_CACHE_WRITE], offset)
            view = view[written:]
            offset += written
        self.size = max(self.size, offset)
        if start == self.hashed and self._hashing.acquire(blocking=False):
            try:
                if start == self.hashed:  # still: checked again now that nobody else can hash
                    self.hasher.update(data)
                    self.hashed = offset
            finally:
                self._hashing.release()

    def hash_through(self, end: int) -> None:
        """Hash the file's bytes from where hashing stopped up to ``end`` (they must be written already)."""
        view = memoryview(self._buffer)
        with self._hashing:
            while self.hashed < end:
                got = os.preadv(self.fd, [view[: min(len(view), end - self.hashed)]], self.hashed)
                if got <= 0:
                    raise OSError(f"{self.temp}: short read at byte {self.hashed}")
                self.hasher.update(view[:got])
                self.hashed += got
                self.read_back += got

    def commit(self, total: int | None = None) -> int:
        """Hash the rest, verify the digest and rename into place; returns the size."""
        end = total if total is not None else self.size
        self.hash_through(end)
        os.close(self.fd)
        self.fd = -1
        if self.hasher.digest != self.digest:
            self.discard()
            raise DigestValidationError("The content of retrieved blob digest does not match the requested digest.")
        os.replace(self.temp, self.path)
        return self.hashed

    def discard(self) -> None:
        """Drop the temp file (on any failure): a partial file never appears at ``path``."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.temp.unlink(missing_ok=True)
