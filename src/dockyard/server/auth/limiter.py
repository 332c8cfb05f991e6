"""Failed logins per client address: past the limit in one window, password checks are refused (429)."""

from __future__ import annotations

import math
import time
from collections import deque

#: The window the limit counts failures in (seconds).
WINDOW = 60.0
#: Most client addresses tracked at once (the oldest are forgotten first).
MAX_CLIENTS = 65536


class FailedLogins:
    """Counts failed logins per client address over a sliding window of :data:`WINDOW` seconds.

    ``limit`` failures in a window block further password checks from that address until the oldest failure
    leaves the window; ``0`` turns the limit off."""

    def __init__(self, limit: int, window: float = WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try a password again; ``None`` when it may now."""
        if self.limit <= 0:
            return None
        now = time.monotonic()
        times = self._recent(client, now)
        if times is None or len(times) < self.limit:
            return None
        return max(1, math.ceil(times[-self.limit] + self.window - now))

    def failed(self, client: str) -> None:
        """Count one failed login from ``client``."""
        if self.limit <= 0:
            return
        now = time.monotonic()
        times = self._recent(client, now)
        if times is None:
            if len(self._failures) >= MAX_CLIENTS:
                del self._failures[next(iter(self._failures))]
            times = self._failures[client] = deque(maxlen=self.limit)
        times.append(now)
