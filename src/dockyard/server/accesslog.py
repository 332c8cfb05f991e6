"""``--access-log FILE``: one JSON line per request, appended with a single write (safe across workers).

``-`` writes the lines to standard output.
"""

from __future__ import annotations

import json
import os
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class AccessLog:
    """ASGI middleware writing ``{"method","path","query","status"}`` for each HTTP request."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.fd = 1 if path == "-" else os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        logged = False

        def write(status: int) -> None:
            nonlocal logged
            if logged:
                return
            logged = True
            entry: dict[str, Any] = {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope.get("query_string", b"").decode("latin-1"),
                "status": status,
            }
            os.write(self.fd, (json.dumps(entry) + "\n").encode())

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                write(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        except BaseException:
            write(500)
            raise
