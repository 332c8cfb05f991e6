"""A lean HTTP/1.1 range reader for parallel blob downloads.

httpx moves a response body in 64 KiB pieces through h11, which costs more Python per byte than a
download at memory speed can afford. For the parts of a parallel download (plain ``Range`` GETs
whose credentials are already known) this reader receives straight into a large reusable buffer with
``recv_into`` and writes it with ``pwrite``; both release the GIL, so several parts and the hashing
thread run in parallel. Anything unusual (a redirect, another status, chunked encoding, a proxy or a
custom transport) raises :class:`Unsupported` and the caller continues over httpx from where this stopped.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

from ..oci.ranges import parse_content_range, range_header
from ..protocol.download import BlobReadState, Sink
from ..protocol.instructions import ReadRange
from .config import ClientConfig

BUFFER = 1024 * 1024
_MAX_HEADER = 64 * 1024


class Unsupported(Exception):
    """This response is not a plain ``206`` this reader handles; fall back to the general path."""


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


def fetch_part(
    url: str, headers: dict[str, str], state: BlobReadState, sink: Sink, *, timeout: float, context: ssl.SSLContext
) -> None:
    """Fetch ``state``'s remaining range from ``url`` into ``sink``; raises :class:`Unsupported` or OSError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or state.end is None:
        raise Unsupported(parts.scheme)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if parts.scheme == "https":
            sock = context.wrap_socket(sock, server_hostname=host)
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", f"Range: {range_header(state.position, state.end)}",
                 "Connection: close", "Accept-Encoding: identity"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "range", "connection",
                                                                           "accept-encoding")]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        status, response_headers, rest = _read_head(sock)
        parsed = parse_content_range(response_headers.get("content-range"))
        if (
            status != 206
            or parsed is None
            or parsed[0] != state.position
            or "chunked" in response_headers.get("transfer-encoding", "").lower()
            or response_headers.get("content-encoding", "identity") != "identity"
        ):
            raise Unsupported(f"status {status}")
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


class PartReader:
    """The lean reader as both drivers use it, set up from a client's settings (off with a custom transport and
    for URLs that go through a proxy)."""

    def __init__(self, config: ClientConfig) -> None:
        #: Whether parallel parts may use this reader at all (not with a custom transport).
        self.enabled = config.transport is None
        self.config = config
        self.timeout = config.timeout
        self.context = config.verify

    def __call__(self, step: ReadRange) -> None:
        """Fetch ``step``'s part when enabled; failures leave the rest to the protocol's ordinary transport."""
        if not self.enabled or self.config.uses_proxy(step.request.url):
            return
        try:
            fetch_part(step.request.url, step.request.headers, step.state, step.sink, timeout=self.timeout,
                       context=self.context)
        except (Unsupported, OSError):
            pass  # the protocol goes on over httpx from wherever the reader stopped
