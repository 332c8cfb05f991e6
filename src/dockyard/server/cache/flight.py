"""Single flight: one fetch from upstream for many concurrent requests of the same thing.

Within a process, requests for the same key share one task. Across worker processes and servers sharing the
metadata database, that task first takes the key's lease (the metadata store's ``acquire_lease``): only the lease
holder fetches; the others poll until the result is stored (``ready`` answers) or the lease lapses (its holder
died or stalled: it is renewed only while bytes arrive), and then take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from .. import errors as e
from ..registry import Registry

log = logging.getLogger("dockyard.server.cache")

T = TypeVar("T")

#: Seconds a lease lasts unless renewed; a fill renews it while bytes arrive.
LEASE_TTL = 15.0
#: Seconds between two renewals of a lease by the fill that holds it.
RENEW_EVERY = LEASE_TTL / 3
#: Seconds between two looks at whether another process's fill has finished, and between two tries at its lease.
POLL_EVERY = 0.1
LEASE_EVERY = 0.5
#: Seconds a request waits for another process's fill before it is answered 503 (the fill itself goes on).
MAX_WAIT = 30 * 60.0


class Renewal:
    """Renews one held lease, at most every :data:`RENEW_EVERY` seconds (called as bytes arrive).

    The renewal runs beside the fill, never in its way: a write transaction may wait behind another blob's commit,
    and the bytes must keep flowing meanwhile."""

    def __init__(self, registry: Registry, lease: str, holder: str) -> None:
        self._registry = registry
        self._lease = lease
        self._holder = holder
        self._last = asyncio.get_running_loop().time()
        self._running: asyncio.Task[None] | None = None

    def __call__(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last < RENEW_EVERY or (self._running is not None and not self._running.done()):
            return
        self._last = now
        self._running = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        try:
            if not await self._registry.take_lease(self._lease, self._holder, LEASE_TTL):
                log.warning("lease %s was taken over while this server was still filling it", self._lease)
        except Exception as exc:  # the next renewal tries again; the fill goes on
            log.warning("renewing lease %s failed: %s", self._lease, exc)

    async def stop(self) -> None:
        """Wait for a renewal in flight (before the lease is dropped)."""
        if self._running is not None:
            with contextlib.suppress(Exception):
                await self._running


#: ``ready()``: the stored result, or None while it is not there yet.
Ready = Callable[[], Awaitable[T | None]]
#: ``fill(renew)``: fetch and store; ``renew()`` keeps the lease while it works.
Fill = Callable[[Renewal], Awaitable[T]]


class Flights(Generic[T]):
    """The running fills of one process, by key."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._tasks: dict[str, asyncio.Task[T]] = {}

    def join(self, key: str, ready: Ready[T], fill: Fill[T]) -> tuple[asyncio.Task[T], bool]:
        """The task filling ``key`` (started now unless one runs) and whether it was started by this call.

        The task is not tied to the request: a client that goes away does not stop a fill others wait for."""
        task = self._tasks.get(key)
        if task is not None:
            return task, False
        task = asyncio.get_running_loop().create_task(self._lead(key, ready, fill))
        self._tasks[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))
        return task, True

    async def run(self, key: str, ready: Ready[T], fill: Fill[T]) -> T:
        """The result for ``key``: stored already, or after the one fill of it (this process's or another's)."""
        found = await ready()
        if found is not None:
            return found
        task, _ = self.join(key, ready, fill)
        return await asyncio.shield(task)

    def _forget(self, key: str, task: asyncio.Task[T]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # retrieved: a fill nobody waits for any more does not log "never retrieved"

    async def _lead(self, key: str, ready: Ready[T], fill: Fill[T]) -> T:
        loop = asyncio.get_running_loop()
        lease = f"cache:{key}"
        holder = f"{self._holder}:{uuid.uuid4().hex[:8]}"
        deadline = loop.time() + MAX_WAIT
        next_try = 0.0
        while True:
            found = await ready()
            if found is not None:
                return found
            now = loop.time()
            if now >= next_try:
                if await self._registry.take_lease(lease, holder, LEASE_TTL):
                    try:
                        found = await ready()
                        if found is not None:
                            return found
                        renewal = Renewal(self._registry, lease, holder)
                        try:
                            return await fill(renewal)
                        finally:
                            await renewal.stop()
                    finally:
                        with contextlib.suppress(Exception):
                            await asyncio.shield(self._registry.drop_lease(lease, holder))
                next_try = now + LEASE_EVERY
            if now >= deadline:
                raise e.RegistryError(503, "UNAVAILABLE", f"{key} is still being fetched by another server; retry")
            await asyncio.sleep(POLL_EVERY)
