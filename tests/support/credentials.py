"""Stand-in Entra ID credentials: objects with ``get_token`` (sync and async) that count their calls.

They play the part of azure-identity's ``DefaultAzureCredential``: ``get_token(*scopes)`` returns an
``AccessToken``-shaped ``(token, expires_on)`` tuple. A registry started with ``--accept-any-aad-token``
accepts any non-empty token, so the token value only has to be recognisable in logs.
"""

from __future__ import annotations

import threading
import time
from typing import Any, NamedTuple


class AccessToken(NamedTuple):
    """The shape of ``azure.core.credentials.AccessToken``."""

    token: str
    expires_on: int


class CountingCredential:
    """A synchronous ``TokenCredential`` that records every ``get_token`` call and its scopes."""

    def __init__(self, token: str = "stand-in-entra-token", lifetime: int = 3600) -> None:
        self.token = token
        self.lifetime = lifetime
        self.calls: list[tuple[str, ...]] = []
        self._lock = threading.Lock()
        self.closed = False

    @property
    def count(self) -> int:
        """How many times ``get_token`` was called."""
        return len(self.calls)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        with self._lock:
            self.calls.append(scopes)
        return AccessToken(self.token, int(time.time()) + self.lifetime)

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> CountingCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncCountingCredential:
    """The ``AsyncTokenCredential`` twin: ``await credential.get_token(*scopes)``."""

    def __init__(self, token: str = "stand-in-entra-token", lifetime: int = 3600) -> None:
        self.token = token
        self.lifetime = lifetime
        self.calls: list[tuple[str, ...]] = []
        self.closed = False

    @property
    def count(self) -> int:
        """How many times ``get_token`` was awaited."""
        return len(self.calls)

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append(scopes)
        return AccessToken(self.token, int(time.time()) + self.lifetime)

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> AsyncCountingCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
