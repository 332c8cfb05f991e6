"""Image references: ``[registry/]repository[:tag][@digest]``."""

from __future__ import annotations

from dataclasses import dataclass

from .digest import parse_digest
from .names import validate_repository, validate_tag


class InvalidReferenceError(ValueError):
    """A string that is not an image reference."""


def _is_registry_component(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


@dataclass(frozen=True)
class Reference:
    """A parsed image reference. ``registry`` is a host (with port, and a scheme when one was written)."""

    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def identifier(self) -> str:
        """What goes in ``/v2/<name>/manifests/<identifier>``: the digest when given, else the tag, else ``latest``."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}" if self.registry else self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @classmethod
    def parse(cls, value: str, *, default_registry: str | None = None) -> Reference:
        """Parse ``value``; the first path component is a registry when it has a dot, a colon or is ``localhost``."""
        if not value or value.strip() != value:
            raise InvalidReferenceError(f"invalid reference {value!r}")
        scheme = ""
        for prefix in ("http://", "https://"):
            if value.startswith(prefix):
                scheme, value = prefix, value[len(prefix):]
        registry = default_registry
        first, sep, rest = value.partition("/")
        if sep and (_is_registry_component(first) or scheme):
            registry, value = scheme + first, rest
        elif scheme:
            raise InvalidReferenceError(f"invalid reference {scheme + value!r}: no repository after the registry")
        digest = None
        if "@" in value:
            value, digest = value.split("@", 1)
            try:
                parse_digest(digest)
            except ValueError as exc:
                raise InvalidReferenceError(str(exc)) from None
        tag = None
        slash = value.rfind("/")
        colon = value.rfind(":")
        if colon > slash:
            value, tag = value[:colon], value[colon + 1:]
        try:
            validate_repository(value)
            if tag is not None:
                validate_tag(tag)
        except ValueError as exc:
            raise InvalidReferenceError(str(exc)) from None
        return cls(registry=registry, repository=value, tag=tag, digest=digest)
