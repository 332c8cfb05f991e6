"""The synchronous driver: runs protocol generators, moving bytes with ``httpx.Client``."""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any, TypeVar

import httpx

from ..errors import ServiceRequestError
from ..protocol import httplog
from ..protocol.config import ClientConfig
from ..protocol.download import CATCH_UP_WAIT, CloseResponse, Emit, NextChunk, Parallel, ReadRange, read_part
from ..protocol.messages import BodySource, CallCredential, Gen, Request, Response, Sleep, Stepper
from . import rawrange

T = TypeVar("T")


def transport_error(exc: httpx.TransportError) -> ServiceRequestError:
    """The SDK's error for a request that could not be completed (refused, dropped, timed out), naming the
    origin it was sent to; a connection that could not be made at all is marked ``connect_failed``."""
    try:
        url: str | None = str(exc.request.url.copy_with(path="/", query=None, fragment=None)).rstrip("/")
    except RuntimeError:  # no request attached
        url = None
    where = f" ({url})" if url else ""
    return ServiceRequestError(f"{type(exc).__name__}: {exc}{where}", error=exc, url=url,
                               connect_failed=isinstance(exc, httpx.ConnectError))


def _read_body(raw: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of a response body (decoded), and whether it went on past them."""
    body = bytearray()
    for chunk in raw.iter_bytes():
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), True
    return bytes(body), False


class SyncDriver:
    """One pooled ``httpx.Client`` per registry client; executes the instructions protocol generators yield."""

    def __init__(self, config: ClientConfig) -> None:
        self.http = httpx.Client(**config.httpx_options())
        #: The lean socket reader for the parts of parallel downloads.
        self.part_reader = rawrange.PartReader(config)
        self.logging_enable = config.logging_enable

    def stream(self, gen: Gen[Any], result: list[Any] | None = None) -> Iterator[tuple[int, bytes]]:
        """Run ``gen``, yielding the ``(offset, bytes)`` pieces it emits; its return value goes to ``result``."""
        stepper = Stepper(gen)
        bodies: dict[int, tuple[httpx.Response, Iterator[bytes]]] = {}
        try:
            while (step := stepper.next()) is not None:
                try:
                    if isinstance(step, Emit):
                        yield step.offset, step.data
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

    def execute(self, step: Any, bodies: dict[int, tuple[httpx.Response, Iterator[bytes]]]) -> Any:
        """Carry out one instruction; ``bodies`` holds the response bodies being read."""
        if isinstance(step, Request):
            return self.send(step)
        if isinstance(step, NextChunk):
            raw = step.response.raw
            _, body = bodies.setdefault(id(raw), (raw, raw.iter_raw()))
            return next(body, b"")
        if isinstance(step, CloseResponse):
            bodies.pop(id(step.response.raw), None)
            if step.response.raw is not None:
                step.response.raw.close()
        elif isinstance(step, Sleep):
            time.sleep(step.seconds)
        elif isinstance(step, CallCredential):
            token = step.credential.get_token(*step.scopes)
            if inspect.isawaitable(token):
                close = getattr(token, "close", None)
                if close is not None:
                    close()  # do not leave the coroutine un-awaited
                raise TypeError("this credential is asynchronous; use it with dockyard.aio.ContainerRegistryClient")
            return token
        elif isinstance(step, ReadRange):
            self.part_reader(step)
        elif isinstance(step, Parallel):
            self.parallel(step)
        else:  # pragma: no cover - a protocol bug
            raise TypeError(f"unknown instruction {step!r}")
        return None

    def run(self, gen: Gen[T]) -> T:
        """Run a protocol generator to completion and return its result."""
        result: list[Any] = []
        for _ in self.stream(gen, result):
            raise TypeError("this operation does not produce data")
        return result[0]  # type: ignore[no-any-return]

    def parallel(self, step: Parallel) -> None:
        """Run the parts of a parallel download in threads, hashing in order as their bytes land."""
        with ThreadPoolExecutor(max_workers=step.concurrency) as pool:
            futures = [pool.submit(self.run, read_part(state, step.sink)) for state in step.states]
            try:
                for index, future in enumerate(futures):
                    while not step.catch_up(index):
                        try:
                            future.result(timeout=CATCH_UP_WAIT)  # a failed part raises here
                        except FuturesTimeout:
                            pass
                    future.result()
            finally:
                for future in futures:
                    future.cancel()

    def send(self, request: Request) -> Response:
        """Send one request; a streamed success keeps its body open in ``Response.raw``."""
        body = request.body
        content: Any = iter(body) if isinstance(body, BodySource) else body
        built = self.http.build_request(request.method, request.url, headers=request.headers, content=content)
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

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()
