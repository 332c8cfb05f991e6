"""What a client learned from ``401`` challenges, per origin: Basic or a token service, and the scope each kind
of request needs (kept as a template, so one challenge serves every repository)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..oci.scopes import (
    ANY_ACTION,
    DELETE,
    METADATA_READ,
    METADATA_WRITE,
    PULL,
    PUSH,
    REGISTRY,
    REPOSITORY_PLACEHOLDER,
    Scope,
    fill_scope,
    repository_scope,
    scope_template,
)
from .challenge import Challenge, classify
from .instructions import Request

#: The scopes ACR-style token services use, by request kind: used up front once the token service is known,
#: so a new kind of request costs no ``401`` round trip. A wrong guess only costs one token request.
GUESSED_SCOPES = {
    "catalog": str(Scope(REGISTRY, "catalog", (ANY_ACTION,))),
    "v2:read": repository_scope(PULL),
    "v2:write": repository_scope(PULL, PUSH),
    "v2:delete": repository_scope(DELETE),
    "acr:read": repository_scope(METADATA_READ),
    "acr:write": repository_scope(METADATA_WRITE),
    "acr:delete": repository_scope(DELETE),
}


@dataclass(frozen=True)
class TokenScope:
    """Where to get a token for one request, and for what; ``guessed`` when no challenge told the scope."""

    realm: str
    service: str
    scope: str
    guessed: bool


@dataclass
class Challenges:
    """The challenge state machine of one client: no challenge yet, Basic, or a known token service."""

    basic_origins: set[str] = field(default_factory=set)
    templates: dict[tuple[str, str], tuple[str, str, str]] = field(default_factory=dict)
    services: dict[str, tuple[str, str]] = field(default_factory=dict)

    def scope_for(self, origin: str, request: Request) -> TokenScope | None:
        """The token ``request`` needs as far as challenges (or a guess after one) told; ``None``: no token."""
        kind = classify(request.method, request.url)
        entry = self.templates.get((origin, kind.action))
        guessed = False
        if entry is None:
            known = self.services.get(origin)
            guess = GUESSED_SCOPES.get(kind.action)
            if known is None or guess is None or (kind.repository is None and REPOSITORY_PLACEHOLDER in guess):
                return None
            entry = (known[0], known[1], guess)
            guessed = True
        realm, service, template = entry
        scope = fill_scope(template, kind.repository)
        if request.extra_scope and request.extra_scope not in scope.split():
            scope = f"{scope} {request.extra_scope}".strip()
        return TokenScope(realm, service, scope, guessed)

    def learn_bearer(self, origin: str, request: Request, challenge: Challenge, default_realm: str) -> TokenScope:
        """Learn the token service and scope template of a Bearer challenge to ``request``."""
        kind = classify(request.method, request.url)
        realm = challenge.realm or default_realm
        service = challenge.service or urlsplit(realm).netloc
        scope = challenge.scope or ""
        own = " ".join(part for part in scope.split() if part != request.extra_scope)
        self.templates[(origin, kind.action)] = (realm, service, scope_template(own, kind.repository))
        self.services[origin] = (realm, service)
        return TokenScope(realm, service, scope, guessed=False)
