"""What the registry's rules need from storage: a metadata store, a blob store and an upload store.

``registry.py`` depends on these protocols only; the SQLite (:mod:`.metadata`), file (:mod:`.blobs`) and
in-memory (:mod:`.memory`) stores implement them, and a PostgreSQL metadata store or an object-storage blob
store goes next to them without touching the rules. Every method is blocking: the registry calls them on its
store threads (see :mod:`..offload`), never on the event loop — except ``UploadStore.append``/``sealed``, which
receive the request body and offload their own I/O.

Records crossing the boundary are the frozen dataclasses of :mod:`.records`; no SQL (or any query language)
crosses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from ...oci.digest import Digest
from . import records as r


class MetadataStore(Protocol):
    """Repositories, manifests, tags and blob links with their lock flags.

    Mutating methods run inside :meth:`write` (one transaction: all or nothing); several reads that must see
    one state run inside :meth:`read`.
    """

    def write(self) -> AbstractContextManager[None]:
        """One write transaction; concurrent writers (threads or processes) take turns."""

    def read(self) -> AbstractContextManager[None]:
        """A consistent snapshot for several reads."""

    def check_present(self) -> None:
        """Raise when the store can no longer be trusted (e.g. its database was replaced under it)."""

    def close(self) -> None:
        """Release connections."""

    # repositories
    def repository(self, name: str) -> r.RepositoryRecord | None: ...
    def ensure_repository(self, name: str) -> int:
        """The repository's id, creating it when new."""
    def touch_repository(self, repo_id: int) -> None: ...
    def delete_repository(self, repo_id: int) -> tuple[list[str], list[str]]:
        """Remove the repository and everything in it; (manifest digests, tag names) removed."""
    def has_manifests(self, repo_id: int) -> bool: ...
    def counts(self, repo_id: int) -> tuple[int, int]:
        """(manifest count, tag count)."""
    def catalog(self, last: str | None, limit: int | None, include_hidden: bool = False) -> list[str]:
        """Names of repositories holding a manifest, sorted, after ``last``."""
    def set_repository_attributes(self, repo_id: int, changes: r.AttributeChanges) -> None: ...
    def set_tag_attributes(self, repo_id: int, name: str, changes: r.AttributeChanges) -> None: ...
    def set_manifest_attributes(self, repo_id: int, digest: str, changes: r.AttributeChanges) -> None: ...

    # manifests
    def manifest(self, repo_id: int, digest: str, with_content: bool = False) -> r.ManifestInfo | None: ...
    def resolve_manifest(
        self, name: str, tag: str | None, digest: str | None
    ) -> tuple[r.RepositoryRecord | None, r.TagRecord | None, r.ManifestInfo | None]:
        """Repository ``name``, its tag ``tag`` (``None`` for a digest reference) and the manifest (with content)
        the tag or ``digest`` names, from one snapshot; each ``None`` when missing (see :mod:`.resolve`)."""
    def manifest_contents(self, repo_id: int, digests: list[str]) -> dict[str, bytes]: ...
    def put_manifest(self, repo_id: int, rec: r.NewManifest) -> None:
        """Insert a manifest; the same digest again changes nothing."""
    def delete_manifest(self, repo_id: int, digest: str) -> list[str]:
        """Remove a manifest and its tags; the removed tag names."""
    def list_manifests(
        self, repo_id: int, last: str | None, limit: int | None, order: r.Order, include_hidden: bool = False
    ) -> list[r.ManifestInfo]: ...
    def referrers(self, repo_id: int, subject: str, artifact_type: str | None) -> list[r.ManifestInfo]: ...
    def locked_manifests(self, repo_id: int) -> list[r.ManifestInfo]:
        """Manifests (with content) a delete must keep whole: delete- or write-locked ones and those a locked
        tag points to."""
    def undeletable_manifest(self, repo_id: int) -> str | None:
        """The digest of a manifest whose lock forbids deleting it, if any."""
    def manifest_digests(self, repo_id: int, digests: Iterable[str]) -> set[str]: ...
    def all_manifest_contents(self) -> Iterator[tuple[str, bytes]]:
        """(media type, content) of every manifest (garbage collection)."""
    def manifests_after(self, mark: r.ManifestMark, limit: int) -> list[r.StoredManifest] | None:
        """Up to ``limit`` manifests stored after ``mark`` (:data:`~.records.NO_MANIFEST`: from the first), in the
        order they were stored: every manifest stored later than ``mark`` comes after it. ``None`` when the store
        can no longer place ``mark`` (its row was deleted and a newer manifest may have taken its id): start
        over (garbage collection pages its mark with this, and re-reads the manifests pushed since)."""

    # tags
    def tag(self, repo_id: int, name: str) -> r.TagRecord | None: ...
    def put_tag(self, repo_id: int, name: str, digest: str) -> None: ...
    def delete_tag(self, repo_id: int, name: str) -> None: ...
    def tags_of(self, repo_id: int, digests: list[str]) -> dict[str, list[str]]: ...
    def list_tags(self, repo_id: int, last: str | None, limit: int | None, order: r.Order = "none",
                  digest: str | None = None, include_hidden: bool = False) -> list[r.TagRecord]: ...
    def undeletable_tag(self, repo_id: int, digest: str | None = None) -> str | None:
        """The name of a tag (optionally of ``digest``) whose lock forbids deleting it, if any."""

    # blob links
    def blob_link(self, repo_id: int, digest: str) -> r.BlobLink | None: ...
    def linked_digests(self, repo_id: int, digests: Iterable[str]) -> set[str]: ...
    def link_blob(self, repo_id: int, digest: str, size: int) -> None: ...
    def unlink_blob(self, repo_id: int, digest: str) -> bool: ...
    def blob_links(self) -> Iterator[r.BlobLink]: ...
    def drop_blob_links(self, digest: str) -> None: ...
    def blob_links_of(self, digests: Iterable[str]) -> list[r.BlobLink]:
        """Every link of the given digests, in any repository (a few queries for a batch of digests)."""
    def blob_usage(self) -> tuple[int, int]:
        """(distinct blobs linked into any repository, their total size in bytes): one aggregate query."""

    # garbage collection runs
    def record_gc_run(self, run: r.GcRunRecord) -> None:
        """Note a finished garbage collection run (inside :meth:`write`)."""
    def last_gc_run(self, kind: str) -> tuple[r.GcRunRecord, int] | None:
        """The last run of ``kind`` and how many runs of that kind there were; ``None`` before the first."""

    # -- repository-scoped tokens and scope maps (every change bumps auth_version) --
    def auth_version(self) -> int:
        """A number that changes whenever a token or scope map changes (cheap: read on every login)."""
    def tokens(self) -> list[r.TokenRecord]: ...
    def token(self, name: str) -> r.TokenRecord | None: ...
    def add_token(self, name: str, secret_hash: str, scope_map: str | None, rules: r.Rules,
                  expires: float | None) -> r.TokenRecord:
        """A new token (generation 1, enabled); ids are never reused. The name must be free."""
    def update_token(self, name: str, *, scope_map: str | None, rules: r.Rules, enabled: bool,
                     expires: float | None) -> None:
        """Change a token and bump its generation (what was minted from it stops working)."""
    def delete_token(self, name: str) -> bool: ...
    def scope_maps(self) -> list[r.ScopeMapRecord]: ...
    def scope_map(self, name: str) -> r.ScopeMapRecord | None: ...
    def put_scope_map(self, name: str, description: str, rules: r.Rules) -> None:
        """Create or replace a scope map."""
    def delete_scope_map(self, name: str) -> bool: ...

    # -- leases: one holder at a time for a named job, across every process sharing the database --
    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take the lease ``name`` for ``holder`` until ``ttl`` seconds from now, or renew it if ``holder`` has it;
        False while another holder's lease has not expired. Call inside :meth:`write`."""
    def release_lease(self, name: str, holder: str) -> None:
        """Give up ``name`` if ``holder`` has it (another holder's lease is left alone). Call inside :meth:`write`."""


class BlobReader(Protocol):
    """An open blob: read any slice of it (blocking; called off the event loop), then close it."""

    size: int

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer, or none, when the blob is shorter)."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class BlobRedirect:
    """A blob the client fetches from elsewhere (e.g. a presigned object-storage URL)."""

    url: str
    size: int


#: What opening a blob gives: bytes to stream, or a URL to send the client to.
BlobSource = BlobReader | BlobRedirect


class BlobStore(Protocol):
    """Committed blobs, addressed by digest (verified before they are stored)."""

    def size(self, digest: Digest) -> int | None:
        """The blob's size, ``None`` when it is not stored."""

    def open(self, digest: Digest, *, redirect: bool = True) -> BlobSource | None:
        """The blob for a GET (``None`` when it is not stored); the caller closes a reader. ``redirect=False``:
        always a reader (a ranged read or a HEAD is answered by the server), never a URL."""

    def read(self, digest: Digest, limit: int) -> bytes | None:
        """The whole blob when it is at most ``limit`` bytes (image configs), else ``None``."""

    def delete(self, digest: Digest) -> bool: ...

    def delete_many(self, digests: list[Digest]) -> None:
        """Delete these blobs (those already gone are skipped): a batch of garbage collection, in few requests."""

    def iter_sizes(self) -> Iterator[tuple[Digest, int]]:
        """Every stored blob with its size (garbage collection)."""

    def check_writable(self) -> None:
        """Raise ``OSError`` when new blobs could not be stored (the store is missing or read-only)."""


class UploadStore(Protocol):
    """Resumable upload sessions; their state lives in the store, so any process can continue any session."""

    def create(self, repository: str) -> r.UploadState: ...

    def state(self, upload_id: str) -> r.UploadState | None:
        """The session, ``None`` when unknown (or its id is malformed)."""

    async def append(self, upload_id: str, body: AsyncIterator[bytes], start: int | None = None) -> int:
        """Append a request body; the new offset. :class:`UploadOffsetError` when ``start`` is not the offset,
        :class:`UploadBusyError` when another request is writing, :class:`UploadGoneError` when unknown."""

    def sealed(self, upload_id: str, algorithm: str) -> AbstractAsyncContextManager[tuple[str, int]]:
        """Hold the session against appends; yields the digest (in ``algorithm``) and size of its durable bytes."""

    def stage(self, upload_id: str, digest: Digest) -> None:
        """Before :meth:`commit`'s write transaction (on a worker thread): do the slow part of making a sealed,
        verified session the blob ``digest`` (an object store's copy), so the transaction only checks it."""

    def received_digest(self, upload_id: str, algorithm: str, size: int) -> str | None:
        """The digest of the session's first ``size`` bytes when this process hashed them as it appended them
        (``None`` otherwise: only :meth:`sealed` can tell). Says nothing about what the store holds durably."""

    def commit(self, upload_id: str, digest: Digest) -> None:
        """Make a sealed, verified session's bytes the blob ``digest`` of the paired blob store (replacing a
        stored copy, which may have rotted). Called inside a metadata write transaction."""

    def discard(self, upload_id: str) -> bool: ...

    def discard_idle(self, upload_id: str) -> bool:
        """Remove the session unless a request is writing to it right now."""

    def sessions(self) -> Iterator[r.UploadState]:
        """Every session (garbage collection, expiry)."""


class StoreGoneError(Exception):
    """A store can no longer be trusted (e.g. its database was deleted or replaced under the running server):
    every request is refused with 503 rather than acknowledged and lost."""


class StoreUnavailableError(Exception):
    """The storage service refused a request or could not be reached (object storage down, credentials
    refused): the request is answered 503 and nothing is acknowledged."""


class UploadBusyError(Exception):
    """Another request is writing to the same upload session right now."""


class UploadGoneError(Exception):
    """The upload session does not exist (any more)."""


class UploadOffsetError(Exception):
    """A chunk does not start where the session's data ends (``offset``)."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"the upload has {offset} bytes")
        self.offset = offset
