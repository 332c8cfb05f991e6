"""Running an iterator on a thread of its own, ahead of the code that consumes its items.

A streamed download receives (and hashes) its next piece on this thread while the caller handles the current
one. Both flavours consume it: the sync one blocks in :meth:`Prefetch.get`, the async one awaits
:meth:`Prefetch.aget` (the thread wakes the event loop with ``call_soon_threadsafe`` only when a coroutine is
waiting, so a consumer that keeps up costs one lock per item and no thread hand-off).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

#: How many items may wait for the consumer (one more is being produced meanwhile). One is enough to overlap the
#: two threads; with more, a streamed download's freed 1 MiB pieces are given back by the allocator and faulted
#: in again (an async stream saw 10x the page faults and ~8% more CPU per GiB with 2).
DEPTH = 1


class _End:
    """The mark the thread leaves after the source's last item (the source is closed by then)."""


_END = _End()


class Prefetch(Generic[T]):
    """``source``'s items produced on a daemon thread, at most ``depth`` ahead; :meth:`close` stops it.

    The thread leaves the end mark only after ``source`` finished (or failed, or was closed), so whatever state
    ``source`` updates is final once :meth:`get` reports the end. An exception of ``source`` is raised by
    :meth:`get` / :meth:`aget` in the consumer's thread.
    """

    def __init__(self, source: Iterator[T], depth: int = DEPTH, name: str = "dockyard-prefetch") -> None:
        self._source = source
        self._items: deque[T | BaseException | _End] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._room = threading.Semaphore(depth)
        self._depth = depth
        self._closed = False
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._source:
                self._room.acquire()
                if self._closed:
                    break
                self._push(item)
        except BaseException as exc:  # handed to the consumer's thread
            self._push(exc)
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()
        self._push(_END)

    def _push(self, item: T | BaseException | _End) -> None:
        with self._ready:
            self._items.append(item)
            self._ready.notify()
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            loop, future = waiter
            try:
                loop.call_soon_threadsafe(_wake, future)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def _take(self) -> T | None:
        """The next item (``None`` at the end, which stays); raises the source's exception."""
        item = self._items[0]
        if isinstance(item, _End):
            return None
        self._items.popleft()
        if isinstance(item, BaseException):
            raise item
        self._room.release()
        return item

    def get(self) -> T | None:
        """The next item, waiting for it; ``None`` once the source is done."""
        with self._ready:
            while not self._items:
                self._ready.wait()
            return self._take()

    async def aget(self) -> T | None:
        """The next item, awaiting it without blocking the event loop; ``None`` once the source is done."""
        while True:
            with self._ready:
                if self._items:
                    return self._take()
                future = asyncio.get_running_loop().create_future()
                self._waiter = (asyncio.get_running_loop(), future)
            try:
                await future
            finally:
                with self._ready:
                    if self._waiter is not None and self._waiter[1] is future:
                        self._waiter = None

    def close(self) -> None:
        """Stop producing: the thread closes the source after the item it is producing (it does not wait)."""
        self._closed = True
        for _ in range(self._depth + 1):
            self._room.release()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to finish (after :meth:`close` or the source's end)."""
        self._thread.join(timeout)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
