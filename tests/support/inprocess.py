"""``dockyard serve``'s application in the test process: ``create_app(ServerConfig(...))`` with its lifespan run on
an event loop thread of its own, reached through httpx's ASGI transport (no socket, no process to start).

For tests of the registry's rules (what each endpoint answers). Start-up, signals, crash safety, workers and
connection limits need the real uvicorn process: :class:`tests.support.servers.DockyardServer`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx

from dockyard.server.app import create_app
from dockyard.server.config import ServerConfig

T = TypeVar("T")

#: The host the in-process registry answers as (``.test`` is reserved: nothing real is ever reached by mistake).
HOST = "dockyard.test"


class _SyncASGITransport(httpx.BaseTransport):
    """httpx's :class:`httpx.ASGITransport` for a synchronous client: each request runs on the server's loop."""

    def __init__(self, server: InProcessServer) -> None:
        self.server = server
        self.asgi = httpx.ASGITransport(app=server.app, client=("127.0.0.1", 50000))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def send() -> tuple[int, httpx.Headers, bytes]:
            forwarded = httpx.Request(request.method, request.url, headers=request.headers, content=body,
                                      extensions=request.extensions)
            response = await self.asgi.handle_async_request(forwarded)
            content = await response.aread()
            return response.status_code, response.headers, content

        status, headers, content = self.server.call(send())
        return httpx.Response(status, headers=headers, content=content, request=request)


class InProcessServer:
    """The registry application over ``data_dir`` with ``settings`` (``ServerConfig`` fields); ``url``/``host``
    name it, :meth:`client` reaches it. Use as a context manager, or :meth:`start` / :meth:`stop`."""

    url = f"http://{HOST}"
    host = HOST

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        self.data_dir = Path(data_dir)
        self.config = ServerConfig(data_dir=str(self.data_dir), **settings)
        self.app: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lifespan: asyncio.Future[None] | None = None
        self._to_app: asyncio.Queue[dict[str, str]] | None = None
        self._from_app: asyncio.Queue[dict[str, Any]] | None = None

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        """Run ``coroutine`` on the server's loop and wait for its result."""
        assert self._loop is not None, "the server is not running"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self) -> InProcessServer:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="in-process-registry", daemon=True)
        self._thread.start()
        self.call(self._startup())
        return self

    async def _startup(self) -> None:
        self.app = create_app(self.config)
        self._to_app, self._from_app = asyncio.Queue(), asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self._lifespan = asyncio.ensure_future(self.app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._from_app.get()
        assert message["type"] == "lifespan.startup.complete", message

    async def _shutdown(self) -> None:
        assert self._to_app is not None and self._from_app is not None and self._lifespan is not None
        await self._to_app.put({"type": "lifespan.shutdown"})
        message = await self._from_app.get()
        assert message["type"] == "lifespan.shutdown.complete", message
        await self._lifespan

    def stop(self) -> None:
        if self._loop is None:
            return
        try:
            if self._lifespan is not None:
                self.call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            assert self._thread is not None
            self._thread.join(10)
            self._loop.close()
            self._loop = self._thread = self._lifespan = None

    def client(self, **options: Any) -> httpx.Client:
        """A synchronous httpx client whose requests reach this server (``base_url`` is :attr:`url`)."""
        return httpx.Client(transport=_SyncASGITransport(self), base_url=self.url, **options)

    def __enter__(self) -> InProcessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
