"""Static types of ``dockyard.aio.ContainerRegistryClient``.

The runtime binds the operations declared once in :mod:`dockyard.protocol.api`; this stub spells out each
method's signature for type checkers and IDEs. Generated from the runtime signatures by
``python -m tests.sdk.stubgen``: do not edit by hand.
"""

import os
from collections.abc import Callable
from typing import IO, Any, overload

from typing_extensions import Self

from ..models import (
    ArtifactManifestOrder,
    ArtifactManifestProperties,
    ArtifactTagOrder,
    ArtifactTagProperties,
    GetManifestResult,
    RepositoryProperties,
)
from ..oci.manifest import Descriptor
from .download import AsyncDownloadBlobStream
from .paging import AsyncItemPaged

class ContainerRegistryClient:
    """The async client for one container registry; same arguments as :class:`dockyard.ContainerRegistryClient`."""

    def __init__(
        self,
        endpoint: str,
        credential: Any = None,
        *,
        audience: str = "https://containerregistry.azure.net",
        api_version: str | None = None,
        max_concurrency: int = 4,
        timeout: float = 60.0,
        retry_total: int = 5,
        http2: bool = False,
        allow_insecure_credentials: bool = False,
        transport: Any = None,
        max_pages: int = 10000,
        **kwargs: Any,
    ) -> None: ...
    @property
    def endpoint(self) -> str:
        """The registry URL this client talks to."""
    async def download_blob(
        self,
        repository: str,
        digest: str,
        *,
        offset: int = 0,
        progress: Callable[[int], None] | None = None,
        size: int | None = None,
        **kwargs: Any,
    ) -> AsyncDownloadBlobStream:
        """An async stream of the blob's bytes, verified against ``digest`` at the end (when ``offset`` is 0)."""
    async def close(self) -> None:
        """Close the connection pool."""
    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def has_acr_api(self, **kwargs: Any) -> bool:
        """Whether the registry offers ACR's ``/acr/v1`` metadata API (asked once per client)."""
    def list_repository_names(
        self,
        *,
        results_per_page: int | None = None,
        last: str | None = None,
        **kwargs: Any,
    ) -> AsyncItemPaged[str]:
        """Repository names, page by page (``/acr/v1/_catalog``, or ``/v2/_catalog`` on plain registries)."""
    async def get_repository_properties(self, repository: str, **kwargs: Any) -> RepositoryProperties:
        """Properties of ``repository``."""
    @overload
    async def update_repository_properties(
        self,
        repository: str,
        properties: RepositoryProperties,
        **kwargs: Any,
    ) -> RepositoryProperties: ...
    @overload
    async def update_repository_properties(
        self,
        repository: str,
        *,
        can_delete: bool | None = None,
        can_list: bool | None = None,
        can_read: bool | None = None,
        can_write: bool | None = None,
        **kwargs: Any,
    ) -> RepositoryProperties: ...
    async def delete_repository(self, repository: str, **kwargs: Any) -> None:
        """Delete ``repository`` with its tags and manifests; a missing repository is not an error."""
    def list_tag_properties(
        self,
        repository: str,
        *,
        order_by: ArtifactTagOrder | str | None = None,
        results_per_page: int | None = None,
        last: str | None = None,
        digest: str | None = None,
        **kwargs: Any,
    ) -> AsyncItemPaged[ArtifactTagProperties]:
        """Tags of ``repository`` with their properties, optionally ordered by last update."""
    async def get_tag_properties(self, repository: str, tag: str, **kwargs: Any) -> ArtifactTagProperties:
        """Properties of ``tag`` in ``repository``."""
    @overload
    async def update_tag_properties(
        self,
        repository: str,
        tag: str,
        properties: ArtifactTagProperties,
        **kwargs: Any,
    ) -> ArtifactTagProperties: ...
    @overload
    async def update_tag_properties(
        self,
        repository: str,
        tag: str,
        *,
        can_delete: bool | None = None,
        can_list: bool | None = None,
        can_read: bool | None = None,
        can_write: bool | None = None,
        **kwargs: Any,
    ) -> ArtifactTagProperties: ...
    async def delete_tag(self, repository: str, tag: str, **kwargs: Any) -> None:
        """Remove ``tag`` (the manifest stays); a missing tag is not an error."""
    def list_manifest_properties(
        self,
        repository: str,
        *,
        order_by: ArtifactManifestOrder | str | None = None,
        results_per_page: int | None = None,
        last: str | None = None,
        **kwargs: Any,
    ) -> AsyncItemPaged[ArtifactManifestProperties]:
        """Manifests of ``repository`` with their properties (on plain registries: those reachable from tags)."""
    async def get_manifest_properties(
        self,
        repository: str,
        tag_or_digest: str,
        **kwargs: Any,
    ) -> ArtifactManifestProperties:
        """Properties of the manifest a tag points at, or of a digest."""
    @overload
    async def update_manifest_properties(
        self,
        repository: str,
        tag_or_digest: str,
        properties: ArtifactManifestProperties,
        **kwargs: Any,
    ) -> ArtifactManifestProperties: ...
    @overload
    async def update_manifest_properties(
        self,
        repository: str,
        tag_or_digest: str,
        *,
        can_delete: bool | None = None,
        can_list: bool | None = None,
        can_read: bool | None = None,
        can_write: bool | None = None,
        **kwargs: Any,
    ) -> ArtifactManifestProperties: ...
    async def delete_manifest(self, repository: str, tag_or_digest: str, **kwargs: Any) -> None:
        """Delete a manifest (a tag is resolved first: a missing tag raises, a missing digest does not)."""
    async def get_manifest(self, repository: str, tag_or_digest: str, **kwargs: Any) -> GetManifestResult:
        """The manifest bytes and parsed JSON, verified against its digest."""
    async def download_manifest(self, repository: str, tag_or_digest: str, **kwargs: Any) -> GetManifestResult:
        """The manifest bytes and parsed JSON, verified against its digest."""
    async def set_manifest(
        self,
        repository: str,
        manifest: dict[str, Any] | bytes | IO[bytes],
        *,
        tag: str | None = None,
        media_type: str = "application/vnd.oci.image.manifest.v1+json",
        **kwargs: Any,
    ) -> str:
        """Push a manifest (a dict, exact bytes or a stream) by tag or digest; returns its digest."""
    async def upload_manifest(
        self,
        repository: str,
        manifest: dict[str, Any] | bytes | IO[bytes],
        *,
        tag: str | None = None,
        media_type: str = "application/vnd.oci.image.manifest.v1+json",
        **kwargs: Any,
    ) -> str:
        """Push a manifest (a dict, exact bytes or a stream) by tag or digest; returns its digest."""
    async def get_manifest_descriptor(self, repository: str, tag_or_digest: str, **kwargs: Any) -> Descriptor:
        """Media type, digest and size of a manifest (one ``HEAD``)."""
    async def list_referrers(
        self,
        repository: str,
        digest: str,
        *,
        artifact_type: str | None = None,
        **kwargs: Any,
    ) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``digest`` (signatures, SBOMs ...), optionally of one artifact type."""
    async def upload_blob(
        self,
        repository: str,
        data: IO[bytes] | bytes | str | os.PathLike[str],
        *,
        digest: str | None = None,
        size: int | None = None,
        progress: Callable[[int], None] | None = None,
        **kwargs: Any,
    ) -> tuple[str, int]:
        """Upload a blob from bytes, a path or a stream; returns ``(digest, size)``."""
    async def delete_blob(self, repository: str, digest: str, **kwargs: Any) -> None:
        """Delete a blob; a missing blob is not an error."""
    async def abort_uploads(self, **kwargs: Any) -> int:
        """Stop this client's uploads and delete their open upload sessions; returns how many were deleted."""
    async def blob_exists(self, repository: str, digest: str, **kwargs: Any) -> bool:
        """True when the registry holds the blob (one ``HEAD``)."""
    async def mount_blob(self, repository: str, digest: str, from_repository: str, **kwargs: Any) -> bool:
        """Mount a blob from another repository of the same registry; False when the registry refused."""
    async def download_blob_to_file(
        self,
        repository: str,
        digest: str,
        path: str | os.PathLike[str],
        *,
        progress: Callable[[int], None] | None = None,
        size: int | None = None,
        **kwargs: Any,
    ) -> int:
        """Download a blob to ``path`` (never a partial file); big blobs as parallel ranges. Returns the size."""
