"""A connection pool per thread for the sync client: one ``httpx.HTTPTransport`` for each thread that sends.

httpcore's connection pool is not safe to share between threads that send at the same time: its pass over the
pool, run by whichever thread starts or ends a request, checks whether an idle connection "has expired" by reading
its state and then whether its socket is readable, without the connection's lock. When another thread has just
been handed that connection and a fast server has already answered its request, the answer reads as "closed by
the server", and the connection is closed under the request, which then waits until the server's keep-alive
timeout or its own read timeout ends it (httpcore 1.0.9, its issue #1110). With a pool of its own, a thread's pool
only ever runs that thread's passes, and no other thread holds its connections.

A thread keeps its pool while it lives. The pool of a thread that ended is handed to the next thread that needs
one (it keeps its idle connections for reuse), so the number of pools is bounded by the most threads that used
the client at one time. Every pool made is closed by :meth:`PerThreadTransport.close`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

import httpx


class PerThreadTransport(httpx.BaseTransport):
    """An ``httpx`` transport that sends each request with the calling thread's own transport, made by
    ``factory`` (e.g. ``lambda: httpx.HTTPTransport(verify=..., limits=...)``) on the thread's first request."""

    def __init__(self, factory: Callable[[], httpx.BaseTransport]) -> None:
        self._factory = factory
        self._local = threading.local()
        self._lock = threading.Lock()
        #: Every transport made, with (a weak reference to) the thread it serves now.
        self._owners: list[tuple[weakref.ref[threading.Thread], httpx.BaseTransport]] = []

    def for_this_thread(self) -> httpx.BaseTransport:
        """The calling thread's transport: its own, else one a thread that ended left, else a new one."""
        transport: httpx.BaseTransport | None = getattr(self._local, "transport", None)
        if transport is not None:
            return transport
        me = weakref.ref(threading.current_thread())
        with self._lock:
            for index, (owner, left) in enumerate(self._owners):
                thread = owner()
                if thread is None or not thread.is_alive():
                    self._owners[index] = (me, left)
                    transport = left
                    break
            else:
                transport = self._factory()
                self._owners.append((me, transport))
        self._local.transport = transport
        return transport

    @property
    def pools(self) -> int:
        """How many transports (connection pools) this one has made."""
        with self._lock:
            return len(self._owners)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.for_this_thread().handle_request(request)

    def close(self) -> None:
        """Close every thread's transport (their connections); a later request opens new connections."""
        with self._lock:
            transports = [transport for _, transport in self._owners]
        for transport in transports:
            transport.close()
