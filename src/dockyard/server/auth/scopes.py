"""Token scopes (``type:name:actions``), what an operation needs (:class:`Access`), who may do what
(:class:`Grant`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...oci.scopes import ACTION_PERMISSIONS, READ_ACTIONS, Scope, parse_scopes
from .rights import Rights

__all__ = ["READ_ACTIONS", "Access", "Grant", "Scope", "parse_scopes"]

@dataclass(frozen=True)
class Access:
    """One thing an operation needs: ``action`` on ``resource:name`` (``repository:app:pull``)."""

    resource: str
    name: str
    action: str

    def scope(self) -> str | None:
        """The token scope that grants this access (``None`` for the bare login check of ``GET /v2/``)."""
        if self.resource == "repository" or (self.resource == "registry" and self.name):
            return str(Scope(self.resource, self.name, (self.action,)))
        return None


@dataclass(frozen=True)
class Grant:
    """Who the caller is and what they may do: every action (``full``), only read actions, or the scopes of an
    access token (``access``). ``source`` is the kind of credential it came from (see :mod:`.tokens`)."""

    subject: str
    full: bool
    access: tuple[Scope, ...] | None = field(default=None)
    source: str = ""
    #: Fingerprint of the credential (htpasswd line) the grant was issued for; ``""`` when there is none.
    credential: str = ""
    #: When the credential itself was last checked (Unix seconds): bounds the life of tokens issued from it.
    auth_time: int = 0
    #: A repository-scoped token's current rights (``None``: not a token; then ``full`` decides).
    rights: Rights | None = None

    def entitled(self, resource: str, name: str, action: str) -> bool:
        """False when the identity behind this grant may never do ``action`` on ``resource:name``, whatever
        access token it gets: a repository-scoped token outside its rights (the catalog is always listed, filtered
        by :meth:`can_list`). Other identities may log in again with other credentials: always True."""
        if self.rights is None or action == "login":
            return True
        if resource == "registry":
            return name == "catalog"
        return resource == "repository" and self.rights.allows(name, action)

    def can_list(self, repository: str) -> bool:
        """True when a catalog shown to this grant may name ``repository``."""
        return self.rights is None or self.rights.can_read(repository)

    def allows(self, resource: str, name: str, action: str) -> bool:
        """True when this grant covers ``action`` on ``resource:name``."""
        if self.rights is not None and not self.entitled(resource, name, action):
            return False
        if self.access is None and self.rights is not None:
            return True
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
            if self.rights is not None:
                wanted = ACTION_PERMISSIONS if "*" in scope.actions else scope.actions
                actions = tuple(a for a in wanted if self.entitled(scope.type, scope.name, a))
                if scope.type == "registry" and actions:
                    actions = scope.actions
            elif self.full:
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
