"""Where the registry's blocking work runs: never on the event loop.

SQLite calls, file system checks and large response bodies run on threads. Reads go to a small pool (each
thread has its own SQLite connection, and WAL lets them read while a write is in progress); writes go to one
writer thread, since SQLite takes one writer at a time anyway: a write waiting for the database lock (held by
another worker process, ``dockyard gc`` or a slow commit) delays other writes, never reads or ``GET /v2/``.
Every call first checks that the database file is still the one opened (see
:class:`~.storage.protocols.StoreGoneError`).

The reader hop is the hot path of every pull (a manifest GET is one read): :class:`ReaderThreads` hands a call
to its threads through one ``SimpleQueue`` and sets an asyncio future with ``call_soon_threadsafe``, about a
fifth of the CPU of ``loop.run_in_executor`` (no ``concurrent.futures`` future, work item, locks and chained
callbacks per call). A read queued when its caller is cancelled still runs; its result is dropped.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from queue import SimpleQueue
from typing import Any, TypeVar

from .storage.protocols import MetadataStore

T = TypeVar("T")

#: Threads serving reads (metadata queries, blob opens, listings) in one server process.
READER_THREADS = 4


_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


def _deliver(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """Set ``future`` (on its loop) unless its caller gave up on it."""
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class ReaderThreads:
    """A fixed set of threads running calls for coroutines, cheaper per call than an executor.

    Threads start on the first call (daemon threads: a process that never closes its registry can still exit);
    :meth:`close` lets them finish what was queued, then joins them."""

    def __init__(self, count: int, name: str) -> None:
        self._count = count
        self._name = name
        self._queue: SimpleQueue[_Job | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._closed = False

    def _start(self) -> None:
        with self._start_lock:
            if self._threads or self._closed:
                return
            for i in range(self._count):
                thread = threading.Thread(target=self._serve, name=f"{self._name}_{i}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            loop, future, call = job
            result: Any = None
            error: BaseException | None = None
            try:
                result = call()
            except StopIteration as exc:  # cannot travel through a future as itself
                error = RuntimeError(f"StopIteration raised by {call!r}")
                error.__cause__ = exc
            except BaseException as exc:
                error = exc
            try:
                loop.call_soon_threadsafe(_deliver, future, result, error)
            except RuntimeError:
                pass  # the loop is closed: nobody waits for this result any more

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` on one of the threads."""
        if self._closed:
            raise RuntimeError("the store threads are closed")
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, future, call))
        return await future

    def close(self) -> None:
        """Run what is queued, then stop and join the threads."""
        with self._start_lock:
            self._closed = True
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join()


class StoreThreads:
    """A reader pool and a writer thread for one registry's stores."""

    def __init__(self, meta: MetadataStore, readers: int = READER_THREADS) -> None:
        self._meta = meta
        self._readers = ReaderThreads(readers, "dockyard-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="dockyard-writer")

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on a reader thread: anything that queries but does not change the stores."""
        return await self._readers.run(functools.partial(self._checked, fn, *args, **kwargs))

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on the writer thread: anything that opens a write transaction."""
        return await self._run(self._writer, fn, args, kwargs)

    async def _run(
        self, pool: ThreadPoolExecutor, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, functools.partial(self._checked, fn, *args, **kwargs))

    def _checked(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self._meta.check_present()
        return fn(*args, **kwargs)

    def close(self) -> None:
        """Stop the threads once the work already handed to them is done."""
        self._readers.close()
        self._writer.shutdown(wait=True)
