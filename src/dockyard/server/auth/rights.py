"""What a repository-scoped token may do: ACR's permission rules (``PATTERN:ACTION[,ACTION]``), the built-in
scope maps, and :class:`Rights`, the rules of one token resolved into token actions per repository.

A pattern is a repository name (``team/app``) or a prefix ending in ``/*`` (``team/*``: every repository under
``team/``). The built-in maps use ``*`` (every repository), which is not accepted from users.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...oci.names import is_valid_repository
from ...oci.scopes import ACTION_PERMISSIONS, PERMISSION_ACTIONS
from ..storage.records import Rules

#: Every repository (built-in maps only).
EVERY_REPOSITORY = "*"

_ALL = tuple(PERMISSION_ACTIONS)

#: ACR's built-in scope maps: name → (description, rules). As on ACR, ``_repositories_pull`` is content/read
#: only (tag listings need metadata/read: make a map for that), ``_repositories_push`` adds content/write.
BUILTIN_SCOPE_MAPS: dict[str, tuple[str, Rules]] = {
    "_repositories_pull": ("Can pull any repository of the registry", ((EVERY_REPOSITORY, ("content/read",)),)),
    "_repositories_push": ("Can push to any repository of the registry",
                           ((EVERY_REPOSITORY, ("content/read", "content/write")),)),
    "_repositories_admin": ("Can perform all read, write and delete operations on the registry",
                            ((EVERY_REPOSITORY, _ALL),)),
}


def check_pattern(pattern: str) -> str:
    """``pattern`` when it is a repository name or ``prefix/*``; :class:`ValueError` otherwise."""
    name = pattern[:-2] if pattern.endswith("/*") else pattern
    if not is_valid_repository(name):
        raise ValueError(f"invalid repository pattern {pattern!r}: use a repository name or a prefix ending in /*")
    return pattern


def parse_rule(text: str) -> tuple[str, tuple[str, ...]]:
    """``PATTERN:ACTION[,ACTION]`` (``team/*:content/read,metadata/read``) as a rule; :class:`ValueError` naming
    what is wrong otherwise."""
    pattern, sep, actions_text = text.rpartition(":")
    if not sep or not pattern:
        raise ValueError(f"invalid scope {text!r}: use PATTERN:ACTION[,ACTION], e.g. team/*:content/read")
    actions = tuple(dict.fromkeys(a.strip() for a in actions_text.split(",") if a.strip()))
    unknown = [a for a in actions if a not in PERMISSION_ACTIONS]
    if unknown or not actions:
        raise ValueError(f"invalid action {', '.join(unknown) or '(none)'} in scope {text!r}: "
                         f"use {', '.join(PERMISSION_ACTIONS)}")
    return check_pattern(pattern), actions


def merge_rules(rules: list[tuple[str, tuple[str, ...]]]) -> Rules:
    """``rules`` with one entry per pattern (the union of its actions), in first-seen order."""
    merged: dict[str, dict[str, None]] = {}
    for pattern, actions in rules:
        merged.setdefault(pattern, {}).update(dict.fromkeys(actions))
    return tuple((pattern, tuple(actions)) for pattern, actions in merged.items())


def pattern_matches(pattern: str, repository: str) -> bool:
    """True when ``pattern`` covers ``repository``."""
    if pattern == EVERY_REPOSITORY:
        return True
    if pattern.endswith("/*"):
        return repository.startswith(pattern[:-1])
    return pattern == repository


@dataclass(frozen=True)
class Rights:
    """The rules of one token: which token actions (``pull``, ``push`` …) it has on which repositories."""

    rules: Rules

    def actions(self, repository: str) -> frozenset[str]:
        """The token actions allowed on ``repository``."""
        return frozenset(PERMISSION_ACTIONS[permission] for pattern, permissions in self.rules
                         if pattern_matches(pattern, repository) for permission in permissions
                         if permission in PERMISSION_ACTIONS)

    def allows(self, repository: str, action: str) -> bool:
        """True when the token action ``action`` is allowed on ``repository``."""
        return action in self.actions(repository)

    def can_read(self, repository: str) -> bool:
        """True when ``repository`` may be listed in a catalog: its content or its metadata may be read."""
        return bool(self.actions(repository) & {PERMISSION_ACTIONS["content/read"],
                                                 PERMISSION_ACTIONS["metadata/read"]})


def permission_of(action: str) -> str:
    """The ACR permission (``content/write``) of a token action (``push``); the action itself when it has none."""
    return ACTION_PERMISSIONS.get(action, action)
