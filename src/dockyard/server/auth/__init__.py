"""Authentication and authorization: htpasswd users, Basic auth, signed JWT access and refresh tokens.

Off by default. With an htpasswd file every request needs Basic credentials of a known user (full rights) or
of a repository-scoped token (its rights, see :mod:`.accounts`), or a Bearer access token issued by
``/oauth2/token`` whose ``scopes`` claim covers the operation (``repository:<name>:<action>`` or
``registry:catalog:*``). Passwords are checked off the event loop
(:class:`.gate.LoginGate` resolves Basic credentials before a route runs); tokens are bound to the credential
that issued them and to the flags the server runs with (see :mod:`.tokens`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.requests import Request

from .accounts import TokenDirectory
from .htpasswd import RECHECK_SECONDS, HtpasswdError, User, UserFile
from .keys import KeyFileError, load_signing_key
from .limiter import FailedLogins
from .passwords import PasswordChecker
from .scopes import READ_ACTIONS, Access, Grant, Scope, parse_scopes
from .tokens import (
    SOURCE_AAD,
    SOURCE_ANONYMOUS,
    SOURCE_HTPASSWD,
    SOURCE_OPEN,
    SOURCE_TOKEN,
    VERIFIED_CACHE_SIZE,
    TokenIssuer,
    TokenLifetimes,
)

if TYPE_CHECKING:
    from ..registry import Registry

log = logging.getLogger("dockyard.server.auth")

__all__ = [
    "CALLER_GRANT", "READ_ACTIONS", "Access", "Authenticator", "Grant", "HtpasswdError", "KeyFileError",
    "LoginThrottled", "Scope",
    "TokenLifetimes", "parse_scopes",
]

#: Where :class:`.gate.LoginGate` leaves the outcome of a request's Basic credentials (in the ASGI scope).
BASIC_GRANT = "dockyard.basic_grant"
#: Where :func:`..api.access.authorize` leaves the authenticated subject (user or token name) for the request log.
SUBJECT = "dockyard.subject"
#: Where the access check leaves the grant a request was admitted with (catalogs filter by it).
CALLER_GRANT = "dockyard.grant"


class LoginThrottled(Exception):
    """Too many failed logins from one client address: refuse for ``retry_after`` seconds (429)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins from this address; retry after {retry_after} s")
        self.retry_after = retry_after


def _basic_pair(header: str) -> tuple[str, str] | None:
    try:
        user, sep, password = base64.b64decode(header.split(" ", 1)[1].strip(), validate=True).decode().partition(":")
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class Authenticator:
    """Decides who a caller is, and issues tokens."""

    def __init__(
        self,
        data_dir: Path,
        htpasswd: Path | None = None,
        anonymous_pull: bool = False,
        accept_any_aad_token: bool = False,
        lifetimes: TokenLifetimes | None = None,
        login_failure_limit: int = 10,
        key_file: Path | None = None,
        token_cache_size: int = VERIFIED_CACHE_SIZE,
        htpasswd_recheck: float = RECHECK_SECONDS,
    ) -> None:
        self.enabled = htpasswd is not None
        self.user_file = UserFile(htpasswd, htpasswd_recheck) if htpasswd is not None else None
        self.anonymous_pull = anonymous_pull
        self.accept_any_aad_token = accept_any_aad_token
        self.tokens = TokenIssuer(
            load_signing_key(Path(data_dir), key_file), lifetimes or TokenLifetimes(), token_cache_size
        )
        self.passwords = PasswordChecker()
        self.failures = FailedLogins(login_failure_limit)
        #: The credential fingerprint of each htpasswd user's current line, with the users it was computed for.
        self._credentials: tuple[dict[str, User], dict[str, str]] = ({}, {})
        #: Repository-scoped tokens and scope maps, as last read from the store (see :meth:`sync_tokens`).
        self.directory = TokenDirectory()
        self._registry: Registry | None = None
        self._prepare()

    def attach(self, registry: Registry | None) -> None:
        """Read tokens and scope maps from ``registry``'s metadata store from now on (``None``: no tokens)."""
        self._registry = registry
        self.directory = TokenDirectory()

    async def sync_tokens(self) -> None:
        """Re-read tokens and scope maps (off the loop) when the store says they changed: created, changed,
        disabled and deleted tokens take effect on the next request, without a restart."""
        if self._registry is None:
            return
        try:
            if await self._registry.auth_version() != self.directory.version:
                self.directory = TokenDirectory.of(*await self._registry.auth_records())
        except Exception as exc:  # a store that cannot be read: no token logs in (fail closed) until it can
            log.error("cannot read tokens from the metadata store (%s): token logins are refused", exc)
            self.directory = TokenDirectory()

    # -- users --------------------------------------------------------------------------------------------------

    @property
    def users(self) -> dict[str, User]:
        """The htpasswd users as last read."""
        return self.user_file.users if self.user_file is not None else {}

    def _cost(self) -> int:
        return max((u.cost for u in self.users.values()), default=10)

    def _prepare(self) -> None:
        self.passwords.prepare(self._cost())
        users = self.users
        self._credentials = (users, {name: self.tokens.fingerprint(user.line) for name, user in users.items()})

    def _credential(self, name: str) -> str | None:
        """The fingerprint tokens of htpasswd user ``name`` must carry, ``None`` when there is no such user."""
        users, fingerprints = self._credentials
        if users is not self.users:  # reloaded, not prepared yet: compute it from the users now in force
            user = self.users.get(name)
            return self.tokens.fingerprint(user.line) if user is not None else None
        return fingerprints.get(name)

    def _reload(self) -> None:
        assert self.user_file is not None
        self.user_file.reload()
        self._prepare()

    def watch_users(self) -> None:
        """Learn of htpasswd changes from the running event loop (inotify) instead of a ``stat`` per request."""
        if self.user_file is not None:
            self.user_file.watch()

    def unwatch_users(self) -> None:
        """Stop :meth:`watch_users` (on the same loop)."""
        if self.user_file is not None:
            self.user_file.unwatch()

    async def sync_users(self) -> None:
        """Re-read the htpasswd file (off the loop) when it changed on disk: removed users and changed passwords
        stop working, with their tokens, without a restart."""
        if self.user_file is not None and self.user_file.changed():
            await anyio.to_thread.run_sync(self._reload)

    # -- identities ---------------------------------------------------------------------------------------------

    def anonymous(self) -> Grant | None:
        """What a caller without credentials gets: read-only with ``--anonymous-pull``, nothing without auth."""
        if not self.enabled:
            return Grant("anonymous", True, source=SOURCE_OPEN)
        if self.anonymous_pull:
            return Grant("", False, source=SOURCE_ANONYMOUS)
        return None

    async def login(self, user: str, password: str, client: str) -> Grant | None:
        """The grant for a user name and password, ``None`` when they are wrong (any pair when auth is off).

        :class:`LoginThrottled` when ``client`` failed too often lately (unless these exact credentials passed
        a check a moment ago)."""
        if not self.enabled:
            return Grant(user or "anonymous", True, source=SOURCE_OPEN)
        await self.sync_tokens()
        token = self.directory.check(user, password)
        if token is not None:  # a SHA-256 comparison: cheap, so never throttled
            return Grant(user, False, source=SOURCE_TOKEN, credential=self.directory.binding(token),
                         auth_time=int(time.time()), rights=self.directory.rights(token))
        known = self.users.get(user)
        if not self.passwords.remembered(user, password, known):
            wait = self.failures.retry_after(client)
            if wait is not None:
                raise LoginThrottled(wait)
            if not await self.passwords.check_async(user, password, known, self._cost()):
                self.failures.failed(client)
                return None
        assert known is not None
        return Grant(user, True, source=SOURCE_HTPASSWD, credential=self.tokens.fingerprint(known.line),
                     auth_time=int(time.time()))

    async def basic(self, header: str, client: str) -> Grant | None:
        """The grant for a ``Basic`` header, ``None`` when the credentials are wrong (see :meth:`login`)."""
        pair = _basic_pair(header)
        if pair is None:
            return None
        return await self.login(pair[0], pair[1], client)

    def bearer_needs_tokens(self, token: str) -> bool:
        """Whether a request carrying bearer ``token`` needs the repository-scoped tokens re-read first: True
        unless the token was verified before (its claims are then known to be authentic) and does not come from
        a repository-scoped token. Tokens of htpasswd users, ``--accept-any-aad-token`` and ``--anonymous-pull``
        are revoked by the htpasswd file and the flags, checked on every request anyway."""
        source = self.tokens.cached_source(token)
        return source is None or source == SOURCE_TOKEN

    def bearer(self, token: str, service: str) -> Grant | None:
        """The grant of a valid access token for ``service`` whose credential still holds."""
        return self._current(self.tokens.decode(token, "access", service))

    def from_refresh_token(self, token: str, service: str) -> Grant | None:
        """The grant of a valid refresh token for ``service`` whose credential still holds."""
        return self._current(self.tokens.decode(token, "refresh", service))

    def _current(self, grant: Grant | None) -> Grant | None:
        """``grant`` when its credential still holds, with a repository-scoped token's current rights."""
        if grant is None or not self.still_valid(grant):
            return None
        if grant.source == SOURCE_TOKEN:
            token = self.directory.bound(grant.subject, grant.credential)
            assert token is not None
            return replace(grant, rights=self.directory.rights(token))
        return grant

    def aad_grant(self) -> Grant:
        """What ``/oauth2/exchange`` grants under ``--accept-any-aad-token``: full rights, marked as such."""
        return Grant("aad-identity", True, source=SOURCE_AAD, auth_time=int(time.time()))

    def still_valid(self, grant: Grant) -> bool:
        """True when the credential a token came from still stands: the htpasswd line it was issued for is
        unchanged, and the flag that allowed it (``--accept-any-aad-token``, ``--anonymous-pull``) is still on.
        Tokens issued while authentication was off are never valid once it is on."""
        if not self.enabled:
            return True
        if grant.source == SOURCE_HTPASSWD:
            credential = self._credential(grant.subject)
            return credential is not None and grant.credential == credential
        if grant.source == SOURCE_TOKEN:
            return self.directory.bound(grant.subject, grant.credential) is not None
        if grant.source == SOURCE_AAD:
            return self.accept_any_aad_token
        if grant.source == SOURCE_ANONYMOUS:
            return self.anonymous_pull
        return False

    def identify(self, request: Request, service: str) -> Grant | None:
        """The caller's grant from the ``Authorization`` header; ``None`` when missing or invalid."""
        header = request.headers.get("authorization")
        if not header:
            return self.anonymous()
        kind, _, value = header.partition(" ")
        kind = kind.lower()
        if kind == "basic" and not self.enabled:
            pair = _basic_pair(header)
            return Grant(pair[0] if pair and pair[0] else "anonymous", True, source=SOURCE_OPEN)
        if kind == "basic":
            resolved = request.scope.get(BASIC_GRANT)
            return resolved[1] if resolved is not None and resolved[0] == header else None
        if kind == "bearer":
            return self.bearer(value.strip(), service)
        return None

    def missing(self, grant: Grant | None, needed: list[Access]) -> list[Access]:
        """What of ``needed`` the grant does not cover (everything without a grant; nothing when auth is off)."""
        if not self.enabled:
            return []
        if grant is None:
            return list(needed)
        return [a for a in needed if not grant.allows(a.resource, a.name, a.action)]

    # -- tokens -------------------------------------------------------------------------------------------------

    def access_token(self, grant: Grant, requested: list[Scope], service: str) -> dict[str, Any]:
        """A token response (``token``, ``access_token``, ``expires_in``, ``issued_at``) for ``requested`` scopes."""
        token, lifetime = self.tokens.access_token(grant, grant.narrow(requested), service)
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {"token": token, "access_token": token, "expires_in": lifetime, "issued_at": issued}

    def refresh_token(self, grant: Grant, service: str) -> str:
        """A refresh token carrying ``grant``; one minted from another keeps the first one's ``auth_time``."""
        return self.tokens.refresh_token(grant, service)
