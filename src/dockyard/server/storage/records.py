"""The typed records every metadata, blob and upload store returns (whatever the backend behind it)."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property, lru_cache
from typing import Any, Literal

from ...oci.locks import COLUMN_BY_WIRE

#: Listing orders: by key (``none``), or by update time then key.
Order = Literal["none", "timeasc", "timedesc"]

#: ACR's wire names of the changeable attributes and the :class:`Attributes` fields that hold them.
ATTRIBUTE_FIELDS = COLUMN_BY_WIRE


def now() -> str:
    """The current UTC time as records carry it: RFC 3339 with microseconds (fixed width, so text order is time
    order)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Attributes:
    """The lock flags of a repository, tag or manifest (ACR's changeable attributes)."""

    delete_enabled: bool = True
    write_enabled: bool = True
    read_enabled: bool = True
    list_enabled: bool = True

    @classmethod
    def from_row(cls, row: Any) -> Attributes:
        """The flags of a stored row (anything indexed by column name: ``delete_enabled`` …), one shared instance
        per combination of values: a listing of thousands of rows builds no flags or wire form per row."""
        return _shared_attributes(_flag_columns(row))

    @classmethod
    def from_flags(cls, flags: tuple[Any, ...]) -> Attributes:
        """The flags from stored values in field order (``delete_enabled`` … ``list_enabled``), shared likewise."""
        return _shared_attributes(flags)

    def wire(self) -> dict[str, bool]:
        """The flags under their ACR wire names (``deleteEnabled`` …); a fresh dict the caller may change."""
        return dict(self.shared_wire)

    @cached_property
    def shared_wire(self) -> dict[str, bool]:
        """:meth:`wire`'s dict itself, shared by every use of these flags: for encoding a listing, never to change."""
        return {wire: bool(getattr(self, name)) for wire, name in ATTRIBUTE_FIELDS.items()}


#: A row's lock-flag columns as a tuple, in :class:`Attributes` field order.
_flag_columns = operator.itemgetter(*ATTRIBUTE_FIELDS.values())


@lru_cache(maxsize=64)
def _shared_attributes(flags: tuple[Any, ...]) -> Attributes:
    """The one :class:`Attributes` for each combination of stored flag values (16 for true booleans)."""
    return Attributes(*map(bool, flags))


#: Changes to lock flags, by :class:`Attributes` field name (``{"write_enabled": False}``).
AttributeChanges = dict[str, bool]


@dataclass(frozen=True)
class RepositoryRecord:
    """A stored repository."""

    id: int
    name: str
    created: str
    updated: str
    attributes: Attributes = field(default_factory=Attributes)


@dataclass(frozen=True, slots=True)  # slots: listings build thousands (no per-record __dict__ to allocate)
class TagRecord:
    """A stored tag: a name pointing at a manifest digest."""

    name: str
    digest: str
    created: str
    updated: str
    attributes: Attributes = field(default_factory=Attributes)


@dataclass(frozen=True)
class ManifestFacts:
    """What a manifest's bytes say about it (derived once, when it is pushed)."""

    digest: str
    media_type: str
    image_size: int
    config_media_type: str | None
    artifact_type: str | None
    subject: str | None
    #: The manifest's annotations as JSON text (``None`` when it has none).
    annotations: str | None
    architecture: str | None
    os: str | None


@dataclass(frozen=True)
class NewManifest(ManifestFacts):
    """What a manifest push stores: the facts and the exact bytes (the store adds times and default flags)."""

    content: bytes


@dataclass(frozen=True)
class ManifestInfo(ManifestFacts):
    """A stored manifest; ``content`` (its exact bytes) only when asked for."""

    size: int
    created: str
    updated: str
    attributes: Attributes = field(default_factory=Attributes)
    content: bytes | None = None


@dataclass(frozen=True)
class BlobLink:
    """A blob linked into a repository, and when (epoch seconds) it was last linked."""

    repo_id: int
    digest: str
    created: float


@dataclass(frozen=True)
class ManifestMark:
    """A manifest's place in the order manifests were stored (garbage collection reads "every manifest stored
    after this one"): its row id and its creation time, which tell a row apart from a later one that reused the id."""

    id: int
    created: str


#: Before every manifest: where a reading of all manifests starts.
NO_MANIFEST = ManifestMark(0, "")


@dataclass(frozen=True)
class StoredManifest:
    """A manifest's place in storage order, media type and bytes (what garbage collection marks from)."""

    mark: ManifestMark
    media_type: str
    content: bytes


@dataclass(frozen=True)
class GcRunRecord:
    """One finished garbage collection run, as every replica sees it in the shared metadata.

    ``kind``: ``command`` (``dockyard gc``) or ``scheduled`` (``dockyard serve --gc-interval``); ``holder``: who ran
    it (host and process); times are epoch seconds; ``blobs``/``bytes``/``uploads``: what it removed."""

    kind: str
    holder: str
    started: float
    finished: float
    blobs: int
    bytes: int
    uploads: int


@dataclass(frozen=True)
class UploadState:
    """An upload session: its repository, start time, current offset (bytes received) and last activity."""

    id: str
    repository: str
    created: float
    offset: int
    #: When the session last received bytes (epoch seconds); idle sessions expire by it.
    touched: float = 0.0


#: Repository permission rules: ``(pattern, ACR actions)`` pairs; a pattern is a name, ``prefix/*`` or ``*``.
Rules = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class ScopeMapRecord:
    """A named set of repository permission rules (ACR's scope map)."""

    name: str
    description: str
    rules: Rules
    created: float


@dataclass(frozen=True)
class TokenRecord:
    """A repository-scoped token: its own ``rules`` or a ``scope_map``'s, the SHA-256 of its password, and a
    ``generation`` bumped on every change (tokens minted from it bind to ``id`` and ``generation``)."""

    id: int
    name: str
    secret_hash: str
    scope_map: str | None
    rules: Rules
    enabled: bool
    #: Epoch seconds after which the token no longer works; ``None``: never.
    expires: float | None
    created: float
    generation: int
