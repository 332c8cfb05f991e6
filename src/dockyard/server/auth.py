"""Authentication and authorization: htpasswd users, Basic auth, signed JWT access and refresh tokens.

Off by default. With an htpasswd file every request needs either Basic credentials of a known user (full
rights) or a Bearer access token issued by ``/oauth2/token`` whose ``access`` claim covers the operation
(``repository:<name>:<action>`` or ``registry:catalog:*``). Requests that fall short get a 401 with the
challenge ACR and Docker clients expect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import jwt
from starlette.requests import Request

from . import errors as e
from .storage.private import make_private_dir

ISSUER = "dockyard"
ACCESS_TOKEN_LIFETIME = 3600
REFRESH_TOKEN_LIFETIME = 24 * 3600
#: What anonymous callers may do with ``--anonymous-pull`` (and all a pull-only refresh token grants).
READ_ACTIONS = frozenset({"pull", "metadata_read"})


@dataclass(frozen=True)
class Scope:
    """One ``type:name:actions`` scope."""

    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        parts = text.split(":")
        if len(parts) < 3 or not parts[0]:
            return None
        return cls(parts[0], ":".join(parts[1:-1]), tuple(a for a in parts[-1].split(",") if a))


def parse_scopes(values: list[str]) -> list[Scope]:
    """Scopes from (possibly repeated, possibly space-separated) ``scope`` parameters."""
    out: list[Scope] = []
    for value in values:
        for text in value.split():
            scope = Scope.parse(text)
            if scope is not None:
                out.append(scope)
    return out


@dataclass(frozen=True)
class Grant:
    """Who the caller is and what they may do: every action (``full``), or only read actions."""

    subject: str
    full: bool
    access: tuple[Scope, ...] | None = field(default=None)

    def allows(self, resource: str, name: str, action: str) -> bool:
        if self.access is None:
            return self.full or action in READ_ACTIONS or (action == "login" and bool(self.subject))
        if action == "login":
            return True
        for scope in self.access:
            if scope.type == resource and scope.name == name and (action in scope.actions or "*" in scope.actions):
                return True
        return False

    def narrow(self, requested: list[Scope]) -> list[Scope]:
        """The part of ``requested`` this grant covers."""
        out = []
        for scope in requested:
            if self.full:
                actions = scope.actions
                if "push" in actions and "pull" not in actions:
                    # Whoever may push may pull: clients that keep one token per repository (oras-py) read
                    # back what they pushed with the token the push challenge got them.
                    actions = ("pull", *actions)
            elif scope.type == "repository":
                actions = tuple(a for a in scope.actions if a in READ_ACTIONS)
            else:
                actions = ()
            if actions:
                out.append(Scope(scope.type, scope.name, actions))
        return out


def _load_secret(directory: Path) -> bytes:
    """The token signing key of this data directory (created once, shared by every worker process)."""
    make_private_dir(directory)
    path = directory / "token-secret"
    for _ in range(200):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            data = path.read_bytes().strip()
            if len(data) >= 32:
                return data
            time.sleep(0.01)
            continue
        key = secrets.token_hex(32).encode()
        os.write(fd, key)
        os.fsync(fd)
        os.close(fd)
        return key
    raise RuntimeError(f"cannot read the token key {path}")


def registry_host(request: Request) -> str:
    """The name clients reach this registry by (``Host``): the token service and the ACR ``registry`` field."""
    return request.headers.get("host") or request.url.netloc


def read_htpasswd(path: Path) -> dict[str, bytes]:
    """``user -> bcrypt hash`` from an htpasswd file (lines ``user:$2y$...``; other hash kinds are skipped)."""
    users: dict[str, bytes] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        user, hashed = line.split(":", 1)
        if hashed.startswith(("$2y$", "$2b$", "$2a$")):
            users[user] = hashed.encode()
    return users


class Authenticator:
    """Decides for each request whether it may proceed, and issues tokens."""

    def __init__(
        self,
        data_dir: Path,
        htpasswd: Path | None = None,
        anonymous_pull: bool = False,
        accept_any_aad_token: bool = False,
    ) -> None:
        self.enabled = htpasswd is not None
        self.users = read_htpasswd(htpasswd) if htpasswd is not None else {}
        self.anonymous_pull = anonymous_pull
        self.accept_any_aad_token = accept_any_aad_token
        self.secret = _load_secret(Path(data_dir) / "auth")
        self._verified: dict[tuple[str, bytes], bool] = {}

    # -- identities ---------------------------------------------------------------------------------------------

    def check_password(self, user: str, password: str) -> bool:
        """True when ``user``/``password`` match the htpasswd file (bcrypt results cached per process)."""
        hashed = self.users.get(user)
        if hashed is None:
            return False
        key = (user, hashlib.sha256(password.encode()).digest())
        if key not in self._verified:
            try:
                self._verified[key] = bcrypt.checkpw(password.encode(), hashed)
            except ValueError:
                self._verified[key] = False
        return self._verified[key]

    def anonymous(self) -> Grant | None:
        """What a caller without credentials gets: read-only with ``--anonymous-pull``, nothing without auth."""
        if not self.enabled:
            return Grant("anonymous", True)
        if self.anonymous_pull:
            return Grant("", False)
        return None

    def basic(self, header: str) -> Grant | None:
        """The grant for a ``Basic`` header, ``None`` when the credentials are wrong."""
        try:
            user, _, password = base64.b64decode(header.split(" ", 1)[1].strip()).decode().partition(":")
        except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
            return None
        return self.login(user, password)

    def login(self, user: str, password: str) -> Grant | None:
        """The grant for a username and password, ``None`` when they are wrong (any pair when auth is off)."""
        if not self.enabled:
            return Grant(user or "anonymous", True)
        return Grant(user, True) if self.check_password(user, password) else None

    def identify(self, request: Request) -> Grant | None:
        """The caller's grant from the ``Authorization`` header; ``None`` when missing or invalid."""
        header = request.headers.get("authorization")
        if not header:
            return self.anonymous()
        kind = header.split(" ", 1)[0].lower()
        if kind == "basic":
            return self.basic(header)
        if kind == "bearer":
            claims = self.decode(header.split(" ", 1)[1].strip() if " " in header else "", "access")
            if claims is None:
                return None
            access = tuple(parse_scopes([str(s) for s in claims.get("scopes", [])]))
            return Grant(str(claims.get("sub", "")), False, access)
        return None

    # -- authorization ------------------------------------------------------------------------------------------

    def challenge(self, request: Request, scope: str | None) -> str:
        host = registry_host(request)
        text = f'Bearer realm="{request.url.scheme}://{host}/oauth2/token",service="{host}"'
        if scope:
            text += f',scope="{scope}"'
        return text

    def authorize(self, request: Request, resource: str, name: str, action: str) -> None:
        """Raise 401 with a challenge unless the request may do ``action`` on ``resource:name``."""
        if not self.enabled:
            return
        grant = self.identify(request)
        if grant is not None and grant.allows(resource, name, action):
            return
        scope = None
        if resource == "repository":
            scope = f"repository:{name}:{action}"
        elif resource == "registry" and name:
            scope = f"registry:{name}:{action}"
        if grant is None:
            message = "authentication required" if not request.headers.get("authorization") else "invalid credentials"
        else:
            message = f"insufficient scope: {scope or action} is not granted"
        error = e.unauthorized(message, self.challenge(request, scope))
        if resource == "repository":
            error.detail = [{"Type": resource, "Name": name, "Action": action}]
        raise error

    # -- tokens -------------------------------------------------------------------------------------------------

    def encode(self, claims: dict[str, Any], lifetime: int) -> str:
        issued = int(time.time())
        payload = {"iss": ISSUER, "iat": issued, "nbf": issued - 5, "exp": issued + lifetime, "jti": uuid.uuid4().hex}
        payload.update(claims)
        return jwt.encode(payload, self.secret, algorithm="HS256")

    def decode(self, token: str, kind: str) -> dict[str, Any] | None:
        """The claims of a valid token of ``kind`` (``access`` or ``refresh``), else ``None``."""
        try:
            claims = jwt.decode(
                token, self.secret, algorithms=["HS256"], issuer=ISSUER, leeway=5, options={"verify_aud": False}
            )
        except jwt.PyJWTError:
            return None
        return claims if claims.get("typ") == kind else None

    def access_token(self, grant: Grant, requested: list[Scope], service: str) -> dict[str, Any]:
        """A token response (``token``, ``access_token``, ``expires_in``, ``issued_at``) for ``requested`` scopes."""
        scopes = [str(s) for s in grant.narrow(requested)]
        token = self.encode({"typ": "access", "sub": grant.subject, "aud": service, "scopes": scopes},
                            ACCESS_TOKEN_LIFETIME)
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {"token": token, "access_token": token, "expires_in": ACCESS_TOKEN_LIFETIME, "issued_at": issued}

    def refresh_token(self, grant: Grant) -> str:
        """A refresh token carrying the grant (full or read-only)."""
        return self.encode({"typ": "refresh", "sub": grant.subject, "full": grant.full}, REFRESH_TOKEN_LIFETIME)

    def from_refresh_token(self, token: str) -> Grant | None:
        claims = self.decode(token, "refresh")
        if claims is None:
            return None
        return Grant(str(claims.get("sub", "")), bool(claims.get("full")))
