"""Large request bodies: batched, pipelined writing and hashing keeps every byte, in order."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx

from dockyard.server.storage.blobs import PIPELINE_DEPTH, WRITE_BATCH, _write_all
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
