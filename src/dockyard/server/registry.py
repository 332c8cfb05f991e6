"""The registry's rules: names, pushes, pulls, deletes and locks, over injected metadata, blob and upload stores.

The HTTP layers (``api/distribution.py`` for ``/v2``, ``api/acr.py`` for ``/acr/v1``) only translate requests
and responses; every decision about what is allowed or stored is made here, once, for both APIs. The rules know
no HTTP and no SQL: they speak to the stores through :mod:`.storage.protocols`.

The public surface is asynchronous: each method runs its blocking store work on the store threads itself (reads
on a pool, writes on the one writer thread, see :mod:`.offload`), so nothing blocking runs on the event loop.
The ``_rule`` methods behind them are the synchronous rules.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..oci import mediatypes as mt
from ..oci.digest import Digest, InvalidDigestError, compute_digest, is_digest_reference
from ..oci.manifest import InvalidManifestError, Manifest, parse_image_config, parse_manifest
from ..oci.names import is_valid_repository, is_valid_tag
from ..oci.strict_json import MAX_INT
from . import errors as e
from .offload import StoreThreads
from .storage.protocols import (
    BlobSource,
    BlobStore,
    MetadataStore,
    UploadBusyError,
    UploadGoneError,
    UploadOffsetError,
    UploadStore,
)
from .storage.records import (
    AttributeChanges,
    Attributes,
    GcRunRecord,
    ManifestInfo,
    NewManifest,
    Order,
    RepositoryRecord,
    ScopeMapRecord,
    TagRecord,
    TokenRecord,
    UploadState,
)

#: Largest image config read to derive platform metadata.
MAX_CONFIG_READ = 4 * 1024 * 1024


def check_name(name: str) -> str:
    """``name`` if it is a valid repository name, else a 400 NAME_INVALID."""
    if not is_valid_repository(name):
        raise e.name_invalid(name)
    return name


def check_digest(value: str) -> Digest:
    """The parsed digest, else a 400 DIGEST_INVALID (never a 500)."""
    try:
        return Digest.parse(value)
    except InvalidDigestError as exc:
        raise e.digest_invalid(str(exc), value) from None


def check_tag(tag: str) -> str:
    """``tag`` if it is a valid tag, else a 400 TAG_INVALID."""
    if not is_valid_tag(tag):
        raise e.tag_invalid(tag)
    return tag


@dataclass(frozen=True)
class PushResult:
    """What a manifest push stored."""

    digest: str
    subject: str | None
    #: The tags applied from ``?tag=`` query parameters (answered as ``OCI-Tag`` headers).
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RepositorySummary:
    """A repository with its manifest and tag counts (ACR's repository view)."""

    record: RepositoryRecord
    manifest_count: int
    tag_count: int


@dataclass(frozen=True)
class ManifestPage:
    """A page of manifests with their tags, and the bytes of the indexes among them (read in one snapshot)."""

    manifests: list[ManifestInfo]
    tags: dict[str, list[str]]
    index_contents: dict[str, bytes]


@dataclass(frozen=True)
class OpenedBlob:
    """A blob opened for a GET: bytes to stream or a URL to redirect to (the caller closes a reader)."""

    digest: Digest
    source: BlobSource


def check_manifest_content_type(content_type: str | None) -> None:
    """A manifest push declares one of the manifest media types, or nothing (then the body's ``mediaType`` or
    shape decides); anything else (``text/html``, ``application/json``) is a 400 MANIFEST_INVALID."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared and declared not in mt.MANIFEST_TYPES:
        allowed = ", ".join(sorted(mt.MANIFEST_TYPES))
        raise e.manifest_invalid(f"Content-Type {declared!r} is not a manifest media type (one of {allowed})")


def _flags(record: RepositoryRecord | TagRecord | ManifestInfo | None) -> Attributes:
    return Attributes() if record is None else record.attributes


def _check_readable(what: str, *records: RepositoryRecord | TagRecord | ManifestInfo | None) -> None:
    for record in records:
        if not _flags(record).read_enabled:
            raise e.locked(f"{what} is locked for reading (readEnabled is false)")


def _check_writable(what: str, *records: RepositoryRecord | TagRecord | ManifestInfo | None) -> None:
    for record in records:
        if not _flags(record).write_enabled:
            raise e.locked(f"{what} is locked for writing (writeEnabled is false)")


def _check_deletable(what: str, *records: RepositoryRecord | TagRecord | ManifestInfo | None) -> None:
    """A delete needs ``deleteEnabled`` and ``writeEnabled`` (as ACR: a write-locked artifact is immutable)."""
    for record in records:
        if not _flags(record).delete_enabled:
            raise e.locked(f"{what} is locked against deletion (deleteEnabled is false)")
        if not _flags(record).write_enabled:
            raise e.locked(f"{what} is locked (writeEnabled is false) and cannot be deleted")


class Registry:
    """The registry's rules over one metadata store, one blob store and one upload store."""

    def __init__(self, metadata: MetadataStore, blobs: BlobStore, uploads: UploadStore) -> None:
        self._meta = metadata
        self._blobs = blobs
        self._uploads = uploads
        self._threads = StoreThreads(metadata)

    @classmethod
    def open(
        cls, data_dir: Path, metadata_url: str | None = None, storage_url: str | None = None, *,
        storage_redirect: bool = True,
    ) -> Registry:
        """The registry of ``data_dir``: metadata at ``metadata_url`` (default: SQLite in ``data_dir``; see
        :func:`~.storage.stores.open_metadata`), blobs and uploads where ``storage_url`` says (default: files in
        ``data_dir``; see :func:`~.storage.factory.open_stores`)."""
        from .storage.factory import open_stores
        from .storage.private import make_private_dir
        from .storage.stores import open_metadata

        make_private_dir(Path(data_dir))
        meta = open_metadata(metadata_url, Path(data_dir))
        blobs, uploads = open_stores(storage_url, Path(data_dir), redirect=storage_redirect)
        return cls(meta, blobs, uploads)

    def close(self) -> None:
        """Finish the work handed to the store threads, then close the stores."""
        self._threads.close()
        self._meta.close()

    # -- the asynchronous surface the HTTP layer uses -----------------------------------------------------------

    async def check_available(self) -> None:
        """Raise when the metadata store can no longer be used (``GET /v2/`` answers it)."""
        await self._threads.read(self._meta.check_present)

    async def unavailable(self) -> dict[str, str]:
        """What of the stores cannot serve right now (``{"metadata": why, "blobs": why}``); empty when ready.

        Cheap: the metadata store's presence check and a one-row query, and whether the blob store accepts
        new files."""
        problems: dict[str, str] = {}
        try:
            await self._threads.read(self._metadata_ping)
        except Exception as exc:  # any failure means not ready; the reason is reported, not raised
            problems["metadata"] = str(exc) or type(exc).__name__
        try:
            await asyncio.to_thread(self._blobs.check_writable)
        except Exception as exc:
            problems["blobs"] = str(exc) or type(exc).__name__
        return problems

    def _metadata_ping(self) -> None:
        self._meta.check_present()
        self._meta.catalog(None, 1)

    async def blob_usage(self) -> tuple[int, int]:
        """(blobs stored, bytes stored), counted from the metadata."""
        return await self._threads.read(self._meta.blob_usage)

    @property
    def stores(self) -> tuple[MetadataStore, BlobStore, UploadStore]:
        """The metadata, blob and upload stores (the server's scheduled garbage collection works on them from its
        own thread)."""
        return self._meta, self._blobs, self._uploads

    async def last_gc_runs(self, kinds: tuple[str, ...]) -> dict[str, tuple[GcRunRecord, int]]:
        """The last garbage collection run of each of ``kinds`` and how many there were (from the metadata)."""
        return await self._threads.read(self._last_gc_runs, kinds)

    def _last_gc_runs(self, kinds: tuple[str, ...]) -> dict[str, tuple[GcRunRecord, int]]:
        found: dict[str, tuple[GcRunRecord, int]] = {}
        with self._meta.read():
            for kind in kinds:
                last = self._meta.last_gc_run(kind)
                if last is not None:
                    found[kind] = last
        return found

    async def open_uploads(self) -> int:
        """How many upload sessions exist right now."""
        return await asyncio.to_thread(lambda: sum(1 for _ in self._uploads.sessions()))

    async def auth_version(self) -> int:
        """The store's token and scope map version (changes with every change to either)."""
        return await self._threads.read(self._meta.auth_version)

    async def auth_records(self) -> tuple[int, list[TokenRecord], list[ScopeMapRecord]]:
        """Every token and scope map, with the version they are of (one snapshot)."""
        return await self._threads.read(self._auth_records)

    def _auth_records(self) -> tuple[int, list[TokenRecord], list[ScopeMapRecord]]:
        with self._meta.read():
            return self._meta.auth_version(), self._meta.tokens(), self._meta.scope_maps()

    async def catalog(self, last: str | None, limit: int | None) -> list[str]:
        """Names of the listable repositories holding a manifest, sorted, after ``last``."""
        return await self._threads.read(self._meta.catalog, last, limit)

    async def repository(self, name: str) -> RepositorySummary:
        """The repository with its counts, else 404 NAME_UNKNOWN."""
        return await self._threads.read(self._repository_summary, name)

    async def tag_names(self, name: str, last: str | None, limit: int | None) -> list[str]:
        """``/v2`` tag list: names after ``last`` (a repository whose last manifest went lists none)."""
        return await self._threads.read(self._tag_names, name, last, limit)

    async def list_tags(
        self, name: str, last: str | None, limit: int | None, order: Order = "none", digest: str | None = None
    ) -> list[TagRecord]:
        """A page of the repository's listable tags (optionally only those of ``digest``)."""
        return await self._threads.read(self._list_tags, name, last, limit, order, digest)

    async def tag(self, name: str, tag: str) -> TagRecord:
        """One tag, else 404 NAME_UNKNOWN / TAG_UNKNOWN."""
        return await self._threads.read(self._tag, name, tag)

    async def list_manifests(self, name: str, last: str | None, limit: int | None, order: Order) -> ManifestPage:
        """A page of the repository's listable manifests with their tags."""
        return await self._threads.read(self._list_manifests, name, last, limit, order)

    async def manifest_digest(self, name: str, reference: str) -> str:
        """The digest a tag or digest reference names in a repository holding manifests, else 404."""
        return await self._threads.read(self._manifest_digest, name, reference)

    async def manifest_info(self, name: str, digest: str) -> tuple[ManifestInfo, list[str]]:
        """A manifest's metadata and content, and its tags (404 MANIFEST_UNKNOWN)."""
        return await self._threads.read(self._manifest_info, name, digest)

    async def get_manifest(self, name: str, reference: str) -> ManifestInfo:
        """The manifest (with content) for a tag or digest (404 MANIFEST_UNKNOWN, 405 when read-locked)."""
        return await self._threads.read(self._get_manifest, name, reference)

    async def put_manifest(
        self, name: str, reference: str, body: bytes, content_type: str | None, extra_tags: Sequence[str] = ()
    ) -> PushResult:
        """Store a manifest under a tag or digest (see :meth:`_put_manifest`)."""
        return await self._threads.write(self._put_manifest, name, reference, body, content_type, extra_tags)

    async def store_fetched_manifest(self, name: str, reference: str, body: bytes, content_type: str | None) -> str:
        """Store a manifest a pull-through cache fetched from its upstream under a tag or digest; returns its
        digest. Validated as a push is, except that the blobs and child manifests it names need not be here yet:
        they are fetched when a client asks for them (only the platforms pulled)."""
        result = await self._threads.write(
            self._put_manifest, name, reference, body, content_type, (), check_references=False
        )
        return result.digest

    async def blob_stored(self, digest: str) -> int | None:
        """The size of blob ``digest`` when the blob store holds it (in any repository), else ``None``."""
        return await self._threads.read(self._blobs.size, check_digest(digest))

    async def adopt_blob(self, name: str, digest: str) -> bool:
        """Link a stored blob into ``name`` (a cache that already holds the bytes); False when not stored."""
        return await self._threads.write(self._adopt_blob, name, digest)

    async def descriptor_size(self, name: str, digest: str) -> int | None:
        """The size a manifest stored in ``name`` gives blob ``digest`` (``None``: no manifest there names it)."""
        return await self._threads.read(self._descriptor_size, name, digest)

    async def take_lease(self, lease: str, holder: str, ttl: float) -> bool:
        """Take (or renew) lease ``lease`` for ``ttl`` seconds: False while another holder's lease stands. Leases
        live in the metadata store, so they hold across worker processes and servers sharing it."""
        return await self._threads.write(self._take_lease, lease, holder, ttl)

    async def drop_lease(self, lease: str, holder: str) -> None:
        """Give up lease ``lease`` (if ``holder`` holds it)."""
        await self._threads.write(self._drop_lease, lease, holder)

    async def delete_manifest(self, name: str, reference: str) -> None:
        """Delete by digest (the manifest and its tags) or by tag (untag only)."""
        await self._threads.write(self._delete_manifest, name, reference)

    async def delete_tag(self, name: str, tag: str) -> None:
        """Remove a tag (the manifest stays)."""
        await self._threads.write(self._delete_tag, name, tag)

    async def delete_repository(self, name: str) -> tuple[list[str], list[str]]:
        """Delete a repository with all its manifests and tags (405 if any of them is locked)."""
        return await self._threads.write(self._delete_repository, name)

    async def update_attributes(
        self, name: str, kind: Literal["repository", "tag", "manifest"], key: str | None, changes: AttributeChanges
    ) -> None:
        """Set lock flags of the repository, a tag (``key``) or a manifest (``key``: its digest)."""
        await self._threads.write(self._update_attributes, name, kind, key, changes)

    async def referrers(self, name: str, digest: str, artifact_type: str | None) -> list[ManifestInfo]:
        """The manifests whose subject is ``digest`` (optionally of ``artifact_type``)."""
        return await self._threads.read(self._referrers, name, digest, artifact_type)

    async def open_blob(self, name: str, digest: str, *, redirect: bool = True) -> OpenedBlob:
        """Open a blob of repository ``name`` (404 BLOB_UNKNOWN, 405 when read-locked); the caller closes it.
        ``redirect=False``: bytes to stream even when the store would send the client elsewhere."""
        return await self._threads.read(self._open_blob, name, digest, redirect)

    async def delete_blob(self, name: str, digest: str) -> None:
        """Unlink a blob from a repository (garbage collection removes the bytes once nothing links them)."""
        await self._threads.write(self._delete_blob, name, digest)

    async def mount_blob(self, name: str, digest: str, source: str) -> bool:
        """Link an existing blob of ``source`` into ``name``; False when ``source`` does not hold it."""
        return await self._threads.write(self._mount_blob, name, digest, source)

    async def push_allowed(self, name: str) -> None:
        """Refuse pushes into a write-locked repository (405)."""
        await self._threads.read(self._check_push_allowed, name)

    async def start_upload(self, name: str) -> UploadState:
        """A new upload session for ``name`` (405 when the repository is write-locked)."""
        await self.push_allowed(name)
        return await self._threads.read(self._uploads.create, name)

    async def upload(self, name: str, upload_id: str) -> UploadState:
        """The session ``upload_id`` of repository ``name``, else 404 BLOB_UPLOAD_UNKNOWN."""
        return await self._threads.read(self._upload, name, upload_id)

    async def append_upload(
        self, name: str, upload_id: str, body: AsyncIterator[bytes], start: int | None
    ) -> UploadState:
        """Append a chunk; 416 (with the session's state) when ``start`` is not the current offset."""
        await self.upload(name, upload_id)
        try:
            offset = await self._uploads.append(upload_id, body, start)
        except UploadBusyError:
            state = await self.upload(name, upload_id)
            raise e.upload_range_invalid("another request is writing to this upload session", state) from None
        except UploadGoneError:
            raise e.upload_unknown(upload_id) from None
        except UploadOffsetError as exc:
            state = UploadState(upload_id, name, 0, exc.offset)
            raise e.upload_range_invalid(
                f"chunk starts at {start} but the upload has {exc.offset} bytes", state
            ) from None
        return UploadState(upload_id, name, 0, offset)

    async def finish_upload(self, name: str, upload_id: str, digest_text: str | None) -> Digest:
        """Verify the session against ``digest`` and commit it as a blob of ``name``."""
        await self.upload(name, upload_id)
        if not digest_text:
            raise e.digest_invalid("the digest query parameter is required to finish an upload")
        digest = check_digest(digest_text)
        try:
            async with self._uploads.sealed(upload_id, digest.algorithm) as (actual, size):
                if actual == str(digest):
                    await asyncio.to_thread(self._uploads.stage, upload_id, digest)  # outside the write lock
                    await self._threads.write(self._commit_upload, name, upload_id, digest, size)
        except UploadBusyError:
            raise e.range_invalid("another request is writing to this upload session") from None
        except UploadGoneError:
            raise e.upload_unknown(upload_id) from None
        if actual != str(digest) and await self._threads.read(self._uploads.state, upload_id) is None:
            # Garbage collection removed the session while it was being verified: not the client's bytes.
            raise e.upload_unknown(upload_id)
        await asyncio.to_thread(self._uploads.discard, upload_id)  # unlinking a large file takes a while
        if actual != str(digest):
            raise e.digest_invalid(f"the uploaded content has digest {actual}, not {digest}", str(digest))
        return digest

    def received_digest(self, upload_id: str, algorithm: str, size: int) -> str | None:
        """The digest of an upload session's first ``size`` bytes as this process hashed them while appending
        them, when it did (``None``: only :meth:`finish_upload` tells). Nothing is committed by it."""
        return self._uploads.received_digest(upload_id, algorithm, size)

    async def put_blob(self, name: str, body: AsyncIterator[bytes], digest_text: str) -> Digest:
        """A monolithic upload: the whole blob in one request, verified against ``digest``."""
        check_digest(digest_text)
        state = await self.start_upload(name)
        try:
            await self.append_upload(name, state.id, body, None)
            return await self.finish_upload(name, state.id, digest_text)
        finally:
            await asyncio.to_thread(self._uploads.discard, state.id)

    async def cancel_upload(self, name: str, upload_id: str) -> None:
        """Drop an upload session (404 when unknown)."""
        await self.upload(name, upload_id)
        await asyncio.to_thread(self._uploads.discard, upload_id)

    async def expire_uploads(self, max_idle: float) -> list[str]:
        """Remove upload sessions idle for ``max_idle`` seconds; their ids."""
        return await self._threads.read(expire_uploads, self._uploads, max_idle)

    # -- repositories and locks ---------------------------------------------------------------------------------

    def _repository(self, name: str) -> RepositoryRecord:
        """The repository, else 404 NAME_UNKNOWN.

        As on ACR, a repository exists while it holds a manifest: once its last manifest is deleted (or when only
        blobs were ever uploaded to it) ``/acr/v1`` answers NAME_UNKNOWN and both catalogs omit it; only the ``/v2``
        tag list (see :meth:`_tag_names`) still answers, with no tags.
        """
        check_name(name)
        repo = self._meta.repository(name)
        if repo is None or not self._meta.has_manifests(repo.id):
            raise e.name_unknown(name)
        return repo

    def _repository_summary(self, name: str) -> RepositorySummary:
        with self._meta.read():
            repo = self._repository(name)
            manifests, tags = self._meta.counts(repo.id)
        return RepositorySummary(repo, manifests, tags)

    def _tag_names(self, name: str, last: str | None, limit: int | None) -> list[str]:
        """Tag names even when the repository no longer holds a manifest (``GET /v2/<name>/tags/list`` lists
        none then, with 200, as the distribution-spec allows and its conformance suite expects), until it is
        deleted as a whole; else 404 NAME_UNKNOWN."""
        check_name(name)
        with self._meta.read():
            repo = self._meta.repository(name)
            if repo is None:
                raise e.name_unknown(name)
            return [tag.name for tag in self._meta.list_tags(repo.id, last, limit)]

    def _list_tags(
        self, name: str, last: str | None, limit: int | None, order: Order, digest: str | None
    ) -> list[TagRecord]:
        with self._meta.read():
            repo = self._repository(name)
            return self._meta.list_tags(repo.id, last, limit, order, digest)

    def _tag(self, name: str, tag: str) -> TagRecord:
        with self._meta.read():
            repo = self._repository(name)
            record = self._meta.tag(repo.id, tag)
        if record is None:
            raise e.tag_unknown(tag)
        return record

    def _list_manifests(self, name: str, last: str | None, limit: int | None, order: Order) -> ManifestPage:
        with self._meta.read():
            repo = self._repository(name)
            rows = self._meta.list_manifests(repo.id, last, limit, order)
            tags = self._meta.tags_of(repo.id, [row.digest for row in rows])
            # Indexes list their children as "references": their bytes, in one query for the page.
            indexes = [row.digest for row in rows if row.media_type in mt.INDEX_TYPES]
            contents = self._meta.manifest_contents(repo.id, indexes)
        return ManifestPage(rows, tags, contents)

    def _check_push_allowed(self, name: str) -> None:
        check_name(name)
        _check_writable(f"repository {name}", self._meta.repository(name))

    def _delete_repository(self, name: str) -> tuple[list[str], list[str]]:
        check_name(name)
        with self._meta.write():
            repo = self._meta.repository(name)
            if repo is None:
                raise e.name_unknown(name)
            _check_deletable(f"repository {name}", repo)
            locked_digest = self._meta.undeletable_manifest(repo.id)
            if locked_digest is not None:
                raise e.locked(f"manifest {locked_digest} in {name} is locked against deletion")
            locked_tag = self._meta.undeletable_tag(repo.id)
            if locked_tag is not None:
                raise e.locked(f"tag {name}:{locked_tag} is locked against deletion")
            digests, tags = self._meta.delete_repository(repo.id)
        # Sorted here, whatever order the store returned its rows in (PostgreSQL promises none without ORDER BY).
        return sorted(digests), sorted(tags)

    def _update_attributes(
        self, name: str, kind: Literal["repository", "tag", "manifest"], key: str | None, changes: AttributeChanges
    ) -> None:
        with self._meta.write():
            repo = self._repository(name)
            if kind == "repository":
                self._meta.set_repository_attributes(repo.id, changes)
            elif kind == "tag":
                if self._meta.tag(repo.id, key or "") is None:
                    raise e.tag_unknown(key or "")
                self._meta.set_tag_attributes(repo.id, key or "", changes)
            else:
                if self._meta.manifest(repo.id, key or "") is None:
                    raise e.manifest_unknown(key or "")
                self._meta.set_manifest_attributes(repo.id, key or "", changes)

    # -- blobs --------------------------------------------------------------------------------------------------

    def _open_blob(self, name: str, digest_text: str, redirect: bool) -> OpenedBlob:
        check_name(name)
        digest = check_digest(digest_text)
        repo = self._meta.repository(name)
        if repo is None:
            raise e.blob_unknown(str(digest))
        _check_readable(f"repository {name}", repo)
        if self._meta.blob_link(repo.id, str(digest)) is None:
            raise e.blob_unknown(str(digest))
        source = self._blobs.open(digest, redirect=redirect)
        if source is None:
            raise e.blob_unknown(str(digest))
        return OpenedBlob(digest, source)

    def _adopt_blob(self, name: str, digest_text: str) -> bool:
        check_name(name)
        digest = check_digest(digest_text)
        with self._meta.write():
            size = self._blobs.size(digest)
            if size is None:
                return False
            repo = self._meta.repository(name)
            if repo is not None and self._meta.blob_link(repo.id, str(digest)) is not None:
                return True
            _check_writable(f"repository {name}", repo)
            self._meta.link_blob(self._meta.ensure_repository(name), str(digest), size)
        return True

    def _descriptor_size(self, name: str, digest: str) -> int | None:
        """Look through the manifests stored in ``name`` for a descriptor of blob ``digest``."""
        check_name(name)
        with self._meta.read():
            repo = self._meta.repository(name)
            if repo is None:
                return None
            rows = self._meta.list_manifests(repo.id, None, None, "none", include_hidden=True)
            contents = self._meta.manifest_contents(repo.id, [row.digest for row in rows])
            media_types = {row.digest: row.media_type for row in rows}
        for manifest_digest, content in contents.items():
            try:
                parsed = parse_manifest(content, media_types.get(manifest_digest))
            except InvalidManifestError:
                continue
            for desc in parsed.blobs():
                if desc.digest == digest:
                    return desc.size
        return None

    def _take_lease(self, lease: str, holder: str, ttl: float) -> bool:
        with self._meta.write():
            return self._meta.acquire_lease(lease, holder, ttl)

    def _drop_lease(self, lease: str, holder: str) -> None:
        with self._meta.write():
            self._meta.release_lease(lease, holder)

    def _delete_blob(self, name: str, digest_text: str) -> None:
        check_name(name)
        digest = check_digest(digest_text)
        with self._meta.write():
            repo = self._meta.repository(name)
            if repo is None or self._meta.blob_link(repo.id, str(digest)) is None:
                raise e.blob_unknown(str(digest))
            _check_deletable(f"repository {name}", repo)
            holder = self._locked_holder(repo.id, str(digest))
            if holder is not None:
                raise e.locked(f"blob {digest} is part of {name}@{holder}, which is locked against deletion")
            self._meta.unlink_blob(repo.id, str(digest))

    def _locked_holder(self, repo_id: int, digest: str) -> str | None:
        """The digest of a manifest of the repository that names blob ``digest`` and must stay whole: one whose
        delete or write lock is on, one a locked tag points to, or a child of such an index. ``None`` if none."""
        pending = list(self._meta.locked_manifests(repo_id))
        seen = {row.digest for row in pending}
        while pending:
            row = pending.pop()
            try:
                parsed = parse_manifest(row.content or b"", row.media_type)
            except InvalidManifestError:
                continue
            if any(desc.digest == digest for desc in parsed.blobs()):
                return row.digest
            for child in parsed.manifests:
                if child.digest not in seen:
                    seen.add(child.digest)
                    child_row = self._meta.manifest(repo_id, child.digest, with_content=True)
                    if child_row is not None:
                        pending.append(child_row)
        return None

    def _mount_blob(self, name: str, digest_text: str, source: str) -> bool:
        check_name(name)
        digest = check_digest(digest_text)
        if not is_valid_repository(source):
            return False
        with self._meta.write():
            src = self._meta.repository(source)
            if src is None or not src.attributes.read_enabled or self._meta.blob_link(src.id, str(digest)) is None:
                return False
            size = self._blobs.size(digest)
            if size is None:
                return False
            _check_writable(f"repository {name}", self._meta.repository(name))
            repo_id = self._meta.ensure_repository(name)
            self._meta.link_blob(repo_id, str(digest), size)
        return True

    # -- uploads ------------------------------------------------------------------------------------------------

    def _upload(self, name: str, upload_id: str) -> UploadState:
        check_name(name)
        state = self._uploads.state(upload_id)
        if state is None or state.repository != name:
            raise e.upload_unknown(upload_id)
        return state

    def _commit_upload(self, name: str, upload_id: str, digest: Digest, size: int) -> None:
        """Adopt a verified session as blob ``digest`` and link it into ``name`` (one transaction)."""
        with self._meta.write():
            _check_writable(f"repository {name}", self._meta.repository(name))
            # Always the freshly verified bytes: a stored copy that rotted is replaced.
            self._uploads.commit(upload_id, digest)
            repo_id = self._meta.ensure_repository(name)
            self._meta.link_blob(repo_id, str(digest), size)

    # -- manifests ----------------------------------------------------------------------------------------------

    def _resolve_reference(self, repo: RepositoryRecord, reference: str) -> tuple[TagRecord | None, str | None]:
        """(tag or None, digest) for a tag or digest reference; the digest is None for an unknown tag
        (400 DIGEST_INVALID / TAG_INVALID for a malformed reference)."""
        if is_digest_reference(reference):
            return None, str(check_digest(reference))
        tag = self._meta.tag(repo.id, check_tag(reference))
        return tag, tag.digest if tag is not None else None

    def _manifest_digest(self, name: str, reference: str) -> str:
        with self._meta.read():
            repo = self._repository(name)
            _, digest = self._resolve_reference(repo, reference)
        if digest is None:
            raise e.manifest_unknown(reference)
        return digest

    def _manifest_info(self, name: str, digest: str) -> tuple[ManifestInfo, list[str]]:
        with self._meta.read():
            repo = self._repository(name)
            row = self._meta.manifest(repo.id, digest, with_content=True)
            if row is None:
                raise e.manifest_unknown(digest)
            return row, self._meta.tags_of(repo.id, [digest])[digest]

    def _get_manifest(self, name: str, reference: str) -> ManifestInfo:
        check_name(name)
        tag_name, digest = None, None
        if is_digest_reference(reference):
            digest = str(check_digest(reference))
        elif is_valid_tag(reference):
            tag_name = reference
        else:
            # No manifest can be stored under a malformed tag: unknown (as distribution and the OCI conformance
            # suite expect); writes with a malformed tag stay 400 TAG_INVALID.
            raise e.manifest_unknown(reference)
        repo, tag, manifest = self._meta.resolve_manifest(name, tag_name, digest)  # one snapshot
        if repo is None:
            raise e.name_unknown(name)
        if manifest is None:
            raise e.manifest_unknown(reference)
        _check_readable(f"{name}:{reference}", repo, tag, manifest)
        return manifest

    def _validate_references(self, repo_id: int | None, manifest: Manifest) -> None:
        """Every blob and child manifest the manifest names must be in the repository.

        Each distinct digest is checked once, and the links of all of them are looked up together: a manifest
        naming one layer 38,000 times costs one query and one ``stat``, not 38,000 of each.
        """
        blobs: dict[str, None] = {}
        inline: dict[tuple[str, str], bool] = {}
        for desc in manifest.blobs():
            if desc.data is not None:
                key = (desc.data, desc.digest)
                if key not in inline:
                    inline[key] = _inline_matches(desc.data, desc.digest)
                if inline[key]:
                    continue
            blobs.setdefault(desc.digest)
        children = list(dict.fromkeys(child.digest for child in manifest.manifests))
        linked = self._meta.linked_digests(repo_id, blobs) if repo_id is not None else set()
        for digest in blobs:
            if digest not in linked:
                raise e.manifest_blob_unknown(digest)
            # The link and the bytes: garbage collection removes both in one transaction, but a collection that
            # died halfway can leave a link to a deleted blob behind. A manifest never names a missing blob.
            try:
                stored = self._blobs.size(Digest.parse(digest))
            except InvalidDigestError:
                stored = None
            if stored is None:
                raise e.manifest_blob_unknown(digest)
        present = self._meta.manifest_digests(repo_id, children) if repo_id is not None else set()
        for digest in children:
            if digest not in present:
                raise e.manifest_blob_unknown(digest)

    def _platform(self, manifest: Manifest) -> tuple[str | None, str | None]:
        config = manifest.config
        if config is None or config.media_type not in mt.CONFIG_TYPES:
            return None, None
        try:
            raw = self._blobs.read(Digest.parse(config.digest), MAX_CONFIG_READ)
        except InvalidDigestError:
            return None, None
        parsed = parse_image_config(raw) if raw is not None else None
        if parsed is None:
            return None, None
        return parsed.platform.architecture, parsed.platform.os

    def _put_manifest(
        self, name: str, reference: str, body: bytes, content_type: str | None, extra_tags: Sequence[str] = (),
        *, check_references: bool = True,
    ) -> PushResult:
        """Store a manifest under a tag or digest: validated, byte-for-byte, in one transaction.

        ``extra_tags`` (``?tag=`` query parameters) are applied too, all or none: one malformed or locked tag
        refuses the whole push. ``check_references`` off (a pull-through cache's fill) stores a manifest whose
        blobs and children are fetched later.
        """
        check_name(name)
        extra = [check_tag(tag) for tag in dict.fromkeys(extra_tags)]
        check_manifest_content_type(content_type)
        tag: str | None = None
        if is_digest_reference(reference):
            wanted = check_digest(reference)
            digest = compute_digest(body, wanted.algorithm)
            if digest != str(wanted):
                raise e.digest_invalid(f"the manifest has digest {digest}, not {wanted}", str(wanted))
        else:
            tag = check_tag(reference)
            digest = compute_digest(body)
        if len(body) > mt.MAX_MANIFEST_SIZE:
            raise e.manifest_invalid(f"manifest is {len(body)} bytes; the limit is {mt.MAX_MANIFEST_SIZE}", 413)
        try:
            manifest = parse_manifest(body, content_type)
        except InvalidManifestError as exc:
            raise e.manifest_invalid(str(exc)) from None
        if manifest.media_type not in mt.MANIFEST_TYPES:
            raise e.manifest_invalid(f"mediaType {manifest.media_type!r} is not a manifest media type")
        image_size = len(body) + sum(d.size for d in (*manifest.blobs(), *manifest.manifests))
        if image_size > MAX_INT:
            raise e.manifest_invalid("the sizes of the manifest's descriptors add up past 2**63 - 1 bytes")
        architecture, os_name = self._platform(manifest)
        record = NewManifest(
            digest=digest,
            media_type=manifest.media_type,
            content=body,
            image_size=image_size,
            config_media_type=manifest.config.media_type if manifest.config else None,
            artifact_type=manifest.effective_artifact_type,
            subject=manifest.subject.digest if manifest.subject else None,
            annotations=json.dumps(manifest.annotations) if manifest.annotations else None,
            architecture=architecture,
            os=os_name,
        )
        with self._meta.write():
            repo = self._meta.repository(name)
            _check_writable(f"repository {name}", repo)
            repo_id = repo.id if repo is not None else None
            tags = list(dict.fromkeys([tag, *extra] if tag is not None else extra))
            if repo_id is not None:
                _check_writable(f"manifest {digest}", self._meta.manifest(repo_id, digest))
                for each in tags:
                    _check_writable(f"tag {name}:{each}", self._meta.tag(repo_id, each))
            if check_references:
                self._validate_references(repo_id, manifest)
            repo_id = self._meta.ensure_repository(name)
            self._meta.put_manifest(repo_id, record)
            for each in tags:
                self._meta.put_tag(repo_id, each, digest)
            self._meta.touch_repository(repo_id)
        return PushResult(digest, record.subject, tuple(extra))

    def _delete_manifest(self, name: str, reference: str) -> None:
        check_name(name)
        if not is_digest_reference(reference):
            self._delete_tag(name, reference)
            return
        digest = str(check_digest(reference))
        with self._meta.write():
            repo = self._meta.repository(name)
            row = self._meta.manifest(repo.id, digest) if repo is not None else None
            if repo is None or row is None:
                raise e.manifest_unknown(reference)
            _check_deletable(f"repository {name}", repo)
            _check_deletable(f"manifest {digest}", row)
            locked_tag = self._meta.undeletable_tag(repo.id, digest)
            if locked_tag is not None:
                raise e.locked(f"tag {name}:{locked_tag} is locked against deletion")
            self._meta.delete_manifest(repo.id, digest)
            self._meta.touch_repository(repo.id)

    def _delete_tag(self, name: str, tag: str) -> None:
        check_name(name)
        check_tag(tag)
        with self._meta.write():
            repo = self._meta.repository(name)
            row = self._meta.tag(repo.id, tag) if repo is not None else None
            if repo is None or row is None:
                raise e.tag_unknown(tag) if repo is not None else e.name_unknown(name)
            _check_deletable(f"repository {name}", repo)
            _check_deletable(f"tag {name}:{tag}", row)
            self._meta.delete_tag(repo.id, tag)
            self._meta.touch_repository(repo.id)

    def _referrers(self, name: str, digest_text: str, artifact_type: str | None) -> list[ManifestInfo]:
        check_name(name)
        digest = check_digest(digest_text)
        with self._meta.read():
            repo = self._meta.repository(name)
            if repo is None:
                return []
            _check_readable(f"repository {name}", repo)
            return self._meta.referrers(repo.id, str(digest), artifact_type)


def _inline_matches(data: str, digest: str) -> bool:
    """True when a descriptor's inline ``data`` (base64) hashes to its digest."""
    try:
        raw = base64.b64decode(data, validate=True)
        wanted = Digest.parse(digest)
    except (binascii.Error, ValueError):
        return False
    return compute_digest(raw, wanted.algorithm) == str(wanted)


def expire_uploads(
    uploads: UploadStore, max_idle: float, *, now: float | None = None, dry_run: bool = False
) -> list[str]:
    """Remove upload sessions that received nothing for ``max_idle`` seconds, except one a request is writing to
    right now; returns their ids. ``dockyard gc`` and the running server's periodic sweep both use this."""
    now = time.time() if now is None else now
    expired: list[str] = []
    for state in list(uploads.sessions()):
        if now - state.touched >= max_idle and (dry_run or uploads.discard_idle(state.id)):
            expired.append(state.id)
    return expired
