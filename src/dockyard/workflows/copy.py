"""Copy images, indexes and artifacts between registries and OCI layout directories.

* Whole multi-arch indexes (nested ones too), or a subset of platforms with the index rewritten to list only
  those (its digest changes accordingly; the platform manifests keep theirs).
* Blobs the destination already holds are skipped; on the same registry they are mounted across
  repositories; the rest move in parallel, streamed, never whole in memory.
* Manifests are pushed as the exact bytes the source holds, children before parents, so digests are kept.
* Optionally the referrers (signatures, SBOMs) of every copied manifest, recursively, and every tag.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Sequence
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


class _Copier:
    """One copy run from ``source`` to ``destination`` (shared stats, progress and worker pool size)."""

    def __init__(
        self, source: Store, destination: Store, progress: TransferProgress, concurrency: int, stats: CopyStats,
        max_depth: int = MAX_NESTING,
    ) -> None:
        self.max_depth = max_depth
        self.source = source
        self.destination = destination
        self.progress = progress
        # A destination that is one stream (an archive) takes blobs one at a time: parallel downloads would
        # only wait, their connections open, for their turn.
        self.concurrency = 1 if getattr(destination, "serial_writes", False) else max(1, concurrency)
        self.stats = stats
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
                visit(self.source.fetch_manifest(child.digest), depth + 1)
            for blob in parsed.blobs():
                blobs.setdefault(blob.digest, blob)
            manifests.append(item)

        visit(root, 0)
        return manifests, list(blobs.values())

    # -- blobs ---------------------------------------------------------------------------------------------------

    def copy_blob(self, descriptor: Descriptor) -> None:
        digest = descriptor.digest
        if self.destination.has_blob(digest):
            self.progress.blob_skipped(digest, descriptor.size, "exists")
            self.stats.add(blobs_skipped=1)
            return
        if (
            isinstance(self.destination, RegistryStore)
            and isinstance(self.source, RegistryStore)
            and self.destination.mount_from(self.source, digest)
        ):
            self.progress.blob_skipped(digest, descriptor.size, "mounted")
            self.stats.add(blobs_mounted=1)
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
        """Copy the referrers of ``digests`` (and theirs, recursively) untagged; record their digests."""
        if depth > self.max_depth:
            raise CopyError(f"refusing referrers nested more than {self.max_depth} levels deep")
        for digest in digests:
            for descriptor in self.source.referrers(digest):
                if descriptor.digest in seen:
                    continue
                seen.add(descriptor.digest)
                referrer = self.source.fetch_manifest(descriptor.digest)
                tree = self.copy_tree(referrer, None)
                copied.append(referrer.digest)
                self.copy_referrers([m.digest for m in tree], copied, seen, depth + 1)


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
    copier = _Copier(source, destination, progress or NoProgress(), concurrency, stats or CopyStats(), max_depth)
    root = source.resolve(source_reference)
    if platforms:
        parsed = parse_manifest(root.body, root.media_type)
        if parsed.is_index:
            root = filter_index(root, platforms)
        else:
            _check_image_platform(source, parsed, platforms)
    if getattr(destination, "single_image", False):
        root = _one_image(source, root, source.describe(source_reference))
    tree = copier.copy_tree(root, destination_tag)
    copied_referrers: list[str] = []
    if referrers:
        copier.copy_referrers([m.digest for m in tree], copied_referrers, {m.digest for m in tree})
    return CopiedImage(
        source=source.describe(source_reference),
        destination=destination.describe(destination_tag or root.digest),
        digest=root.digest,
        media_type=root.media_type,
        referrers=copied_referrers,
    )


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
