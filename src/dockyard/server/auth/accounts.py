"""Repository-scoped tokens and scope maps in the metadata store: the rules of managing them
(:class:`TokenAdmin`, used by ``dockyard token`` and ``dockyard scope-map``) and the server's view of them
(:class:`TokenDirectory`, reloaded whenever the store's ``auth_version`` changes).

A token's password is 32 random bytes (URL-safe base64, 43 characters); only its SHA-256 is stored. A long
random secret needs no slow hash: nobody can guess it, and checking it costs microseconds, not a bcrypt round.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field

from ..storage.protocols import MetadataStore
from ..storage.records import Rules, ScopeMapRecord, TokenRecord
from .rights import BUILTIN_SCOPE_MAPS, Rights

#: A token or scope map name: letters, digits, ``-`` and ``_`` (no ``:``, which Basic auth cannot carry).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,49}")
_MAP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,49}")


class AccountError(ValueError):
    """A token or scope map operation that cannot be done; the message says why."""


def hash_secret(password: str) -> str:
    """The stored form of a token password."""
    return hashlib.sha256(password.encode()).hexdigest()


def check_token_name(name: str) -> str:
    """``name`` when it can name a token; :class:`AccountError` otherwise."""
    if not _NAME.fullmatch(name):
        raise AccountError(f"invalid token name {name!r}: 1 to 50 letters, digits, '-' or '_', starting with a "
                           "letter or digit")
    return name


def _check_map_name(name: str) -> str:
    if not _MAP_NAME.fullmatch(name):
        raise AccountError(f"invalid scope map name {name!r}: 1 to 50 letters, digits, '-' or '_', starting with "
                           "a letter or digit (names starting with '_' are the built-in maps)")
    return name


def scope_map_rules(name: str, stored: dict[str, ScopeMapRecord]) -> Rules | None:
    """The rules of scope map ``name`` (built-in or stored), ``None`` when there is no such map."""
    if name in BUILTIN_SCOPE_MAPS:
        return BUILTIN_SCOPE_MAPS[name][1]
    record = stored.get(name)
    return record.rules if record is not None else None


def builtin_scope_maps() -> list[ScopeMapRecord]:
    """The built-in scope maps as records."""
    return [ScopeMapRecord(name, description, rules, 0.0) for name, (description, rules) in BUILTIN_SCOPE_MAPS.items()]


class TokenAdmin:
    """Creates, changes and deletes tokens and scope maps in one metadata store (each change one transaction)."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.meta = metadata

    # -- scope maps ---------------------------------------------------------------------------------------------

    def scope_maps(self) -> list[ScopeMapRecord]:
        """The built-in maps, then the stored ones."""
        with self.meta.read():
            return [*builtin_scope_maps(), *self.meta.scope_maps()]

    def scope_map(self, name: str) -> ScopeMapRecord:
        """One scope map (built-in or stored)."""
        found = next((m for m in self.scope_maps() if m.name == name), None)
        if found is None:
            raise AccountError(f"no scope map {name!r}")
        return found

    def put_scope_map(self, name: str, description: str | None, rules: Rules, *, create: bool) -> ScopeMapRecord:
        """Create (``create``) or replace the rules (and description, unless ``None``) of a scope map."""
        if name in BUILTIN_SCOPE_MAPS:
            raise AccountError(f"scope map {name!r} is built in and cannot be changed")
        _check_map_name(name)
        if not rules:
            raise AccountError("a scope map needs at least one --scope PATTERN:ACTION[,ACTION]")
        with self.meta.write():
            old = self.meta.scope_map(name)
            if create and old is not None:
                raise AccountError(f"scope map {name!r} already exists (use scope-map update)")
            if not create and old is None:
                raise AccountError(f"no scope map {name!r}")
            text = description if description is not None else (old.description if old is not None else "")
            self.meta.put_scope_map(name, text, rules)
            record = self.meta.scope_map(name)
        assert record is not None
        return record

    def delete_scope_map(self, name: str) -> None:
        """Delete a scope map no token uses."""
        if name in BUILTIN_SCOPE_MAPS:
            raise AccountError(f"scope map {name!r} is built in and cannot be deleted")
        with self.meta.write():
            users = [t.name for t in self.meta.tokens() if t.scope_map == name]
            if users:
                raise AccountError(f"scope map {name!r} is used by token(s) {', '.join(users)}: delete or update "
                                   "them first")
            if not self.meta.delete_scope_map(name):
                raise AccountError(f"no scope map {name!r}")

    # -- tokens -------------------------------------------------------------------------------------------------

    def _check_map(self, scope_map: str | None) -> None:
        if scope_map is not None and scope_map_rules(scope_map, {m.name: m for m in self.meta.scope_maps()}) is None:
            raise AccountError(f"no scope map {scope_map!r}")

    def tokens(self) -> list[TokenRecord]:
        with self.meta.read():
            return self.meta.tokens()

    def token(self, name: str) -> TokenRecord:
        with self.meta.read():
            record = self.meta.token(name)
        if record is None:
            raise AccountError(f"no token {name!r}")
        return record

    def create_token(self, name: str, rules: Rules, scope_map: str | None,
                     expires_in_days: float | None) -> tuple[TokenRecord, str]:
        """A new token and its password (shown once; only its hash is stored)."""
        check_token_name(name)
        if bool(rules) == bool(scope_map):
            raise AccountError("give either --scope PATTERN:ACTION[,ACTION] (one or more) or --scope-map MAP")
        password = secrets.token_urlsafe(32)
        expires = time.time() + expires_in_days * 86400 if expires_in_days is not None else None
        with self.meta.write():
            if self.meta.token(name) is not None:
                raise AccountError(f"token {name!r} already exists")
            self._check_map(scope_map)
            record = self.meta.add_token(name, hash_secret(password), scope_map, rules, expires)
        return record, password

    def update_token(self, name: str, *, rules: Rules | None = None, scope_map: str | None = None,
                     enabled: bool | None = None, expires_in_days: float | None = None,
                     never_expires: bool = False) -> TokenRecord:
        """Change a token (what was minted from it stops working: its generation moves on)."""
        if rules and scope_map:
            raise AccountError("give either --scope or --scope-map, not both")
        with self.meta.write():
            old = self.meta.token(name)
            if old is None:
                raise AccountError(f"no token {name!r}")
            self._check_map(scope_map)
            new_rules, new_map = old.rules, old.scope_map
            if rules:
                new_rules, new_map = rules, None
            elif scope_map:
                new_rules, new_map = (), scope_map
            expires = old.expires
            if never_expires:
                expires = None
            elif expires_in_days is not None:
                expires = time.time() + expires_in_days * 86400
            self.meta.update_token(name, scope_map=new_map, rules=new_rules,
                                   enabled=old.enabled if enabled is None else enabled, expires=expires)
            record = self.meta.token(name)
        assert record is not None
        return record

    def delete_token(self, name: str) -> None:
        with self.meta.write():
            if not self.meta.delete_token(name):
                raise AccountError(f"no token {name!r}")


@dataclass
class TokenDirectory:
    """The tokens and scope maps as last read from the store (the server's view; see :meth:`of`)."""

    version: int = -1
    tokens: dict[str, TokenRecord] = field(default_factory=dict)
    maps: dict[str, ScopeMapRecord] = field(default_factory=dict)

    @classmethod
    def of(cls, version: int, tokens: list[TokenRecord], maps: list[ScopeMapRecord]) -> TokenDirectory:
        """The directory of one snapshot of the store (see ``Registry.auth_records``)."""
        return cls(version, {t.name: t for t in tokens}, {m.name: m for m in maps})

    def rights(self, token: TokenRecord) -> Rights:
        """What ``token`` may do now (its scope map's current rules, or its own)."""
        if token.scope_map is not None:
            return Rights(scope_map_rules(token.scope_map, self.maps) or ())
        return Rights(token.rules)

    def usable(self, token: TokenRecord | None) -> bool:
        """True when ``token`` exists, is enabled and has not expired."""
        return token is not None and token.enabled and (token.expires is None or token.expires > time.time())

    def check(self, name: str, password: str) -> TokenRecord | None:
        """The token ``name`` when ``password`` is its password and it is usable now."""
        token = self.tokens.get(name)
        if token is None or not hmac.compare_digest(token.secret_hash, hash_secret(password)):
            return None
        return token if self.usable(token) else None

    def binding(self, token: TokenRecord) -> str:
        """What tokens minted for ``token`` carry as their credential: its id and generation."""
        return f"{token.id}.{token.generation}"

    def bound(self, name: str, credential: str) -> TokenRecord | None:
        """The usable token ``name`` whose current id and generation are ``credential``."""
        token = self.tokens.get(name)
        return token if self.usable(token) and token is not None and self.binding(token) == credential else None
