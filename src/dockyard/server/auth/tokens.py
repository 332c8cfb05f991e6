"""Signed JWT access and refresh tokens: what they carry, how long they live, what a valid one must hold.

Every token names the registry it is for (``aud``, the service name), when it expires (``exp``, required), the
kind of credential it came from (``src``) and, for htpasswd users, a fingerprint of that user's htpasswd line
(``cred``), for repository-scoped tokens their id and generation: the
:class:`~dockyard.server.auth.Authenticator` refuses it once that line, or that token, changes or goes.
``auth_time`` is when the credential itself was checked; no token minted from it, directly or through refresh
tokens, lives past ``auth_time + max_lifetime``.

Verifying a token (base64, JSON, HMAC, claim checks) costs more than the rest of a small request: a verified
token's grant is kept, by the token's exact text, in a bounded LRU (:class:`VerifiedTokens`) until the token
expires. Only what the token itself proves is cached (signature, audience, kind, expiry); whether its credential
still holds is checked on every request by the caller (see ``Authenticator.still_valid``), so a changed
password, a removed user, a disabled or deleted repository-scoped token or a turned-off flag refuses a cached
token as before. The signing key is read once per process, so the cache never outlives the key.
"""

from __future__ import annotations

import hmac
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt

from .scopes import Grant, Scope, parse_scopes

ISSUER = "dockyard"
#: Clock skew tolerated on ``exp``, ``nbf`` and ``iat`` (seconds): small, the issuer is the verifier.
LEEWAY = 2
#: Claims every token must carry.
REQUIRED = ("exp", "iat", "aud", "iss", "sub")

#: ``src`` values: the kinds of credential a token can come from.
SOURCE_HTPASSWD = "htpasswd"
SOURCE_AAD = "aad-any"  # minted by /oauth2/exchange under --accept-any-aad-token
SOURCE_ANONYMOUS = "anonymous"  # --anonymous-pull
SOURCE_OPEN = "open"  # issued while authentication was off: never valid when it is on
SOURCE_TOKEN = "token"  # a repository-scoped token (``cred``: its id and generation)


@dataclass(frozen=True)
class TokenLifetimes:
    """How long tokens live (seconds)."""

    access: int = 3600
    refresh: int = 24 * 3600
    #: Longest any chain of tokens may live after the credential was checked.
    max_total: int = 7 * 24 * 3600


#: Verified tokens kept per server process (a few hundred bytes each).
VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True)
class _Verified:
    kind: str
    service: str
    grant: Grant
    #: ``time.time()`` from which the token is no longer valid (its ``exp``, or its credential's lifetime bound).
    until: float


class VerifiedTokens:
    """Grants of tokens whose signature and claims were verified, by the token's text, until they expire.

    Bounded (least recently used go first); only valid tokens are kept, so junk tokens cannot evict real ones
    faster than they arrive anyway, and each costs a full verification as before."""

    def __init__(self, size: int = VERIFIED_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[str, _Verified] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, now: float) -> _Verified | None:
        """The unexpired entry of ``token``, ``None`` when there is none (an expired one is dropped)."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            if now >= entry.until:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return entry

    def put(self, token: str, entry: _Verified) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._entries[token] = entry
            self._entries.move_to_end(token)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class TokenIssuer:
    """Signs and verifies tokens with one HS256 key."""

    def __init__(self, key: bytes, lifetimes: TokenLifetimes, cache_size: int = VERIFIED_CACHE_SIZE) -> None:
        self.key = key
        self.lifetimes = lifetimes
        self.verified = VerifiedTokens(cache_size)

    def fingerprint(self, text: str) -> str:
        """A keyed fingerprint of ``text`` (an htpasswd line): stable for this key, reveals nothing of ``text``."""
        return hmac.new(self.key, text.encode(), "sha256").hexdigest()[:32]

    def _encode(self, grant: Grant, kind: str, service: str, lifetime: int, extra: dict[str, Any]) -> tuple[str, int]:
        now = int(time.time())
        auth_time = grant.auth_time or now
        expires = min(now + lifetime, auth_time + self.lifetimes.max_total)
        payload = {
            "iss": ISSUER, "aud": service, "sub": grant.subject, "typ": kind, "iat": now, "nbf": now - LEEWAY,
            "exp": expires, "jti": uuid.uuid4().hex, "src": grant.source, "auth_time": auth_time, **extra,
        }
        if grant.credential:
            payload["cred"] = grant.credential
        return jwt.encode(payload, self.key, algorithm="HS256"), expires - now

    def access_token(self, grant: Grant, scopes: list[Scope], service: str) -> tuple[str, int]:
        """An access token for ``scopes`` (already narrowed to the grant) and its lifetime in seconds."""
        return self._encode(grant, "access", service, self.lifetimes.access, {"scopes": [str(s) for s in scopes]})

    def refresh_token(self, grant: Grant, service: str) -> str:
        """A refresh token carrying ``grant`` (full or read-only), never outliving its credential's bound."""
        return self._encode(grant, "refresh", service, self.lifetimes.refresh, {"full": grant.full})[0]

    def decode(self, token: str, kind: str, service: str) -> Grant | None:
        """The grant a valid, unexpired token of ``kind`` (``access`` or ``refresh``) for ``service`` carries;
        ``None`` for anything else. Whether its credential still holds is the caller's check.

        A token verified before is answered from :attr:`verified` until it expires."""
        now = time.time()
        cached = self.verified.get(token, now)
        if cached is not None:
            return cached.grant if cached.kind == kind and cached.service == service else None
        grant, until = self._verify(token, kind, service)
        if grant is not None and until > now:
            self.verified.put(token, _Verified(kind, service, grant, until))
        return grant

    def cached_source(self, token: str) -> str | None:
        """The ``src`` of ``token`` when it was verified before and has not expired, else ``None``."""
        cached = self.verified.get(token, time.time())
        return cached.grant.source if cached is not None else None

    def _verify(self, token: str, kind: str, service: str) -> tuple[Grant | None, float]:
        """The grant of a valid token and the time it stops being valid; ``(None, 0)`` for anything else."""
        try:
            claims = jwt.decode(token, self.key, algorithms=["HS256"], issuer=ISSUER, audience=service,
                                leeway=LEEWAY, options={"require": list(REQUIRED)})
        except jwt.PyJWTError:
            return None, 0.0
        if claims.get("typ") != kind:
            return None, 0.0
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, int) or auth_time + self.lifetimes.max_total + LEEWAY < time.time():
            return None, 0.0
        # PyJWT refuses a token once ``exp <= now - leeway``; the credential bound is the one checked above.
        until = min(float(claims["exp"]) + LEEWAY, float(auth_time + self.lifetimes.max_total + LEEWAY))
        access = None
        if kind == "access":
            access = tuple(parse_scopes(str(s) for s in claims.get("scopes", []) if isinstance(s, str)))
        grant = Grant(
            subject=str(claims["sub"]),
            full=bool(claims.get("full")) if kind == "refresh" else False,
            access=access,
            source=str(claims.get("src", "")),
            credential=str(claims.get("cred", "")),
            auth_time=auth_time,
        )
        return grant, until
