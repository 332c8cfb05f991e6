"""Signed JWT access and refresh tokens: what they carry, how long they live, what a valid one must hold.

Every token names the registry it is for (``aud``, the service name), when it expires (``exp``, required), the
kind of credential it came from (``src``) and, for htpasswd users, a fingerprint of that user's htpasswd line
(``cred``), for repository-scoped tokens their id and generation: the
:class:`~dockyard.server.auth.Authenticator` refuses it once that line, or that token, changes or goes.
``auth_time`` is when the credential itself was checked; no token minted from it, directly or through refresh
tokens, lives past ``auth_time + max_lifetime``.
"""

from __future__ import annotations

import hmac
import time
import uuid
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


class TokenIssuer:
    """Signs and verifies tokens with one HS256 key."""

    def __init__(self, key: bytes, lifetimes: TokenLifetimes) -> None:
        self.key = key
        self.lifetimes = lifetimes

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
        ``None`` for anything else. Whether its credential still holds is the caller's check."""
        try:
            claims = jwt.decode(token, self.key, algorithms=["HS256"], issuer=ISSUER, audience=service,
                                leeway=LEEWAY, options={"require": list(REQUIRED)})
        except jwt.PyJWTError:
            return None
        if claims.get("typ") != kind:
            return None
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, int) or auth_time + self.lifetimes.max_total + LEEWAY < time.time():
            return None
        access = None
        if kind == "access":
            access = tuple(parse_scopes(str(s) for s in claims.get("scopes", []) if isinstance(s, str)))
        return Grant(
            subject=str(claims["sub"]),
            full=bool(claims.get("full")) if kind == "refresh" else False,
            access=access,
            source=str(claims.get("src", "")),
            credential=str(claims.get("cred", "")),
            auth_time=auth_time,
        )
