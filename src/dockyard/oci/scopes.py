"""Token scopes (``type:name:actions``, as in the distribution token spec) and the actions ACR-style registries
use: the grammar the client asks token services for and the server grants, defined once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Resource types.
REPOSITORY, REGISTRY = "repository", "registry"
#: Actions on a repository: distribution's, and ACR's metadata actions.
PULL, PUSH, DELETE = "pull", "push", "delete"
METADATA_READ, METADATA_WRITE = "metadata_read", "metadata_write"
#: Every action (``registry:catalog:*``).
ANY_ACTION = "*"
#: Actions that only read: what anonymous pull allows.
READ_ACTIONS = frozenset({PULL, METADATA_READ})
#: ACR's repository permissions (scope maps and tokens), each with the token action that carries it:
#: ``content/read`` is ``pull``, ``metadata/write`` is ``metadata_write`` and so on.
PERMISSION_ACTIONS = {
    "content/read": PULL,
    "content/write": PUSH,
    "content/delete": DELETE,
    "metadata/read": METADATA_READ,
    "metadata/write": METADATA_WRITE,
}
#: The ACR permission a token action stands for (the inverse of :data:`PERMISSION_ACTIONS`).
ACTION_PERMISSIONS = {action: permission for permission, action in PERMISSION_ACTIONS.items()}
#: The placeholder :func:`scope_template` puts where the repository name was.
REPOSITORY_PLACEHOLDER = "{repository}"


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
        """The scope ``text`` names, ``None`` when it is not ``type:name:actions``."""
        parts = text.split(":")
        if len(parts) < 3 or not parts[0]:
            return None
        return cls(parts[0], ":".join(parts[1:-1]), tuple(a for a in parts[-1].split(",") if a))


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Scopes from (possibly repeated, possibly space-separated) ``scope`` parameters."""
    out: list[Scope] = []
    for value in values:
        for text in value.split():
            scope = Scope.parse(text)
            if scope is not None:
                out.append(scope)
    return out


def repository_scope(*actions: str, repository: str = REPOSITORY_PLACEHOLDER) -> str:
    """``repository:<name>:<actions>`` (by default with the placeholder of a template)."""
    return str(Scope(REPOSITORY, repository, actions))


def scope_template(scope: str, repository: str | None) -> str:
    """``scope`` with the repository replaced by ``{repository}``, so it can be reused for other repositories."""
    if not repository:
        return scope
    return scope.replace(f":{repository}:", f":{REPOSITORY_PLACEHOLDER}:")


def fill_scope(template: str, repository: str | None) -> str:
    """The scope for ``repository`` from a template made by :func:`scope_template`."""
    return template.replace(REPOSITORY_PLACEHOLDER, repository or "")
