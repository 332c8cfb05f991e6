"""Every client operation as a protocol generator: the one implementation the sync and async clients share.

Each public method returns a generator (or a :class:`Pager` for listings) that a driver runs. Metadata
operations use ACR's ``/acr/v1`` API when the registry offers it (detected once) and plain OCI
``/v2`` endpoints otherwise.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from typing import IO, Any, TypeVar

from ..errors import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
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
from ..oci.manifest import Descriptor
from . import blobs, download, manifests, paths
from .download import BlobReadState
from .instructions import Gen, Request
from .oci_metadata import OciMetadata, sort_by_time
from .paging import PageFetcher, Pager, link_pages, list_field, sliced_pages
from .responses import json_body, raise_for_status
from .session import Session
from .wire import locks_body, manifest_from_wire, repository_from_wire, tag_from_wire

T = TypeVar("T")

def _order(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value)).lower()


def _locks(
    can_delete: bool | None, can_list: bool | None, can_read: bool | None, can_write: bool | None
) -> dict[str, bool | None]:
    return {"can_delete": can_delete, "can_list": can_list, "can_read": can_read, "can_write": can_write}


class Operations:
    """The registry operations over one :class:`Session`; every method is sans-I/O."""

    def __init__(self, session: Session, api_version: str | None = None, max_concurrency: int = 4) -> None:
        if api_version is not None and api_version not in paths.SUPPORTED_API_VERSIONS:
            choices = "\n".join(paths.SUPPORTED_API_VERSIONS)
            raise ValueError(f"Unsupported API version '{api_version}'. Please select from:\n{choices}")
        self.session = session
        self.api_version = api_version or paths.API_VERSION
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

    def _require_acr(self, what: str) -> Gen[None]:
        if not (yield from self.has_acr_api()):
            raise UnsupportedOperationError(
                f"{what} needs the ACR metadata API (/acr/v1: lock flags can_delete/can_write/can_list/can_read), "
                f"which {self.session.registry} does not offer"
            )

    def _acr_url(self, path: str) -> str:
        return self.session.url(path, {"api-version": self.api_version})

    def _acr(self, method: str, path: str, body: dict[str, Any] | None = None, context: str = "") -> Gen[Any]:
        """One ``/acr/v1`` call with the ``api-version`` query; the JSON answer, or the typed error."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        response = yield from self.session.send(Request(method, self._acr_url(path), headers, data))
        raise_for_status(response, context=context)
        return json_body(response)

    def _listing(
        self, acr_url: str, parse: Callable[[Any], list[T]], oci_fetch: PageFetcher[T], context: str
    ) -> Pager[T]:
        """A listing over ``/acr/v1`` (``Link`` pages from ``acr_url``) or, on plain registries, ``oci_fetch``.

        String continuation tokens are ``Link`` URLs; others belong to ``oci_fetch``.
        """

        def fetch(token: Any) -> Gen[tuple[list[T], Any]]:
            if isinstance(token, str):
                result = yield from link_pages(self.session, token, parse, context)(token)
                return result
            if token is None and (yield from self.has_acr_api()):
                result = yield from link_pages(self.session, acr_url, parse, context)(None)
                return result
            result = yield from oci_fetch(token)
            return result

        return Pager(fetch, self.session.max_pages)

    # -- repositories ------------------------------------------------------------------------------

    def list_repository_names(
        self, *, results_per_page: int | None = None, last: str | None = None, **kwargs: Any
    ) -> Pager[str]:
        """Repository names, page by page (``/acr/v1/_catalog``, or ``/v2/_catalog`` on plain registries)."""
        acr_url = self.session.url(paths.ACR_CATALOG, {"n": results_per_page, "last": last})
        oci_fetch = self.oci.catalog_pages(results_per_page, last)
        return self._listing(acr_url, list_field("repositories"), oci_fetch, "catalog")

    def get_repository_properties(self, repository: str, **kwargs: Any) -> Gen[RepositoryProperties]:
        """Properties of ``repository``."""
        if (yield from self.has_acr_api()):
            data = yield from self._acr("GET", paths.acr_repository(repository), context=f"repository {repository}")
            return repository_from_wire(data)
        result = yield from self.oci.repository_properties(repository)
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
        yield from self._require_acr("update_repository_properties")
        body = locks_body(properties, _locks(can_delete, can_list, can_read, can_write))
        data = yield from self._acr("PATCH", paths.acr_repository(repository), body, f"repository {repository}")
        return repository_from_wire(data)

    def delete_repository(self, repository: str, **kwargs: Any) -> Gen[None]:
        """Delete ``repository`` with its tags and manifests; a missing repository is not an error."""
        if (yield from self.has_acr_api()):
            request = Request("DELETE", self._acr_url(paths.acr_repository(repository)), {"Accept": "application/json"})
            response = yield from self.session.send(request)
            if response.status != 404:
                raise_for_status(response, context=f"delete repository {repository}")
            return
        yield from self.oci.delete_repository(repository)

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

        def parse(data: Any) -> list[ArtifactTagProperties]:
            return [tag_from_wire(t, repository) for t in list_field("tags")(data) if isinstance(t, dict)]

        def names() -> Gen[list[str]]:
            found = yield from self.oci.all_tags(repository)
            if last:
                found = [t for t in found if t > last]
            return found

        def properties(page: list[str]) -> Gen[list[ArtifactTagProperties]]:
            items = []
            for name in page:
                try:
                    items.append((yield from self.oci.tag_properties(repository, name)))
                except ResourceNotFoundError:
                    continue  # deleted while we listed
            return items

        def everything() -> Gen[list[ArtifactTagProperties]]:
            items = yield from properties((yield from names()))
            if digest:
                items = [i for i in items if i.digest == digest]
            return sort_by_time(items, order)

        if order in ("timedesc", "timeasc") or digest:
            oci_fetch = sliced_pages(everything, results_per_page)
        else:
            oci_fetch = sliced_pages(names, results_per_page, properties)

        query = {"n": results_per_page, "orderby": order, "last": last, "digest": digest}
        acr_url = self.session.url(paths.acr_tags(repository), query)
        return self._listing(acr_url, parse, oci_fetch, f"tags of {repository}")

    def _resolve_tag(self, repository: str, tag: str) -> Gen[ArtifactTagProperties]:
        if (yield from self.has_acr_api()):
            data = yield from self._acr("GET", paths.acr_tag(repository, tag), context=f"tag {repository}:{tag}")
            return tag_from_wire(data.get("tag") or {}, repository)
        result = yield from self.oci.tag_properties(repository, tag)
        return result

    def get_tag_properties(self, repository: str, tag: str, **kwargs: Any) -> Gen[ArtifactTagProperties]:
        """Properties of ``tag`` in ``repository``."""
        result = yield from self._resolve_tag(repository, tag)
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
        yield from self._require_acr("update_tag_properties")
        body = locks_body(properties, _locks(can_delete, can_list, can_read, can_write))
        data = yield from self._acr("PATCH", paths.acr_tag(repository, tag), body, f"tag {repository}:{tag}")
        return tag_from_wire(data.get("tag") or {}, repository)

    def delete_tag(self, repository: str, tag: str, **kwargs: Any) -> Gen[None]:
        """Remove ``tag`` (the manifest stays); a missing tag is not an error.

        ACR: ``DELETE /acr/v1/<name>/_tags/<tag>``. Elsewhere the OCI tag ``DELETE``; where the registry
        refuses it (CNCF distribution), the tag is moved to a unique placeholder manifest which is then
        deleted by digest.
        """
        if (yield from self.has_acr_api()):
            request = Request("DELETE", self._acr_url(paths.acr_tag(repository, tag)), {"Accept": "application/json"})
            response = yield from self.session.send(request)
            if response.status != 404:
                raise_for_status(response, context=f"delete tag {repository}:{tag}")
            return
        url = self.session.url(paths.manifest(repository, tag))
        response = yield from self.session.send(Request("DELETE", url))
        if response.status == 404 or 200 <= response.status < 300:
            return
        if response.status not in (400, 405):
            raise_for_status(response, context=f"delete tag {repository}:{tag}")
        yield from self._untag_by_placeholder(repository, tag)

    def _untag_by_placeholder(self, repository: str, tag: str) -> Gen[None]:
        try:
            yield from manifests.get_manifest_descriptor(self.session, repository, tag)
        except ResourceNotFoundError:
            return
        if not (yield from blobs.blob_exists(self.session, repository, manifests.EMPTY_JSON_DIGEST)):
            yield from blobs.upload_blob(self.session, repository, b"{}")
        data, digest = manifests.empty_manifest_bytes(uuid.uuid4().hex)
        yield from manifests.set_manifest(self.session, repository, data, tag=tag, media_type=mt.OCI_MANIFEST)
        response = yield from self.session.send(Request("DELETE", self.session.url(paths.manifest(repository, digest))))
        if response.status != 404:
            raise_for_status(response, context=f"delete tag {repository}:{tag}")

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

        def parse(data: Any) -> list[ArtifactManifestProperties]:
            return [
                manifest_from_wire(m, repository, self.session.registry)
                for m in list_field("manifests")(data)
                if isinstance(m, dict)
            ]

        def everything() -> Gen[list[ArtifactManifestProperties]]:
            results, by_digest = yield from self.oci.tags_by_digest(repository)
            items = []
            for found, result in results.items():
                items.append((yield from self.oci.manifest_properties(repository, result, by_digest.get(found))))
            if last:
                items = [i for i in items if str(i.digest) > last]
            return sort_by_time(items, order)

        oci_fetch = sliced_pages(everything, results_per_page)

        query = {"n": results_per_page, "orderby": order, "last": last}
        acr_url = self.session.url(paths.acr_manifests(repository), query)
        return self._listing(acr_url, parse, oci_fetch, f"manifests of {repository}")

    def _digest_for(self, repository: str, tag_or_digest: str) -> Gen[str]:
        if manifests.is_digest_reference(tag_or_digest):
            return tag_or_digest
        if (yield from self.has_acr_api()):
            tag = yield from self._resolve_tag(repository, tag_or_digest)
            return str(tag.digest)
        descriptor = yield from manifests.get_manifest_descriptor(self.session, repository, tag_or_digest)
        return descriptor.digest

    def _acr_manifest(
        self, method: str, repository: str, tag_or_digest: str, body: dict[str, Any] | None = None
    ) -> Gen[Any]:
        """``/acr/v1/<name>/_manifests/<ref>``. A tag goes there directly where the registry accepts one
        (one request instead of a tag lookup plus the call); whether it does is learned on first use."""
        context = f"manifest {repository}:{tag_or_digest}"
        is_tag = not manifests.is_digest_reference(tag_or_digest)
        if is_tag and self.session.acr_manifest_tags is not False:
            try:
                data = yield from self._acr(method, paths.acr_manifest(repository, tag_or_digest), body, context)
            except HttpResponseError as exc:
                if exc.status_code not in (400, 404) or self.session.acr_manifest_tags:
                    raise
            else:
                self.session.acr_manifest_tags = True
                return data
        digest = yield from self._digest_for(repository, tag_or_digest)
        if is_tag:
            self.session.acr_manifest_tags = False  # the tag exists, so the registry wants digests there
        data = yield from self._acr(method, paths.acr_manifest(repository, digest), body, context)
        return data

    def get_manifest_properties(
        self, repository: str, tag_or_digest: str, **kwargs: Any
    ) -> Gen[ArtifactManifestProperties]:
        """Properties of the manifest a tag points at, or of a digest."""
        if (yield from self.has_acr_api()):
            data = yield from self._acr_manifest("GET", repository, tag_or_digest)
            return manifest_from_wire(data.get("manifest") or {}, repository, self.session.registry)
        result = yield from manifests.get_manifest(self.session, repository, tag_or_digest)
        if manifests.is_digest_reference(tag_or_digest):
            tags = yield from self.oci.tags_of(repository, result.digest)
        else:
            tags = [tag_or_digest]
        props = yield from self.oci.manifest_properties(repository, result, tags)
        return props

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
        yield from self._require_acr("update_manifest_properties")
        body = locks_body(properties, _locks(can_delete, can_list, can_read, can_write))
        data = yield from self._acr_manifest("PATCH", repository, tag_or_digest, body)
        return manifest_from_wire(data.get("manifest") or {}, repository, self.session.registry)

    def delete_manifest(self, repository: str, tag_or_digest: str, **kwargs: Any) -> Gen[None]:
        """Delete a manifest (a tag is resolved first: a missing tag raises, a missing digest does not)."""
        digest = yield from self._digest_for(repository, tag_or_digest)
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
        **kwargs: Any,
    ) -> Gen[tuple[str, int]]:
        """Upload a blob from bytes, a path or a stream; returns ``(digest, size)``."""
        result = yield from blobs.upload_blob(
            self.session, repository, data, digest=digest, size=size, progress=progress
        )
        return result

    def abort_uploads(self, **kwargs: Any) -> Gen[int]:
        """Stop this client's uploads and delete their open upload sessions; returns how many were deleted.

        Running uploads stop at their next piece with ``TransferCancelledError``, and so do later ones: this is
        for Ctrl-C handlers, on the way out.
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
    ) -> BlobReadState:
        """The state of a streamed blob download (the drivers' download streams run it)."""
        if repository is None or digest is None:
            raise ValueError("The parameter repository and digest cannot be None.")
        if offset < 0:
            raise ValueError("offset must not be negative")
        return BlobReadState(self.session, repository, digest, offset=offset, progress=progress, size=size)


__all__ = ["Operations"]
