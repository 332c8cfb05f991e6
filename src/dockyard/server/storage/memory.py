"""In-memory metadata, blob and upload stores: the registry's rules without a database or a disk.

For tests of the rules (and a proof that :mod:`.protocols` is all the rules need). Every method takes one
re-entrant lock, and :meth:`MemoryMetadataStore.write` holds it for the whole transaction and restores the
previous state when the transaction fails, so readers never see half a write.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TypeVar

from ...oci.digest import Digest, Hasher
from . import records as r
from .protocols import UploadBusyError, UploadGoneError, UploadOffsetError
from .resolve import Resolved, resolve_manifest


@dataclass
class _Repository:
    record: r.RepositoryRecord
    manifests: dict[str, r.ManifestInfo] = field(default_factory=dict)
    tags: dict[str, r.TagRecord] = field(default_factory=dict)
    links: dict[str, r.BlobLink] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    #: Each manifest's place in storage order (see :meth:`MemoryMetadataStore.manifests_after`).
    order: dict[str, int] = field(default_factory=dict)


_Row = TypeVar("_Row", r.TagRecord, r.ManifestInfo)


def _page(rows: list[_Row], key: str, last: str | None, limit: int | None, order: r.Order) -> list[_Row]:
    """Keyset paging as the SQLite store does it: by key, or by (update time, key) either way."""

    def sort_key(row: _Row) -> tuple[str, ...]:
        return (getattr(row, key),) if order == "none" else (row.updated, getattr(row, key))

    ordered = sorted(rows, key=sort_key, reverse=order == "timedesc")
    if order == "none":
        ordered = [row for row in ordered if getattr(row, key) > (last or "")]
    elif last:
        ref = next((row for row in rows if getattr(row, key) == last), None)
        if ref is None:
            return []
        mark = sort_key(ref)
        ordered = [row for row in ordered if (sort_key(row) < mark if order == "timedesc" else sort_key(row) > mark)]
    return list(ordered if limit is None else ordered[:limit])


class MemoryMetadataStore:
    """A :class:`~.protocols.MetadataStore` in a dictionary."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._repos: dict[str, _Repository] = {}
        self._next_id = 1
        #: The place of the next manifest stored (never reused: a failed write leaves a gap).
        self._next_manifest = 1
        self._tokens: dict[str, r.TokenRecord] = {}
        self._scope_maps: dict[str, r.ScopeMapRecord] = {}
        self._next_token_id = 1
        self._auth_version = 0
        #: Lease name -> (holder, expiry time).
        self._leases: dict[str, tuple[str, float]] = {}
        self._gc_runs: list[r.GcRunRecord] = []

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._lock:
            saved = copy.deepcopy((self._repos, self._next_id))
            saved_auth = (dict(self._tokens), dict(self._scope_maps), self._next_token_id, self._auth_version)
            try:
                yield
            except BaseException:
                self._repos, self._next_id = saved
                self._tokens, self._scope_maps, self._next_token_id, self._auth_version = saved_auth
                raise

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._lock:
            yield

    def check_present(self) -> None:
        """Always present."""

    def close(self) -> None:
        """Nothing to release."""

    def _by_id(self, repo_id: int) -> _Repository | None:
        return next((repo for repo in self._repos.values() if repo.record.id == repo_id), None)

    def _repo(self, repo_id: int) -> _Repository:
        repo = self._by_id(repo_id)
        if repo is None:
            raise KeyError(f"no repository {repo_id}")
        return repo

    # repositories
    def repository(self, name: str) -> r.RepositoryRecord | None:
        with self._lock:
            repo = self._repos.get(name)
            return None if repo is None else repo.record

    def ensure_repository(self, name: str) -> int:
        with self._lock:
            if name not in self._repos:
                stamp = r.now()
                self._repos[name] = _Repository(r.RepositoryRecord(self._next_id, name, stamp, stamp))
                self._next_id += 1
            return self._repos[name].record.id

    def touch_repository(self, repo_id: int) -> None:
        with self._lock:
            repo = self._repo(repo_id)
            repo.record = replace(repo.record, updated=r.now())

    def delete_repository(self, repo_id: int) -> tuple[list[str], list[str]]:
        with self._lock:
            repo = self._repo(repo_id)
            del self._repos[repo.record.name]
            return sorted(repo.manifests), sorted(repo.tags)

    def has_manifests(self, repo_id: int) -> bool:
        with self._lock:
            return bool(self._repo(repo_id).manifests)

    def counts(self, repo_id: int) -> tuple[int, int]:
        with self._lock:
            repo = self._repo(repo_id)
            return len(repo.manifests), len(repo.tags)

    def catalog(self, last: str | None, limit: int | None, include_hidden: bool = False) -> list[str]:
        with self._lock:
            names = sorted(
                name for name, repo in self._repos.items()
                if repo.manifests and (include_hidden or repo.record.attributes.list_enabled) and name > (last or "")
            )
        return names if limit is None else names[:limit]

    def set_repository_attributes(self, repo_id: int, changes: r.AttributeChanges) -> None:
        with self._lock:
            repo = self._repo(repo_id)
            repo.record = replace(repo.record, attributes=replace(repo.record.attributes, **changes))

    def set_tag_attributes(self, repo_id: int, name: str, changes: r.AttributeChanges) -> None:
        with self._lock:
            tags = self._repo(repo_id).tags
            if name in tags:
                tags[name] = replace(tags[name], attributes=replace(tags[name].attributes, **changes))

    def set_manifest_attributes(self, repo_id: int, digest: str, changes: r.AttributeChanges) -> None:
        with self._lock:
            manifests = self._repo(repo_id).manifests
            if digest in manifests:
                row = manifests[digest]
                manifests[digest] = replace(row, attributes=replace(row.attributes, **changes))

    # manifests
    def manifest(self, repo_id: int, digest: str, with_content: bool = False) -> r.ManifestInfo | None:
        with self._lock:
            row = self._repo(repo_id).manifests.get(digest)
        if row is None:
            return None
        return row if with_content else replace(row, content=None)

    def resolve_manifest(self, name: str, tag: str | None, digest: str | None) -> Resolved:
        return resolve_manifest(self, name, tag, digest)

    def manifest_contents(self, repo_id: int, digests: list[str]) -> dict[str, bytes]:
        with self._lock:
            manifests = self._repo(repo_id).manifests
            return {d: manifests[d].content or b"" for d in digests if d in manifests}

    def put_manifest(self, repo_id: int, rec: r.NewManifest) -> None:
        with self._lock:
            manifests = self._repo(repo_id).manifests
            if rec.digest in manifests:
                return
            stamp = r.now()
            self._repo(repo_id).order[rec.digest] = self._next_manifest
            self._next_manifest += 1
            manifests[rec.digest] = r.ManifestInfo(
                digest=rec.digest, media_type=rec.media_type, size=len(rec.content), image_size=rec.image_size,
                config_media_type=rec.config_media_type, artifact_type=rec.artifact_type, subject=rec.subject,
                annotations=rec.annotations, architecture=rec.architecture, os=rec.os, created=stamp, updated=stamp,
                content=rec.content,
            )

    def delete_manifest(self, repo_id: int, digest: str) -> list[str]:
        with self._lock:
            repo = self._repo(repo_id)
            removed = sorted(name for name, tag in repo.tags.items() if tag.digest == digest)
            for name in removed:
                del repo.tags[name]
            repo.manifests.pop(digest, None)
            repo.order.pop(digest, None)
            return removed

    def list_manifests(
        self, repo_id: int, last: str | None, limit: int | None, order: r.Order, include_hidden: bool = False
    ) -> list[r.ManifestInfo]:
        with self._lock:
            rows = [
                replace(row, content=None) for row in self._repo(repo_id).manifests.values()
                if include_hidden or row.attributes.list_enabled
            ]
        return _page(rows, "digest", last, limit, order)

    def referrers(self, repo_id: int, subject: str, artifact_type: str | None) -> list[r.ManifestInfo]:
        with self._lock:
            rows = [
                replace(row, content=None) for row in self._repo(repo_id).manifests.values()
                if row.subject == subject and (artifact_type is None or row.artifact_type == artifact_type)
            ]
        return sorted(rows, key=lambda row: row.digest)

    def locked_manifests(self, repo_id: int) -> list[r.ManifestInfo]:
        with self._lock:
            repo = self._repo(repo_id)
            locked_tags = {t.digest for t in repo.tags.values() if not _deletable(t.attributes)}
            return [m for m in repo.manifests.values() if not _deletable(m.attributes) or m.digest in locked_tags]

    def undeletable_manifest(self, repo_id: int) -> str | None:
        with self._lock:
            return next((m.digest for m in self._repo(repo_id).manifests.values() if not _deletable(m.attributes)),
                        None)

    def manifest_digests(self, repo_id: int, digests: Iterable[str]) -> set[str]:
        with self._lock:
            return set(digests) & set(self._repo(repo_id).manifests)

    def all_manifest_contents(self) -> Iterator[tuple[str, bytes]]:
        with self._lock:
            rows = [m for repo in self._repos.values() for m in repo.manifests.values()]
        for row in rows:
            yield row.media_type, row.content or b""

    def manifests_after(self, mark: r.ManifestMark, limit: int) -> list[r.StoredManifest] | None:
        """Manifests after ``mark`` in the order they were stored (places are never reused: never ``None``)."""
        with self._lock:
            rows = sorted(
                (repo.order[digest], row) for repo in self._repos.values() for digest, row in repo.manifests.items()
                if repo.order[digest] > mark.id
            )
        return [r.StoredManifest(r.ManifestMark(place, row.created), row.media_type, row.content or b"")
                for place, row in rows[:limit]]

    # tags
    def tag(self, repo_id: int, name: str) -> r.TagRecord | None:
        with self._lock:
            return self._repo(repo_id).tags.get(name)

    def put_tag(self, repo_id: int, name: str, digest: str) -> None:
        with self._lock:
            tags = self._repo(repo_id).tags
            stamp = r.now()
            old = tags.get(name)
            tags[name] = r.TagRecord(name, digest, stamp, stamp) if old is None else replace(old, digest=digest,
                                                                                          updated=stamp)

    def delete_tag(self, repo_id: int, name: str) -> None:
        with self._lock:
            self._repo(repo_id).tags.pop(name, None)

    def tags_of(self, repo_id: int, digests: list[str]) -> dict[str, list[str]]:
        with self._lock:
            tags = self._repo(repo_id).tags.values()
            return {d: sorted(t.name for t in tags if t.digest == d) for d in digests}

    def list_tags(self, repo_id: int, last: str | None, limit: int | None, order: r.Order = "none",
                  digest: str | None = None, include_hidden: bool = False) -> list[r.TagRecord]:
        with self._lock:
            rows = [
                t for t in self._repo(repo_id).tags.values()
                if (include_hidden or t.attributes.list_enabled) and (digest is None or t.digest == digest)
            ]
        return _page(rows, "name", last, limit, order)

    def undeletable_tag(self, repo_id: int, digest: str | None = None) -> str | None:
        with self._lock:
            return next(
                (t.name for t in self._repo(repo_id).tags.values()
                 if not _deletable(t.attributes) and (digest is None or t.digest == digest)),
                None,
            )

    # blob links
    def blob_link(self, repo_id: int, digest: str) -> r.BlobLink | None:
        with self._lock:
            return self._repo(repo_id).links.get(digest)

    def linked_digests(self, repo_id: int, digests: Iterable[str]) -> set[str]:
        with self._lock:
            return set(digests) & set(self._repo(repo_id).links)

    def link_blob(self, repo_id: int, digest: str, size: int) -> None:
        with self._lock:
            self._repo(repo_id).links[digest] = r.BlobLink(repo_id, digest, time.time())
            self._repo(repo_id).sizes[digest] = size

    def unlink_blob(self, repo_id: int, digest: str) -> bool:
        with self._lock:
            return self._repo(repo_id).links.pop(digest, None) is not None

    def blob_links(self) -> Iterator[r.BlobLink]:
        with self._lock:
            links = [link for repo in self._repos.values() for link in repo.links.values()]
        yield from links

    def drop_blob_links(self, digest: str) -> None:
        with self._lock:
            for repo in self._repos.values():
                repo.links.pop(digest, None)

    def blob_links_of(self, digests: Iterable[str]) -> list[r.BlobLink]:
        wanted = set(digests)
        with self._lock:
            return [link for repo in self._repos.values() for d, link in repo.links.items() if d in wanted]

    def blob_usage(self) -> tuple[int, int]:
        with self._lock:
            sizes = {d: repo.sizes[d] for repo in self._repos.values() for d in repo.links}
        return len(sizes), sum(sizes.values())



    # -- garbage collection runs --------------------------------------------------------------------------------

    def record_gc_run(self, run: r.GcRunRecord) -> None:
        with self._lock:
            self._gc_runs.append(run)

    def last_gc_run(self, kind: str) -> tuple[r.GcRunRecord, int] | None:
        with self._lock:
            runs = [run for run in self._gc_runs if run.kind == kind]
        return (runs[-1], len(runs)) if runs else None

    # -- repository-scoped tokens and scope maps ----------------------------------------------------------------

    def auth_version(self) -> int:
        return self._auth_version

    def tokens(self) -> list[r.TokenRecord]:
        with self._lock:
            return [self._tokens[name] for name in sorted(self._tokens)]

    def token(self, name: str) -> r.TokenRecord | None:
        return self._tokens.get(name)

    def add_token(self, name: str, secret_hash: str, scope_map: str | None, rules: r.Rules,
                  expires: float | None) -> r.TokenRecord:
        with self._lock:
            if name in self._tokens:
                raise ValueError(f"token {name!r} exists")
            record = r.TokenRecord(self._next_token_id, name, secret_hash, scope_map, rules, True, expires,
                                   time.time(), 1)
            self._next_token_id += 1
            self._tokens[name] = record
            self._auth_version += 1
            return record

    def update_token(self, name: str, *, scope_map: str | None, rules: r.Rules, enabled: bool,
                     expires: float | None) -> None:
        with self._lock:
            old = self._tokens.get(name)
            if old is not None:
                self._tokens[name] = replace(old, scope_map=scope_map, rules=rules, enabled=enabled,
                                                         expires=expires, generation=old.generation + 1)
            self._auth_version += 1

    def delete_token(self, name: str) -> bool:
        with self._lock:
            self._auth_version += 1
            return self._tokens.pop(name, None) is not None

    def scope_maps(self) -> list[r.ScopeMapRecord]:
        with self._lock:
            return [self._scope_maps[name] for name in sorted(self._scope_maps)]

    def scope_map(self, name: str) -> r.ScopeMapRecord | None:
        return self._scope_maps.get(name)

    def put_scope_map(self, name: str, description: str, rules: r.Rules) -> None:
        with self._lock:
            old = self._scope_maps.get(name)
            created = old.created if old is not None else time.time()
            self._scope_maps[name] = r.ScopeMapRecord(name, description, rules, created)
            self._auth_version += 1

    def delete_scope_map(self, name: str) -> bool:
        with self._lock:
            self._auth_version += 1
            return self._scope_maps.pop(name, None) is not None

    # leases
    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        now = time.time()
        with self._lock:
            current = self._leases.get(name)
            if current is not None and current[0] != holder and current[1] > now:
                return False
            self._leases[name] = (holder, now + ttl)
            return True

    def release_lease(self, name: str, holder: str) -> None:
        with self._lock:
            if self._leases.get(name, ("", 0.0))[0] == holder:
                del self._leases[name]


def _deletable(flags: r.Attributes) -> bool:
    return flags.delete_enabled and flags.write_enabled


class MemoryBlobReader:
    """A stored blob's bytes (a :class:`~.protocols.BlobReader`)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    def read_at(self, offset: int, length: int) -> bytes:
        return self._data[offset : offset + length]

    def close(self) -> None:
        """Nothing to release."""


class MemoryBlobStore:
    """A :class:`~.protocols.BlobStore` in a dictionary."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def check_writable(self) -> None:
        """Always writable."""

    def put(self, digest: Digest, data: bytes) -> None:
        """Store verified bytes as blob ``digest``."""
        self._blobs[str(digest)] = data

    def size(self, digest: Digest) -> int | None:
        data = self._blobs.get(str(digest))
        return None if data is None else len(data)

    def open(self, digest: Digest, *, redirect: bool = True) -> MemoryBlobReader | None:
        data = self._blobs.get(str(digest))
        return None if data is None else MemoryBlobReader(data)

    def read(self, digest: Digest, limit: int) -> bytes | None:
        data = self._blobs.get(str(digest))
        return data if data is not None and len(data) <= limit else None

    def delete(self, digest: Digest) -> bool:
        return self._blobs.pop(str(digest), None) is not None

    def delete_many(self, digests: list[Digest]) -> None:
        for digest in digests:
            self.delete(digest)

    def iter_sizes(self) -> Iterator[tuple[Digest, int]]:
        """Every stored blob with its size (garbage collection)."""
        for text, data in list(self._blobs.items()):
            yield Digest.parse(text), len(data)


@dataclass
class _Session:
    repository: str
    created: float
    data: bytearray = field(default_factory=bytearray)
    touched: float = 0.0
    busy: bool = False


class MemoryUploadStore:
    """A :class:`~.protocols.UploadStore` in a dictionary, committing into a :class:`MemoryBlobStore`."""

    def __init__(self, blobs: MemoryBlobStore) -> None:
        self.blobs = blobs
        self._sessions: dict[str, _Session] = {}

    def create(self, repository: str) -> r.UploadState:
        upload_id = uuid.uuid4().hex
        stamp = time.time()
        self._sessions[upload_id] = _Session(repository, stamp, touched=stamp)
        state = self.state(upload_id)
        assert state is not None
        return state

    def state(self, upload_id: str) -> r.UploadState | None:
        session = self._sessions.get(upload_id)
        if session is None:
            return None
        return r.UploadState(upload_id, session.repository, session.created, len(session.data), session.touched)

    @contextlib.contextmanager
    def _held(self, upload_id: str) -> Iterator[_Session]:
        session = self._sessions.get(upload_id)
        if session is None:
            raise UploadGoneError(upload_id)
        if session.busy:
            raise UploadBusyError(upload_id)
        session.busy = True
        try:
            yield session
        finally:
            session.busy = False

    async def append(self, upload_id: str, body: AsyncIterator[bytes], start: int | None = None) -> int:
        with self._held(upload_id) as session:
            if start is not None and start != len(session.data):
                raise UploadOffsetError(len(session.data))
            received = bytearray()
            async for chunk in body:
                received += chunk
            session.data += received  # all of the chunk or none of it
            session.touched = time.time()
            return len(session.data)

    @contextlib.asynccontextmanager
    async def sealed(self, upload_id: str, algorithm: str) -> AsyncIterator[tuple[str, int]]:
        with self._held(upload_id) as session:
            hasher = Hasher(algorithm)
            hasher.update(bytes(session.data))
            yield hasher.digest, len(session.data)

    def stage(self, upload_id: str, digest: Digest) -> None:
        """Nothing to do ahead: the commit stores the bytes."""

    def received_digest(self, upload_id: str, algorithm: str, size: int) -> str | None:
        return None  # hashed only when sealed

    def commit(self, upload_id: str, digest: Digest) -> None:
        session = self._sessions.get(upload_id)
        if session is None:
            raise UploadGoneError(upload_id)
        self.blobs.put(digest, bytes(session.data))

    def discard(self, upload_id: str) -> bool:
        return self._sessions.pop(upload_id, None) is not None

    def discard_idle(self, upload_id: str) -> bool:
        session = self._sessions.get(upload_id)
        if session is None or session.busy:
            return False
        return self.discard(upload_id)

    def sessions(self) -> Iterator[r.UploadState]:
        for upload_id in list(self._sessions):
            state = self.state(upload_id)
            if state is not None:
                yield state
