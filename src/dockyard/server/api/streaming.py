"""A response that streams a slice of an open blob in large chunks and stops when the client goes away."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Future, ThreadPoolExecutor

from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from ..storage.protocols import BlobReader

#: Bytes read from a blob per response body message.
READ_CHUNK = 4 * 1024 * 1024

#: Threads reading blobs for responses (a cold or slow disk must not stall the event loop).
_READERS = ThreadPoolExecutor(8, thread_name_prefix="dockyard-blob-read")


class BlobResponse(Response):
    """Send ``length`` bytes of open blob ``reader`` from ``start``; closes it when done (or on disconnect)."""

    def __init__(self, reader: BlobReader, start: int, length: int, status_code: int, headers: dict[str, str]) -> None:
        super().__init__(None, status_code=status_code, headers=headers)
        self.reader = reader
        self.start = start
        self.length = length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher: asyncio.Task[object] | None = None
        reading: Future[bytes] | None = None
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            if scope.get("method") == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            pos, end = self.start, self.start + self.length
            while pos < end:
                reading = _READERS.submit(self.reader.read_at, pos, min(READ_CHUNK, end - pos))
                chunk = await asyncio.wrap_future(reading)
                if not chunk:
                    break  # the file shrank underneath us: the client sees a short body and retries
                pos += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": pos < end})
                if watcher is None and pos < end:
                    watcher = asyncio.ensure_future(_disconnected(receive))
                elif watcher is not None and watcher.done():
                    return
            if pos < end or self.length == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if reading is not None and not reading.done():
                # Cancelled while a thread still reads: the blob is closed when that read is done.
                reading.add_done_callback(lambda _: self.reader.close())
            else:
                self.reader.close()
            if watcher is not None and not watcher.done():
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher


async def _disconnected(receive: Receive) -> None:
    """Return once the client has disconnected (request body messages are skipped)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that closes its body iterator as soon as the response ends, however it ends (a client
    gone mid-body included): the producer behind it (a cache fill) learns at once that nobody reads any more."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            closing = getattr(self.body_iterator, "aclose", None)
            if closing is not None:
                await closing()
