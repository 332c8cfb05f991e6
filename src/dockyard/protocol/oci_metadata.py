"""Repository, tag and manifest properties on registries without ``/acr/v1``, derived from ``/v2`` alone.

Tags come from ``/v2/<name>/tags/list``, digests from the manifests, platform and creation time from
image configs. Config blobs are content-addressed, so what they say is cached for the client's life.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ..errors import HttpResponseError, ResourceNotFoundError
from ..models import ArtifactManifestProperties, ArtifactTagProperties, GetManifestResult, RepositoryProperties
from ..oci import mediatypes as mt
from ..oci.manifest import EMPTY_JSON, EMPTY_JSON_DIGEST, Manifest, parse_image_config
from . import blobs, manifests, paths
from .instructions import Gen, Request, Sleep
from .manifests import get_manifest, get_manifest_descriptor, parse_result
from .paging import PageFetcher, PageGuard, link_pages, list_field, sliced_pages
from .responses import raise_for_status
from .session import Session
from .wire import parse_time

#: Pushes of an untag placeholder manifest tried before giving up (see ``_untag_by_placeholder``).
PLACEHOLDER_ATTEMPTS = 4
#: Error codes distribution answers when a manifest is checked while a blob link is rewritten.
_LINK_RACE_CODES = ("DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN")

_CONFIG_LIMIT = 1024 * 1024

#: (architecture, os, created) of an image config.
ConfigInfo = tuple[str | None, str | None, datetime | None]


class OciMetadata:
    """Metadata operations over plain OCI distribution endpoints."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._configs: dict[str, ConfigInfo] = {}

    def tag_pages(
        self, repository: str, results_per_page: int | None = None, last: str | None = None
    ) -> PageFetcher[str]:
        """Pages of tag names from ``/v2/<name>/tags/list``."""
        query = {"n": results_per_page, "last": last}
        url = self.session.url(paths.tags_list(repository), query)
        return link_pages(self.session, url, list_field("tags"), context=f"tags of {repository}")

    def all_tags(self, repository: str) -> Gen[list[str]]:
        """Every tag of ``repository`` (following pages); a repository the registry does not know raises 404."""
        fetch = self.tag_pages(repository)
        guard = PageGuard(self.session.max_pages, f"tags of {repository}")
        token: Any = None
        tags: list[str] = []
        while True:
            page, token = yield from fetch(token)
            guard.advance(token)
            tags.extend(t for t in page if isinstance(t, str))
            if not token:
                return tags

    def config_info(self, repository: str, manifest: Manifest | None) -> Gen[ConfigInfo]:
        """Architecture, OS and creation time from the image config of ``manifest`` (cached by digest)."""
        config = manifest.config if manifest is not None else None
        if config is None or config.size > _CONFIG_LIMIT or not (
            config.media_type in mt.CONFIG_TYPES or config.media_type.endswith("+json")
        ):
            return None, None, None
        cached = self._configs.get(config.digest)
        if cached is not None:
            return cached
        url = self.session.url(paths.blob(repository, config.digest))
        request = Request("GET", url, {"Accept": "*/*"}, follow_redirects=True, max_body=_CONFIG_LIMIT)
        response = yield from self.session.send(request)
        info: ConfigInfo = (None, None, None)
        if response.status == 200:
            parsed = parse_image_config(response.content)
            if parsed is not None:
                info = (parsed.platform.architecture, parsed.platform.os, parse_time(parsed.created))
        self._configs[config.digest] = info
        return info

    def manifest_properties(
        self, repository: str, result: GetManifestResult, tags: list[str] | None = None
    ) -> Gen[ArtifactManifestProperties]:
        """Properties of a fetched manifest: size = manifest + config + layers (or + children for an index)."""
        manifest = parse_result(result)
        arch, os_name, created = yield from self.config_info(repository, manifest)
        size = len(result.content)
        references: list[ArtifactManifestProperties] = []
        if manifest is not None:
            if manifest.config is not None:
                size += manifest.config.size
            size += sum(layer.size for layer in manifest.layers)
            size += sum(child.size for child in manifest.manifests)
            for child in manifest.manifests:
                platform = child.platform
                references.append(
                    ArtifactManifestProperties(
                        digest=child.digest,
                        architecture=platform.architecture if platform else None,
                        operating_system=platform.os if platform else None,
                        repository_name=repository,
                        registry=self.session.registry,
                        media_type=child.media_type,
                    )
                )
        return ArtifactManifestProperties(
            digest=result.digest,
            size_in_bytes=size,
            created_on=created,
            last_updated_on=created,
            architecture=arch,
            operating_system=os_name,
            tags=list(tags or []),
            repository_name=repository,
            registry=self.session.registry,
            media_type=result.media_type,
            config_media_type=manifest.config.media_type if manifest is not None and manifest.config else None,
            references=references,
        )

    def tag_properties(self, repository: str, tag: str) -> Gen[ArtifactTagProperties]:
        """A tag's digest and (from its image config) creation time."""
        result = yield from get_manifest(self.session, repository, tag)
        _, _, created = yield from self.config_info(repository, parse_result(result))
        return ArtifactTagProperties(
            name=tag,
            digest=result.digest,
            created_on=created,
            last_updated_on=created,
            repository_name=repository,
        )

    def tags_by_digest(self, repository: str) -> Gen[tuple[dict[str, GetManifestResult], dict[str, list[str]]]]:
        """Every manifest reachable from a tag (index children included), and the tags of each digest."""
        tags = yield from self.all_tags(repository)
        results: dict[str, GetManifestResult] = {}
        by_digest: dict[str, list[str]] = {}
        pending: list[str] = []
        for tag in tags:
            try:
                result = yield from get_manifest(self.session, repository, tag)
            except ResourceNotFoundError:
                continue  # deleted while we listed
            by_digest.setdefault(result.digest, []).append(tag)
            if result.digest not in results:
                results[result.digest] = result
                pending.append(result.digest)
        while pending:
            manifest = parse_result(results[pending.pop()])
            for child in manifest.manifests if manifest is not None else ():
                if child.digest in results:
                    continue
                try:
                    results[child.digest] = yield from get_manifest(self.session, repository, child.digest)
                except ResourceNotFoundError:
                    continue
                by_digest.setdefault(child.digest, [])
                pending.append(child.digest)
        return results, by_digest

    def tags_of(self, repository: str, digest: str) -> Gen[list[str]]:
        """The tags pointing at ``digest`` (one ``HEAD`` per tag)."""
        try:
            tags = yield from self.all_tags(repository)
        except ResourceNotFoundError:
            return []
        found = []
        for tag in tags:
            try:
                descriptor = yield from get_manifest_descriptor(self.session, repository, tag)
            except ResourceNotFoundError:
                continue
            if descriptor.digest == digest:
                found.append(tag)
        return found

    def repository_properties(self, repository: str) -> Gen[RepositoryProperties]:
        """Name, tag count and manifest count; times and locks are unknown on a plain registry."""
        results, by_digest = yield from self.tags_by_digest(repository)
        tag_count = sum(len(t) for t in by_digest.values())
        return RepositoryProperties(name=repository, tag_count=tag_count, manifest_count=len(results))

    def catalog_pages(self, results_per_page: int | None = None, last: str | None = None) -> PageFetcher[str]:
        """Pages of repository names from ``/v2/_catalog``."""
        url = self.session.url(paths.V2_CATALOG, {"n": results_per_page, "last": last})
        return link_pages(self.session, url, list_field("repositories"), context="catalog")

    def delete_repository(self, repository: str) -> Gen[None]:
        """Delete every manifest reachable from a tag (index first, children after); 404s are ignored."""
        try:
            results, by_digest = yield from self.tags_by_digest(repository)
        except ResourceNotFoundError:
            return
        order = [d for d in results if by_digest.get(d)] + [d for d in results if not by_digest.get(d)]
        for digest in order:
            url = self.session.url(paths.manifest(repository, digest))
            response = yield from self.session.send(Request("DELETE", url))
            if response.status != 404:
                raise_for_status(response, context=f"delete {repository}@{digest}")

    # -- the operations of the metadata twins (see :class:`dockyard.protocol.metadata.Metadata`) ----------

    def tag_listing(
        self, repository: str, order: str | None, results_per_page: int | None, last: str | None, digest: str | None
    ) -> PageFetcher[ArtifactTagProperties]:
        """Pages of tags with their properties; sorted or filtered listings read every tag first."""

        def names() -> Gen[list[str]]:
            found = yield from self.all_tags(repository)
            if last:
                found = [t for t in found if t > last]
            return found

        def properties(page: list[str]) -> Gen[list[ArtifactTagProperties]]:
            items = []
            for name in page:
                try:
                    items.append((yield from self.tag_properties(repository, name)))
                except ResourceNotFoundError:
                    continue  # deleted while we listed
            return items

        def everything() -> Gen[list[ArtifactTagProperties]]:
            items = yield from properties((yield from names()))
            if digest:
                items = [i for i in items if i.digest == digest]
            return sort_by_time(items, order)

        if order in ("timedesc", "timeasc") or digest:
            return sliced_pages(everything, results_per_page)
        return sliced_pages(names, results_per_page, properties)

    def delete_tag(self, repository: str, tag: str) -> Gen[None]:
        """The OCI tag ``DELETE``; where the registry refuses it (CNCF distribution), the tag is moved to a unique
        placeholder manifest which is then deleted by digest. A missing tag is not an error."""
        url = self.session.url(paths.manifest(repository, tag))
        response = yield from self.session.send(Request("DELETE", url))
        if response.status == 404 or 200 <= response.status < 300:
            return
        if response.status not in (400, 405):
            raise_for_status(response, context=f"delete tag {repository}:{tag}")
        yield from self._untag_by_placeholder(repository, tag)

    def _untag_by_placeholder(self, repository: str, tag: str) -> Gen[None]:
        try:
            yield from get_manifest_descriptor(self.session, repository, tag)
        except ResourceNotFoundError:
            return
        data, digest = manifests.empty_manifest_bytes(uuid.uuid4().hex)
        for attempt in range(1, PLACEHOLDER_ATTEMPTS + 1):
            if not (yield from blobs.blob_exists(self.session, repository, EMPTY_JSON_DIGEST)):
                yield from blobs.upload_blob(self.session, repository, EMPTY_JSON)
            try:
                yield from manifests.set_manifest(self.session, repository, data, tag=tag, media_type=mt.OCI_MANIFEST)
                break
            except HttpResponseError as exc:
                # CNCF distribution rewrites a repository's blob link in place when the same blob is uploaded
                # again: a manifest checked while another untag of this repository uploads the empty blob reads
                # a half-written link and is refused (400 DIGEST_INVALID, or MANIFEST_BLOB_UNKNOWN). Again.
                if attempt == PLACEHOLDER_ATTEMPTS or exc.error_code not in _LINK_RACE_CODES:
                    raise
                yield Sleep(0.05 * attempt)
        response = yield from self.session.send(Request("DELETE", self.session.url(paths.manifest(repository, digest))))
        if response.status != 404:
            raise_for_status(response, context=f"delete tag {repository}:{tag}")

    def manifest_listing(
        self, repository: str, order: str | None, results_per_page: int | None, last: str | None
    ) -> PageFetcher[ArtifactManifestProperties]:
        """Pages of the manifests reachable from tags, with their properties."""

        def everything() -> Gen[list[ArtifactManifestProperties]]:
            results, by_digest = yield from self.tags_by_digest(repository)
            items = []
            for found, result in results.items():
                items.append((yield from self.manifest_properties(repository, result, by_digest.get(found))))
            if last:
                items = [i for i in items if str(i.digest) > last]
            return sort_by_time(items, order)

        return sliced_pages(everything, results_per_page)

    def properties_of_manifest(self, repository: str, tag_or_digest: str) -> Gen[ArtifactManifestProperties]:
        """Properties of the manifest a tag points at, or of a digest (its tags found by listing)."""
        result = yield from get_manifest(self.session, repository, tag_or_digest)
        if manifests.is_digest_reference(tag_or_digest):
            tags = yield from self.tags_of(repository, result.digest)
        else:
            tags = [tag_or_digest]
        props = yield from self.manifest_properties(repository, result, tags)
        return props

    def digest_for(self, repository: str, tag_or_digest: str) -> Gen[str]:
        """The digest a tag points at (one ``HEAD``; a digest as it is)."""
        if manifests.is_digest_reference(tag_or_digest):
            return tag_or_digest
        descriptor = yield from get_manifest_descriptor(self.session, repository, tag_or_digest)
        return descriptor.digest



def sort_by_time(items: list[Any], order_by: str | None) -> list[Any]:
    """Sort properties by ``last_updated_on`` for ``timedesc`` / ``timeasc`` (unknown times last)."""
    if order_by not in ("timedesc", "timeasc"):
        return items
    known = [i for i in items if i.last_updated_on is not None]
    unknown = [i for i in items if i.last_updated_on is None]
    known.sort(key=lambda i: i.last_updated_on, reverse=order_by == "timedesc")
    return known + unknown


__all__ = ["OciMetadata", "sort_by_time"]
