"""A tiny fault-injecting HTTP/1.1 forwarding proxy on loopback.

The client under test uses the proxy as its registry endpoint (``http://127.0.0.1:<proxy port>``); the
proxy forwards every request to the real registry and, when a programmed fault matches, answers with an
error status, corrupts response bytes or drops the connection in the middle of a body instead. Absolute
URLs of the upstream in response headers (``Location``, ``Link``, the challenge realm) are rewritten to
the proxy, so follow-up requests come back through it. Every request is recorded in ``seen``.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade", "trailer"}
#: A ``trickle`` fault's piece and the pause before each.
_TRICKLE = 64 * 1024
_TRICKLE_PAUSE = 0.05
_PIECE = 64 * 1024


@dataclass
class Seen:
    """One request as the proxy saw it, and what the proxy answered."""

    method: str
    path: str
    headers: dict[str, str]
    status: int
    fault: str | None = None


@dataclass
class Fault:
    """A programmed fault (``status``, ``corrupt``, ``drop``, ``trickle``, ``stall``, ``ignore_range``);
    ``times=None`` means forever."""

    kind: str
    method: str | None = None
    path_contains: str | None = None
    times: int | None = 1
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    after_bytes: int = 0
    hits: int = 0
    #: Only requests carrying this header (any value; case-insensitive name) match.
    header: str | None = None
    #: Set when a ``stall`` fault starts holding a connection silent.
    stalled: threading.Event = field(default_factory=threading.Event)

    def matches(self, method: str, path: str, headers: dict[str, str]) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.header is not None and self.header.lower() not in {name.lower() for name in headers}:
            return False
        return self.path_contains is None or self.path_contains in path


class FaultProxy:
    """Start with ``with FaultProxy(upstream_url) as proxy:``; program faults with the ``inject_*`` methods."""

    def __init__(self, upstream_url: str) -> None:
        scheme, _, rest = upstream_url.partition("://")
        if scheme != "http":
            raise ValueError("the proxy forwards to plain-HTTP loopback registries only")
        self.upstream_url = upstream_url.rstrip("/")
        host, _, port = rest.rstrip("/").partition(":")
        self.upstream_host = host
        self.upstream_port = int(port or 80)
        self.seen: list[Seen] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        #: Set when the proxy stops: ends every ``trickle`` fault's transfer.
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the proxy as a registry reference's host."""
        return f"127.0.0.1:{self.port}"

    # -- programming faults ---------------------------------------------------------------------------

    def inject_status(
        self,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        method: str | None = None,
        path_contains: str | None = None,
        times: int | None = 1,
        header: str | None = None,
    ) -> Fault:
        """Answer matching requests (those carrying ``header``, when given) with ``status`` (and ``headers``)
        instead of forwarding them."""
        return self._add(Fault("status", method, path_contains, times, status=status, headers=dict(headers or {}),
                               header=header))

    def inject_corruption(
        self, *, method: str | None = "GET", path_contains: str | None = None, times: int | None = None
    ) -> Fault:
        """Forward matching requests but flip one byte of every response body piece."""
        return self._add(Fault("corrupt", method, path_contains, times))

    def inject_drop(
        self, after_bytes: int, *, method: str | None = "GET", path_contains: str | None = None, times: int | None = 1
    ) -> Fault:
        """Forward matching requests, send ``after_bytes`` bytes of the body, then close the socket."""
        return self._add(Fault("drop", method, path_contains, times, after_bytes=after_bytes))

    def inject_trickle(
        self, after_bytes: int, *, method: str | None = "GET", path_contains: str | None = None, times: int | None = 1
    ) -> Fault:
        """Forward matching requests, send ``after_bytes`` bytes of the body at full speed and the rest in 64 KiB
        pieces 50 ms apart (until the proxy stops): a transfer kept in flight, its bytes still on their way."""
        return self._add(Fault("trickle", method, path_contains, times, after_bytes=after_bytes))

    def inject_stall(
        self, after_bytes: int | None, *, method: str | None = "GET", path_contains: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        """Forward matching requests, send the head and ``after_bytes`` bytes of the body, then send nothing more,
        the connection held open (until the proxy stops): a hard stall. ``after_bytes=None``: the request is not
        forwarded and nothing at all is answered (a registry that hangs)."""
        return self._add(Fault("stall", method, path_contains, times, after_bytes=-1 if after_bytes is None
                               else after_bytes))

    def inject_ignore_range(
        self, *, method: str | None = "GET", path_contains: str | None = None, times: int | None = None
    ) -> Fault:
        """Forward matching requests without their ``Range`` header: a server that answers 200 to ranges."""
        return self._add(Fault("ignore_range", method, path_contains, times))

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def requests(self, method: str | None = None, path_contains: str | None = None) -> list[Seen]:
        """Recorded requests, optionally filtered."""
        with self._lock:
            return [
                s
                for s in self.seen
                if (method is None or s.method == method) and (path_contains is None or path_contains in s.path)
            ]

    def _add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str, headers: dict[str, str]) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path, headers):
                    fault.hits += 1
                    return fault
        return None

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def _rewrite(self, value: str) -> str:
        return value.replace(self.upstream_url, self.url)

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_ProxyHandler):
        owner = proxy

    return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy
    timeout = 60

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def _read_request_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self) -> None:
        method, path = self.command, self.path
        request_headers = {k: v for k, v in self.headers.items()}
        body = self._read_request_body()
        fault = self.owner._take_fault(method, path, request_headers)
        if fault is not None and fault.kind == "status":
            payload = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"injected by the test proxy"}]}'
            # Recorded before answering: once the client has the answer, the log must already show it.
            self.owner._record(Seen(method, path, request_headers, fault.status, "status"))
            self.send_response(fault.status)
            for name, value in fault.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(payload)
            return
        if fault is not None and fault.kind == "stall" and fault.after_bytes < 0:  # not forwarded, never answered
            self.owner._record(Seen(method, path, request_headers, 0, "stall"))
            self._stall(fault)
            return

        upstream = http.client.HTTPConnection(self.owner.upstream_host, self.owner.upstream_port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in (*_HOP_BY_HOP, "host")}
            if fault is not None and fault.kind == "ignore_range":
                headers = {k: v for k, v in headers.items() if k.lower() not in ("range", "if-range")}
            headers["Host"] = f"{self.owner.upstream_host}:{self.owner.upstream_port}"
            if body or method in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))
            upstream.request(method, path, body=body or None, headers=headers)
            response = upstream.getresponse()
            self.owner._record(Seen(method, path, request_headers, response.status, fault.kind if fault else None))
            self.send_response(response.status, response.reason)
            length = response.getheader("Content-Length")
            for name, value in response.getheaders():
                if name.lower() in _HOP_BY_HOP:
                    continue
                self.send_header(name, self.owner._rewrite(value))
            has_body = method != "HEAD" and response.status not in (204, 304) and not 100 <= response.status < 200
            chunked = has_body and length is None
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if not has_body:
                return
            sent = 0
            for piece in _pieces(response):
                if fault is not None and fault.kind == "corrupt":
                    piece = bytes([piece[0] ^ 0xFF]) + piece[1:]
                if fault is not None and fault.kind == "drop" and sent + len(piece) >= fault.after_bytes:
                    self._write(piece[: max(0, fault.after_bytes - sent)], chunked)
                    self.wfile.flush()
                    self._drop()
                    return
                if fault is not None and fault.kind == "trickle" and sent + len(piece) >= fault.after_bytes:
                    for start in range(0, len(piece), _TRICKLE):
                        if start + sent >= fault.after_bytes:
                            self.wfile.flush()
                            if self.owner._released.wait(_TRICKLE_PAUSE):
                                self._drop()
                                return
                        self._write(piece[start : start + _TRICKLE], chunked)
                    sent += len(piece)
                    continue
                if fault is not None and fault.kind == "stall" and sent + len(piece) >= fault.after_bytes:
                    self._write(piece[: max(0, fault.after_bytes - sent)], chunked)
                    self._stall(fault)
                    return
                self._write(piece, chunked)
                sent += len(piece)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        finally:
            upstream.close()

    def _write(self, piece: bytes, chunked: bool) -> None:
        if not piece:
            return
        if chunked:
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        else:
            self.wfile.write(piece)

    def _stall(self, fault: Fault) -> None:
        """Send what is written so far, then nothing until the proxy stops."""
        self.wfile.flush()
        fault.stalled.set()
        self.owner._released.wait()
        self._drop()

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


def _pieces(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while True:
        piece = response.read(_PIECE)
        if not piece:
            return
        yield piece
