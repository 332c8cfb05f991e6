"""uvicorn's httptools protocol with connection limits, and request bodies handed on without copying.

Limits (the ``ConnectionLimits`` of ``dockyard serve``; uvicorn's httptools protocol has none of the first four):

* **Connections.** Past ``max_connections`` open connections, a new one gets an immediate 503 and is closed,
  before it can hold a descriptor or any memory.
* **Header size.** A request line and headers longer than ``max_header_size`` bytes get 431 and the connection
  is closed; at most one read (a few hundred KiB) more than the limit is ever buffered.
* **Header timeout.** A connection must deliver a request's complete headers within ``header_timeout`` seconds
  of opening (or of the first byte of a later request), else 408 and close: slowloris connections, and
  connections that never send anything, are dropped.
* **Body timeout.** While a request body is being received, ``body_timeout`` seconds without a byte end the
  request: the application sees a disconnect (an upload's session lock is released) and the client gets 408.
  Time the server itself spends not reading (flow control, ``Expect: 100-continue``) does not count.
* **Keep-alive.** An idle connection between requests is closed after ``keep_alive_timeout`` (uvicorn's own
  timer, set by :mod:`.run`).

Every answer written here carries an OCI JSON error body and ``Connection: close``.

Zero copy: stock uvicorn appends every body piece the parser delivers to a ``bytearray`` and copies that into a
new ``bytes`` for each ``http.request`` message: two extra copies of every uploaded byte, which made the event
loop the bottleneck of large blob uploads. On the uvicorn releases this was written against, a piece that
arrives while nothing is pending is kept as the parser's own ``bytes`` object, and ``receive()``
(:class:`PieceCycle`'s) passes it on as is. Pieces that arrive while the application has not yet taken
the previous one are joined as before. Flow control (pausing the socket above uvicorn's high-water mark) is
unchanged.

The parser copies too: httptools hands every body piece over as a new ``bytes`` object copied out of the read it
was given (about a third of the event loop's time during a large upload). Once the headers of a request with a
``Content-Length`` body (not chunked, no upgrade) are parsed, a later read that holds nothing but body bytes is
passed on as it is, the very object the transport delivered, without going through the parser; the parser is
told nothing of those bytes, so when the body is complete it is replaced by a fresh one (as if the connection
were new) that parses whatever follows. The parser has already checked that header (one valid
``Content-Length``, no ``Transfer-Encoding`` beside it).

Large bodies are not read through the transport's ``data_received`` at all: once the headers of a request with a
``Content-Length`` body of at least ``BUFFERED_BODY_MIN`` bytes are parsed, the connection switches its transport
to a :class:`BodyReceiver` (an ``asyncio.BufferedProtocol``), which has the socket read straight into 1 MiB buffers
(``recv_into``; uvloop and asyncio both support switching) and hands each full buffer to the application as one
``memoryview`` piece. That drops the event loop's copy of every read into a new ``bytes`` object and its per-read
Python work (a few reads per MiB instead of four or more). No read asks for more than the body's remaining bytes,
so the next request on the connection stays in the socket for the parser, which takes the transport back when the
body is complete. The buffers come from a :class:`BufferPool` that reuses one only when nothing refers to it any
more (the application, the storage threads and every ``memoryview`` of it are done), so a piece is never
overwritten while something may still read it. Flow control is uvicorn's: reading pauses after each piece until the
application asks for the next one; the header, body and keep-alive limits apply as before.

Importing this module needs ``httptools``; :func:`dockyard.server.run.serve` only names it when that is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from dataclasses import dataclass
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from .config import ServerConfig
from .errors import RegistryError

log = logging.getLogger("dockyard.server")

#: uvicorn releases whose ``on_body`` internals the zero-copy path was written against.
ZERO_COPY_UVICORN = ("0.54.",)
_ZERO_COPY = uvicorn.__version__.startswith(ZERO_COPY_UVICORN)


#: Request bodies of at least this many bytes (``Content-Length``) are received by a :class:`BodyReceiver`.
BUFFERED_BODY_MIN = 1024 * 1024
#: Size of each receive buffer, i.e. of the body pieces the application gets from a :class:`BodyReceiver`.
PIECE_SIZE = 1024 * 1024
#: Buffers a process keeps for reuse (one large upload in flight holds up to about 17 of them).
POOL_BUFFERS = 32


class BufferPool:
    """Receive buffers of one size, each reused only once nothing but the pool refers to it.

    Only the event loop's thread takes buffers; other threads (the storage writer and hasher) only ever drop their
    references, so a buffer found free cannot be picked up by anyone else in the meantime."""

    #: ``sys.getrefcount`` of a pooled buffer nobody else holds, seen from :meth:`take`'s loop: the pool's list,
    #: the loop variable and the call's argument.
    FREE_REFS = 3

    def __init__(self, size: int, keep: int) -> None:
        self.size = size
        self._keep = keep
        self._buffers: list[bytearray] = []

    def take(self) -> bytearray:
        """A buffer nothing else refers to (a new one, kept for reuse while the pool has room, when none is)."""
        for buffer in self._buffers:
            if sys.getrefcount(buffer) == self.FREE_REFS:
                return buffer
        buffer = bytearray(self.size)
        if len(self._buffers) < self._keep:
            self._buffers.append(buffer)
        return buffer


_pool = BufferPool(PIECE_SIZE, POOL_BUFFERS)


class PieceCycle(RequestResponseCycle):
    """uvicorn's request cycle, handing the body on without copying it.

    uvicorn's ``receive`` returns ``bytes(self.body)``: a copy of every body piece. Here a ``bytes`` piece or a
    :class:`BodyReceiver`'s ``memoryview`` is handed on as it is; only uvicorn's own ``bytearray`` (which it keeps
    appending to) is copied. Everything else is uvicorn 0.54's ``receive``."""

    async def receive(self) -> Any:
        if self.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100_continue = False
        if not self.disconnected and not self.response_complete:
            self.flow.resume_reading()
            await self.message_event.wait()
            self.message_event.clear()
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        body: Any = self.body
        if type(body) is bytearray:
            body = bytes(body)
        self.body = bytearray()
        return {"type": "http.request", "body": body, "more_body": self.more_body}


class BodyReceiver(asyncio.BufferedProtocol):
    """Receives the rest of one request's ``Content-Length`` body with ``recv_into`` (see the module docstring).

    It stands in for the connection's :class:`LimitedHttpToolsProtocol` on the transport until the body is
    complete, then hands the transport back; closing, end of stream and write flow control go to that protocol."""

    def __init__(self, http: LimitedHttpToolsProtocol, left: int) -> None:
        self.http = http
        self.left = left
        self._buffer: bytearray | None = None
        self._view: memoryview | None = None
        self._filled = 0

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._view is None:
            self._buffer = _pool.take()
            self._view = memoryview(self._buffer)
            self._filled = 0
        end = min(len(self._view), self._filled + self.left)
        return self._view[self._filled : end]

    def buffer_updated(self, nbytes: int) -> None:
        self._filled += nbytes
        self.left -= nbytes
        view = self._view
        assert view is not None
        if self._filled < len(view) and self.left > 0:
            self.http.body_progress()
            return
        piece = view[: self._filled]
        self._buffer = self._view = None
        self.http.body_piece(piece, self.left)

    def eof_received(self) -> bool | None:
        self.http.eof_received()  # uvicorn's protocols return None: the transport closes
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.http.connection_lost(exc)

    def pause_writing(self) -> None:
        self.http.pause_writing()

    def resume_writing(self) -> None:
        self.http.resume_writing()


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits every connection of one server process is held to."""

    max_connections: int
    max_header_size: int
    header_timeout: float
    body_timeout: float

    @classmethod
    def from_config(cls, config: ServerConfig) -> ConnectionLimits:
        return cls(config.max_connections, config.max_header_size, config.header_timeout, config.body_timeout)


_limits: ConnectionLimits | None = None


def limits() -> ConnectionLimits:
    """This process's limits (from the settings ``dockyard serve`` passes to its workers)."""
    global _limits
    if _limits is None:
        _limits = ConnectionLimits.from_config(ServerConfig.from_env())
    return _limits


def error_bytes(status: int, code: str, message: str, detail: Any = None) -> bytes:
    """A complete HTTP/1.1 response carrying an OCI error body, closing the connection."""
    body = RegistryError(status, code, message, detail).body()
    head = (
        STATUS_LINE[status]
        + b"content-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: close\r\n\r\n"
    )
    return head + body


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` holding each connection to :class:`ConnectionLimits`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits()
        self._in_headers = False
        self._header_bytes = 0
        self._parsed_bytes = 0
        self._too_large = False
        self._began_in_read = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_seen = 0.0
        self._refused = False
        #: Body bytes still to come of the request being received, while they may bypass the parser (or None).
        self._body_left: int | None = None

    # -- connections ----------------------------------------------------------------------------------------------

    # uvicorn's HttpToolsProtocol narrows asyncio's BaseTransport to Transport the same way.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            self.transport = transport
            message = f"the server has {self.limits.max_connections} open connections, its limit; retry later"
            transport.write(error_bytes(503, "UNAVAILABLE", message, {"limit": self.limits.max_connections}))
            transport.close()
            return
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        self._cancel_body_timer()
        if self._refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._body_left:
            self._bypass_parser(data)
        else:
            self._began_in_read = False
            super().data_received(data)
            if self._in_headers and not self._began_in_read and not self.transport.is_closing():
                # Headers still incomplete and begun in an earlier read: all of this read was header bytes, which
                # the parser buffers. (A read in which a request begins is covered by the parsed-bytes count.)
                self._header_bytes += len(data)
                if self._header_bytes > self.limits.max_header_size:
                    self._too_large = True
                    self._header_too_large()
        if self._body_left is not None and self._body_left >= BUFFERED_BODY_MIN:
            self._receive_buffered()

    def _receive_buffered(self) -> None:
        """Let a :class:`BodyReceiver` read the rest of the current request's body, when nothing stands in the way:
        the request is the one being handled (not queued behind another) and the connection is open."""
        cycle = self.cycle
        if (
            self.transport.is_closing()
            or self.pipeline
            or cycle is None
            or cycle.scope is not self.scope
            or type(cycle) is not PieceCycle
            or cycle.response_complete
            or not cycle.more_body
        ):
            return
        if cycle.body:
            self.flow.pause_reading()  # the application takes what the parser delivered first
        self.transport.set_protocol(BodyReceiver(self, self._body_left or 0))

    def body_progress(self) -> None:
        """Body bytes arrived through a :class:`BodyReceiver` (the body timeout and keep-alive see them)."""
        self._body_seen = self.loop.time()
        self._unset_keepalive_if_required()

    def body_piece(self, piece: memoryview, left: int) -> None:
        """A full buffer (or the body's last bytes) from the :class:`BodyReceiver`: hand it to the application and
        pause reading until it asks for more; with ``left`` 0 the body is complete and the parser takes over."""
        self.body_progress()
        self._body_left = left
        cycle = self.cycle
        if not cycle.response_complete and not cycle.disconnected:
            if cycle.body:
                # Never expected (reading pauses after each piece until the application takes it): joined.
                cycle.body = bytes(cycle.body) + piece  # type: ignore[assignment]
            else:
                cycle.body = piece  # type: ignore[assignment]
            self.flow.pause_reading()
            cycle.message_event.set()
        if left == 0:
            self.transport.set_protocol(self)
            self._new_parser()
            self.on_message_complete()

    def _bypass_parser(self, data: bytes) -> None:
        """Hand on body bytes of a ``Content-Length`` request without the parser (see the module docstring)."""
        self._unset_keepalive_if_required()
        left = self._body_left or 0
        if len(data) < left:
            self.on_body(data)  # the whole read is body: passed on as it is
            return
        rest = data[left:] if len(data) > left else b""
        self.on_body(data if not rest else data[:left])
        self._new_parser()
        self.on_message_complete()
        if rest and not self.transport.is_closing():
            self.data_received(rest)

    def _new_parser(self) -> None:
        """The parser never saw the body just received: a new one starts at the next request, as on a new
        connection."""
        self.parser = httptools.HttpRequestParser(self)
        with contextlib.suppress(AttributeError):  # httptools < 0.6.3 (uvicorn sets the same leniency)
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)

    def _plain_body_length(self) -> int | None:
        """The ``Content-Length`` of the request whose headers were just parsed, when its body may bypass the
        parser: only with the zero-copy path, no ``Transfer-Encoding`` and no upgrade."""
        if not _ZERO_COPY or self.parser.should_upgrade():
            return None
        length: int | None = None
        for name, value in self.headers:
            if name == b"transfer-encoding":
                return None
            if name == b"content-length":
                if length is not None or not value.strip().isdigit():
                    return None
                length = int(value)
        return length

    def _header_too_large(self) -> None:
        limit = self.limits.max_header_size
        self._fail(431, f"the request line and headers exceed {limit} bytes", {"limit": limit})

    # -- parser callbacks -----------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._began_in_read = True
        self._header_bytes = 0
        self._parsed_bytes = 0
        self._too_large = False
        if self._header_timer is None and self._idle():
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._check_parsed(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._check_parsed(len(name) + len(value) + 4)

    def _check_parsed(self, size: int) -> None:
        """Count parsed header bytes; past the limit, stop the parser (answered 431 in ``send_400_response``)."""
        self._parsed_bytes += size
        if self._parsed_bytes > self.limits.max_header_size:
            self._too_large = True
            raise ValueError("request headers too large")

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._cancel_header_timer()
        super().on_headers_complete()
        if _ZERO_COPY and self.cycle is not None and self.cycle.scope is self.scope:
            # Before its task first runs (the task only starts on the loop's next turn): receive() without copies.
            self.cycle.__class__ = PieceCycle
        if self.cycle is not None and self.cycle.scope is self.scope and self.cycle.more_body:
            self._body_seen = self.loop.time()
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timeout)
            self._body_left = self._plain_body_length()

    def on_body(self, body: bytes) -> None:
        self._body_seen = self.loop.time()
        if self._body_left is not None:
            self._body_left -= len(body)
        cycle = self.cycle
        if (
            not _ZERO_COPY
            or cycle.body
            or cycle.response_complete
            or (self.parser.should_upgrade() and self._should_upgrade())
        ):
            super().on_body(body)
            return
        # uvicorn's cycle is annotated with the bytearray it builds itself; it only reads the buffer, so bytes do.
        cycle.body = body  # type: ignore[assignment]
        if len(body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_message_complete(self) -> None:
        self._body_left = None
        self._cancel_body_timer()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._in_headers and self._header_timer is None and not self.transport.is_closing():
            self._arm_header_timer()  # the next request began arriving while this one was answered

    def send_400_response(self, msg: str) -> None:
        """A request the parser rejects: 400 with an OCI error body (uvicorn writes plain text), or 431."""
        if self._too_large:
            self._header_too_large()
        else:
            self._fail(400, f"malformed HTTP request: {msg}", None)

    def _idle(self) -> bool:
        """True when no request of this connection is being handled or answered."""
        return self.cycle is None or self.cycle.response_complete

    # -- timers ---------------------------------------------------------------------------------------------------

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.limits.header_timeout, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._idle():
            self._fail(408, f"the request headers did not arrive within {self.limits.header_timeout:g} s", None)

    def _body_timeout(self) -> None:
        """Fire only when the client, not the server, is the one holding the body up."""
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or not cycle.more_body:
            return
        now = self.loop.time()
        if self.flow.read_paused or cycle.body or cycle.waiting_for_100_continue:
            self._body_seen = now  # the application has not taken what arrived, or has not asked for the body
        idle = now - self._body_seen
        if idle < self.limits.body_timeout:
            self._body_timer = self.loop.call_later(self.limits.body_timeout - idle, self._body_timeout)
            return
        message = f"no request body bytes arrived for {self.limits.body_timeout:g} s"
        log.warning("%s: closing the connection of %s %s", message, cycle.scope["method"], cycle.scope["path"])
        self._fail(408, message, None)

    def _fail(self, status: int, message: str, detail: Any) -> None:
        """Answer ``status`` with an OCI error body (unless a response is under way) and close the connection.

        A request being handled sees a disconnect: its body stream ends and anything it answers is dropped.
        """
        self._in_headers = False
        cycle = self.cycle
        if self._idle() or not cycle.response_started:
            self.transport.write(error_bytes(status, "UNSUPPORTED", message, detail))
        if not self._idle():
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()
