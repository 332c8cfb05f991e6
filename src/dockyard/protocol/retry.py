"""When and how long to wait before sending a request again."""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from time import time

from .messages import Response

#: Statuses worth retrying: timeouts, throttling and transient server failures.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; ``Retry-After`` wins when the server sends it."""

    total: int = 5
    backoff: float = 0.2
    max_backoff: float = 30.0
    max_retry_after: float = 120.0

    def should_retry(self, attempt: int, response: Response | None) -> bool:
        """True when attempt number ``attempt`` (0-based) may be followed by another."""
        if attempt >= self.total:
            return False
        return response is None or response.status in RETRY_STATUSES

    def delay(self, attempt: int, response: Response | None) -> float:
        """Seconds to wait before the next attempt."""
        if response is not None:
            after = retry_after(response)
            if after is not None:
                return min(after, self.max_retry_after)
        base = min(self.max_backoff, self.backoff * 2.0**attempt)
        return base * (0.5 + random.random() / 2)


def retry_after(response: Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), or ``None``."""
    value = response.header("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time())
