"""Every client operation as a protocol generator: the one implementation the sync and async clients share.

Each public method returns a generator (or a :class:`Pager` for listings) that a driver runs. Metadata
operations use ACR's ``/acr/v1`` API when the registry offers it (detected once) and plain OCI
``/v2`` endpoints otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Any, TypeVar

from ..errors import (
    ClientAuthenticationError,
    HttpResponseError,
    UnsupportedOperationError,
)
from ..models import (
    ArtifactManifestOrder,
    ArtifactManifestProperties,
    ArtifactTagOrder,
    ArtifactTagProperties,
    GetManifestResult,
    RepositoryProperties,
)
from ..oci import mediatypes as mt
from ..oci.locks import lock_values
from ..oci.manifest import Descriptor
from . import blobs, download, manifests, paths
from .acr_metadata import AcrMetadata
from .download import BlobReadState
from .instructions import Gen, Request
from .metadata import Metadata
from .oci_metadata import OciMetadata
from .paging import PageFetcher, Pager
from .responses import raise_for_status
from .session import Session
from .wire import locks_body

T = TypeVar("T")

def _order(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value)).lower()




class Operations:
    """The registry operations over one :class:`Session`; every method is sans-I/O."""

    def __init__(self, session: Session, api_version: str | None = None, max_concurrency: int = 4) -> None:
        if api_version is not None and api_version not in paths.SUPPORTED_API_VERSIONS:
            choices = "\n".join(paths.SUPPORTED_API_VERSIONS)
            raise ValueError(f"Unsupported API version '{api_version}'. Please select from:\n{choices}")
        self.session = session
        self.api_version = api_version or paths.API_VERSION
        self.acr = AcrMetadata(session, self.api_version)
        self.oci = OciMetadata(session)
        self.max_concurrency = max_concurrency

    # -- capability detection ----------------------------------------------------------------------

    def has_acr_api(self, **kwargs: Any) -> Gen[bool]:
        """Whether the registry offers ACR's ``/acr/v1`` metadata API (asked once per client)."""
        if self.session.acr_api is None:
            url = self.session.url(paths.ACR_CATALOG, {"n": 1})
            try:
                response = yield from self.session.send(Request("GET", url, {"Accept": "application/json"}))
            except ClientAuthenticationError:
                # The route exists but wants more than these credentials get (e.g. anonymous pull only).
                self.session.acr_api = True
            else:
                self.session.acr_api = response.status != 404 and response.status < 500
        return bool(self.session.acr_api)

    def metadata(self) -> Gen[Metadata]:
        """The metadata twin for this registry: ``/acr/v1`` where offered, else what ``/v2`` tells."""
        if (yield from self.has_acr_api()):
            return self.acr
        return self.oci

    def _require_acr(self, what: str) -> Gen[AcrMetadata]:
        if not (yield from self.has_acr_api()):
            raise UnsupportedOperationError(
                f"{what} needs the ACR metadata API (/acr/v1: lock flags can_delete/can_write/can_list/can_read), "
                f"which {self.session.registry} does not offer"
            )
        return self.acr

    def _listing(self, pages: Callable[[Metadata], PageFetcher[T]]) -> Pager[T]:
        """A listing over the registry's metadata twin; string continuation tokens are ``Link`` URLs (read as
        ``/acr/v1`` pages), others belong to the twin that made them."""

        fetchers: dict[int, PageFetcher[T]] = {}  # one per twin and listing: client-side pages keep their list

        def fetcher_of(metadata: Metadata) -> PageFetcher[T]:
            return fetchers.setdefault(id(metadata), pages(metadata))

        def fetch(token: Any) -> Gen[tuple[list[T], Any]]:
            if token is None and self.session.acr_api is None:
                result = yield from self._first_page_unprobed(fetcher_of)
                return result
            metadata: Metadata = self.acr if isinstance(token, str) else (yield from self.metadata())
            result = yield from fetcher_of(metadata)(token)
            return result

        return Pager(fetch, self.session.max_pages)

    def _first_page_unprobed(self, fetcher_of: Callable[[Metadata], PageFetcher[T]]) -> Gen[tuple[list[T], Any]]:
        """A listing's first page while it is not yet known whether the registry offers ``/acr/v1``: asked there
        straight away, since an answer settles the question without the ``has_acr_api`` probe (two requests
        fewer with token auth: the probe and the catalog-scoped token it needs). Only a refused page falls back
        to the probe, which decides as it always did: an ``/acr/v1`` registry's refusal is the caller's error,
        a plain registry's listing goes on over ``/v2``."""
        try:
            result = yield from fetcher_of(self.acr)(None)
        except HttpResponseError:
            if (yield from self.has_acr_api()):
                raise
        else:
            self.session.acr_api = True
            return result
        result = yield from fetcher_of(self.oci)(None)
        return result

    # -- repositories ------------------------------------------------------------------------------

    def list_repository_names(
        self, *, results_per_page: int | None = None, last: str | None = None, **kwargs: Any
    ) -> Pager[str]:
        """Repository names, page by page (``/acr/v1/_catalog``, or ``/v2/_catalog`` on plain registries)."""
        return self._listing(lambda metadata: metadata.catalog_pages(results_per_page, last))

    def get_repository_properties(self, repository: str, **kwargs: Any) -> Gen[RepositoryProperties]:
        """Properties of ``repository``."""
        metadata = yield from self.metadata()
        result = yield from metadata.repository_properties(repository)
        return result

    def update_repository_properties(
        self,
        repository: str,
        properties: RepositoryProperties | None = None,
        *,
        can_delete: bool | None = None,
        can_list: bool | None = None,
        can_read: bool | None = None,
        can_write: bool | None = None,
        **kwargs: Any,
    ) -> Gen[RepositoryProperties]:
        """Set lock flags of ``repository`` from a ``RepositoryProperties`` and/or ``can_*`` keywords."""
        acr = yield from self._require_acr("update_repository_properties")
        body = locks_body(properties, lock_values(can_delete, can_write, can_read, can_list))
        result = yield from acr.update_repository(repository, body)
        return result

    def delete_repository(self, repository: str, **kwargs: Any) -> Gen[None]:
        """Delete ``repository`` with its tags and manifests; a missing repository is not an error."""
        metadata = yield from self.metadata()
        yield from metadata.delete_repository(repository)

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
    ) -> Pager[ArtifactTagProperties]:
        """Tags of ``repository`` with their properties, optionally ordered by last update."""
        order = _order(order_by)
        return self._listing(lambda metadata: metadata.tag_listing(repository, order, results_per_page, last, digest))

    def get_tag_properties(self, repository: str, tag: str, **kwargs: Any) -> Gen[ArtifactTagProperties]:
        """Properties of ``tag`` in ``repository``."""
        metadata = yield from self.metadata()
        result = yield from metadata.tag_properties(repository, tag)
        return result

    def update_tag_properties(
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
    ) -> Gen[ArtifactTagProperties]:
        """Set lock flags of a tag from an ``ArtifactTagProperties`` and/or ``can_*`` keywords."""
        acr = yield from self._require_acr("update_tag_properties")
        body = locks_body(properties, lock_values(can_delete, can_write, can_read, can_list))
        result = yield from acr.update_tag(repository, tag, body)
        return result

    def delete_tag(self, repository: str, tag: str, **kwargs: Any) -> Gen[None]:
        """Remove ``tag`` (the manifest stays); a missing tag is not an error.

        ACR: ``DELETE /acr/v1/<name>/_tags/<tag>``. Elsewhere the OCI tag ``DELETE``; where the registry
        refuses it (CNCF distribution), the tag is moved to a unique placeholder manifest which is then
        deleted by digest.
        """
        metadata = yield from self.metadata()
        yield from metadata.delete_tag(repository, tag)

    # -- manifests ---------------------------------------------------------------------------------

    def list_manifest_properties(
        self,
        repository: str,
        *,
        order_by: ArtifactManifestOrder | str | None = None,
        results_per_page: int | None = None,
        last: str | None = None,
        **kwargs: Any,
    ) -> Pager[ArtifactManifestProperties]:
        """Manifests of ``repository`` with their properties (on plain registries: those reachable from tags)."""
        order = _order(order_by)
        return self._listing(lambda metadata: metadata.manifest_listing(repository, order, results_per_page, last))

    def get_manifest_properties(
        self, repository: str, tag_or_digest: str, **kwargs: Any
    ) -> Gen[ArtifactManifestProperties]:
        """Properties of the manifest a tag points at, or of a digest."""
        metadata = yield from self.metadata()
        result = yield from metadata.properties_of_manifest(repository, tag_or_digest)
        return result

    def update_manifest_properties(
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
    ) -> Gen[ArtifactManifestProperties]:
        """Set lock flags of a manifest from an ``ArtifactManifestProperties`` and/or ``can_*`` keywords."""
        acr = yield from self._require_acr("update_manifest_properties")
        body = locks_body(properties, lock_values(can_delete, can_write, can_read, can_list))
        result = yield from acr.update_manifest(repository, tag_or_digest, body)
        return result

    def delete_manifest(self, repository: str, tag_or_digest: str, **kwargs: Any) -> Gen[None]:
        """Delete a manifest (a tag is resolved first: a missing tag raises, a missing digest does not)."""
        metadata = yield from self.metadata()
        digest = yield from metadata.digest_for(repository, tag_or_digest)
        url = self.session.url(paths.manifest(repository, digest))
        response = yield from self.session.send(Request("DELETE", url, {"Accept": "application/json"}))
        if response.status != 404:
            raise_for_status(response, context=f"delete manifest {repository}@{digest}")

    def get_manifest(self, repository: str, tag_or_digest: str, **kwargs: Any) -> Gen[GetManifestResult]:
        """The manifest bytes and parsed JSON, verified against its digest."""
        if repository is None or tag_or_digest is None:
            raise ValueError("The parameter repository and tag_or_digest cannot be None.")
        result = yield from manifests.get_manifest(self.session, repository, tag_or_digest)
        return result

    def set_manifest(
        self,
        repository: str,
        manifest: dict[str, Any] | bytes | IO[bytes],
        *,
        tag: str | None = None,
        media_type: str = mt.OCI_MANIFEST,
        **kwargs: Any,
    ) -> Gen[str]:
        """Push a manifest (a dict, exact bytes or a stream) by tag or digest; returns its digest."""
        if repository is None:
            raise ValueError("The parameter repository and manifest/data cannot be None.")
        digest = yield from manifests.set_manifest(self.session, repository, manifest, tag=tag, media_type=media_type)
        return digest

    def get_manifest_descriptor(self, repository: str, tag_or_digest: str, **kwargs: Any) -> Gen[Descriptor]:
        """Media type, digest and size of a manifest (one ``HEAD``)."""
        result = yield from manifests.get_manifest_descriptor(self.session, repository, tag_or_digest)
        return result

    def list_referrers(
        self, repository: str, digest: str, *, artifact_type: str | None = None, **kwargs: Any
    ) -> Gen[list[Descriptor]]:
        """Manifests whose ``subject`` is ``digest`` (signatures, SBOMs ...), optionally of one artifact type."""
        result = yield from manifests.list_referrers(self.session, repository, digest, artifact_type=artifact_type)
        return result

    # -- blobs --------------------------------------------------------------------------------------

    def upload_blob(
        self,
        repository: str,
        data: IO[bytes] | bytes | str | os.PathLike[str],
        *,
        digest: str | None = None,
        size: int | None = None,
        progress: Callable[[int], None] | None = None,
        check_exists: bool = True,
        **kwargs: Any,
    ) -> Gen[tuple[str, int]]:
        """Upload a blob from bytes, a path or a stream; returns ``(digest, size)``."""
        result = yield from blobs.upload_blob(
            self.session, repository, data, digest=digest, size=size, progress=progress, check_exists=check_exists
        )
        return result

    def abort_uploads(self, **kwargs: Any) -> Gen[int]:
        """Stop this client's transfers and delete their open upload sessions; returns how many were deleted.

        Requests in flight fail at once (the driver cuts its connections) and every later request raises
        ``TransferCancelledError``: this is for Ctrl-C handlers, on the way out.
        """
        result = yield from blobs.abort_uploads(self.session)
        return result

    def delete_blob(self, repository: str, digest: str, **kwargs: Any) -> Gen[None]:
        """Delete a blob; a missing blob is not an error."""
        yield from blobs.delete_blob(self.session, repository, digest)

    def blob_exists(self, repository: str, digest: str, **kwargs: Any) -> Gen[bool]:
        """True when the registry holds the blob (one ``HEAD``)."""
        result = yield from blobs.blob_exists(self.session, repository, digest)
        return result

    def mount_blob(self, repository: str, digest: str, from_repository: str, **kwargs: Any) -> Gen[bool]:
        """Mount a blob from another repository of the same registry; False when the registry refused."""
        result = yield from blobs.mount_blob(self.session, repository, digest, from_repository)
        return result

    def download_blob_to_file(
        self,
        repository: str,
        digest: str,
        path: str | os.PathLike[str],
        *,
        progress: Callable[[int], None] | None = None,
        size: int | None = None,
        **kwargs: Any,
    ) -> Gen[int]:
        """Download a blob to ``path`` (never a partial file); big blobs as parallel ranges. Returns the size.

        ``size`` (the descriptor's) caps what is read; without it, the registry's declared size does.
        """
        result = yield from download.download_to_file(
            self.session, repository, digest, path, concurrency=self.max_concurrency, progress=progress, size=size
        )
        return result

    def blob_read(
        self,
        repository: str,
        digest: str,
        *,
        offset: int = 0,
        progress: Callable[[int], None] | None = None,
        size: int | None = None,
        verify: bool = True,
    ) -> BlobReadState:
        """The state of a streamed blob download (the drivers' download streams run it)."""
        if repository is None or digest is None:
            raise ValueError("The parameter repository and digest cannot be None.")
        if offset < 0:
            raise ValueError("offset must not be negative")
        return BlobReadState(self.session, repository, digest, offset=offset, progress=progress, size=size,
                             verify=verify)


__all__ = ["Operations"]
