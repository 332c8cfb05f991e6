"""Repository name and tag grammar of the OCI distribution-spec."""

from __future__ import annotations

import re

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")

#: distribution's limit on a repository name (host excluded).
MAX_NAME_LENGTH = 255


class InvalidNameError(ValueError):
    """A repository name that breaks the distribution-spec grammar."""


class InvalidTagError(ValueError):
    """A tag that breaks the distribution-spec grammar."""


def is_valid_repository(name: str) -> bool:
    """True when ``name`` is a valid repository name (``library/hello``)."""
    return isinstance(name, str) and len(name) <= MAX_NAME_LENGTH and bool(_NAME.fullmatch(name))


def is_valid_tag(tag: str) -> bool:
    """True when ``tag`` is a valid tag (at most 128 characters of ``[A-Za-z0-9_.-]``, not starting with . or -)."""
    return isinstance(tag, str) and bool(_TAG.fullmatch(tag))


def validate_repository(name: str) -> str:
    """Return ``name`` or raise :class:`InvalidNameError` saying why it is not a repository name."""
    if not is_valid_repository(name):
        raise InvalidNameError(
            f"invalid repository name {name!r}: lowercase components of [a-z0-9] joined by '.', '_', '__' "
            f"or '-', separated by '/', at most {MAX_NAME_LENGTH} characters"
        )
    return name


def validate_tag(tag: str) -> str:
    """Return ``tag`` or raise :class:`InvalidTagError` saying why it is not a tag."""
    if not is_valid_tag(tag):
        raise InvalidTagError(f"invalid tag {tag!r}: 1-128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'")
    return tag
