"""Repository, tag and manifest properties over ACR's ``/acr/v1`` metadata API (lock flags included).

The twin of :mod:`dockyard.protocol.oci_metadata`, chosen once a registry is known to offer ``/acr/v1``.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import HttpResponseError
from ..models import ArtifactManifestProperties, ArtifactTagProperties, RepositoryProperties
from . import manifests, paths
from .instructions import Gen, Request
from .paging import PageFetcher, link_pages, list_field
from .responses import json_body, raise_for_status
from .session import Session
from .wire import manifest_from_wire, repository_from_wire, tag_from_wire


class AcrMetadata:
    """Metadata operations over ``/acr/v1`` with the client's ``api-version``."""

    def __init__(self, session: Session, api_version: str) -> None:
        self.session = session
        self.api_version = api_version

    def _url(self, path: str) -> str:
        return self.session.url(path, {"api-version": self.api_version})

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, context: str = "") -> Gen[Any]:
        """One ``/acr/v1`` call with the ``api-version`` query; the JSON answer, or the typed error."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        response = yield from self.session.send(Request(method, self._url(path), headers, data))
        raise_for_status(response, context=context)
        return json_body(response)

    def _delete(self, path: str, context: str) -> Gen[None]:
        """A ``DELETE`` for which 404 (already gone) is not an error."""
        request = Request("DELETE", self._url(path), {"Accept": "application/json"})
        response = yield from self.session.send(request)
        if response.status != 404:
            raise_for_status(response, context=context)

    # -- repositories ------------------------------------------------------------------------------

    def catalog_pages(self, results_per_page: int | None = None, last: str | None = None) -> PageFetcher[str]:
        """Pages of repository names from ``/acr/v1/_catalog``."""
        url = self.session.url(paths.ACR_CATALOG, {"n": results_per_page, "last": last})
        return link_pages(self.session, url, list_field("repositories"), "catalog")

    def repository_properties(self, repository: str) -> Gen[RepositoryProperties]:
        """Properties of ``repository``."""
        data = yield from self.call("GET", paths.acr_repository(repository), context=f"repository {repository}")
        return repository_from_wire(data)

    def update_repository(self, repository: str, body: dict[str, Any]) -> Gen[RepositoryProperties]:
        """Set the lock flags in ``body`` on ``repository``."""
        data = yield from self.call("PATCH", paths.acr_repository(repository), body, f"repository {repository}")
        return repository_from_wire(data)

    def delete_repository(self, repository: str) -> Gen[None]:
        """Delete ``repository`` with its tags and manifests; a missing repository is not an error."""
        yield from self._delete(paths.acr_repository(repository), f"delete repository {repository}")

    # -- tags ---------------------------------------------------------------------------------------

    def tag_listing(
        self, repository: str, order: str | None, results_per_page: int | None, last: str | None, digest: str | None
    ) -> PageFetcher[ArtifactTagProperties]:
        """Pages of ``/acr/v1/<name>/_tags``."""

        def parse(data: Any) -> list[ArtifactTagProperties]:
            return [tag_from_wire(t, repository) for t in list_field("tags")(data) if isinstance(t, dict)]

        query = {"n": results_per_page, "orderby": order, "last": last, "digest": digest}
        url = self.session.url(paths.acr_tags(repository), query)
        return link_pages(self.session, url, parse, f"tags of {repository}")

    def tag_properties(self, repository: str, tag: str) -> Gen[ArtifactTagProperties]:
        """Properties of ``tag``."""
        data = yield from self.call("GET", paths.acr_tag(repository, tag), context=f"tag {repository}:{tag}")
        return tag_from_wire(data.get("tag") or {}, repository)

    def update_tag(self, repository: str, tag: str, body: dict[str, Any]) -> Gen[ArtifactTagProperties]:
        """Set the lock flags in ``body`` on ``tag``."""
        data = yield from self.call("PATCH", paths.acr_tag(repository, tag), body, f"tag {repository}:{tag}")
        return tag_from_wire(data.get("tag") or {}, repository)

    def delete_tag(self, repository: str, tag: str) -> Gen[None]:
        """``DELETE /acr/v1/<name>/_tags/<tag>``; a missing tag is not an error."""
        yield from self._delete(paths.acr_tag(repository, tag), f"delete tag {repository}:{tag}")

    # -- manifests ----------------------------------------------------------------------------------

    def manifest_listing(
        self, repository: str, order: str | None, results_per_page: int | None, last: str | None
    ) -> PageFetcher[ArtifactManifestProperties]:
        """Pages of ``/acr/v1/<name>/_manifests``."""

        def parse(data: Any) -> list[ArtifactManifestProperties]:
            return [
                manifest_from_wire(m, repository, self.session.registry)
                for m in list_field("manifests")(data)
                if isinstance(m, dict)
            ]

        query = {"n": results_per_page, "orderby": order, "last": last}
        url = self.session.url(paths.acr_manifests(repository), query)
        return link_pages(self.session, url, parse, f"manifests of {repository}")

    def digest_for(self, repository: str, tag_or_digest: str) -> Gen[str]:
        """The digest a tag points at (a digest as it is)."""
        if manifests.is_digest_reference(tag_or_digest):
            return tag_or_digest
        tag = yield from self.tag_properties(repository, tag_or_digest)
        return str(tag.digest)

    def _manifest(
        self, method: str, repository: str, tag_or_digest: str, body: dict[str, Any] | None = None
    ) -> Gen[Any]:
        """``/acr/v1/<name>/_manifests/<ref>``. A tag goes there directly where the registry accepts one
        (one request instead of a tag lookup plus the call); whether it does is learned on first use."""
        context = f"manifest {repository}:{tag_or_digest}"
        is_tag = not manifests.is_digest_reference(tag_or_digest)
        if is_tag and self.session.acr_manifest_tags is not False:
            try:
                data = yield from self.call(method, paths.acr_manifest(repository, tag_or_digest), body, context)
            except HttpResponseError as exc:
                if exc.status_code not in (400, 404) or self.session.acr_manifest_tags:
                    raise
            else:
                self.session.acr_manifest_tags = True
                return data
        digest = yield from self.digest_for(repository, tag_or_digest)
        if is_tag:
            self.session.acr_manifest_tags = False  # the tag exists, so the registry wants digests there
        data = yield from self.call(method, paths.acr_manifest(repository, digest), body, context)
        return data

    def properties_of_manifest(self, repository: str, tag_or_digest: str) -> Gen[ArtifactManifestProperties]:
        """Properties of the manifest a tag points at, or of a digest."""
        data = yield from self._manifest("GET", repository, tag_or_digest)
        return manifest_from_wire(data.get("manifest") or {}, repository, self.session.registry)

    def update_manifest(
        self, repository: str, tag_or_digest: str, body: dict[str, Any]
    ) -> Gen[ArtifactManifestProperties]:
        """Set the lock flags in ``body`` on a manifest."""
        data = yield from self._manifest("PATCH", repository, tag_or_digest, body)
        return manifest_from_wire(data.get("manifest") or {}, repository, self.session.registry)
