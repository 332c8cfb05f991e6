"""Copy images, indexes and artifacts between registries and OCI layout directories.

* Whole multi-arch indexes (nested ones too), or a subset of platforms with the index rewritten to list only
  those (its digest changes accordingly; the platform manifests keep theirs).
* Blobs the destination already holds are skipped; on the same registry they are mounted across
  repositories; the rest move in parallel, streamed, never whole in memory.
* Manifests are pushed as the exact bytes the source holds, children before parents, so digests are kept.
* Optionally the referrers (signatures, SBOMs) of every copied manifest, recursively, and every tag.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..oci import mediatypes as mt
from ..oci.digest import compute_digest
from ..oci.manifest import Descriptor, Manifest, Platform, parse_image_config, parse_manifest
from .progress import NoProgress, TransferProgress
from .stores import LayoutStore, ManifestBlob, RegistryStore, Store

#: How deep indexes (and chains of referrers) may nest. Real images nest one level (an index of platform
#: manifests), attestation and multi-image layouts two or three; 16 leaves ample room while a hostile
#: registry's chain of indexes costs at most 16 fetches and stays far from Python's recursion limit.
MAX_NESTING = 16


class CopyError(ValueError):
    """A copy that cannot be done as asked (no matching platform, a tag-less source with --all-tags ...)."""


@dataclass
class CopyStats:
    """Counters of one copy run."""

    blobs_copied: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    bytes_copied: int = 0
    manifests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


@dataclass
class CopiedImage:
    """One copied root: source and destination names and the digest at the destination."""

    source: str
    destination: str
    digest: str
    media_type: str
    referrers: list[str] = field(default_factory=list)


@dataclass
class CopyResult:
    """What :func:`copy_image` / :func:`copy_all_tags` did."""

    images: list[CopiedImage] = field(default_factory=list)
    stats: CopyStats = field(default_factory=CopyStats)

    def to_json(self) -> dict[str, Any]:
        return {
            "images": [
                {"source": i.source, "destination": i.destination, "digest": i.digest, "media_type": i.media_type,
                 "referrers": i.referrers}
                for i in self.images
            ],
            "blobs_copied": self.stats.blobs_copied,
            "blobs_skipped": self.stats.blobs_skipped,
            "blobs_mounted": self.stats.blobs_mounted,
            "bytes_copied": self.stats.bytes_copied,
            "manifests": self.stats.manifests,
        }


def filter_index(manifest: ManifestBlob, platforms: Sequence[Platform]) -> ManifestBlob:
    """``manifest`` (an index) rewritten to list only the children matching ``platforms`` (pure).

    Every other field of the index is kept; the children's JSON entries are kept as they were.
    """
    document = json.loads(manifest.body)
    kept = []
    for entry in document.get("manifests") or []:
        platform = Platform.from_json(entry.get("platform")) if isinstance(entry, dict) else None
        if platform is not None and any(platform.matches(p) for p in platforms):
            kept.append(entry)
    if not kept:
        wanted = ", ".join(str(p) for p in platforms)
        raise CopyError(f"the index {manifest.digest} has no manifest for {wanted}")
    document["manifests"] = kept
    body = json.dumps(document, separators=(",", ":")).encode()
    return ManifestBlob(body, manifest.media_type, compute_digest(body))


class BlobLedger:
    """Which repositories of one destination registry hold which blobs, as learnt during a run, so that a blob
    copied into one repository is mounted (not copied again) into the others, and is uploaded once even when
    several repositories want it at the same moment (the others wait for that upload, then mount).

    Shared by every :class:`Copier` writing to the same destination registry; safe across threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._present: set[tuple[str, str]] = set()
        self._holder: dict[str, str] = {}
        self._uploading: dict[str, threading.Event] = {}

    def holds(self, repository: str, digest: str) -> bool:
        """True when ``repository`` is known to hold ``digest`` (no ``HEAD`` needed)."""
        with self._lock:
            return (repository, digest) in self._present

    def record(self, repository: str, digest: str) -> None:
        """``repository`` holds ``digest`` now."""
        with self._lock:
            self._present.add((repository, digest))
            self._holder.setdefault(digest, repository)

    @contextlib.contextmanager
    def upload_turn(self, digest: str) -> Iterator[str | None]:
        """Wait while another repository uploads ``digest``; then yield a repository holding it (mount from it),
        or ``None``: the caller uploads it, and others wanting it wait until the ``with`` block ends."""
        while True:
            with self._lock:
                holder = self._holder.get(digest)
                running = self._uploading.get(digest) if holder is None else None
                if holder is None and running is None:
                    mine = self._uploading[digest] = threading.Event()
            if holder is not None:
                yield holder
                return
            if running is None:
                break
            running.wait()
        try:
            yield None
        finally:
            with self._lock:
                del self._uploading[digest]
            mine.set()


class Copier:
    """Copies from ``source`` to ``destination`` (shared stats, progress and worker pool size); blobs it has
    copied once are not looked at again by later copies of the same copier.

    ``skip_existing``: child manifests (and referrers) the destination already holds are not fetched or written
    again, and what is under them is not looked at (a registry holds a manifest only with everything it
    names). ``ledger``: the blobs other repositories of a registry destination hold, to mount from.
    """

    def __init__(
        self, source: Store, destination: Store, progress: TransferProgress | None = None, concurrency: int = 4,
        stats: CopyStats | None = None, max_depth: int = MAX_NESTING, *, skip_existing: bool = False,
        ledger: BlobLedger | None = None,
    ) -> None:
        self.max_depth = max_depth
        self.source = source
        self.destination = destination
        self.progress = progress or NoProgress()
        self.skip_existing = skip_existing
        self.ledger = ledger if isinstance(destination, RegistryStore) else None
        # A destination that is one stream (an archive) takes blobs one at a time: parallel downloads would
        # only wait, their connections open, for their turn.
        self.concurrency = 1 if getattr(destination, "serial_writes", False) else max(1, concurrency)
        self.stats = stats if stats is not None else CopyStats()
        self._done_blobs: set[str] = set()

    # -- walking -------------------------------------------------------------------------------------------------

    def collect(self, root: ManifestBlob) -> tuple[list[ManifestBlob], list[Descriptor]]:
        """Every manifest under ``root`` (children first, root last) and every distinct blob they need."""
        manifests: list[ManifestBlob] = []
        blobs: dict[str, Descriptor] = {}
        seen: set[str] = set()

        def visit(item: ManifestBlob, depth: int) -> None:
            if item.digest in seen:
                return
            if depth > self.max_depth:
                raise CopyError(
                    f"refusing {root.digest}: indexes nested more than {self.max_depth} levels deep"
                )
            seen.add(item.digest)
            parsed = parse_manifest(item.body, item.media_type)
            for child in parsed.manifests:
                if self.skip_existing and child.digest not in seen and self._destination_has(child.digest):
                    seen.add(child.digest)
                    continue
                visit(self.source.fetch_manifest(child.digest), depth + 1)
            for blob in parsed.blobs():
                blobs.setdefault(blob.digest, blob)
            manifests.append(item)

        visit(root, 0)
        return manifests, list(blobs.values())

    def _destination_has(self, digest: str) -> bool:
        has_manifest = getattr(self.destination, "has_manifest", None)
        return bool(has_manifest(digest)) if callable(has_manifest) else False

    # -- blobs ---------------------------------------------------------------------------------------------------

    def copy_blob(self, descriptor: Descriptor) -> None:
        digest = descriptor.digest
        ledger = self.ledger
        repository = getattr(self.destination, "repository", "")
        if ledger is not None and ledger.holds(repository, digest):
            self._skipped(descriptor, "exists")
            return
        if self.destination.has_blob(digest):
            self._skipped(descriptor, "exists")
            return
        if ledger is None:
            self._transfer(descriptor)
            return
        with ledger.upload_turn(digest) as holder:
            assert isinstance(self.destination, RegistryStore)
            if holder == repository:
                self._skipped(descriptor, "exists")
                return
            if holder is not None and self.destination.mount_from(self.destination.sibling(holder), digest):
                self._skipped(descriptor, "mounted")
                return
            self._transfer(descriptor)

    def _skipped(self, descriptor: Descriptor, reason: str) -> None:
        self.progress.blob_skipped(descriptor.digest, descriptor.size, reason)
        self.stats.add(**{"blobs_mounted" if reason == "mounted" else "blobs_skipped": 1})
        self._record(descriptor.digest)

    def _record(self, digest: str) -> None:
        if self.ledger is not None:
            self.ledger.record(getattr(self.destination, "repository", ""), digest)

    def _transfer(self, descriptor: Descriptor) -> None:
        """Mount ``descriptor``'s blob from a source repository of the same registry, else move its bytes."""
        digest = descriptor.digest
        if (
            isinstance(self.destination, RegistryStore)
            and isinstance(self.source, RegistryStore)
            and self.destination.mount_from(self.source, digest)
        ):
            self._skipped(descriptor, "mounted")
            return
        self.progress.blob_started(digest, descriptor.size, _short_type(descriptor.media_type))
        advance = functools.partial(self.progress.blob_advanced, digest)
        if isinstance(self.destination, LayoutStore) and isinstance(self.source, RegistryStore):
            self.destination.download_from(self.source, descriptor, advance)
        else:
            with self.source.open_blob(digest, descriptor.size) as stream:
                self.destination.write_blob(stream, descriptor, advance)
        self.progress.blob_finished(digest)
        self.stats.add(blobs_copied=1, bytes_copied=descriptor.size)
        self._record(digest)

    def copy_blobs(self, blobs: Sequence[Descriptor]) -> None:
        pending = [b for b in blobs if b.digest not in self._done_blobs]
        if not pending:
            return
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            list(pool.map(self.copy_blob, pending))
        self._done_blobs.update(b.digest for b in pending)

    # -- manifests -----------------------------------------------------------------------------------------------

    def copy_tree(self, root: ManifestBlob, tag: str | None) -> list[ManifestBlob]:
        """Copy ``root`` with everything under it; tag it ``tag`` at the destination. Returns the manifests."""
        manifests, blobs = self.collect(root)
        self.copy_blobs(blobs)
        for item in manifests:
            self.destination.write_manifest(item, tag, root=item.digest == root.digest)
            self.stats.add(manifests=1)
        return manifests

    def copy_referrers(self, digests: Sequence[str], copied: list[str], seen: set[str], depth: int = 1) -> None:
        """Copy the referrers of ``digests`` (and theirs, recursively) untagged; record their digests.

        With ``skip_existing``, referrers the destination already lists are not copied again (theirs are
        still looked for)."""
        if depth > self.max_depth:
            raise CopyError(f"refusing referrers nested more than {self.max_depth} levels deep")
        for digest in digests:
            present = {d.digest for d in self.destination.referrers(digest)} if self.skip_existing else set()
            for descriptor in self.source.referrers(digest):
                if descriptor.digest in seen:
                    continue
                seen.add(descriptor.digest)
                if descriptor.digest in present:
                    self.copy_referrers([descriptor.digest], copied, seen, depth + 1)
                    continue
                referrer = self.source.fetch_manifest(descriptor.digest)
                tree = self.copy_tree(referrer, None)
                copied.append(referrer.digest)
                self.copy_referrers([m.digest for m in tree], copied, seen, depth + 1)

    def copy(self, reference: str, root: ManifestBlob, tag: str | None, *, referrers: bool = False) -> CopiedImage:
        """Copy ``root`` (what :func:`prepare_root` made of ``reference``) tagged ``tag`` at the destination
        (untagged when ``None``), with its referrers when asked."""
        tree = self.copy_tree(root, tag)
        copied_referrers: list[str] = []
        if referrers:
            self.copy_referrers([m.digest for m in tree], copied_referrers, {m.digest for m in tree})
        return CopiedImage(
            source=self.source.describe(reference),
            destination=self.destination.describe(tag or root.digest),
            digest=root.digest,
            media_type=root.media_type,
            referrers=copied_referrers,
        )


def _check_image_platform(source: Store, manifest: Manifest, platforms: Sequence[Platform]) -> None:
    """A single image copied with ``--platform`` must be one of those platforms (when its config says)."""
    if manifest.config is None or manifest.config.media_type not in mt.CONFIG_TYPES:
        return
    with source.open_blob(manifest.config.digest, manifest.config.size) as stream:
        config = parse_image_config(stream.read(mt.MAX_MANIFEST_SIZE))
    if config is None or config.platform.os is None:
        return
    if not any(config.platform.matches(p) for p in platforms):
        wanted = ", ".join(str(p) for p in platforms)
        raise CopyError(f"the image is for {config.platform}, not {wanted}")


def _one_image(source: Store, root: ManifestBlob, what: str) -> ManifestBlob:
    """The one image under index ``root`` (nested indexes followed); :class:`CopyError` when there are several."""
    parsed = parse_manifest(root.body, root.media_type)
    if not parsed.is_index:
        return root
    if len(parsed.manifests) != 1:
        listed = ", ".join(str(c.platform) for c in parsed.manifests if c.platform) or "no platforms listed"
        raise CopyError(f"{what} is a multi-platform index and the destination holds one image: choose one with "
                        f"--platform ({listed})")
    return _one_image(source, source.fetch_manifest(parsed.manifests[0].digest), what)


def _short_type(media_type: str) -> str:
    if "config" in media_type:
        return "config"
    if "layer" in media_type:
        return "layer"
    return "blob"


def prepare_root(source: Store, reference: str, destination: Store, platforms: Sequence[Platform] = ()
                 ) -> ManifestBlob:
    """The manifest to copy for ``reference``: with ``platforms``, an index rewritten to list only the matching
    platforms (a single image must be one of them); for a ``single_image`` destination (a docker-archive), the
    one image of the (filtered) index."""
    root = source.resolve(reference)
    if platforms:
        parsed = parse_manifest(root.body, root.media_type)
        if parsed.is_index:
            root = filter_index(root, platforms)
        else:
            _check_image_platform(source, parsed, platforms)
    if getattr(destination, "single_image", False):
        root = _one_image(source, root, source.describe(reference))
    return root


def copy_image(
    source: Store,
    source_reference: str,
    destination: Store,
    destination_tag: str | None = None,
    *,
    platforms: Sequence[Platform] = (),
    referrers: bool = False,
    progress: TransferProgress | None = None,
    concurrency: int = 4,
    stats: CopyStats | None = None,
    max_depth: int = MAX_NESTING,
) -> CopiedImage:
    """Copy the image, index or artifact ``source_reference`` (a tag or digest) from ``source`` to
    ``destination``, tagged ``destination_tag`` there (untagged when ``None``).

    With ``platforms``, an index is rewritten to list only the matching platforms (a single image is copied
    as it is). With ``referrers``, the referrers of every copied manifest come along, recursively. A destination
    whose ``single_image`` attribute is true (a docker-archive) gets the one image the (filtered) index lists.
    Indexes (and referrer chains) nested deeper than ``max_depth`` are refused with :class:`CopyError`.
    """
    copier = Copier(source, destination, progress, concurrency, stats, max_depth)
    root = prepare_root(source, source_reference, destination, platforms)
    return copier.copy(source_reference, root, destination_tag, referrers=referrers)


def copy_all_tags(
    source: Store,
    destination: Store,
    *,
    platforms: Sequence[Platform] = (),
    referrers: bool = False,
    progress: TransferProgress | None = None,
    concurrency: int = 4,
) -> CopyResult:
    """Copy every tag of ``source`` to the same tag at ``destination``."""
    result = CopyResult()
    tags = sorted(source.tags())
    if not tags:
        raise CopyError(f"{source.describe()} has no tags")
    for tag in tags:
        result.images.append(
            copy_image(source, tag, destination, tag, platforms=platforms, referrers=referrers, progress=progress,
                       concurrency=concurrency, stats=result.stats)
        )
    return result
