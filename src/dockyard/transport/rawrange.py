"""A lean HTTP/1.1 reader for blob bodies: the parts of parallel downloads, and streamed downloads.

httpx moves a response body in 64 KiB pieces through h11, which costs more Python per byte than a
download at memory speed can afford. For plain blob GETs whose credentials are already known this
reader receives straight from the socket in large pieces: a parallel part into a reusable buffer
(``recv_into``) written with ``pwrite``; a streamed download as ``bytes`` of :data:`STREAM_PIECE` each,
received and hashed on a thread of its own (:mod:`dockyard.transport.prefetch`) while the caller handles the
piece before.
``recv`` and ``pwrite`` release the GIL, and so does hashing, so the work overlaps. Anything unusual (a
redirect, a challenge, chunked encoding, a proxy or a custom transport) raises :class:`Unsupported`
and the caller continues over httpx from where this stopped; an error answer (a 404, a 429) is kept for the
protocol (``BlobReadState.refusal``), which treats it as the request's first attempt.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Generator, Iterator
from urllib.parse import urlsplit

from ..oci.ranges import parse_content_range, range_header
from ..protocol.download import BlobReadState, Sink
from ..protocol.instructions import ReadRange
from ..protocol.messages import Response
from .config import ClientConfig
from .livesockets import LiveSockets

BUFFER = 1024 * 1024
#: The most of an error answer's body kept for its message.
MAX_ERROR_BODY = 64 * 1024
#: Error statuses left to the ordinary transport: a challenge to answer (401, 407) and a range the protocol
#: handles itself (416). Any other error status is the request's answer, kept in ``BlobReadState.refusal``.
_LEFT_TO_HTTPX = frozenset({401, 407, 416})
#: The size of the pieces a streamed download hands out: large enough that the Python per piece does not count,
#: small enough that a piece is still in the CPU's cache when it is hashed and written (4 MiB pieces cost
#: about twice the CPU per GiB on the machine the benchmarks run on).
STREAM_PIECE = 1024 * 1024
_MAX_HEADER = 64 * 1024


class Unsupported(Exception):
    """This response is not a plain ``200``/``206`` this reader handles; fall back to the general path."""


def _read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(16384)
        if not chunk:
            raise ConnectionError("connection closed before the response head")
        data += chunk
        if len(data) > _MAX_HEADER:
            raise Unsupported("response head too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise Unsupported(f"bad status line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers, rest


def _error_body(sock: socket.socket, rest: bytes, headers: dict[str, str]) -> bytes:
    """At most :data:`MAX_ERROR_BODY` bytes of an error answer's body (none when it is chunked or has no length:
    its message then comes from the status)."""
    length = headers.get("content-length", "")
    if not length.isdigit() or "chunked" in headers.get("transfer-encoding", "").lower():
        return b""
    wanted = min(int(length), MAX_ERROR_BODY)
    body = rest[:wanted]
    while len(body) < wanted:
        more = sock.recv(wanted - len(body))
        if not more:
            break
        body += more
    return body


def _blocking(sock: socket.socket, timeout: float) -> None:
    """Blocking mode with the timeout in the kernel (``SO_RCVTIMEO``), so ``MSG_WAITALL`` fills a whole piece
    per call (Python's own timeout mode polls and returns whatever one packet brought)."""
    sock.settimeout(None)
    seconds = max(0.0, timeout)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                    struct.pack("ll", int(seconds), int((seconds % 1) * 1_000_000)))


def _open(url: str, headers: dict[str, str], state: BlobReadState, *, timeout: float,
          context: ssl.SSLContext, live: LiveSockets | None = None) -> tuple[socket.socket, bytes]:
    """Send ``state``'s GET and check the answer (``state.accept``); the socket and the body bytes that came
    with the head. Raises :class:`Unsupported` for anything but a plain sized ``200``/``206``. The socket is
    remembered in ``live`` (to be cut from another thread)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Unsupported(parts.scheme)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    sock = socket.create_connection((host, port), timeout=timeout)
    if live is not None:
        live.add(sock)
    try:
        if parts.scheme == "https":
            sock = context.wrap_socket(sock, server_hostname=host)
            if live is not None:
                live.add(sock)
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close", "Accept-Encoding: identity"]
        if state.position > 0 or state.end is not None:
            lines.append(f"Range: {range_header(state.position, state.end)}")
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "range", "connection",
                                                                           "accept-encoding")]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        status, response_headers, rest = _read_head(sock)
        if status >= 400 and status not in _LEFT_TO_HTTPX:
            # The answer to this request (a 404, a 429 to wait out, …): asking again over httpx would send the
            # registry a second request for it.
            state.refusal = Response(status, response_headers, _error_body(sock, rest, response_headers), url=url)
            raise Unsupported(f"status {status}")
        if (
            status not in (200, 206)
            or "chunked" in response_headers.get("transfer-encoding", "").lower()
            or response_headers.get("content-encoding", "identity") != "identity"
        ):
            raise Unsupported(f"status {status}")
        if "content-length" not in response_headers:
            # A body that ends when the connection closes: only the full client checks that it ends where the
            # blob does (a hostile server may never stop), so it reads this one.
            raise Unsupported("no Content-Length")
        if status != 206 and state.end is not None:
            raise Unsupported("the server ignored Range")
        if status == 206:
            parsed = parse_content_range(response_headers.get("content-range"))
            if parsed is None or parsed[0] != state.position:
                raise Unsupported("unexpected Content-Range")
        state.accept(Response(status, response_headers, url=url))
        if state.unbounded:
            raise Unsupported("no size")
        if not isinstance(sock, ssl.SSLSocket):
            _blocking(sock, timeout)
        return sock, rest
    except BaseException:
        sock.close()
        raise


def fetch_part(
    url: str, headers: dict[str, str], state: BlobReadState, sink: Sink, *, timeout: float, context: ssl.SSLContext,
    live: LiveSockets | None = None,
) -> None:
    """Fetch ``state``'s remaining range from ``url`` into ``sink``; raises :class:`Unsupported` or OSError."""
    if state.end is None:
        raise Unsupported("parts are bounded ranges")
    sock, rest = _open(url, headers, state, timeout=timeout, context=context, live=live)
    try:
        if rest:
            offset = state.position
            sink.write(state.feed(rest), offset)
            state.written = state.position
        buffer = bytearray(BUFFER)
        view = memoryview(buffer)
        # Plain TCP: wait for a full buffer per call, so each thread takes the GIL once per MiB, not per packet.
        flags = 0 if isinstance(sock, ssl.SSLSocket) else socket.MSG_WAITALL
        while not state.complete:
            wanted = min(len(view), (state.expected_end or 0) - state.position)
            received = sock.recv_into(view[:wanted], wanted, flags)
            if not received:
                raise ConnectionError(f"connection closed at byte {state.position}")
            offset = state.position
            sink.write(state.feed(view[:received]), offset)
            state.written = state.position
    finally:
        sock.close()


def _receive(sock: socket.socket, wanted: int) -> bytes:
    """Up to ``wanted`` bytes as one ``bytes`` (received straight into it on plain TCP); ``b""`` at the end."""
    if not isinstance(sock, ssl.SSLSocket):
        return sock.recv(wanted, socket.MSG_WAITALL)
    pieces, got = [], 0
    while got < wanted:
        piece = sock.recv(wanted - got)
        if not piece:
            break
        pieces.append(piece)
        got += len(piece)
    return b"".join(pieces)


def stream_body(
    url: str, headers: dict[str, str], state: BlobReadState, *, timeout: float, context: ssl.SSLContext,
    piece: int = STREAM_PIECE, live: LiveSockets | None = None,
) -> Iterator[tuple[int, bytes]]:
    """``(offset, bytes)`` pieces of ``state``'s remaining bytes from ``url``, each hashed (``state.feed``) as it
    arrives, on the thread that receives it: the piece is still in the core's cache, and the hash releases the
    GIL while the consumer's thread handles the piece before.

    Raises :class:`Unsupported` or OSError before or while reading; ``state`` then tells where it stopped.
    """
    sock, rest = _open(url, headers, state, timeout=timeout, context=context, live=live)
    try:
        while not state.complete:
            wanted = min(piece, (state.expected_end or 0) - state.position)
            data, rest = rest[:wanted], rest[wanted:]
            if len(data) < wanted:  # the body bytes that came with the head start the first piece
                more = _receive(sock, wanted - len(data))
                data = data + more if data else more
            if not data:
                raise ConnectionError(f"connection closed at byte {state.position}")
            offset = state.position
            data = state.feed(data)
            if data:
                yield offset, data
    finally:
        sock.close()


class PartReader:
    """The lean reader as both drivers use it, set up from a client's settings (off with a custom transport and
    for URLs that go through a proxy); its sockets are remembered in ``live`` (to be cut from another thread)."""

    def __init__(self, config: ClientConfig, live: LiveSockets) -> None:
        #: Whether parallel parts may use this reader at all (not with a custom transport).
        self.enabled = config.transport is None
        self.config = config
        self.timeout = config.timeout
        self.context = config.verify
        self.live = live

    def allowed(self, step: ReadRange) -> bool:
        """Whether this reader may fetch ``step`` (enabled, and no proxy on the way)."""
        return self.enabled and not self.config.uses_proxy(step.request.url)

    def __call__(self, step: ReadRange) -> None:
        """Fetch ``step``'s part into its sink when allowed; failures leave the rest to the protocol's ordinary
        transport."""
        if step.sink is None or not self.allowed(step):
            return
        try:
            fetch_part(step.request.url, step.request.headers, step.state, step.sink, timeout=self.timeout,
                       context=self.context, live=self.live)
        except (Unsupported, OSError):
            pass  # the protocol goes on over httpx from wherever the reader stopped

    def stream(self, step: ReadRange) -> Generator[tuple[int, bytes], None, None]:
        """``step``'s bytes as ``(offset, bytes)`` pieces when allowed; failures end the pieces early and leave
        the rest to the protocol's ordinary transport."""
        if not self.allowed(step):
            return
        try:
            yield from stream_body(step.request.url, step.request.headers, step.state, timeout=self.timeout,
                                   context=self.context, live=self.live)
        except (Unsupported, OSError):
            return  # the protocol goes on over httpx from wherever the reader stopped
