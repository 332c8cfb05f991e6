"""Cached access and refresh tokens, judged fresh against a replaceable clock.

Shared by the threads of a parallel download: plain dicts whose single-key updates are atomic; a lost race
only costs a duplicate token request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from time import time

#: Refresh an Entra-exchanged refresh token this many seconds before it expires.
REFRESH_MARGIN = 300.0
#: Treat an access token as expired this many seconds early.
ACCESS_MARGIN = 30.0


@dataclass
class Token:
    """A token and its expiry (Unix seconds; ``None`` when unknown)."""

    value: str
    expires: float | None

    def fresh(self, margin: float, now: float) -> bool:
        """True when the token is good for at least ``margin`` more seconds after ``now`` (or has no known
        expiry)."""
        return self.expires is None or self.expires - now > margin


@dataclass
class TokenCache:
    """Access tokens by ``(service, scope)``, refresh tokens by service, and how each token service (realm)
    answered a password request (``post`` or ``get``)."""

    #: The clock token expiry is judged by (seconds since the epoch).
    clock: Callable[[], float] = time
    access: dict[tuple[str, str], Token] = field(default_factory=dict)
    refresh: dict[str, Token] = field(default_factory=dict)
    methods: dict[str, str] = field(default_factory=dict)

    def fresh_access(self, service: str, scope: str) -> str | None:
        """The cached access token for ``scope`` when it is still good."""
        token = self.access.get((service, scope))
        return token.value if token is not None and token.fresh(ACCESS_MARGIN, self.clock()) else None

    def store_access(self, service: str, scope: str, value: str, expires: float | None,
                     expires_in: object = None) -> None:
        """Cache an access token; without a JWT expiry, ``expires_in`` (seconds from now) tells it."""
        if expires is None and isinstance(expires_in, (int, float)) and expires_in > 0:
            expires = self.clock() + float(expires_in)
        self.access[(service, scope)] = Token(value, expires)

    def forget_access(self, service: str, scope: str, sent: str) -> None:
        """Forget the token for ``scope`` and any cached token equal to the refused ``Authorization`` ``sent``."""
        if sent.startswith("Bearer "):
            for key, token in list(self.access.items()):
                if f"Bearer {token.value}" == sent:
                    self.access.pop(key, None)
        self.access.pop((service, scope), None)

    def fresh_refresh(self, service: str) -> str | None:
        """The cached refresh token of ``service`` when it is still good."""
        cached = self.refresh.get(service)
        return cached.value if cached is not None and cached.fresh(REFRESH_MARGIN, self.clock()) else None
