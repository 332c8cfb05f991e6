"""ASGI middleware that measures every HTTP request once: Prometheus metrics and one request log line.

It counts the request body bytes received and the response body bytes sent, notes the status and the time to
the last byte, and labels them with the route template (a request no route matches is ``unmatched``), the
repository in the path and the authenticated subject that :func:`.api.access.authorize` left in the scope.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import SUBJECT
from .auth.gate import client_address
from .logsetup import REQUEST_LOGGER
from .metrics import UNMATCHED, Metrics

request_log = logging.getLogger(REQUEST_LOGGER)


def route_of(routes: Sequence[BaseRoute], scope: Scope) -> tuple[str, dict[str, Any]]:
    """The template of the route ``scope`` goes to (a method mismatch still names it) and its path parameters."""
    partial: tuple[str, dict[str, Any]] | None = None
    for candidate in routes:
        if not isinstance(candidate, Route):
            continue
        match, child = candidate.matches(scope)
        if match == Match.FULL:
            return candidate.path, dict(child.get("path_params", {}))
        if match == Match.PARTIAL and partial is None:
            partial = (candidate.path, dict(child.get("path_params", {})))
    return partial or (UNMATCHED, {})


class RequestObserver:
    """Feeds ``metrics`` (when given) and the request log for every HTTP request through ``app``."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute], metrics: Metrics | None) -> None:
        self.app = app
        self.routes = list(routes)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.time()
        clock = time.perf_counter()
        template, params = route_of(self.routes, scope)
        received = sent = 0
        status = 500

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal sent, status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            seconds = time.perf_counter() - clock
            if self.metrics is not None:
                self.metrics.observe_request(template, scope["method"], status, received, sent, seconds)
            if request_log.isEnabledFor(logging.INFO):
                request_log.info(
                    "request",
                    extra={"request": {
                        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started))
                        + f".{int(started * 1000) % 1000:03d}Z",
                        "client": client_address(scope),
                        "user": scope.get(SUBJECT, ""),
                        "method": scope["method"],
                        "route": template,
                        "repository": str(params.get("name", "")),
                        "status": status,
                        "bytes_in": received,
                        "bytes_out": sent,
                        "duration_ms": round(seconds * 1000, 3),
                    }},
                )
