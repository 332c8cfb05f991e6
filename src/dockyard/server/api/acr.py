"""The Azure Container Registry metadata API (``/acr/v1``), derived from the same tables as ``/v2``."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

from ...oci.manifest import InvalidManifestError, parse_manifest
from ...oci.strict_json import InvalidJSONError, parse_json
from .. import errors as e
from ..registry import RepositorySummary, check_digest
from ..storage.records import ATTRIBUTE_FIELDS, AttributeChanges, ManifestInfo, Order, TagRecord
from .access import repository_name, route
from .common import (
    catalog_response,
    empty,
    fetch_limit,
    json_response,
    page,
    page_params,
    read_limited,
    registry,
    registry_host,
)

#: The ``orderby`` values the listings accept (lower-cased).
ORDERS = frozenset({"none", "timedesc", "timeasc"})


def _order(request: Request) -> Order:
    raw = (request.query_params.get("orderby") or "none").lower()
    if raw not in ORDERS:
        raise e.bad_request(f"orderby must be one of timedesc, timeasc or none, got {raw!r}")
    return cast(Order, raw)


def _repository_json(request: Request, summary: RepositorySummary) -> dict[str, Any]:
    repo = summary.record
    return {
        "registry": registry_host(request),
        "imageName": repo.name,
        "createdTime": repo.created,
        "lastUpdateTime": repo.updated,
        "manifestCount": summary.manifest_count,
        "tagCount": summary.tag_count,
        "changeableAttributes": repo.attributes.wire(),
    }


def _tag_json(tag: TagRecord) -> dict[str, Any]:
    """A tag as ACR renders it; its ``changeableAttributes`` is the flags' shared dict (the result is only encoded)."""
    return {
        "name": tag.name,
        "digest": tag.digest,
        "createdTime": tag.created,
        "lastUpdateTime": tag.updated,
        "signed": False,
        "changeableAttributes": tag.attributes.shared_wire,
    }


def _references(content: bytes | None, media_type: str) -> list[dict[str, Any]] | None:
    if content is None:
        return None
    try:
        parsed = parse_manifest(content, media_type)
    except InvalidManifestError:
        return None
    if not parsed.is_index:
        return None
    refs = []
    for child in parsed.manifests:
        ref: dict[str, Any] = {"digest": child.digest}
        if child.platform is not None:
            ref["architecture"] = child.platform.architecture
            ref["os"] = child.platform.os
        refs.append(ref)
    return refs


def _manifest_json(row: ManifestInfo, tags: list[str], content: bytes | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "digest": row.digest,
        "imageSize": row.image_size,
        "createdTime": row.created,
        "lastUpdateTime": row.updated,
        "architecture": row.architecture,
        "os": row.os,
        "mediaType": row.media_type,
        "configMediaType": row.config_media_type,
        "tags": tags,
        "changeableAttributes": row.attributes.wire(),
    }
    refs = _references(content, row.media_type)
    if refs is not None:
        out["references"] = refs
    return out


async def _changes(request: Request) -> AttributeChanges:
    raw = await read_limited(request, 64 * 1024, "INVALID_REQUEST") or b"{}"
    try:
        body = parse_json(raw)
    except InvalidJSONError as exc:
        why = f"the body must be a JSON object of changeable attributes ({exc})"
        raise e.bad_request(why, "INVALID_REQUEST") from None
    if not isinstance(body, dict):
        raise e.bad_request("the body must be a JSON object of changeable attributes", "INVALID_REQUEST")
    changes: AttributeChanges = {}
    for key, value in body.items():
        if key not in ATTRIBUTE_FIELDS:
            continue  # e.g. quarantine fields ACR also accepts; nothing to store for them here
        if not isinstance(value, bool):
            raise e.bad_request(f"{key} must be true or false", "INVALID_REQUEST")
        changes[ATTRIBUTE_FIELDS[key]] = value
    return changes


def _carried(order: str) -> str | None:
    """The ``orderby`` a next-page link repeats (none for the default order)."""
    return None if order == "none" else order


async def catalog(request: Request) -> Response:
    """``GET /acr/v1/_catalog?n=&last=``."""
    return await catalog_response(request, "/acr/v1/_catalog")


async def repository(request: Request) -> Response:
    """``GET|PATCH|DELETE /acr/v1/<name>``."""
    name = repository_name(request)
    reg = registry(request)
    if request.method == "DELETE":
        manifests, tags = await reg.delete_repository(name)
        return json_response({"manifestsDeleted": manifests, "tagsDeleted": tags}, status=202)
    if request.method == "PATCH":
        await reg.update_attributes(name, "repository", None, await _changes(request))
    return json_response(_repository_json(request, await reg.repository(name)))


async def tags(request: Request) -> Response:
    """``GET /acr/v1/<name>/_tags?n=&last=&orderby=&digest=``."""
    name = repository_name(request)
    reg = registry(request)
    n, last = page_params(request)
    order = _order(request)
    digest = request.query_params.get("digest") or None
    if digest is not None:
        digest = str(check_digest(digest))
    rows, headers = page(
        await reg.list_tags(name, last, fetch_limit(n), order, digest), n, last,
        f"/acr/v1/{name}/_tags", lambda row: row.name, orderby=_carried(order), digest=digest,
    )
    host = registry_host(request)

    def render() -> Response:
        """The page's JSON (a dict per tag, then the bytes), built on a worker thread: the event loop stays free
        while a page of up to ``MAX_PAGE`` tags is rendered."""
        return json_response({"registry": host, "imageName": name, "tags": [_tag_json(r) for r in rows]},
                             headers=headers)

    return await asyncio.to_thread(render)


async def tag(request: Request) -> Response:
    """``GET|PATCH|DELETE /acr/v1/<name>/_tags/<tag>``."""
    name = repository_name(request)
    tag_name = str(request.path_params["tag"])
    reg = registry(request)
    if request.method == "DELETE":
        await reg.delete_tag(name, tag_name)
        return empty(202)
    if request.method == "PATCH":
        await reg.update_attributes(name, "tag", tag_name, await _changes(request))
    record = await reg.tag(name, tag_name)
    return json_response({"registry": registry_host(request), "imageName": name, "tag": _tag_json(record)})


async def manifests(request: Request) -> Response:
    """``GET /acr/v1/<name>/_manifests?n=&last=&orderby=``."""
    name = repository_name(request)
    n, last = page_params(request)
    order = _order(request)
    listing = await registry(request).list_manifests(name, last, fetch_limit(n), order)
    rows, headers = page(
        listing.manifests, n, last, f"/acr/v1/{name}/_manifests", lambda row: row.digest, orderby=_carried(order)
    )
    host = registry_host(request)

    def render() -> Response:
        """The page's (possibly tens of megabytes of) JSON, built on a worker thread."""
        items = [_manifest_json(r, listing.tags[r.digest], listing.index_contents.get(r.digest)) for r in rows]
        return json_response({"registry": host, "imageName": name, "manifests": items}, headers=headers)

    return await asyncio.to_thread(render)


async def manifest(request: Request) -> Response:
    """``GET|PATCH /acr/v1/<name>/_manifests/<digest or tag>``."""
    name = repository_name(request)
    reference = str(request.path_params["reference"])
    reg = registry(request)
    digest = await reg.manifest_digest(name, reference)
    if request.method == "PATCH":
        await reg.update_attributes(name, "manifest", digest, await _changes(request))
    row, tag_names = await reg.manifest_info(name, digest)
    body = {
        "registry": registry_host(request),
        "imageName": name,
        "manifest": _manifest_json(row, tag_names, row.content),
    }
    return json_response(body)


routes = [
    route("/acr/v1/_catalog", catalog, "acr.catalog", ["GET"]),
    route("/acr/v1/{name:path}/_tags", tags, "acr.tags", ["GET"]),
    route("/acr/v1/{name:path}/_tags/{tag}", tag, "acr.tag", ["GET", "PATCH", "DELETE"]),
    route("/acr/v1/{name:path}/_manifests", manifests, "acr.manifests", ["GET"]),
    route("/acr/v1/{name:path}/_manifests/{reference}", manifest, "acr.manifest", ["GET", "PATCH"]),
    route("/acr/v1/{name:path}", repository, "acr.repository", ["GET", "PATCH", "DELETE"]),
]
