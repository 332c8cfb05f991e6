"""ACR ``/acr/v1`` JSON bodies into dockyard models, tolerant of missing optional fields."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from ..models import ArtifactManifestProperties, ArtifactTagProperties, RepositoryProperties
from ..oci.locks import WIRE_BY_ATTRIBUTE

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (any number of fractional digits, ``Z`` or an offset) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)  # Python 3.11+ reads RFC 3339 as is: the fast path for big listings
    except ValueError:
        text = value.strip().replace("z", "Z")
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _locks(data: Any) -> dict[str, Any]:
    attrs = data.get("changeableAttributes") if isinstance(data, dict) else None
    if not isinstance(attrs, dict):
        return {}
    return {name: attrs.get(wire) for name, wire in WIRE_BY_ATTRIBUTE.items()}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def repository_from_wire(data: dict[str, Any]) -> RepositoryProperties:
    """A ``RepositoryAttributes`` body as :class:`RepositoryProperties`."""
    return RepositoryProperties(
        name=data.get("imageName"),
        created_on=parse_time(data.get("createdTime")),
        last_updated_on=parse_time(data.get("lastUpdateTime")),
        manifest_count=_int(data.get("manifestCount")),
        tag_count=_int(data.get("tagCount")),
        **_locks(data),
    )


def tag_from_wire(data: dict[str, Any], repository: str) -> ArtifactTagProperties:
    """A ``TagAttributesBase`` as :class:`ArtifactTagProperties`, with its ``repository_name`` filled in (built
    without the keyword constructor's per-field work: a listing page may hold tens of thousands)."""
    values = {
        "name": data.get("name"),
        "digest": data.get("digest"),
        "created_on": parse_time(data.get("createdTime")),
        "last_updated_on": parse_time(data.get("lastUpdateTime")),
        "repository_name": repository,
    }
    return ArtifactTagProperties._from_values(values, _locks(data))


def manifest_from_wire(data: dict[str, Any], repository: str, registry: str) -> ArtifactManifestProperties:
    """A ``ManifestAttributesBase`` as :class:`ArtifactManifestProperties` (unknown platforms kept as text)."""
    references = [
        ArtifactManifestProperties(
            digest=ref.get("digest"),
            architecture=ref.get("architecture"),
            operating_system=ref.get("os"),
            repository_name=repository,
            registry=registry,
        )
        for ref in data.get("references") or []
        if isinstance(ref, dict)
    ]
    tags = data.get("tags")
    return ArtifactManifestProperties(
        digest=data.get("digest"),
        size_in_bytes=_int(data.get("imageSize")),
        created_on=parse_time(data.get("createdTime")),
        last_updated_on=parse_time(data.get("lastUpdateTime")),
        architecture=data.get("architecture") or None,
        operating_system=data.get("os") or None,
        tags=[t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
        repository_name=repository,
        registry=registry,
        media_type=data.get("mediaType"),
        config_media_type=data.get("configMediaType"),
        references=references,
        **_locks(data),
    )


def locks_body(properties: Any, overrides: dict[str, Any]) -> dict[str, bool]:
    """The PATCH body of an update: lock flags from ``properties`` then keyword overrides, ``None`` omitted."""
    values: dict[str, Any] = {}
    for name in WIRE_BY_ATTRIBUTE:
        if properties is not None:
            values[name] = getattr(properties, name, None)
        if overrides.get(name) is not None:
            values[name] = overrides[name]
    return {WIRE_BY_ATTRIBUTE[k]: bool(v) for k, v in values.items() if v is not None}
