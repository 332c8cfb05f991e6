"""The raw range reader of parallel downloads (``dockyard.transport.rawrange``) against a tiny loopback server
that answers each request with programmed bytes: a plain ``206`` lands in the file; anything it does not handle
(chunked bodies, ``200`` instead of ``206``, redirects, a range it did not ask for) is refused before a byte is
written, and a short read stops where the bytes stopped, so the ordinary transport can go on from there."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard import ContainerRegistryClient
from dockyard.errors import HttpResponseError
from dockyard.oci.digest import Hasher
from dockyard.protocol.download import BlobReadState
from dockyard.transport.filesink import FileSink
from dockyard.transport.rawrange import Unsupported, fetch_part
from tests.support.canned import CannedReplyServer

BLOB = bytes(range(256)) * 64  # 16 KiB




@pytest.fixture
def server() -> Iterator[CannedReplyServer]:
    running = CannedReplyServer()
    try:
        yield running
    finally:
        running.close()


def _digest() -> str:
    hasher = Hasher("sha256")
    hasher.update(BLOB)
    return hasher.digest


@pytest.fixture
def read(server: CannedReplyServer, tmp_path: Path) -> Iterator[Callable[[int, int], tuple[BlobReadState, FileSink]]]:
    """``read(start, end)``: the state and sink of one part, fetched from ``server`` (the sink is discarded
    at the end; the reader's exceptions propagate, and ``read.last`` keeps the state and sink anyway)."""
    sinks: list[FileSink] = []

    def fetch(start: int, end: int) -> tuple[BlobReadState, FileSink]:
        with ContainerRegistryClient(f"http://127.0.0.1:{server.port}") as client:
            session = client._ops.session
        state = BlobReadState(session, "repo", _digest(), offset=start, end=end, verify=False, size=len(BLOB))
        sink = FileSink(tmp_path / "blob", _digest())
        sinks.append(sink)
        fetch.last = (state, sink)  # type: ignore[attr-defined]
        url = f"http://127.0.0.1:{server.port}/v2/repo/blobs/{_digest()}"
        fetch_part(url, {"Authorization": "Bearer t"}, state, sink, timeout=5.0, context=ssl.create_default_context())
        return state, sink

    yield fetch
    for sink in sinks:
        sink.discard()


def _partial(start: int, end: int, body: bytes | None = None, extra: str = "") -> bytes:
    body = BLOB[start : end + 1] if body is None else body
    head = (f"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{end}/{len(BLOB)}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n")
    return head.encode() + body


def test_a_plain_206_lands_at_its_offset(server: CannedReplyServer, read: Any) -> None:
    server.reply = _partial(4096, 8191)
    state, sink = read(4096, 8191)
    assert state.complete and state.written == 8192
    with open(sink.temp, "rb") as written:
        written.seek(4096)
        assert written.read(4096) == BLOB[4096:8192]
    head = server.heads[0]
    assert "Range: bytes=4096-8191" in head and "Authorization: Bearer t" in head
    assert "Accept-Encoding: identity" in head


@pytest.mark.parametrize(
    ("name", "reply"),
    [
        ("whole body", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BLOB) + BLOB),
        ("redirect", b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/elsewhere\r\n"
                     b"Content-Length: 0\r\n\r\n"),
        ("chunked", b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-4095/16384\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n1000\r\n" + BLOB[:4096] + b"\r\n0\r\n\r\n"),
        ("other range", _partial(8192, 12287)),
        ("compressed", _partial(0, 4095, extra="Content-Encoding: gzip\r\n")),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_what_it_does_not_handle_is_refused_before_writing(
    server: CannedReplyServer, read: Any, name: str, reply: bytes
) -> None:
    server.reply = reply
    with pytest.raises(Unsupported):
        read(0, 4095)
    state, sink = read.last
    assert state.position == state.written == 0
    assert sink.temp.stat().st_size == 0


def test_a_short_read_stops_where_the_bytes_stopped(server: CannedReplyServer, read: Any) -> None:
    server.reply = _partial(0, 8191)[:-5000]  # the connection closes 5000 bytes early
    with pytest.raises(ConnectionError, match="connection closed at byte 3192"):
        read(0, 8191)
    state, sink = read.last
    assert state.written == state.position == 8192 - 5000
    with open(sink.temp, "rb") as written:
        assert written.read() == BLOB[: state.written]


@pytest.mark.parametrize("verify", [False, True])
def test_one_tls_context_for_httpx_and_the_reader(verify: bool) -> None:
    with ContainerRegistryClient("https://127.0.0.1:9", connection_verify=verify) as client:
        context = client._config.verify
        assert isinstance(context, ssl.SSLContext)
        assert (context.verify_mode == ssl.CERT_NONE) is (not verify)
        assert client._driver.part_reader.context is context
        pool = client._driver.http._transport.for_this_thread()._pool  # type: ignore[attr-defined]
        assert pool._ssl_context is context


def _refusal(status: int, reason: str, code: str, extra: str = "") -> bytes:
    body = json.dumps({"errors": [{"code": code, "message": f"{code.lower()} from the canned registry"}]}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"{extra}\r\n")
    return head.encode() + body


def test_an_error_answer_is_kept_for_the_protocol(server: CannedReplyServer, read: Any) -> None:
    server.reply = _refusal(429, "Too Many Requests", "TOOMANYREQUESTS", "Retry-After: 7\r\n")
    with pytest.raises(Unsupported):
        read(0, 4095)
    state, sink = read.last
    assert state.refusal is not None and state.refusal.status == 429
    assert state.refusal.header("retry-after") == "7" and b"TOOMANYREQUESTS" in state.refusal.content
    assert state.position == state.written == 0 and sink.temp.stat().st_size == 0


@pytest.mark.parametrize(
    ("reply", "status", "retries", "requests"),
    [
        # Each is the answer to the one request: asked again over httpx it would reach the registry twice.
        (_refusal(429, "Too Many Requests", "TOOMANYREQUESTS", "Retry-After: 0\r\n"), 429, 0, 1),
        (_refusal(404, "Not Found", "BLOB_UNKNOWN"), 404, 0, 1),
        (_refusal(404, "Not Found", "BLOB_UNKNOWN"), 404, 3, 1),
        # A status to retry: the lean reader's request was the first attempt of the policy's 1 + retries.
        (_refusal(503, "Service Unavailable", "UNAVAILABLE", "Retry-After: 0\r\n"), 503, 1, 2),
        (_refusal(429, "Too Many Requests", "TOOMANYREQUESTS", "Retry-After: 0\r\n"), 429, 2, 3),
    ],
    ids=["429-no-retries", "404", "404-with-retries", "503-one-retry", "429-two-retries"],
)
def test_a_streamed_download_sends_an_answered_request_once_per_attempt(
    server: CannedReplyServer, reply: bytes, status: int, retries: int, requests: int
) -> None:
    server.reply = reply
    with (ContainerRegistryClient(f"http://127.0.0.1:{server.port}", retry_total=retries) as client,
          pytest.raises(HttpResponseError) as raised):
        b"".join(client.download_blob("repo", _digest(), size=len(BLOB)))
    assert raised.value.status_code == status
    assert "from the canned registry" in str(raised.value)
    assert len(server.heads) == requests
