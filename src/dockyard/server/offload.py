"""Where the registry's blocking work runs: never on the event loop.

SQLite calls, file system checks and large response bodies run on threads. Reads go to a small pool (each
thread has its own SQLite connection, and WAL lets them read while a write is in progress); writes go to one
writer thread, since SQLite takes one writer at a time anyway: a write waiting for the database lock (held by
another worker process, ``dockyard gc`` or a slow commit) delays other writes, never reads or ``GET /v2/``.
Every call first checks that the database file is still the one opened (see
:class:`~.storage.protocols.StoreGoneError`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .storage.protocols import MetadataStore

T = TypeVar("T")

#: Threads serving reads (metadata queries, blob opens, listings) in one server process.
READER_THREADS = 4


class StoreThreads:
    """A reader pool and a writer thread for one registry's stores."""

    def __init__(self, meta: MetadataStore, readers: int = READER_THREADS) -> None:
        self._meta = meta
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="dockyard-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="dockyard-writer")

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on a reader thread: anything that queries but does not change the stores."""
        return await self._run(self._readers, fn, args, kwargs)

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
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)
