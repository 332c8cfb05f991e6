"""The asynchronous driver: runs the same protocol generators, moving bytes with ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx

from ..errors import ServiceRequestError
from ..protocol.config import ClientConfig
from ..protocol.messages import BodySource, CallCredential, Gen, Request, Response, Sleep

T = TypeVar("T")


async def _body(source: BodySource) -> AsyncIterator[bytes]:
    for chunk in source:
        yield chunk


class AsyncDriver:
    """One pooled ``httpx.AsyncClient`` per registry client; the async twin of the sync driver."""

    def __init__(self, config: ClientConfig) -> None:
        pool = max(10, config.max_concurrency * 2)
        #: Whether parallel parts may use the lean socket reader (in threads; not with a custom transport).
        self.raw_parts = config.transport is None
        self.timeout = config.timeout
        self.verify = config.verify
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, 30.0)),
            http2=config.http2,
            transport=config.transport,
            verify=config.verify,
            headers=config.headers,
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            trust_env=False,
        )

    async def run(self, gen: Gen[T], handler: Callable[[Any], Awaitable[Any]] | None = None) -> T:
        """Run a protocol generator to completion and return its result.

        ``handler`` executes instructions beyond the basic three (the file download's pumps).
        """
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                instruction = gen.throw(error) if error is not None else gen.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            value, error = None, None
            if isinstance(instruction, Request):
                try:
                    value = await self.send(instruction)
                except httpx.TransportError as exc:
                    error = ServiceRequestError(f"{type(exc).__name__}: {exc}", error=exc)
            elif isinstance(instruction, Sleep):
                await asyncio.sleep(instruction.seconds)
            elif isinstance(instruction, CallCredential):
                value = instruction.credential.get_token(*instruction.scopes)
                if inspect.isawaitable(value):
                    value = await value
            elif handler is not None:
                value = await handler(instruction)
            else:  # pragma: no cover - a protocol bug
                raise TypeError(f"unknown instruction {instruction!r}")

    async def send(self, request: Request) -> Response:
        """Send one request; a streamed success keeps its body open in ``Response.raw``."""
        body = request.body
        content: Any = _body(body) if isinstance(body, BodySource) else body
        built = self.http.build_request(request.method, request.url, headers=request.headers, content=content)
        raw = await self.http.send(built, stream=True, follow_redirects=request.follow_redirects)
        if request.stream and 200 <= raw.status_code < 300:
            return Response(raw.status_code, raw.headers, b"", str(raw.url), raw=raw)
        try:
            content_bytes = await raw.aread()
        finally:
            await raw.aclose()
        return Response(raw.status_code, raw.headers, content_bytes, str(raw.url))

    async def close(self) -> None:
        await self.http.aclose()
