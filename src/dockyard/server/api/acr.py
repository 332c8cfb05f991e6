"""The Azure Container Registry metadata API (``/acr/v1``), derived from the same tables as ``/v2``."""

from __future__ import annotations

import sqlite3
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...oci import mediatypes as mt
from ...oci.manifest import InvalidManifestError, parse_manifest
from ...oci.names import is_valid_tag
from ...oci.strict_json import InvalidJSONError, parse_json
from .. import errors as e
from ..registry import check_digest, check_name
from ..storage.metadata import ATTRIBUTES
from .common import (
    authorize,
    catalog_response,
    empty,
    fetch_limit,
    json_response,
    page,
    page_params,
    read_limited,
    registry,
    registry_host,
    repository_name,
)

#: The ``orderby`` values the listings accept (lower-cased).
ORDERS = frozenset({"none", "timedesc", "timeasc"})


def _attributes(row: sqlite3.Row) -> dict[str, bool]:
    return {wire: bool(row[column]) for wire, column in ATTRIBUTES.items()}


def _order(request: Request) -> str:
    raw = (request.query_params.get("orderby") or "none").lower()
    if raw not in ORDERS:
        raise e.bad_request(f"orderby must be one of timedesc, timeasc or none, got {raw!r}")
    return raw


def _repository_json(request: Request, row: sqlite3.Row) -> dict[str, Any]:
    manifests, tags = registry(request).meta.counts(row["id"])
    return {
        "registry": registry_host(request),
        "imageName": row["name"],
        "createdTime": row["created"],
        "lastUpdateTime": row["updated"],
        "manifestCount": manifests,
        "tagCount": tags,
        "changeableAttributes": _attributes(row),
    }


def _tag_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "name": row["name"],
        "digest": row["digest"],
        "createdTime": row["created"],
        "lastUpdateTime": row["updated"],
        "signed": False,
        "changeableAttributes": _attributes(row),
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


def _manifest_json(row: sqlite3.Row, tags: list[str], content: bytes | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "digest": row["digest"],
        "imageSize": row["image_size"],
        "createdTime": row["created"],
        "lastUpdateTime": row["updated"],
        "architecture": row["architecture"],
        "os": row["os"],
        "mediaType": row["media_type"],
        "configMediaType": row["config_media_type"],
        "tags": tags,
        "changeableAttributes": _attributes(row),
    }
    refs = _references(content, row["media_type"])
    if refs is not None:
        out["references"] = refs
    return out


async def _changes(request: Request) -> dict[str, bool]:
    raw = await read_limited(request, 64 * 1024, "INVALID_REQUEST") or b"{}"
    try:
        body = parse_json(raw)
    except InvalidJSONError as exc:
        why = f"the body must be a JSON object of changeable attributes ({exc})"
        raise e.bad_request(why, "INVALID_REQUEST") from None
    if not isinstance(body, dict):
        raise e.bad_request("the body must be a JSON object of changeable attributes", "INVALID_REQUEST")
    changes: dict[str, bool] = {}
    for key, value in body.items():
        if key not in ATTRIBUTES:
            continue  # e.g. quarantine fields ACR also accepts; nothing to store for them here
        if not isinstance(value, bool):
            raise e.bad_request(f"{key} must be true or false", "INVALID_REQUEST")
        changes[key] = value
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
    check_name(name)
    reg = registry(request)
    if request.method == "DELETE":
        authorize(request, "repository", name, "delete")
        manifests, tags = await reg.threads.write(reg.delete_repository, name)
        return json_response({"manifestsDeleted": manifests, "tagsDeleted": tags}, status=202)
    if request.method == "PATCH":
        authorize(request, "repository", name, "metadata_write")
        await reg.threads.write(reg.update_attributes, name, "repository", None, await _changes(request))
    else:
        authorize(request, "repository", name, "metadata_read")
    row = await reg.threads.read(reg.repository, name)
    return json_response(await reg.threads.read(_repository_json, request, row))


async def tags(request: Request) -> Response:
    """``GET /acr/v1/<name>/_tags?n=&last=&orderby=&digest=``."""
    name = repository_name(request)
    check_name(name)
    authorize(request, "repository", name, "metadata_read")
    reg = registry(request)
    repo = await reg.threads.read(reg.repository, name)
    n, last = page_params(request)
    order = _order(request)
    digest = request.query_params.get("digest") or None
    if digest is not None:
        digest = str(check_digest(digest))
    rows, headers = page(
        await reg.threads.read(reg.meta.list_tags, repo["id"], last, fetch_limit(n), order, digest), n, last,
        f"/acr/v1/{name}/_tags", lambda row: row["name"], orderby=_carried(order), digest=digest,
    )
    host = registry_host(request)

    def listing() -> Response:
        body = {"registry": host, "imageName": name, "tags": [_tag_json(r) for r in rows]}
        return json_response(body, headers=headers)

    return await reg.threads.read(listing)


async def tag(request: Request) -> Response:
    """``GET|PATCH|DELETE /acr/v1/<name>/_tags/<tag>``."""
    name = repository_name(request)
    tag_name = str(request.path_params["tag"])
    check_name(name)
    if not is_valid_tag(tag_name):
        raise e.tag_invalid(tag_name)
    reg = registry(request)
    if request.method == "DELETE":
        authorize(request, "repository", name, "delete")
        await reg.threads.write(reg.delete_tag, name, tag_name)
        return empty(202)
    if request.method == "PATCH":
        authorize(request, "repository", name, "metadata_write")
        await reg.threads.write(reg.update_attributes, name, "tag", tag_name, await _changes(request))
    else:
        authorize(request, "repository", name, "metadata_read")
    repo = await reg.threads.read(reg.repository, name)
    row = await reg.threads.read(reg.meta.tag, repo["id"], tag_name)
    if row is None:
        raise e.tag_unknown(tag_name)
    return json_response({"registry": registry_host(request), "imageName": name, "tag": _tag_json(row)})


async def manifests(request: Request) -> Response:
    """``GET /acr/v1/<name>/_manifests?n=&last=&orderby=``."""
    name = repository_name(request)
    check_name(name)
    authorize(request, "repository", name, "metadata_read")
    reg = registry(request)
    n, last = page_params(request)
    order = _order(request)
    host = registry_host(request)

    def listing() -> Response:
        """The page and its (possibly tens of megabytes of) JSON, built on a reader thread."""
        repo = reg.repository(name)
        rows, headers = page(
            reg.meta.list_manifests(repo["id"], last, fetch_limit(n), order), n, last, f"/acr/v1/{name}/_manifests",
            lambda row: row["digest"], orderby=_carried(order),
        )
        tag_map = reg.meta.tags_of(repo["id"], [r["digest"] for r in rows])
        # Indexes list their children as "references": their bytes, in one query for the page.
        index_digests = [r["digest"] for r in rows if r["media_type"] in mt.INDEX_TYPES]
        contents = reg.meta.manifest_contents(repo["id"], index_digests)
        items = [_manifest_json(row, tag_map[row["digest"]], contents.get(row["digest"])) for row in rows]
        return json_response({"registry": host, "imageName": name, "manifests": items}, headers=headers)

    return await reg.threads.read(listing)


async def manifest(request: Request) -> Response:
    """``GET|PATCH /acr/v1/<name>/_manifests/<digest or tag>``."""
    name = repository_name(request)
    reference = str(request.path_params["reference"])
    check_name(name)
    reg = registry(request)
    if request.method == "PATCH":
        authorize(request, "repository", name, "metadata_write")
    else:
        authorize(request, "repository", name, "metadata_read")
    repo = await reg.threads.read(reg.repository, name)
    _, digest = await reg.threads.read(reg.resolve_reference, repo, reference)
    if digest is None:
        raise e.manifest_unknown(reference)
    if request.method == "PATCH":
        await reg.threads.write(reg.update_attributes, name, "manifest", digest, await _changes(request))
    row = await reg.threads.read(reg.meta.manifest, repo["id"], digest, with_content=True)
    if row is None:
        raise e.manifest_unknown(reference)
    tag_map = await reg.threads.read(reg.meta.tags_of, repo["id"], [digest])
    body = {
        "registry": registry_host(request),
        "imageName": name,
        "manifest": _manifest_json(row, tag_map[digest], bytes(row["content"])),
    }
    return json_response(body)


routes = [
    Route("/acr/v1/_catalog", catalog, methods=["GET"]),
    Route("/acr/v1/{name:path}/_tags", tags, methods=["GET"]),
    Route("/acr/v1/{name:path}/_tags/{tag}", tag, methods=["GET", "PATCH", "DELETE"]),
    Route("/acr/v1/{name:path}/_manifests", manifests, methods=["GET"]),
    Route("/acr/v1/{name:path}/_manifests/{reference}", manifest, methods=["GET", "PATCH"]),
    Route("/acr/v1/{name:path}", repository, methods=["GET", "PATCH", "DELETE"]),
]
