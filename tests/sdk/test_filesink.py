"""``FileSink``, where ``download_blob_to_file`` writes: bytes that continue the hash are hashed straight from
the writer's buffer, bytes written ahead (a later part of a parallel download) are read back when the hash gets
there; either way every byte is verified and a mismatch leaves no file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dockyard import DigestValidationError
from dockyard.oci.digest import compute_digest
from dockyard.transport.filesink import FileSink
from tests.support.images import random_bytes

PIECE = 64 * 1024
BLOB = random_bytes(40 * PIECE + 123, seed="filesink")
DIGEST = compute_digest(BLOB)


def _pieces(start: int, end: int) -> list[tuple[int, bytes]]:
    return [(offset, BLOB[offset : min(end, offset + PIECE)]) for offset in range(start, end, PIECE)]


def _write_part(sink: FileSink, written: list[int], index: int, start: int, end: int) -> None:
    for offset, piece in _pieces(start, end):
        sink.write(piece, offset)
        written[index] = offset + len(piece)


def test_bytes_written_in_order_are_hashed_as_they_are_written(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "blob", DIGEST)
    buffer = bytearray(PIECE)
    for offset, piece in _pieces(0, len(BLOB)):
        buffer[: len(piece)] = piece  # one reused buffer, as the part reader's
        sink.write(memoryview(buffer)[: len(piece)], offset)
        assert sink.hashed == offset + len(piece)
    assert sink.commit() == len(BLOB)
    assert sink.read_back == 0
    assert (tmp_path / "blob").read_bytes() == BLOB


def test_bytes_written_ahead_are_read_back_when_the_hash_gets_there(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "blob", DIGEST)
    middle = 20 * PIECE
    for offset, piece in _pieces(middle, len(BLOB)):
        sink.write(piece, offset)
    assert sink.hashed == 0
    for offset, piece in _pieces(0, middle):
        sink.write(piece, offset)
    assert sink.hashed == middle
    assert sink.commit(len(BLOB)) == len(BLOB)
    assert sink.read_back == len(BLOB) - middle
    assert (tmp_path / "blob").read_bytes() == BLOB


@pytest.mark.parametrize("where", ["in order", "ahead"])
def test_a_wrong_byte_fails_the_digest_and_leaves_no_file(tmp_path: Path, where: str) -> None:
    sink = FileSink(tmp_path / "blob", DIGEST)
    bad = bytearray(BLOB)
    bad[5 if where == "in order" else len(BLOB) - 5] ^= 1
    if where == "ahead":
        sink.write(bytes(bad[PIECE:]), PIECE)
    sink.write(bytes(bad[:PIECE]), 0)
    if where == "in order":
        sink.write(bytes(bad[PIECE:]), PIECE)
    with pytest.raises(DigestValidationError):
        sink.commit(len(BLOB))
    assert list(tmp_path.iterdir()) == []


def test_two_writers_and_a_catching_up_hash_agree_on_every_byte(tmp_path: Path) -> None:
    """Two parts written by two threads while a third hashes through what is written, as a parallel download."""
    for _ in range(20):
        sink = FileSink(tmp_path / "blob", DIGEST)
        middle = 17 * PIECE + 99
        written = [0, middle]

        threads = [threading.Thread(target=_write_part, args=(sink, written, 0, 0, middle)),
                   threading.Thread(target=_write_part, args=(sink, written, 1, middle, len(BLOB)))]
        for thread in threads:
            thread.start()
        while sink.hashed < middle:
            sink.hash_through(written[0])
        for thread in threads:
            thread.join()
        assert sink.commit(len(BLOB)) == len(BLOB)
        assert (tmp_path / "blob").read_bytes() == BLOB
