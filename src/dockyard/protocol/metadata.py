"""The metadata operations both twins offer: :class:`~dockyard.protocol.acr_metadata.AcrMetadata` (``/acr/v1``)
and :class:`~dockyard.protocol.oci_metadata.OciMetadata` (derived from ``/v2`` alone). Operations pick one once,
after detecting whether the registry offers ``/acr/v1``."""

from __future__ import annotations

from typing import Protocol

from ..models import ArtifactManifestProperties, ArtifactTagProperties, RepositoryProperties
from .instructions import Gen
from .paging import PageFetcher


class Metadata(Protocol):
    """Repository, tag and manifest metadata of one registry."""

    def catalog_pages(self, results_per_page: int | None = None, last: str | None = None) -> PageFetcher[str]:
        """Pages of repository names."""
        ...

    def repository_properties(self, repository: str) -> Gen[RepositoryProperties]:
        """Properties of ``repository``."""
        ...

    def delete_repository(self, repository: str) -> Gen[None]:
        """Delete ``repository``; a missing one is not an error."""
        ...

    def tag_listing(
        self, repository: str, order: str | None, results_per_page: int | None, last: str | None, digest: str | None
    ) -> PageFetcher[ArtifactTagProperties]:
        """Pages of the tags of ``repository`` with their properties."""
        ...

    def tag_properties(self, repository: str, tag: str) -> Gen[ArtifactTagProperties]:
        """Properties of ``tag``."""
        ...

    def delete_tag(self, repository: str, tag: str) -> Gen[None]:
        """Remove ``tag``; a missing one is not an error."""
        ...

    def manifest_listing(
        self, repository: str, order: str | None, results_per_page: int | None, last: str | None
    ) -> PageFetcher[ArtifactManifestProperties]:
        """Pages of the manifests of ``repository`` with their properties."""
        ...

    def properties_of_manifest(self, repository: str, tag_or_digest: str) -> Gen[ArtifactManifestProperties]:
        """Properties of the manifest a tag points at, or of a digest."""
        ...

    def digest_for(self, repository: str, tag_or_digest: str) -> Gen[str]:
        """The digest a tag points at (a digest as it is)."""
        ...
