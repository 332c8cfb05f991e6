"""The synchronous driver: runs protocol generators, moving bytes with ``httpx.Client``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from ..errors import ServiceRequestError
from ..protocol.config import ClientConfig
from ..protocol.messages import BodySource, CallCredential, Gen, Request, Response, Sleep

T = TypeVar("T")


class SyncDriver:
    """One pooled ``httpx.Client`` per registry client; executes :class:`Request`, :class:`Sleep` and token calls."""

    def __init__(self, config: ClientConfig) -> None:
        pool = max(10, config.max_concurrency * 2)
        #: Whether parallel parts may use the lean socket reader (not with a custom transport).
        self.raw_parts = config.transport is None
        self.timeout = config.timeout
        self.verify = config.verify
        self.http = httpx.Client(
            timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, 30.0)),
            http2=config.http2,
            transport=config.transport,
            verify=config.verify,
            headers=config.headers,
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            trust_env=False,
        )

    def run(self, gen: Gen[T], handler: Callable[[Any], Any] | None = None) -> T:
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
                    value = self.send(instruction)
                except httpx.TransportError as exc:
                    error = ServiceRequestError(f"{type(exc).__name__}: {exc}", error=exc)
            elif isinstance(instruction, Sleep):
                time.sleep(instruction.seconds)
            elif isinstance(instruction, CallCredential):
                value = instruction.credential.get_token(*instruction.scopes)
            elif handler is not None:
                value = handler(instruction)
            else:  # pragma: no cover - a protocol bug
                raise TypeError(f"unknown instruction {instruction!r}")

    def send(self, request: Request) -> Response:
        """Send one request; a streamed success keeps its body open in ``Response.raw``."""
        body = request.body
        content: Any = iter(body) if isinstance(body, BodySource) else body
        built = self.http.build_request(request.method, request.url, headers=request.headers, content=content)
        raw = self.http.send(built, stream=True, follow_redirects=request.follow_redirects)
        if request.stream and 200 <= raw.status_code < 300:
            return Response(raw.status_code, raw.headers, b"", str(raw.url), raw=raw)
        try:
            content_bytes = raw.read()
        finally:
            raw.close()
        return Response(raw.status_code, raw.headers, content_bytes, str(raw.url))

    def close(self) -> None:
        self.http.close()
