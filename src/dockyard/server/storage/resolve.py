"""Resolving ``name`` + tag or digest to a manifest from one snapshot of a metadata store, with its own queries (the
stores that gain nothing from a single statement use this; PostgreSQL's store answers with one statement)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import records as r

if TYPE_CHECKING:
    from .protocols import MetadataStore

#: What :func:`resolve_manifest` answers: the repository, the tag (when one was asked for) and the manifest, each
#: ``None`` when missing.
Resolved = tuple[r.RepositoryRecord | None, r.TagRecord | None, r.ManifestInfo | None]


def resolve_manifest(meta: MetadataStore, name: str, tag: str | None, digest: str | None) -> Resolved:
    """Repository ``name``, its tag ``tag`` (``None``: the reference is ``digest``) and the manifest (with content)
    the tag or ``digest`` names, read in one snapshot (:meth:`MetadataStore.read`) with the store's own queries."""
    with meta.read():
        repo = meta.repository(name)
        if repo is None:
            return None, None, None
        found = meta.tag(repo.id, tag) if tag is not None else None
        if tag is not None:
            digest = found.digest if found is not None else None
        manifest = meta.manifest(repo.id, digest, with_content=True) if digest is not None else None
    return repo, found, manifest
