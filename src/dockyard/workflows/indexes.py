"""Retagging and building multi-arch indexes from manifests already in a registry, without moving layers.

* :func:`add_tags` points more tags at the manifest a reference names: in the same repository its exact
  bytes are pushed again under each tag (nothing else moves); in another repository of the same registry the
  blobs are mounted (copied only where the registry refuses to mount) and the manifests pushed as they are.
* :func:`create_index` builds an OCI image index from existing manifests, each listed with the platform its
  image config declares; :func:`append_to_index` adds manifests to an existing index, replacing an entry of
  the same platform. Sources in another repository of the same registry are mounted into the index's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..oci import mediatypes as mt
from ..oci.manifest import Descriptor, Platform
from .copy import CopyStats, copy_image
from .images import fetch_manifest, image_config_of, ref_name
from .stores import RegistryStore


class IndexBuildError(ValueError):
    """An index that cannot be built as asked (two manifests for one platform, a target that is no index ...)."""


@dataclass(frozen=True)
class Source:
    """A manifest in a repository of the registry the work happens on: ``repository`` and a tag or digest."""

    repository: str
    reference: str

    def __str__(self) -> str:
        return ref_name(self.repository, self.reference)


@dataclass
class TagResult:
    """What :func:`add_tags` did: the source manifest and the ``repo:tag`` names now pointing at it."""

    source: str
    digest: str
    media_type: str
    tags: list[str] = field(default_factory=list)
    blobs_mounted: int = 0
    blobs_copied: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "digest": self.digest, "media_type": self.media_type, "tags": self.tags,
                "blobs_mounted": self.blobs_mounted, "blobs_copied": self.blobs_copied}


def _bring_over(client: Any, registry_key: str, source: Source, repository: str, tag: str | None) -> tuple[int, int]:
    """Copy ``source`` (with everything under it) into ``repository`` of the same registry, mounting blobs;
    tag it ``tag`` there (untagged when ``None``). Returns ``(blobs mounted, blobs copied)``."""
    stats = CopyStats()
    copy_image(RegistryStore(client, source.repository, registry_key), source.reference,
               RegistryStore(client, repository, registry_key), tag, stats=stats)
    return stats.blobs_mounted, stats.blobs_copied


def add_tags(client: Any, registry_key: str, source: Source, targets: Sequence[tuple[str, str]]) -> TagResult:
    """Point each ``(repository, tag)`` of ``targets`` at the manifest ``source`` names (same registry).

    ``registry_key`` is the registry's URL (what makes cross-repository mounts possible).
    """
    root = fetch_manifest(client, source.repository, source.reference)
    result = TagResult(str(source), root.digest, root.media_type)
    for repository, tag in targets:
        if repository == source.repository:
            client.upload_manifest(repository, root.body, tag=tag, media_type=root.media_type)
        else:
            mounted, copied = _bring_over(client, registry_key, Source(source.repository, root.digest), repository,
                                          tag)
            result.blobs_mounted += mounted
            result.blobs_copied += copied
        result.tags.append(f"{repository}:{tag}")
    return result


# -- indexes ------------------------------------------------------------------------------------------------------


@dataclass
class IndexResult:
    """What :func:`create_index` / :func:`append_to_index` pushed."""

    reference: str
    digest: str
    media_type: str
    manifests: list[Descriptor]
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    previous_digest: str | None = None
    blobs_mounted: int = 0
    blobs_copied: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "media_type": self.media_type,
            "manifests": [entry_json(d) for d in self.manifests],
            "added": self.added,
            "replaced": self.replaced,
            "previous_digest": self.previous_digest,
            "blobs_mounted": self.blobs_mounted,
            "blobs_copied": self.blobs_copied,
        }


def entry_json(descriptor: Descriptor) -> dict[str, Any]:
    """An index entry in the CLI's snake_case form."""
    return {"digest": descriptor.digest, "media_type": descriptor.media_type, "size": descriptor.size,
            "platform": str(descriptor.platform) if descriptor.platform else None}


def _entries_of(client: Any, registry_key: str, repository: str, source: Source,
                counts: IndexResult) -> list[Descriptor]:
    """The index entries ``source`` contributes, after bringing it into ``repository``: an image (or artifact)
    is one entry, with the platform of its image config; an index contributes each of its entries."""
    root = fetch_manifest(client, source.repository, source.reference)
    if source.repository != repository:
        mounted, copied = _bring_over(client, registry_key, Source(source.repository, root.digest), repository, None)
        counts.blobs_mounted += mounted
        counts.blobs_copied += copied
    if root.manifest.is_index:
        return list(root.manifest.manifests)
    config = image_config_of(client, source.repository, root.manifest)
    platform = config.platform if config is not None and config.platform.os else None
    return [Descriptor(media_type=root.media_type, digest=root.digest, size=len(root.body), platform=platform,
                       artifact_type=root.manifest.artifact_type)]


def _same_platform(a: Platform | None, b: Platform | None) -> bool:
    return a is not None and b is not None and (a.os, a.architecture, a.variant, a.os_version) == (
        b.os, b.architecture, b.variant, b.os_version)


def _merge(existing: list[dict[str, Any]], new: Sequence[Descriptor], *, replace: bool,
           result: IndexResult) -> list[dict[str, Any]]:
    """``existing`` index entries (JSON) with ``new`` added at the end: the same digest is kept once; an entry
    of the same platform is replaced in place when ``replace`` (else refused)."""
    entries = list(existing)
    for descriptor in new:
        parsed = [Descriptor.from_json(e, "manifests[]") for e in entries]
        if any(p.digest == descriptor.digest for p in parsed):
            continue
        clash = [i for i, p in enumerate(parsed) if _same_platform(p.platform, descriptor.platform)]
        if clash and not replace:
            raise IndexBuildError(f"two manifests for {descriptor.platform}: {parsed[clash[0]].digest} and "
                              f"{descriptor.digest}")
        result.replaced.extend(parsed[i].digest for i in clash)
        for i in reversed(clash[1:]):
            del entries[i]
        if clash:  # the new entry takes the place of the one it replaces
            entries[clash[0]] = descriptor.to_json()
        else:
            entries.append(descriptor.to_json())
        result.added.append(descriptor.digest)
    return entries


def _push_index(client: Any, repository: str, tag: str, document: dict[str, Any], media_type: str,
                result: IndexResult) -> IndexResult:
    body = json.dumps(document, separators=(",", ":")).encode()
    result.digest = client.upload_manifest(repository, body, tag=tag, media_type=media_type)
    result.media_type = media_type
    result.manifests = [Descriptor.from_json(e, "manifests[]") for e in document["manifests"]]
    return result


def create_index(client: Any, registry_key: str, repository: str, tag: str, sources: Sequence[Source], *,
                 annotations: Mapping[str, str] | None = None) -> IndexResult:
    """Push an OCI image index tagged ``repository:tag`` listing the manifests ``sources`` name (see the
    module docstring). Two sources of the same platform are refused."""
    if not sources:
        raise IndexBuildError("an index needs at least one manifest")
    result = IndexResult(f"{repository}:{tag}", "", mt.OCI_INDEX, [])
    new: list[Descriptor] = []
    for source in sources:
        new.extend(_entries_of(client, registry_key, repository, source, result))
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                                "manifests": _merge([], new, replace=False, result=result)}
    if annotations:
        document["annotations"] = dict(annotations)
    return _push_index(client, repository, tag, document, mt.OCI_INDEX, result)


def append_to_index(client: Any, registry_key: str, repository: str, tag: str, sources: Sequence[Source], *,
                    replace: bool = True) -> IndexResult:
    """Add the manifests ``sources`` name to the index tagged ``repository:tag`` and push it under the same tag.

    An entry of the same platform is replaced (``replace=False``: refused); a manifest already listed is kept
    once. Every other field of the index stays as it was.
    """
    if not sources:
        raise IndexBuildError("name at least one manifest to append")
    current = fetch_manifest(client, repository, tag)
    if not current.manifest.is_index:
        raise IndexBuildError(f"{repository}:{tag} is not an index but {current.media_type}; "
                          "build one with 'dockyard index create'")
    result = IndexResult(f"{repository}:{tag}", "", current.media_type, [], previous_digest=current.digest)
    new: list[Descriptor] = []
    for source in sources:
        new.extend(_entries_of(client, registry_key, repository, source, result))
    if current.media_type == mt.DOCKER_MANIFEST_LIST:
        foreign = [d.digest for d in new if d.media_type not in (mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST)]
        if foreign:
            raise IndexBuildError(f"{repository}:{tag} is a Docker manifest list, which can list only Docker "
                              f"manifests; {foreign[0]} is not one")
    document = json.loads(current.body)
    document["manifests"] = _merge(list(document.get("manifests") or []), new, replace=replace, result=result)
    return _push_index(client, repository, tag, document, current.media_type, result)
