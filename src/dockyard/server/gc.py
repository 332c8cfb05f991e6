"""Mark-and-sweep garbage collection of blobs and upload sessions, safe while replicas serve and clients push.

No lock is held for long: the work happens in small batches.

1. **Mark**, without the write lock: every config and layer digest named by a stored manifest, read page by page
   in the order the manifests were stored (:meth:`~.storage.protocols.MetadataStore.manifests_after`), remembering
   the last one read.
2. **Candidates**, without a lock: every stored blob and every linked digest that the mark did not name.
3. **Sweep**, :data:`BATCH` candidates per write transaction (``meta.write()``, the same lock every push takes).
   Inside it, before anything is removed, the batch is checked again against what may have arrived since:

   - *a manifest push naming a candidate* (the push checks its blobs' links and bytes under the write lock): the
     manifests stored since the last one read are read first and marked, so a manifest acknowledged before this
     batch keeps its blobs; one pushed after it finds the link gone and is refused (``MANIFEST_BLOB_UNKNOWN``),
     never acknowledged with a missing blob.
   - *an upload commit of a candidate digest* (the commit writes the bytes and links them in one write
     transaction): a link made after ``started - min_age`` keeps the digest, so a commit before the batch is
     seen; a commit after it writes the bytes again.
   - *a cross-repository mount* (checked and linked under the write lock): the new link is young, so the blob
     stays; a mount after the batch finds the source link gone and the client uploads instead.
   - *a blob pushed after the mark started*: its link is younger than the run (with any ``min_age``, 0 included;
     "younger" allows :data:`CLOCK_SLACK` for coarse file times).
   - an old link (older than ``min_age``) no manifest needs is removed, as ``DELETE`` of the blob would; the bytes
     go only when no link of the digest remains.

   If the store can no longer say which manifests came after the last one read (SQLite reuses the id of the
   newest row when it is deleted), the mark starts again (at most :data:`MARK_RETRIES` times).
4. **Upload sessions** untouched for ``min_age`` seconds before the run started are removed, except one a request
   is writing to at that moment; a session touched since the run started (less :data:`CLOCK_SLACK`) is kept,
   whatever ``min_age`` is.

Order of the removal, inside each batch's transaction: links are deleted (not yet committed), then the objects,
then the transaction commits. The objects are deleted while the write lock is held, so no upload commit of the
same digest can write the bytes and link them in between (deleting after the commit would lose that acknowledged
upload). A crash after the objects went but before the commit rolls the link removal back: links to missing bytes
remain, but no manifest names those digests (checked under the same lock), a manifest push naming them is refused
because the bytes are checked too, blob ``HEAD``/``GET`` answer 404, and the next run removes the links. No state
leaves a manifest pointing at a blob that is gone while the registry claims to have it.

:func:`verify` re-hashes every blob file and moves the ones whose bytes no longer match their digest to
``quarantine/``; their links and the manifests naming them stay, so pushing the right bytes again repairs them.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..oci.digest import Digest, Hasher
from ..oci.manifest import InvalidManifestError, parse_manifest
from .registry import expire_uploads
from .storage.blobs import WRITE_BATCH, FileBlobStore
from .storage.factory import open_stores
from .storage.protocols import BlobStore, MetadataStore, UploadStore
from .storage.records import NO_MANIFEST, BlobLink, GcRunRecord, ManifestMark
from .storage.stores import open_metadata

#: Candidates checked and removed per write transaction: the longest the write lock is held by a collection.
BATCH = 250
#: Seconds before a run's start that still count as "during the run": file modification times lag the clock by
#: up to a scheduler tick. (Clocks of different hosts differ more: that is what ``min_age`` covers.)
CLOCK_SLACK = 0.1
#: The longest pause between two batches (each pause lasts as long as the batch before it held the lock).
MAX_PAUSE = 0.1
#: Manifests read per page while marking (each page its own short read).
MARK_PAGE = 500
#: How often a run starts its mark again when the store can no longer place it, before giving up.
MARK_RETRIES = 5
#: The ``kind`` of a run of ``dockyard gc`` and of one the server schedules (``--gc-interval``).
COMMAND = "command"
SCHEDULED = "scheduled"


class GcAbortedError(Exception):
    """A collection stopped before its end (the server is stopping, the schedule's lease was lost, or the
    registry kept changing under its mark); every batch done so far stays done."""


@dataclass
class GcReport:
    """What a collection removed (or would remove, in a dry run)."""

    blobs: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    bytes: int = 0
    kept: int = 0
    #: Write transactions the sweep took (batches).
    batches: int = 0


@dataclass(frozen=True)
class GcRun:
    """The last run of one kind on a registry's metadata, and how many runs of that kind there were."""

    finished: float
    duration: float
    runs: int
    blobs: int
    bytes: int
    uploads: int
    holder: str = ""

    @classmethod
    def of(cls, record: GcRunRecord, runs: int) -> GcRun:
        return cls(record.finished, max(0.0, record.finished - record.started), runs, record.blobs, record.bytes,
                   record.uploads, record.holder)


def holder_name() -> str:
    """Who runs a collection: host name and process id (recorded with the run, and the schedule's lease holder)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def last_runs(meta: MetadataStore) -> dict[str, GcRun]:
    """The last run of each kind recorded in the metadata (what ``/metrics`` shows on every replica)."""
    found: dict[str, GcRun] = {}
    for kind in (COMMAND, SCHEDULED):
        last = meta.last_gc_run(kind)
        if last is not None:
            found[kind] = GcRun.of(*last)
    return found


def record_run(meta: MetadataStore, kind: str, holder: str, started: float, report: GcReport) -> GcRunRecord:
    """Note a finished run in the metadata (one short write)."""
    run = GcRunRecord(kind, holder, started, time.time(), len(report.blobs), report.bytes, len(report.uploads))
    with meta.write():
        meta.record_gc_run(run)
    return run


@dataclass(frozen=True)
class CorruptBlob:
    """A blob file whose bytes hash to ``actual`` instead of its name, ``digest``."""

    digest: str
    actual: str
    size: int
    #: Where the file was moved (``None`` in a dry run).
    quarantined: Path | None


def _hash_file(path: Path, digest: Digest) -> str:
    hasher = Hasher(digest.algorithm)
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(WRITE_BATCH):
            hasher.update(chunk)
    return hasher.digest


def verify(data_dir: Path, *, dry_run: bool = False, metadata_url: str | None = None) -> list[CorruptBlob]:
    """Re-hash every blob of ``data_dir``; move each that does not match its digest to ``<data>/quarantine/``.

    Hashing runs without locks; the move happens under the database's write lock and only when the file is
    still the one hashed (an upload that committed the right bytes meanwhile replaced it: nothing to do).
    """
    data_dir = Path(data_dir)
    meta = open_metadata(metadata_url, data_dir)
    blobs = FileBlobStore(data_dir)
    found: list[CorruptBlob] = []
    try:
        for digest, path in list(blobs.iter_all()):
            try:
                before = path.stat()
                actual = _hash_file(path, digest)
            except FileNotFoundError:
                continue
            if actual == str(digest):
                continue
            moved: Path | None = None
            if not dry_run:
                with meta.write():
                    try:
                        now = path.stat()
                    except FileNotFoundError:
                        continue
                    identity = (now.st_ino, now.st_size, now.st_mtime_ns)
                    if identity != (before.st_ino, before.st_size, before.st_mtime_ns):
                        continue
                    moved = blobs.quarantine(digest)
            found.append(CorruptBlob(str(digest), actual, before.st_size, moved))
    finally:
        meta.close()
    return found


def _references(media_type: str, content: bytes) -> Iterator[str]:
    """The blob digests a manifest names (config and layers); none for bytes that do not parse."""
    try:
        manifest = parse_manifest(content, media_type)
    except InvalidManifestError:
        return
    if manifest.config is not None:
        yield manifest.config.digest
    for layer in manifest.layers:
        yield layer.digest


class _Mark:
    """The digests the manifests read so far name, and the last manifest read."""

    def __init__(self) -> None:
        self.marked: set[str] = set()
        self.position: ManifestMark = NO_MANIFEST
        self.manifests = 0

    def advance(self, meta: MetadataStore) -> bool:
        """Read (and mark) every manifest stored after :attr:`position`, a page per read (inside a write
        transaction: that transaction's view). False when the store can no longer place the position."""
        while True:
            with meta.read():
                page = meta.manifests_after(self.position, MARK_PAGE)
            if page is None:
                return False
            if not page:
                return True
            for stored in page:
                self.marked.update(_references(stored.media_type, stored.content))
            self.position = page[-1].mark
            self.manifests += len(page)


#: Called inside each batch's write transaction (e.g. to renew the schedule's lease); False stops the run.
BatchHook = Callable[[MetadataStore], bool]


def _candidates(meta: MetadataStore, blobs: BlobStore, mark: _Mark) -> tuple[list[str], dict[str, int]]:
    """(sorted digests no manifest read so far names: stored or linked; the stored blobs' sizes)."""
    stored = {str(digest): size for digest, size in blobs.iter_sizes()}
    with meta.read():
        linked = {link.digest for link in meta.blob_links()}
    return sorted((stored.keys() | linked) - mark.marked), stored


def _sweep_batch(
    meta: MetadataStore, blobs: BlobStore, mark: _Mark, batch: list[str], stored: dict[str, int], *,
    cutoff: float, dry_run: bool, report: GcReport,
) -> None:
    """Check ``batch`` again and remove what is still garbage; runs inside one write transaction (a read one in a
    dry run). See the module docstring for each race this check closes."""
    if not mark.advance(meta):  # manifests pushed since the mark (or the last batch) keep their blobs
        raise _Restart
    links: dict[str, list[BlobLink]] = {}
    for link in meta.blob_links_of(batch):
        links.setdefault(link.digest, []).append(link)
    doomed: list[Digest] = []
    for digest in batch:
        if digest in mark.marked:
            continue
        young = False
        for link in links.get(digest, ()):
            if link.created >= cutoff:  # uploaded or mounted within min_age, or after this run started
                young = True
            elif not dry_run:
                meta.unlink_blob(link.repo_id, digest)
        if young:
            continue
        try:
            doomed.append(Digest.parse(digest))
        except ValueError:
            continue
        if digest in stored:
            report.blobs.append(digest)
            report.bytes += stored[digest]
    if doomed and not dry_run:
        # Under the write lock and before the commit: see "Order of the removal" above.
        blobs.delete_many(doomed)


class _Restart(Exception):
    """The mark must start again (the store could not place its position)."""


def sweep(
    meta: MetadataStore, blobs: BlobStore, uploads: UploadStore, *, min_age: float, dry_run: bool = False,
    batch_size: int = BATCH, on_batch: BatchHook | None = None, progress: Callable[[str], None] | None = None,
) -> GcReport:
    """One collection on open stores (the ``dockyard gc`` command and the server's schedule both run this).

    ``on_batch`` runs inside every batch's write transaction and may stop the run (:class:`GcAbortedError`);
    ``progress`` receives a line when the sweep starts."""
    started = time.time()
    # What changed within CLOCK_SLACK before the run counts as changed during it: file times are coarse.
    cutoff = started - max(0.0, min_age) - CLOCK_SLACK
    report = GcReport()  # batches done before a restart stay done, and counted
    for _attempt in range(MARK_RETRIES):
        mark = _Mark()
        if not mark.advance(meta):
            continue
        candidates, stored = _candidates(meta, blobs, mark)
        if progress is not None:
            progress(f"marked {len(mark.marked)} blob(s) in {mark.manifests} manifest(s); checking "
                     f"{len(candidates)} candidate(s) in batches of {batch_size}")
        try:
            for i in range(0, len(candidates), batch_size):
                with meta.read() if dry_run else meta.write():
                    began = time.monotonic()  # the lock is held from here (waiting for it is not counted)
                    if on_batch is not None and not on_batch(meta):
                        raise GcAbortedError("the collection was stopped")
                    _sweep_batch(meta, blobs, mark, candidates[i : i + batch_size], stored, cutoff=cutoff,
                                 dry_run=dry_run, report=report)
                report.batches += 1
                if not dry_run and i + batch_size < len(candidates):
                    # Leave the lock free as long as the batch held it: SQLite's waiting writers poll for it
                    # (PostgreSQL queues them), so a collection never starves pushes.
                    time.sleep(min(time.monotonic() - began, MAX_PAUSE))
        except _Restart:
            continue
        report.kept = len(stored) - len(report.blobs)
        break
    else:
        raise GcAbortedError(f"the manifests kept changing under the mark ({MARK_RETRIES} attempts); run again")
    # Sessions touched after the run started are younger than "now" here, so they stay whatever min_age is.
    report.uploads = expire_uploads(uploads, min_age, now=started - CLOCK_SLACK, dry_run=dry_run)
    return report


def collect(
    data_dir: Path, *, dry_run: bool = False, min_age: float = 3600.0, metadata_url: str | None = None,
    storage_url: str | None = None, batch_size: int = BATCH, progress: Callable[[str], None] | None = None,
) -> GcReport:
    """``dockyard gc``: collect garbage in ``data_dir`` (metadata at ``metadata_url``, blobs and uploads where
    ``storage_url`` says; defaults: ``data_dir``); returns what was (or would be) removed. A real run (not a dry
    run) is recorded in the metadata, where every replica's ``/metrics`` shows it."""
    data_dir = Path(data_dir)
    started = time.time()
    meta = open_metadata(metadata_url, data_dir)
    try:
        blobs, uploads = open_stores(storage_url, data_dir)
        report = sweep(meta, blobs, uploads, min_age=min_age, dry_run=dry_run, batch_size=batch_size,
                       progress=progress)
        if not dry_run:
            record_run(meta, COMMAND, holder_name(), started, report)
    finally:
        meta.close()
    return report
