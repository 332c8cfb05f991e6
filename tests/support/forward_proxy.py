"""A tiny HTTP/1.1 forward proxy on loopback (what ``HTTP_PROXY`` points at), optionally slow.

Clients send it absolute-form requests (``GET http://127.0.0.1:5000/v2/ HTTP/1.1``); it forwards each to that
loopback origin (or to the loopback port an alias names) and records it in ``seen`` (method, absolute URL,
headers). ``upload_rate`` (bytes per second) throttles how fast it reads request bodies, so an upload through
it stays in progress long enough to be interrupted. It only ever connects to loopback.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "proxy-authorization", "te",
               "upgrade", "trailer"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_PIECE = 64 * 1024


@dataclass
class Seen:
    """One request as the proxy received it."""

    method: str
    url: str
    headers: dict[str, str]


class ForwardProxy:
    """``with ForwardProxy() as proxy:`` then ``HTTP_PROXY=proxy.url`` (or ``proxies={"http": proxy.url}``)."""

    def __init__(self, *, upload_rate: int | None = None, aliases: dict[str, int] | None = None) -> None:
        self.upload_rate = upload_rate
        #: Host names the proxy resolves to a loopback port (``{"registry.example": 5000}``), as a proxy in front
        #: of a remote registry would, while the traffic stays on this machine.
        self.aliases = dict(aliases or {})
        self.seen: list[Seen] = []
        self.body_bytes_read = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def requests(self, method: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if method is None or s.method == method]

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def _count(self, n: int) -> None:
        with self._lock:
            self.body_bytes_read += n

    def __enter__(self) -> ForwardProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="forward-proxy", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._server.server_close()


def _handler_for(proxy: ForwardProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = proxy

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: ForwardProxy
    timeout = 60

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                out += self._read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return bytes(out)
        return self._read(length)

    def _read(self, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            piece = self.rfile.read(min(_PIECE, size - len(out)))
            if not piece:
                raise ConnectionError("the client closed the connection mid-body")
            out += piece
            self.owner._count(len(piece))
            if self.owner.upload_rate:
                time.sleep(len(piece) / self.owner.upload_rate)
        return bytes(out)

    def _forward(self) -> None:
        target = urlsplit(self.path)
        host, port = target.hostname or "", target.port or 80
        if host in self.owner.aliases:
            host, port = "127.0.0.1", self.owner.aliases[host]
        if target.scheme != "http" or host not in _LOOPBACK:
            self.send_error(502, "this test proxy forwards plain HTTP to loopback only")
            return
        self.owner._record(Seen(self.command, self.path, dict(self.headers.items())))
        try:
            body = self._body()
        except ConnectionError:
            self.close_connection = True
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        path = target.path + (f"?{target.query}" if target.query else "")
        headers["Host"] = target.netloc
        upstream = http.client.HTTPConnection(host, port, timeout=60)
        try:
            upstream.request(self.command, path or "/", body=body or None, headers=headers)
            response = upstream.getresponse()
            content = response.read()
            self.send_response(response.status, response.reason)
            keep_length = self.command == "HEAD"  # a HEAD answer announces the length of the body it omits
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP and (keep_length or name.lower() != "content-length"):
                    self.send_header(name, value)
            if not keep_length and response.status not in (204, 304):
                self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)
        finally:
            upstream.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward
