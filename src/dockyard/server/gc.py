"""Mark-and-sweep garbage collection of blobs and upload sessions.

Mark: every config and layer digest named by a stored manifest. Sweep, while holding the database's write
lock (so no manifest push or upload commit interleaves): blob links that nothing references and that are older
than ``min_age`` are dropped, then every blob file with no reference and no remaining link is deleted. Upload
sessions untouched for ``min_age`` seconds are removed, except one a request is writing to at that moment.

:func:`verify` re-hashes every blob file and moves the ones whose bytes no longer match their digest to
``quarantine/``; their links and the manifests naming them stay, so pushing the right bytes again repairs them.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..oci.digest import Digest, Hasher
from ..oci.manifest import InvalidManifestError, parse_manifest
from .registry import expire_uploads
from .storage.blobs import WRITE_BATCH, FileBlobStore
from .storage.factory import open_stores
from .storage.protocols import MetadataStore
from .storage.stores import open_metadata


@dataclass
class GcReport:
    """What a collection removed (or would remove, in a dry run)."""

    blobs: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    bytes: int = 0
    kept: int = 0


#: Where ``dockyard gc`` notes its last run in a data directory (the running server's ``/metrics`` reads it).
LAST_RUN_FILE = "gc-last-run.json"


@dataclass(frozen=True)
class GcRun:
    """The last ``dockyard gc`` run on a data directory, and how many runs there were."""

    finished: float
    duration: float
    runs: int
    blobs: int
    bytes: int
    uploads: int


def last_run(data_dir: Path) -> GcRun | None:
    """The last recorded run (``None`` when there was none, or its record is unreadable)."""
    try:
        raw = json.loads((Path(data_dir) / LAST_RUN_FILE).read_text())
        return GcRun(**{name: raw[name] for name in GcRun.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_run(data_dir: Path, started: float, report: GcReport) -> GcRun:
    """Note a finished run in ``data_dir`` (replaced atomically, so a reader sees the old or the new record)."""
    previous = last_run(data_dir)
    finished = time.time()
    run = GcRun(finished, max(0.0, finished - started), (previous.runs if previous else 0) + 1, len(report.blobs),
                report.bytes, len(report.uploads))
    fd, temp = tempfile.mkstemp(prefix=".gc-last-run-", dir=data_dir)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(run), f)
        os.replace(temp, Path(data_dir) / LAST_RUN_FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
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


def _referenced(meta: MetadataStore) -> set[str]:
    marked: set[str] = set()
    for media_type, content in meta.all_manifest_contents():
        try:
            manifest = parse_manifest(content, media_type)
        except InvalidManifestError:
            continue
        if manifest.config is not None:
            marked.add(manifest.config.digest)
        marked.update(layer.digest for layer in manifest.layers)
    return marked


def collect(
    data_dir: Path, *, dry_run: bool = False, min_age: float = 3600.0, metadata_url: str | None = None,
    storage_url: str | None = None,
) -> GcReport:
    """Collect garbage in ``data_dir`` (metadata at ``metadata_url``, blobs and uploads where ``storage_url`` says;
    defaults: ``data_dir``); returns what was (or would be) removed. A real run (not a dry run) is recorded for the
    server's metrics (see :func:`record_run`)."""
    data_dir = Path(data_dir)
    started = time.time()
    meta = open_metadata(metadata_url, data_dir)
    blobs, uploads = open_stores(storage_url, data_dir)
    report = GcReport()
    now = time.time()
    try:
        with meta.write():
            marked = _referenced(meta)
            linked: set[str] = set()
            for link in list(meta.blob_links()):
                if link.digest in marked or now - link.created < min_age:
                    linked.add(link.digest)
                elif not dry_run:
                    meta.unlink_blob(link.repo_id, link.digest)
            for digest, size in list(blobs.iter_sizes()):
                text = str(digest)
                if text in marked or text in linked:
                    report.kept += 1
                    continue
                report.blobs.append(text)
                report.bytes += size
                if not dry_run:
                    blobs.delete(digest)
                    meta.drop_blob_links(text)
    finally:
        meta.close()
    report.uploads = expire_uploads(uploads, min_age, now=now, dry_run=dry_run)
    if not dry_run:
        record_run(data_dir, started, report)
    return report
