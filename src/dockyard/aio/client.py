"""``ContainerRegistryClient``: the azure-containerregistry 1.2 API (and dockyard's additions).

This module, under ``dockyard/aio/``, is the source of truth: ``dockyard/_sync/client.py`` is generated from
it by ``scripts/unasync.py``. Each method is a short body that runs one protocol generator from
:mod:`dockyard.protocol.operations` over this flavour's driver; listings return an item pager.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Any, overload

from typing_extensions import Self

from ..credentials import DEFAULT_AUDIENCE
from ..models import (
    ArtifactManifestOrder,
    ArtifactManifestProperties,
    ArtifactTagOrder,
    ArtifactTagProperties,
    GetManifestResult,
    RepositoryProperties,
)
from ..oci import mediatypes as mt
from ..oci.manifest import Descriptor
from ..protocol.session import DEFAULT_MAX_PAGES
from ..transport.config import build_config
from .download import AsyncDownloadBlobStream
from .driver import AsyncDriver
from .paging import AsyncItemPaged


class ContainerRegistryClient:
    """A client for one container registry: ACR (``/acr/v1``) or any OCI distribution registry.

    The ``dockyard.aio`` flavour's methods are coroutines (listings excepted) and take async credentials too.
    """

    def __init__(
        self,
        endpoint: str,
        credential: Any = None,
        *,
        audience: str = DEFAULT_AUDIENCE,
        api_version: str | None = None,
        max_concurrency: int = 4,
        timeout: float = 60.0,
        retry_total: int = 5,
        http2: bool = False,
        allow_insecure_credentials: bool = False,
        transport: Any = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        **kwargs: Any,
    ) -> None:
        """A client for the registry at ``endpoint``.

        :param endpoint: the registry URL, or ``host[:port]``: then ``http://`` for loopback hosts
            (``localhost``, ``127.0.0.0/8``, ``::1``) and ``https://`` for every other host.
        :param credential: ``None`` (anonymous), an object with ``get_token`` (Entra ID),
            :class:`dockyard.credentials.BasicCredential` or :class:`dockyard.credentials.DockerConfigCredential`.
        :keyword audience: Entra ID audience (scope ``<audience>/.default``).
        :keyword api_version: ``2021-07-01`` (default) or ``2019-08-15-preview``.
        :keyword max_concurrency: parallel range requests of ``download_blob_to_file``.
        :keyword timeout: seconds to wait for the network.
        :keyword retry_total: retries of transient failures (408/429/5xx, dropped connections).
        :keyword http2: use HTTP/2 where the registry offers it.
        :keyword allow_insecure_credentials: allow sending credentials over plain HTTP to other hosts.
        :keyword transport: an ``httpx`` transport (for tests; it then decides proxies and TLS itself).
        :keyword connection_verify: ``True`` (default: the CA bundle of ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``
            or ``SSL_CERT_FILE``, else the system's), ``False`` (no verification), or a CA bundle path.
        :keyword proxies: ``{"http": URL, "https": URL}`` (and ``"no_proxy": hosts``) as in azure-core; without
            it, ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY`` apply, read once, when the client is built
            (not with a custom ``transport``, nor with ``trust_env=False``).
        :keyword logging_enable: log each request's and response's headers (secrets redacted) at ``DEBUG`` on
            ``azure.core.pipeline.policies.http_logging_policy``.
        :keyword max_pages: the most pages one listing follows (default 10,000); a listing whose ``Link``
            header comes back to a page already read, or goes on past this, raises ``PagingError``.
        """
        self._config = build_config(
            endpoint, credential, audience=audience, api_version=api_version, max_concurrency=max_concurrency,
            timeout=timeout, retry_total=retry_total, http2=http2,
            allow_insecure_credentials=allow_insecure_credentials, transport=transport, max_pages=max_pages,
            options=kwargs,
        )
        self._ops = self._config.operations
        self._driver = AsyncDriver(self._config)

    @property
    def endpoint(self) -> str:
        """The registry URL this client talks to."""
        return self._ops.session.endpoint

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint!r})"

    async def close(self) -> None:
        """Close the connection pool."""
        await self._driver.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- capability detection ----------------------------------------------------------------------

    async def has_acr_api(self, **kwargs: Any) -> bool:
        """Whether the registry offers ACR's ``/acr/v1`` metadata API (asked once per client)."""
        return await self._driver.run(self._ops.has_acr_api(**kwargs))

    # -- repositories ------------------------------------------------------------------------------

    def list_repository_names(
        self, *, results_per_page: int | None = None, last: str | None = None, **kwargs: Any
    ) -> AsyncItemPaged[str]:
        """Repository names, page by page (``/acr/v1/_catalog``, or ``/v2/_catalog`` on plain registries)."""
        pager = self._ops.list_repository_names(results_per_page=results_per_page, last=last, **kwargs)
        return AsyncItemPaged(self._driver.run, pager)

    async def get_repository_properties(self, repository: str, **kwargs: Any) -> RepositoryProperties:
        """Properties of ``repository``."""
        return await self._driver.run(self._ops.get_repository_properties(repository, **kwargs))

    @overload
    async def update_repository_properties(
        self, repository: str, properties: RepositoryProperties, **kwargs: Any
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

    async def update_repository_properties(
        self,
        repository: str,
        properties: RepositoryProperties | None = None,
        *,
        can_delete: bool | None = None,
        can_list: bool | None = None,
        can_read: bool | None = None,
        can_write: bool | None = None,
        **kwargs: Any,
    ) -> RepositoryProperties:
        """Set lock flags of ``repository`` from a ``RepositoryProperties`` and/or ``can_*`` keywords."""
        operation = self._ops.update_repository_properties(
            repository, properties, can_delete=can_delete, can_list=can_list, can_read=can_read,
            can_write=can_write, **kwargs,
        )
        return await self._driver.run(operation)

    async def delete_repository(self, repository: str, **kwargs: Any) -> None:
        """Delete ``repository`` with its tags and manifests; a missing repository is not an error."""
        await self._driver.run(self._ops.delete_repository(repository, **kwargs))

    # -- tags ---------------------------------------------------------------------------------------

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
        pager = self._ops.list_tag_properties(
            repository, order_by=order_by, results_per_page=results_per_page, last=last, digest=digest, **kwargs
        )
        return AsyncItemPaged(self._driver.run, pager)

    async def get_tag_properties(self, repository: str, tag: str, **kwargs: Any) -> ArtifactTagProperties:
        """Properties of ``tag`` in ``repository``."""
        return await self._driver.run(self._ops.get_tag_properties(repository, tag, **kwargs))

    @overload
    async def update_tag_properties(
        self, repository: str, tag: str, properties: ArtifactTagProperties, **kwargs: Any
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

    async def update_tag_properties(
        self,
        repository: str,
        tag: str,
        properties: ArtifactTagProperties | None = None,
        *,
        can_delete: bool | None = None,
        can_list: bool | None = None,
        can_read: bool | None = None,
        can_write: bool | None = None,
        **kwargs: Any,
    ) -> ArtifactTagProperties:
        """Set lock flags of a tag from an ``ArtifactTagProperties`` and/or ``can_*`` keywords."""
        operation = self._ops.update_tag_properties(
            repository, tag, properties, can_delete=can_delete, can_list=can_list, can_read=can_read,
            can_write=can_write, **kwargs,
        )
        return await self._driver.run(operation)

    async def delete_tag(self, repository: str, tag: str, **kwargs: Any) -> None:
        """Remove ``tag`` (the manifest stays); a missing tag is not an error."""
        await self._driver.run(self._ops.delete_tag(repository, tag, **kwargs))

    # -- manifests ----------------------------------------------------------------------------------

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
        pager = self._ops.list_manifest_properties(
            repository, order_by=order_by, results_per_page=results_per_page, last=last, **kwargs
        )
        return AsyncItemPaged(self._driver.run, pager)

    async def get_manifest_properties(
        self, repository: str, tag_or_digest: str, **kwargs: Any
    ) -> ArtifactManifestProperties:
        """Properties of the manifest a tag points at, or of a digest."""
        return await self._driver.run(self._ops.get_manifest_properties(repository, tag_or_digest, **kwargs))

    @overload
    async def update_manifest_properties(
        self, repository: str, tag_or_digest: str, properties: ArtifactManifestProperties, **kwargs: Any
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

    async def update_manifest_properties(
        self,
        repository: str,
        tag_or_digest: str,
        properties: ArtifactManifestProperties | None = None,
        *,
        can_delete: bool | None = None,
        can_list: bool | None = None,
        can_read: bool | None = None,
        can_write: bool | None = None,
        **kwargs: Any,
    ) -> ArtifactManifestProperties:
        """Set lock flags of a manifest from an ``ArtifactManifestProperties`` and/or ``can_*`` keywords."""
        operation = self._ops.update_manifest_properties(
            repository, tag_or_digest, properties, can_delete=can_delete, can_list=can_list, can_read=can_read,
            can_write=can_write, **kwargs,
        )
        return await self._driver.run(operation)

    async def delete_manifest(self, repository: str, tag_or_digest: str, **kwargs: Any) -> None:
        """Delete a manifest (a tag is resolved first: a missing tag raises, a missing digest does not)."""
        await self._driver.run(self._ops.delete_manifest(repository, tag_or_digest, **kwargs))

    async def get_manifest(self, repository: str, tag_or_digest: str, **kwargs: Any) -> GetManifestResult:
        """The manifest bytes and parsed JSON, verified against its digest."""
        return await self._driver.run(self._ops.get_manifest(repository, tag_or_digest, **kwargs))

    async def download_manifest(self, repository: str, tag_or_digest: str, **kwargs: Any) -> GetManifestResult:
        """The manifest bytes and parsed JSON, verified against its digest (same as ``get_manifest``)."""
        return await self._driver.run(self._ops.get_manifest(repository, tag_or_digest, **kwargs))

    async def set_manifest(
        self,
        repository: str,
        manifest: dict[str, Any] | bytes | IO[bytes],
        *,
        tag: str | None = None,
        media_type: str = mt.OCI_MANIFEST,
        **kwargs: Any,
    ) -> str:
        """Push a manifest (a dict, exact bytes or a stream) by tag or digest; returns its digest."""
        operation = self._ops.set_manifest(repository, manifest, tag=tag, media_type=media_type, **kwargs)
        return await self._driver.run(operation)

    async def upload_manifest(
        self,
        repository: str,
        manifest: dict[str, Any] | bytes | IO[bytes],
        *,
        tag: str | None = None,
        media_type: str = mt.OCI_MANIFEST,
        **kwargs: Any,
    ) -> str:
        """Push a manifest (a dict, exact bytes or a stream) by tag or digest; returns its digest (same as
        ``set_manifest``)."""
        operation = self._ops.set_manifest(repository, manifest, tag=tag, media_type=media_type, **kwargs)
        return await self._driver.run(operation)

    async def get_manifest_descriptor(self, repository: str, tag_or_digest: str, **kwargs: Any) -> Descriptor:
        """Media type, digest and size of a manifest (one ``HEAD``)."""
        return await self._driver.run(self._ops.get_manifest_descriptor(repository, tag_or_digest, **kwargs))

    async def list_referrers(
        self, repository: str, digest: str, *, artifact_type: str | None = None, **kwargs: Any
    ) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``digest`` (signatures, SBOMs ...), optionally of one artifact type."""
        operation = self._ops.list_referrers(repository, digest, artifact_type=artifact_type, **kwargs)
        return await self._driver.run(operation)

    # -- blobs --------------------------------------------------------------------------------------

    async def upload_blob(
        self,
        repository: str,
        data: IO[bytes] | bytes | str | os.PathLike[str],
        *,
        digest: str | None = None,
        size: int | None = None,
        progress: Callable[[int], None] | None = None,
        check_exists: bool = True,
        **kwargs: Any,
    ) -> tuple[str, int]:
        """Upload a blob from bytes, a path or a stream; returns ``(digest, size)``.

        With ``digest``, a blob the registry already has is not sent (one ``HEAD`` first; ``check_exists=False``
        leaves that ``HEAD`` out when the caller has just asked)."""
        operation = self._ops.upload_blob(repository, data, digest=digest, size=size, progress=progress,
                                          check_exists=check_exists, **kwargs)
        return await self._driver.run(operation)

    async def delete_blob(self, repository: str, digest: str, **kwargs: Any) -> None:
        """Delete a blob; a missing blob is not an error."""
        await self._driver.run(self._ops.delete_blob(repository, digest, **kwargs))

    async def abort_uploads(self, **kwargs: Any) -> int:
        """Stop this client's transfers and delete their open upload sessions; returns how many were deleted.

        Requests in flight in other threads fail at once (their connections are shut down: a stalled download and
        a running upload alike), and every later request raises ``TransferCancelledError``: this is for Ctrl-C
        handlers, on the way out. Safe to call again, for a session opened while the transfers were stopping.
        """
        return await self._driver.run(self._ops.abort_uploads(**kwargs))

    async def blob_exists(self, repository: str, digest: str, **kwargs: Any) -> bool:
        """True when the registry holds the blob (one ``HEAD``)."""
        return await self._driver.run(self._ops.blob_exists(repository, digest, **kwargs))

    async def mount_blob(self, repository: str, digest: str, from_repository: str, **kwargs: Any) -> bool:
        """Mount a blob from another repository of the same registry; False when the registry refused."""
        return await self._driver.run(self._ops.mount_blob(repository, digest, from_repository, **kwargs))

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
        """Download a blob to ``path`` (never a partial file); big blobs as parallel ranges. Returns the size.

        ``size`` (the descriptor's) caps what is read; without it, the registry's declared size does.
        """
        operation = self._ops.download_blob_to_file(repository, digest, path, progress=progress, size=size, **kwargs)
        return await self._driver.run(operation)

    async def download_blob(
        self,
        repository: str,
        digest: str,
        *,
        offset: int = 0,
        progress: Callable[[int], None] | None = None,
        size: int | None = None,
        verify: bool = True,
        **kwargs: Any,
    ) -> AsyncDownloadBlobStream:
        """A stream of the blob's bytes, verified against ``digest`` at the end (when ``offset`` is 0).

        Never more than the blob's size is read: ``size`` (the descriptor's) when given, else the registry's.
        ``verify=False`` skips the digest check (the size checks stay): only for a caller that hashes the bytes
        itself and refuses them on a mismatch (e.g. stores them through a verifying upload session).
        """
        state = self._ops.blob_read(repository, digest, offset=offset, progress=progress, size=size, verify=verify)
        return AsyncDownloadBlobStream(self._driver, state)
