"""Connection abuse against ``dockyard serve``: slowloris, idle sockets, huge headers, stalled bodies, floods.

Each test starts a server of its own with tiny limits (a second, not minutes) and shows that the attack is cut off
while ordinary requests keep being answered.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.oci import compute_digest
from tests.support.servers import DockyardServer

#: How long the tests wait for the server to act on a limit of one second (a bound, not a measurement).
WAIT = 10.0


@pytest.fixture
def strict_server(tmp_path: Path) -> Iterator[DockyardServer]:
    """A server whose header, body and keep-alive timeouts are one second."""
    server = DockyardServer(
        tmp_path / "srv", "--header-timeout", "1", "--body-timeout", "1", "--keep-alive-timeout", "1"
    )
    with server:
        yield server


def connect(server: DockyardServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (``WAIT`` at most)."""
    sock.settimeout(WAIT)
    data = b""
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not piece:
            return data
        data += piece


def is_closed(sock: socket.socket) -> bool:
    """True when the server has closed ``sock`` (reads return end-of-file or a reset), without blocking."""
    sock.setblocking(False)
    try:
        while True:
            piece = sock.recv(65536)
            if not piece:
                return True
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        sock.setblocking(True)


def oci_error(raw: bytes) -> tuple[int, dict[str, object]]:
    """(status, first OCI error) of a raw HTTP response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["errors"][0]


def test_slowloris_connections_are_closed_after_the_header_timeout(strict_server: DockyardServer) -> None:
    sockets = [connect(strict_server) for _ in range(250)]
    stop = threading.Event()

    def trickle() -> None:
        """Send one more header byte on every socket every 0.2 s, as slowloris does."""
        for sock in sockets:
            sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        while not stop.wait(0.2):
            for sock in sockets:
                try:
                    sock.sendall(b"a")
                except OSError:
                    pass

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        # While the attack is in progress, an ordinary client is served.
        assert httpx.get(f"{strict_server.url}/v2/", timeout=WAIT).status_code == 200
        deadline = time.monotonic() + WAIT
        open_ones = sockets
        while open_ones and time.monotonic() < deadline:
            time.sleep(0.2)
            open_ones = [s for s in open_ones if not is_closed(s)]
        assert not open_ones, f"{len(open_ones)} of {len(sockets)} slowloris connections are still open"
    finally:
        stop.set()
        trickler.join()
        for sock in sockets:
            sock.close()
    assert httpx.get(f"{strict_server.url}/v2/", timeout=WAIT).status_code == 200


def test_a_slow_header_is_answered_408_with_an_oci_body(strict_server: DockyardServer) -> None:
    with connect(strict_server) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        status, error = oci_error(read_until_closed(sock))
    assert status == 408
    assert "headers did not arrive" in str(error["message"])


def test_idle_connections_are_closed(strict_server: DockyardServer) -> None:
    """Sockets that never send a byte, and keep-alive connections after their last request, are closed."""
    silent = [connect(strict_server) for _ in range(50)]
    kept = connect(strict_server)
    kept.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        assert kept.recv(65536).startswith(b"HTTP/1.1 200 ")
        for sock in [*silent, kept]:
            read_until_closed(sock)  # returns once the server closed it; fails the test with a timeout otherwise
    finally:
        for sock in [*silent, kept]:
            sock.close()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_an_oversized_header_gets_431_with_an_oci_body(strict_server: DockyardServer) -> None:
    with connect(strict_server) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (100 * 1024) + b"\r\n\r\n")
        status, error = oci_error(read_until_closed(sock))
    assert status == 431
    assert error["detail"] == {"limit": 64 * 1024}


def test_huge_unfinished_headers_do_not_grow_the_server(strict_server: DockyardServer) -> None:
    """Eight connections each sending 64 MiB of one header line: each is cut off near the limit, the server's
    memory stays put, and it keeps answering."""
    assert strict_server.proc is not None
    before = _rss_kib(strict_server.proc.pid)
    piece = b"a" * (1024 * 1024)

    def attack() -> None:
        with connect(strict_server) as sock:
            try:
                sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Huge: ")
                for _ in range(64):
                    sock.sendall(piece)
            except OSError:
                return  # the server closed the connection: what the test wants
            raise AssertionError("the server read a 64 MiB header")

    errors: list[BaseException] = []

    def run() -> None:
        try:
            attack()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    grown = _rss_kib(strict_server.proc.pid) - before
    assert grown < 16 * 1024, f"the server grew by {grown} KiB"
    assert httpx.get(f"{strict_server.url}/v2/", timeout=WAIT).status_code == 200


def test_a_stalled_body_ends_the_request_and_frees_the_upload_session(strict_server: DockyardServer) -> None:
    url = strict_server.url
    started = httpx.post(f"{url}/v2/stall/blobs/uploads/", timeout=WAIT)
    assert started.status_code == 202
    location = started.headers["location"]
    with connect(strict_server) as sock:
        sock.sendall(
            f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {1024 * 1024}\r\n\r\n".encode()
            + b"x" * 10
        )
        status, error = oci_error(read_until_closed(sock))
    assert status == 408
    assert "no request body bytes" in str(error["message"])
    # The session is not locked any more: the next chunk is accepted where the session stands.
    chunk = httpx.patch(
        f"{url}{location}", content=b"y" * 100,
        headers={"Content-Type": "application/octet-stream", "Content-Range": "0-99"}, timeout=WAIT,
    )
    assert chunk.status_code == 202, chunk.text
    assert chunk.headers["range"] == "0-99"


def hold_connection(server: DockyardServer) -> socket.socket:
    """A keep-alive connection the server has accepted and answered on (retried while a just-closed connection
    may still count against the cap)."""
    deadline = time.monotonic() + WAIT
    while True:
        sock = connect(server)
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        if sock.recv(65536).startswith(b"HTTP/1.1 200 "):
            return sock
        sock.close()
        assert time.monotonic() < deadline, "the server refused connections below its cap"
        time.sleep(0.05)


def test_connections_past_the_cap_are_refused_with_503(tmp_path: Path) -> None:
    with DockyardServer(tmp_path / "srv", "--max-connections", "20") as server:
        held = [hold_connection(server) for _ in range(20)]
        try:
            with connect(server) as extra:
                status, error = oci_error(read_until_closed(extra))
            assert status == 503
            assert error["code"] == "UNAVAILABLE"
        finally:
            for sock in held:
                sock.close()
        # Once the held connections are gone, new ones are served again.
        hold_connection(server).close()


def test_a_large_body_followed_by_a_pipelined_request_is_not_taken_for_a_header(
    strict_server: DockyardServer,
) -> None:
    """Only header bytes count against the header limit: a 200 KiB body and the next request in one write pass."""
    data = b"z" * (200 * 1024)
    first = (
        f"POST /v2/pipelined/blobs/uploads/?digest={compute_digest(data)} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode()
    second = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with connect(strict_server) as sock:
        sock.sendall(first + data + second)
        answers = read_until_closed(sock)
    assert answers.startswith(b"HTTP/1.1 201 ")
    assert b"HTTP/1.1 200 " in answers
