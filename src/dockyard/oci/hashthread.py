"""Hashing on a thread of its own, in order, while the caller receives (or sends) the next bytes.

``hashlib`` releases the GIL while it hashes a large buffer, and so do socket reads and writes: with the hash
on its own thread the two overlap instead of adding up.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from .digest import Hasher

#: How many pieces may wait for the hash at most (bounds the memory held for it).
DEPTH = 4


class HashThread:
    """Feeds ``hasher`` on a worker thread; :meth:`join` waits until it has everything given so far."""

    def __init__(self, hasher: Hasher, depth: int = DEPTH) -> None:
        self.hasher = hasher
        self.depth = depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dockyard-hash")
        self._pending: deque[Future[None]] = deque()

    def update(self, data: bytes | memoryview) -> None:
        """Queue ``data`` (it must not change until hashed); waits while :attr:`depth` pieces are queued."""
        if not data:
            return
        while len(self._pending) >= self.depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self.hasher.update, data))

    def join(self) -> None:
        """Wait for every queued piece and stop the thread (an error of the hash is raised here)."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True)
