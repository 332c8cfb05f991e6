"""Large ``Content-Length`` bodies are read with ``recv_into`` into pooled buffers (``connection.BodyReceiver``).

A real uvicorn server with dockyard's connection protocol runs in a thread (on uvloop and on asyncio's own loop:
both must switch a transport's protocol mid-connection), in front of a tiny ASGI app that reports what it received:
the digest, the byte count, and the type and size of every body piece.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from dockyard.server import connection
from dockyard.server.connection import (
    BUFFERED_BODY_MIN,
    PIECE_SIZE,
    BufferPool,
    ConnectionLimits,
    LimitedHttpToolsProtocol,
)

WAIT = 10.0
#: Bodies seen by the app that ended in a disconnect: (bytes received before it).
disconnects: list[int] = []


async def report(scope: Any, receive: Any, send: Any) -> None:
    """Answer with what the body was: its sha256, size and pieces (type name, length)."""
    if scope["type"] != "http":
        return
    hasher = hashlib.sha256()
    pieces: list[tuple[str, int]] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnects.append(size)
            return
        body = message.get("body", b"")
        if body:
            hasher.update(body)
            pieces.append((type(body).__name__, len(body)))
            size += len(body)
        if not message.get("more_body", False):
            break
    answer = json.dumps({"sha256": hasher.hexdigest(), "size": size, "pieces": pieces}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(params=["uvloop", "asyncio"])
def server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    """(host, port) of a uvicorn server running ``report`` with dockyard's connection protocol (body timeout 1 s)."""
    monkeypatch.setattr(connection, "_limits", ConnectionLimits(100, 64 * 1024, 5.0, 1.0))
    disconnects.clear()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(report, loop=request.param, http=LimitedHttpToolsProtocol, log_level="error",
                            lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if uv.started:
                break
            threading.Event().wait(0.01)
        assert uv.started
        yield sock.getsockname()
    finally:
        uv.should_exit = True
        thread.join(WAIT)
        sock.close()


def _request(length: int, extra: str = "") -> bytes:
    return (f"PUT /blob HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


def _response(sock: socket.socket | _Closed, pending: bytes = b"") -> tuple[int, bytes, bytes]:
    """(status, body, bytes after the response) of one ``Content-Length`` response."""
    data = pending
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        assert more, "connection closed before a response"
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    while len(rest) < length:
        more = sock.recv(65536)
        assert more, "connection closed inside a response body"
        rest += more
    return int(lines[0].split()[1]), rest[:length], rest[length:]


def _connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=WAIT)


def test_a_large_body_arrives_whole_in_pooled_buffer_pieces(server: tuple[str, int]) -> None:
    data = os.urandom(5 * PIECE_SIZE + 12_345)
    with _connect(server) as sock:
        sock.sendall(_request(len(data)) + data[:1000])  # headers and the body's first bytes in one write
        sock.sendall(data[1000:])
        status, body, _ = _response(sock)
    assert status == 200
    answer = json.loads(body)
    assert answer["sha256"] == hashlib.sha256(data).hexdigest() and answer["size"] == len(data)
    # After what the parser delivered with the headers, the body comes as full buffers, then the tail.
    buffered = [size for kind, size in answer["pieces"] if kind == "memoryview"]
    assert buffered and sum(buffered) >= len(data) - 1000 - PIECE_SIZE
    assert all(size == PIECE_SIZE for size in buffered[:-1])


def test_a_request_behind_a_large_body_in_the_same_write_is_answered(server: tuple[str, int]) -> None:
    """No read takes more than the body's remaining bytes: the next request is left to the parser."""
    first, second = os.urandom(2 * PIECE_SIZE + 7), os.urandom(3 * PIECE_SIZE + 1)
    with _connect(server) as sock:
        sock.sendall(_request(len(first)) + first + _request(len(second)) + second + _request(3) + b"abc")
        pending = b""
        for data in (first, second, b"abc"):
            status, body, pending = _response(sock, pending)
            assert status == 200
            assert json.loads(body)["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_body_longer_than_its_content_length_leaves_the_rest_to_the_parser(server: tuple[str, int]) -> None:
    """A client that sends more than it announced: the announced bytes are the body (never more), the rest is
    parsed as the next request, here a malformed one (400, connection closed)."""
    data = os.urandom(BUFFERED_BODY_MIN + 100)
    with _connect(server) as sock:
        sock.sendall(_request(len(data) - 50))
        sock.sendall(data)
        answers = b""
        while chunk := sock.recv(65536):
            answers += chunk
    statuses = []
    while answers:
        status, body, answers = _response(_Closed(), answers)
        statuses.append(status)
        if status == 200:
            assert json.loads(body)["sha256"] == hashlib.sha256(data[:-50]).hexdigest()
        else:
            assert json.loads(body)["errors"][0]["message"].startswith("malformed HTTP request")
    assert statuses[-1] == 400


class _Closed:
    """A socket with nothing more to read (``_response`` on bytes already received)."""

    def recv(self, size: int) -> bytes:
        return b""


def test_a_body_cut_short_is_a_disconnect_and_the_server_goes_on(server: tuple[str, int]) -> None:
    data = os.urandom(3 * PIECE_SIZE)
    with _connect(server) as sock:
        sock.sendall(_request(len(data)) + data[: 2 * PIECE_SIZE + 5])
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(65536) == b""  # no answer: the request never completed
    for _ in range(500):
        if disconnects:
            break
        threading.Event().wait(0.01)
    assert disconnects and disconnects[0] <= 2 * PIECE_SIZE + 5
    with _connect(server) as sock:  # the server still answers
        sock.sendall(_request(4) + b"okay")
        status, body, _ = _response(sock)
    assert status == 200 and json.loads(body)["size"] == 4


def test_a_stalled_large_body_gets_408(server: tuple[str, int]) -> None:
    """The body timeout (1 s here) still applies while the body is read into buffers."""
    with _connect(server) as sock:
        sock.sendall(_request(4 * PIECE_SIZE) + b"x" * (PIECE_SIZE + PIECE_SIZE // 2))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert "no request body bytes" in json.loads(body)["errors"][0]["message"]


def test_expect_100_continue_with_a_large_body(server: tuple[str, int]) -> None:
    data = os.urandom(2 * PIECE_SIZE + 3)
    with _connect(server) as sock:
        sock.sendall(_request(len(data), "Expect: 100-continue\r\n"))
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 ")
        _, _, pending = interim.partition(b"\r\n\r\n")
        sock.sendall(data)
        status, body, _ = _response(sock, pending)
    assert status == 200 and json.loads(body)["sha256"] == hashlib.sha256(data).hexdigest()


def test_the_pool_hands_out_a_buffer_again_only_once_nothing_refers_to_it() -> None:
    pool = BufferPool(16, 2)
    first = pool.take()
    view = memoryview(first)[:4]
    first_id = id(first)
    del first
    second = pool.take()
    assert id(second) != first_id  # the first is still referred to by a view of it
    del view
    again = pool.take()
    assert id(again) == first_id  # free now: reused, not a new allocation
    assert pool.take() is not second and pool.take() is not again  # both held: a third buffer
