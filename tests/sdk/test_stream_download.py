"""Streamed downloads (``for chunk in client.download_blob(...)``, the seed document's way) come in large
pieces straight from the socket, verified, on every registry of the matrix and with every kind of credential;
the lean reader's own edges (a short body, wrong bytes) against a tiny loopback server."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from dockyard import ContainerRegistryClient, DigestValidationError
from dockyard.oci.digest import compute_digest
from dockyard.protocol.download import BlobReadState
from tests.conftest import unique
from tests.sdk.conftest import Api, Backend, _aiter
from tests.support.canned import CannedReplyServer
from tests.support.images import random_bytes, upload_blob

#: The size of the pieces a streamed download hands out (``dockyard.transport.rawrange.STREAM_PIECE``).
STREAM_PIECE = 1024 * 1024
BLOB = random_bytes(2 * STREAM_PIECE + 12345, seed="stream-download")
DIGEST = compute_digest(BLOB)


async def test_a_streamed_download_comes_in_large_verified_pieces(api: Api, backend: Backend) -> None:
    repository = unique("stream")
    with backend.http() as http:
        upload_blob(http, backend.url, repository, BLOB, DIGEST)
    stream = await api.download_blob(repository, DIGEST)
    pieces = [piece async for piece in _aiter(stream)]
    assert b"".join(pieces) == BLOB
    assert [len(p) for p in pieces] == [STREAM_PIECE, STREAM_PIECE, 12345]
    assert all(isinstance(p, bytes) for p in pieces)
    assert stream.blob_size == len(BLOB)




@pytest.fixture
def reply_server() -> Iterator[CannedReplyServer]:
    server = CannedReplyServer()
    try:
        yield server
    finally:
        server.close()


def _ok(body: bytes, length: int | None = None) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(body) if length is None else length) + body


def test_a_short_body_stops_the_pieces_where_the_bytes_stopped(reply_server: CannedReplyServer) -> None:
    from dockyard.transport.rawrange import stream_body

    small = BLOB[: STREAM_PIECE + 5000]
    reply_server.reply = _ok(small[:-3000], length=len(small))  # the connection closes 3000 bytes early
    url = f"http://127.0.0.1:{reply_server.port}/v2/repo/blobs/{compute_digest(small)}"
    with ContainerRegistryClient(url.split("/v2/")[0]) as client:
        state = BlobReadState(client._ops.session, "repo", compute_digest(small))
    got = bytearray()
    with pytest.raises(ConnectionError, match=f"connection closed at byte {len(small) - 3000}"):
        for offset, piece in stream_body(url, {}, state, timeout=5.0, context=ssl.create_default_context()):
            assert offset == len(got)
            got += piece
    assert bytes(got) == small[:-3000] and state.position == len(got)
    assert state.hasher is not None and state.hasher.size == len(got)  # the hash caught up before it handed back


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_wrong_bytes_fail_the_digest(reply_server: CannedReplyServer, flavour: str) -> None:
    reply_server.reply = _ok(bytes(len(BLOB)))
    url = f"http://127.0.0.1:{reply_server.port}"
    with pytest.raises(DigestValidationError):
        if flavour == "sync":
            with ContainerRegistryClient(url) as client:
                for _ in client.download_blob("repo", DIGEST):
                    pass
        else:
            from dockyard.aio import ContainerRegistryClient as AsyncClient

            async with AsyncClient(url) as aclient:
                async for _ in await aclient.download_blob("repo", DIGEST):
                    pass


def _stream_readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "dockyard-stream-reader" and t.is_alive()]


def test_the_sync_stream_receives_ahead_on_its_own_thread_and_lets_go_when_abandoned(
    reply_server: CannedReplyServer,
) -> None:
    """While the caller holds one piece, the next is received on a reader thread (as the async flavour does);
    a caller that stops early leaves no reader thread behind."""
    reply_server.reply = _ok(BLOB)
    with ContainerRegistryClient(f"http://127.0.0.1:{reply_server.port}") as client:
        pieces = iter(client.download_blob("repo", DIGEST))
        first = next(pieces)
        assert first == BLOB[: len(first)]
        assert _stream_readers(), "the next piece is received on a reader thread while the caller holds this one"
        pieces.close()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while _stream_readers():
        assert time.monotonic() < deadline, "an abandoned stream's reader thread stays behind"
        time.sleep(0.05)


async def test_the_async_stream_receives_ahead_on_its_own_thread_and_lets_go_when_abandoned(
    reply_server: CannedReplyServer,
) -> None:
    """The async flavour too: while the coroutine holds one piece, the next is received (and hashed) on a reader
    thread, the event loop only awaits it; a caller that stops early leaves no reader thread behind."""
    from dockyard.aio import ContainerRegistryClient as AsyncClient

    reply_server.reply = _ok(BLOB)
    async with AsyncClient(f"http://127.0.0.1:{reply_server.port}") as client:
        stream = await client.download_blob("repo", DIGEST)
        first = await anext(stream)
        assert first == BLOB[: len(first)]
        assert _stream_readers(), "the next piece is received on a reader thread while the caller holds this one"
        await stream.close()
    deadline = time.monotonic() + 10
    while _stream_readers():
        assert time.monotonic() < deadline, "an abandoned stream's reader thread stays behind"
        time.sleep(0.05)
