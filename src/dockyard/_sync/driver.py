# Generated from dockyard/aio/driver.py by scripts/unasync.py: do not edit.
"""The driver: runs protocol generators, moving bytes with an ``httpx`` client.

This module, under ``dockyard/aio/``, is the source of truth: ``dockyard/_sync/driver.py`` is generated from
it by ``scripts/unasync.py``. What really differs between the flavours lives in each one's ``backend.py``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any, TypeVar

import httpx
from typing_extensions import assert_never

from ..protocol.instructions import (
    CallCredential,
    CloseResponse,
    Command,
    CutConnections,
    Emit,
    Gen,
    NextChunk,
    OpenSink,
    Parallel,
    ReadRange,
    Request,
    Sleep,
    Stepper,
)
from ..protocol.messages import BodySource, Response
from ..transport import httplog, rawrange
from ..transport.config import ClientConfig
from ..transport.errors import transport_error
from ..transport.filesink import FileSink
from ..transport.livesockets import LiveSockets
from . import backend

T = TypeVar("T")


def _body(source: BodySource) -> Iterator[bytes]:
    for chunk in source:
        yield chunk


def _read_body(raw: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of a response body (decoded), and whether it went on past them."""
    body = bytearray()
    for chunk in raw.iter_bytes():
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), True
    return bytes(body), False


class SyncDriver:
    """One pooled ``httpx`` client per registry client; executes the instructions protocol generators yield."""

    def __init__(self, config: ClientConfig) -> None:
        self.http = httpx.Client(**config.httpx_options(asynchronous=False))
        #: Every socket this driver opened (httpx's connections and the lean reader's), to cut them at once.
        self.live = LiveSockets()
        #: The lean socket reader for the parts of parallel downloads.
        self.part_reader = rawrange.PartReader(config, self.live)
        self.logging_enable = config.logging_enable

    def stream(
        self, gen: Gen[Any], result: list[Any] | None = None
    ) -> Generator[tuple[int, bytes], None, None]:
        """Run ``gen``, yielding the ``(offset, bytes)`` pieces it emits; its return value goes to ``result``."""
        stepper = Stepper(gen)
        bodies: dict[int, tuple[httpx.Response, Iterator[bytes]]] = {}
        try:
            while (step := stepper.next()) is not None:
                try:
                    if isinstance(step, Emit):
                        yield step.offset, step.data
                    elif isinstance(step, ReadRange) and step.sink is None:
                        pieces = backend.stream_range(self.part_reader, step)
                        try:
                            for piece in pieces:
                                yield piece
                        finally:
                            pieces.close()  # a caller that stops early stops the reader now
                    else:
                        stepper.value = self.execute(step, bodies)
                except httpx.TransportError as exc:
                    stepper.error = transport_error(exc)
            if result is not None:
                result.append(stepper.result)
        finally:
            gen.close()
            for raw, _ in bodies.values():
                raw.close()

    def execute(self, step: Command, bodies: dict[int, tuple[httpx.Response, Iterator[bytes]]]) -> Any:
        """Carry out one instruction; ``bodies`` holds the response bodies being read."""
        match step:
            case Request():
                return self.send(step)
            case NextChunk(response=Response(raw=raw)):
                _, body = bodies.setdefault(id(raw), (raw, raw.iter_raw()))
                return next(body, b"")
            case CloseResponse(response=Response(raw=raw)):
                bodies.pop(id(raw), None)
                if raw is not None:
                    raw.close()
            case CutConnections():
                self.live.cut()
            case OpenSink(path=path, digest=digest):
                return FileSink(path, digest)
            case Sleep(seconds=seconds):
                backend.sleep(seconds)
            case CallCredential():
                return backend.call_credential(step)
            case ReadRange():
                backend.read_range(self.part_reader, step)
            case Parallel():
                backend.parallel(self.run, step)
            case _:  # pragma: no cover - the instruction set is closed
                assert_never(step)
        return None

    def run(self, gen: Gen[T]) -> T:
        """Run a protocol generator to completion and return its result."""
        result: list[Any] = []
        for _ in self.stream(gen, result):
            raise TypeError("this operation does not produce data")
        return result[0]  # type: ignore[no-any-return]

    def send(self, request: Request) -> Response:
        """Send one request; a streamed success keeps its body open in ``Response.raw``."""
        body = request.body
        content: Any = _body(body) if isinstance(body, BodySource) else body
        built = self.http.build_request(request.method, request.url, headers=request.headers, content=content,
                                        extensions={"trace": self._trace})
        if self.logging_enable:
            httplog.log_request(built.method, str(built.url), built.headers.multi_items())
        raw = self.http.send(built, stream=True, follow_redirects=request.follow_redirects)
        if self.logging_enable:
            httplog.log_response(raw.status_code, raw.headers.multi_items())
        if request.stream and 200 <= raw.status_code < 300:
            return Response(raw.status_code, raw.headers, b"", str(raw.url), raw=raw)
        try:
            content_bytes, truncated = _read_body(raw, request.max_body)
        finally:
            raw.close()
        return Response(raw.status_code, raw.headers, content_bytes, str(raw.url), truncated=truncated)

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: remembers the socket of every connection opened for this driver (a proxied one
        too), so that :class:`CutConnections` reaches the connections in use, whichever thread is using them."""
        if event.endswith(("connect_tcp.complete", "start_tls.complete")):  # TLS wraps the socket in a new one
            self.live.add_stream(info.get("return_value"))

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()
