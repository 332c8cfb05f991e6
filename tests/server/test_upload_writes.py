"""How an upload session's body reaches its file: in writes small enough to keep page-cache folios small, and
hashed as it is written by whichever process receives it."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from dockyard.server.storage.blobs import FileBlobStore, FileUploadStore, _write_all
from dockyard.transport.filesink import PAGE_CACHE_WRITE, FileSink


def _write_calls() -> int:
    """Write system calls made by the calling thread so far (``syscw`` of ``/proc/thread-self/io``)."""
    for line in Path("/proc/thread-self/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    raise AssertionError("no syscw in /proc/thread-self/io")


def _body(size: int) -> bytes:
    return os.urandom(1 << 16) * (size >> 16)


def _write_counted(path: Path, chunks: list[bytes]) -> int:
    """Write ``chunks`` to a new file at ``path`` as the upload store does; the write calls it took (the file's
    content is checked)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        before = _write_calls()
        _write_all(fd, chunks)
        calls = _write_calls() - before
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(chunks)
    return calls


def test_a_batch_of_large_chunks_is_written_in_pieces_no_larger_than_the_page_cache_write(tmp_path: Path) -> None:
    chunks = [_body(1 << 20) for _ in range(7)] + [b"tail", _body(3 << 20)]
    calls = _write_counted(tmp_path / "data", chunks)
    assert calls >= sum(len(c) for c in chunks) // PAGE_CACHE_WRITE  # one writev of everything before


def test_many_small_chunks_still_share_a_write(tmp_path: Path) -> None:
    chunks = [_body(1 << 16) for _ in range(16)]  # 1 MiB in 64 KiB chunks: two writes, not sixteen
    assert _write_counted(tmp_path / "data", chunks) == (1 << 20) // PAGE_CACHE_WRITE


def test_a_downloaded_piece_is_written_in_pieces_no_larger_than_the_page_cache_write(tmp_path: Path) -> None:
    data = _body(4 << 20)
    sink = FileSink(tmp_path / "blob", "sha256:" + hashlib.sha256(data).hexdigest())
    try:
        before = _write_calls()
        sink.write(data, 0)
        calls = _write_calls() - before
    finally:
        os.close(sink.fd)
    assert calls == len(data) // PAGE_CACHE_WRITE
    assert sink.temp.read_bytes() == data


def test_a_body_sent_to_another_process_than_the_one_that_started_the_session_is_hashed_as_it_arrives(
    tmp_path: Path,
) -> None:
    """Two stores over one folder stand for two workers (or a restart between POST and PUT): the one that
    receives the body hashes it as it writes, so the commit need not read the whole file back."""
    started = FileUploadStore(tmp_path, FileBlobStore(tmp_path)).create("demo/app")
    receiver = FileUploadStore(tmp_path, FileBlobStore(tmp_path))
    data = _body(5 << 20)

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 1 << 20):
            yield data[start : start + (1 << 20)]

    size = asyncio.run(receiver.append(started.id, body()))
    assert size == len(data)
    assert receiver.received_digest(started.id, "sha256", size) == "sha256:" + hashlib.sha256(data).hexdigest()
