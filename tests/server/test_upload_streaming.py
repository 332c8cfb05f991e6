"""Large request bodies: batched, pipelined writing and hashing keeps every byte, in order."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.oci.digest import Hasher
from dockyard.server.storage.blobs import PIPELINE_DEPTH, WRITE_BATCH, _copy_stream, _write_all
from tests.conftest import unique
from tests.support.servers import DockyardServer

# More batches than the pipeline holds, and a tail that is not a whole batch.
BODY_SIZE = (PIPELINE_DEPTH + 3) * WRITE_BATCH + 12_345


def _pattern(size: int) -> bytes:
    """Bytes whose every 4 MiB-aligned window differs, so a reordered or dropped batch changes the digest."""
    block = os.urandom(1 << 16)
    out = bytearray()
    n = 0
    while len(out) < size:
        out += n.to_bytes(8, "big") + block
        n += 1
    return bytes(out[:size])


def _chunks(data: bytes, sizes: tuple[int, ...]) -> Iterator[bytes]:
    pos, i = 0, 0
    while pos < len(data):
        step = sizes[i % len(sizes)]
        yield data[pos : pos + step]
        pos += step
        i += 1


def _start(client: httpx.Client, repo: str) -> str:
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202, response.text
    return response.headers["Location"]


def test_streamed_monolithic_upload_round_trips(dockyard_server: DockyardServer) -> None:
    data = _pattern(BODY_SIZE)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    repo = unique()
    with httpx.Client(base_url=dockyard_server.url, timeout=60.0) as client:
        location = _start(client, repo)
        response = client.put(
            location,
            params={"digest": digest},
            content=_chunks(data, (65_536, 1_000_003, 7)),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 201, response.text
        pulled = client.get(f"/v2/{repo}/blobs/{digest}")
        assert pulled.status_code == 200
        assert pulled.content == data


def test_chunked_upload_of_large_patches_wrong_digest_then_right_one(dockyard_server: DockyardServer) -> None:
    data = _pattern(BODY_SIZE)
    half = BODY_SIZE // 2 + 1
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    repo = unique()
    with httpx.Client(base_url=dockyard_server.url, timeout=60.0) as client:
        location = _start(client, repo)
        first = client.patch(
            location,
            content=_chunks(data[:half], (262_144,)),
            headers={"Content-Type": "application/octet-stream", "Content-Range": f"0-{half - 1}"},
        )
        assert first.status_code == 202, first.text
        assert first.headers["Range"] == f"0-{half - 1}"
        wrong = "sha256:" + hashlib.sha256(data[:-1]).hexdigest()
        refused = client.put(
            first.headers["Location"],
            params={"digest": wrong},
            content=data[half:],
            headers={"Content-Type": "application/octet-stream", "Content-Range": f"{half}-{BODY_SIZE - 1}"},
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["errors"][0]["code"] == "DIGEST_INVALID"
        assert client.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404
        assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
        # A refused session is gone; the same bytes in two large PATCHes and a bare PUT commit.
        assert client.get(first.headers["Location"]).status_code == 404
        location = _start(client, repo)
        for start, end in ((0, half), (half, BODY_SIZE)):
            response = client.patch(
                location,
                content=_chunks(data[start:end], (262_144,)),
                headers={"Content-Type": "application/octet-stream", "Content-Range": f"{start}-{end - 1}"},
            )
            assert response.status_code == 202, response.text
            assert response.headers["Range"] == f"0-{end - 1}"
            location = response.headers["Location"]
        done = client.put(location, params={"digest": digest})
        assert done.status_code == 201, done.text
        assert client.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_write_all_handles_more_chunks_than_one_writev_takes(tmp_path: Path) -> None:
    chunks = [bytes([i % 251]) * (i % 7 + 1) for i in range(3000)]
    target = tmp_path / "data"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        _write_all(fd, chunks)
    finally:
        os.close(fd)
    assert target.read_bytes() == b"".join(chunks)


class BodyBroke(Exception):
    """The request body stopped early (as when the client disconnects)."""


async def _pieces(data: bytes, size: int, fail_after: int | None = None) -> AsyncIterator[bytes]:
    for n, pos in enumerate(range(0, len(data), size)):
        if fail_after is not None and n == fail_after:
            raise BodyBroke
        yield data[pos : pos + size]


async def test_copy_stream_writes_and_hashes_every_batch_in_order(tmp_path: Path) -> None:
    data = _pattern(BODY_SIZE)
    target = tmp_path / "data"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    hasher = Hasher("sha256")
    try:
        assert await _copy_stream(_pieces(data, 300_001), fd, hasher) == len(data)
    finally:
        os.close(fd)
    assert target.read_bytes() == data
    assert hasher.digest == "sha256:" + hashlib.sha256(data).hexdigest()


async def test_copy_stream_keeps_a_prefix_when_the_body_breaks(tmp_path: Path) -> None:
    data = _pattern(BODY_SIZE)
    target = tmp_path / "data"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        with pytest.raises(BodyBroke):
            await _copy_stream(_pieces(data, 262_144, fail_after=(PIPELINE_DEPTH + 1) * 16 + 5), fd, None)
        # Every batch handed to the writer is on disk once the call returns; the descriptor is free to close.
        assert os.fstat(fd).st_size % WRITE_BATCH == 0
    finally:
        os.close(fd)
    stored = target.read_bytes()
    assert len(stored) >= (PIPELINE_DEPTH + 1) * WRITE_BATCH
    assert stored == data[: len(stored)]


async def test_copy_stream_stops_writing_after_a_failed_write(tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.write_bytes(b"")
    fd = os.open(target, os.O_RDONLY)  # every write fails
    try:
        with pytest.raises(OSError):
            await _copy_stream(_pieces(_pattern(BODY_SIZE), 262_144), fd, Hasher("sha256"))
    finally:
        os.close(fd)
    assert target.read_bytes() == b""


def _read_response(sock: socket.socket, buffered: bytes) -> tuple[int, bytes, bytes]:
    """(status, body, what was read past it) of one HTTP/1.1 response with a Content-Length."""
    while b"\r\n\r\n" not in buffered:
        more = sock.recv(65536)
        assert more, f"connection closed after {buffered!r}"
        buffered += more
    head, _, rest = buffered.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    while len(rest) < length:
        more = sock.recv(1 << 20)
        assert more, "connection closed inside a response body"
        rest += more
    return int(lines[0].split()[1]), rest[:length], rest[length:]


def test_a_request_right_behind_a_large_body_in_the_same_read_is_answered(dockyard_server: DockyardServer) -> None:
    """Reads holding only body bytes of a ``Content-Length`` request skip the parser; the body still arrives
    whole, and a request that follows the body's last bytes in the same read is parsed and answered."""
    repo = unique("pipelined")
    data = _pattern(3 * WRITE_BATCH + 12_345)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = httpx.post(f"{dockyard_server.url}/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    host, port = dockyard_server.host.rsplit(":", 1)
    put = (f"PUT {started.headers['location']}?digest={digest} HTTP/1.1\r\nHost: {dockyard_server.host}\r\n"
           f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    get = f"GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: {dockyard_server.host}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(put + data[:1000])  # the headers and the body's first bytes: through the parser
        for pos in range(1000, len(data) - 77, 1 << 20):
            sock.sendall(data[pos : min(pos + (1 << 20), len(data) - 77)])  # body only
        sock.sendall(data[-77:] + get)  # the body's tail and the next request together
        status, body, rest = _read_response(sock, b"")
        assert status == 201, body
        status, body, _ = _read_response(sock, rest)
        assert status == 200 and body == data
