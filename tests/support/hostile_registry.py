"""A tiny malicious registry on loopback: what no real registry would send, on purpose.

Each test gives it a route function ``(method, path_with_query) -> Reply | None``; ``None`` answers 404 with
an OCI error body. A :class:`Reply` body may be bytes or an endless iterator of chunks, sent close-delimited
(no ``Content-Length``) unless the reply sets one. The server counts the body bytes it managed to send per
path (``sent``) so a test can show the client stopped reading; it stops an endless body by itself after
``cap`` bytes so a broken client cannot hang the test run.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PIECE = 64 * 1024


@dataclass
class Reply:
    """What the hostile registry answers."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""


def endless(piece: bytes = b"x" * PIECE) -> Iterator[bytes]:
    """A body that never ends."""
    return itertools.repeat(piece)


Route = Callable[[str, str], Reply | None]


class HostileRegistry:
    """``with HostileRegistry(route) as registry:`` serves ``route`` at ``registry.url`` (plain HTTP, loopback)."""

    def __init__(self, route: Route, cap: int = 512 * 1024 * 1024) -> None:
        self.route = route
        self.cap = cap
        self.sent: Counter[str] = Counter()
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def __enter__(self) -> HostileRegistry:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def count(self, path: str, n: int) -> None:
        with self._lock:
            self.sent[path] += n


def _handler_for(registry: HostileRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            with registry._lock:
                registry.requests.append((self.command, self.path))
            reply = registry.route(self.command, self.path)
            if reply is None:
                reply = Reply(404, {"Content-Type": "application/json"},
                              b'{"errors":[{"code":"NAME_UNKNOWN","message":"not here"}]}')
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            body = reply.body
            if isinstance(body, bytes):
                if "Content-Length" not in reply.headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                    registry.count(self.path, len(body))
                return
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if self.command == "HEAD":
                return
            sent = 0
            try:
                for piece in body:
                    self.wfile.write(piece)
                    sent += len(piece)
                    registry.count(self.path, len(piece))
                    if sent >= registry.cap:
                        break
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    return Handler
