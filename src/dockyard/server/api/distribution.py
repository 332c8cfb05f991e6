"""OCI Distribution Spec 1.1 (``/v2``): pull, push, content discovery and content management."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ...oci import mediatypes as mt
from ...oci.ranges import content_range, parse_range, parse_upload_range, unsatisfied_range
from .. import errors as e
from ..registry import check_digest
from ..storage.protocols import BlobRedirect
from .access import mount_source, repository_name, route
from .common import (
    catalog_response,
    empty,
    fetch_limit,
    json_off_loop,
    json_response,
    page,
    page_params,
    pull_cache,
    read_limited,
    registry,
)
from .streaming import BlobResponse, ClosingStreamingResponse
from .uploads import CHUNK_MIN_LENGTH, upload_headers

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}


async def base(request: Request) -> Response:
    """``GET /v2/``: the API exists (and, with auth on, the caller is authenticated)."""
    await registry(request).check_available()
    return json_response({}, headers=API_VERSION)


async def catalog(request: Request) -> Response:
    """``GET /v2/_catalog?n=&last=``."""
    return await catalog_response(request, "/v2/_catalog")


async def tags_list(request: Request) -> Response:
    """``GET /v2/<name>/tags/list?n=&last=``."""
    name = repository_name(request)
    n, last = page_params(request)
    tags = await registry(request).tag_names(name, last, fetch_limit(n))
    tags, headers = page(tags, n, last, f"/v2/{name}/tags/list", str)
    return await json_off_loop({"name": name, "tags": tags}, headers=headers)


async def manifest(request: Request) -> Response:
    """``GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>``."""
    name = repository_name(request)
    reference = str(request.path_params["reference"])
    reg = registry(request)
    method = request.method
    if method in ("GET", "HEAD"):
        stored = await pull_cache(request).get_manifest(name, reference)
        content = stored.content or b""
        headers = {
            "Content-Type": stored.media_type,
            "Docker-Content-Digest": stored.digest,
            "ETag": f'"{stored.digest}"',
            **API_VERSION,
        }
        if method == "HEAD":
            headers["Content-Length"] = str(len(content))
            return Response(b"", headers=headers)
        return Response(content, headers=headers)
    if method == "PUT":
        body = await read_limited(request, mt.MAX_MANIFEST_SIZE)
        tags = request.query_params.getlist("tag")
        content_type = request.headers.get("content-type")
        result = await reg.put_manifest(name, reference, body, content_type, tags)
        headers = {"Location": f"/v2/{name}/manifests/{result.digest}", "Docker-Content-Digest": result.digest}
        if result.subject:
            headers["OCI-Subject"] = result.subject
        response = empty(201, headers)
        for tag in result.tags:
            response.headers.append("OCI-Tag", tag)
        return response
    await reg.delete_manifest(name, reference)
    return empty(202)


async def blob(request: Request) -> Response:
    """``GET|HEAD|DELETE /v2/<name>/blobs/<digest>`` (GET honours ``Range``)."""
    name = repository_name(request)
    reg = registry(request)
    if request.method == "DELETE":
        await reg.delete_blob(name, str(request.path_params["digest"]))
        return empty(202)
    range_header = request.headers.get("range")
    ranged = range_header is not None and range_header.strip().lower().startswith("bytes")
    # Only a whole-blob GET is redirected. The server answers a HEAD (a presigned URL is signed for GET only) and
    # a ranged GET itself: it checks the range against the size (416 with an OCI body), and object stores differ
    # in the ranges they accept (Azure Blob has no suffix ranges, ``bytes=-N``).
    redirect = request.method == "GET" and not ranged
    answer = await pull_cache(request).open_blob(
        name, str(request.path_params["digest"]), body=request.method == "GET", whole=not ranged, redirect=redirect
    )
    if answer.opened is None:
        # A blob of a cached repository that is not here yet: its bytes as they arrive from upstream, or (HEAD)
        # its size as the manifest describes it.
        return _filling_blob(answer.digest, answer.size, answer.stream)
    digest, source = answer.opened.digest, answer.opened.source
    headers = {
        "Docker-Content-Digest": str(digest),
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
    }
    if isinstance(source, BlobRedirect):
        return RedirectResponse(source.url, status_code=307, headers={"Docker-Content-Digest": str(digest)})
    size = source.size
    start, length, status = 0, size, 200
    if range_header is not None and ranged:
        span = parse_range(range_header, size)
        if span is None:
            source.close()
            raise e.range_invalid(
                f"range {range_header!r} cannot be satisfied for a blob of {size} bytes",
                headers={"Content-Range": unsatisfied_range(size)},
            )
        start, end = span
        length = end - start + 1
        status = 206
        headers["Content-Range"] = content_range(start, end, size)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        source.close()
        return Response(b"", status_code=status, headers=headers)
    return BlobResponse(source, start, length, status, headers)


def _filling_blob(digest: str, size: int, stream: AsyncIterator[bytes] | None) -> Response:
    headers = {
        "Docker-Content-Digest": digest,
        "Content-Type": "application/octet-stream",
        "ETag": f'"{digest}"',
        "Content-Length": str(size),
    }
    if stream is None:
        return Response(b"", headers=headers)
    return ClosingStreamingResponse(stream, headers=headers)


async def upload_start(request: Request) -> Response:
    """``POST /v2/<name>/blobs/uploads/`` (new session, ``?digest=`` monolithic, ``?mount=&from=``)."""
    name = repository_name(request)
    params = request.query_params
    mount, source = params.get("mount"), mount_source(request)
    reg = registry(request)
    if mount:
        check_digest(mount)
        if source and await reg.mount_blob(name, mount, source):
            return empty(201, {"Location": f"/v2/{name}/blobs/{mount}", "Docker-Content-Digest": mount})
    digest = params.get("digest")
    if digest is not None:
        committed = await reg.put_blob(name, request.stream(), digest)
        return empty(201, {"Location": f"/v2/{name}/blobs/{committed}", "Docker-Content-Digest": str(committed)})
    headers = upload_headers(await reg.start_upload(name))
    headers["OCI-Chunk-Min-Length"] = str(CHUNK_MIN_LENGTH)
    return empty(202, headers)


def _content_range(request: Request) -> int | None:
    """The start offset from ``Content-Range`` (``a-b``), checked against ``Content-Length``; 416 when malformed."""
    header = request.headers.get("content-range")
    if header is None:
        return None
    span = parse_upload_range(header)
    if span is None:
        raise e.range_invalid(f"malformed Content-Range {header!r}: expected '<start>-<end>'")
    start, end = span
    if end < start:
        raise e.range_invalid(f"Content-Range {header!r} ends before it starts")
    length = request.headers.get("content-length")
    if length is not None and length.isdecimal() and int(length) != end - start + 1:
        raise e.range_invalid(f"Content-Range {header!r} does not match Content-Length {length}")
    return start


async def upload(request: Request) -> Response:
    """``GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<uuid>``: status, chunk, finish, cancel."""
    name = repository_name(request)
    upload_id = str(request.path_params["upload_id"])
    reg = registry(request)
    method = request.method
    if method == "GET":
        return empty(204, upload_headers(await reg.upload(name, upload_id)))
    if method == "DELETE":
        await reg.cancel_upload(name, upload_id)
        return empty(204)
    await reg.upload(name, upload_id)
    if method == "PATCH":
        await reg.push_allowed(name)
        start = _content_range(request)
        return empty(202, upload_headers(await reg.append_upload(name, upload_id, request.stream(), start)))
    # PUT: an optional last chunk, then commit against ?digest=.
    digest = request.query_params.get("digest")
    if not digest:
        raise e.digest_invalid("the digest query parameter is required to finish an upload")
    check_digest(digest)
    start = _content_range(request)
    if request.headers.get("content-length") != "0" or start is not None:
        await reg.append_upload(name, upload_id, request.stream(), start)
    committed = await reg.finish_upload(name, upload_id, digest)
    return empty(201, {"Location": f"/v2/{name}/blobs/{committed}", "Docker-Content-Digest": str(committed)})


async def referrers(request: Request) -> Response:
    """``GET /v2/<name>/referrers/<digest>[?artifactType=]``: an image index of the manifests with that subject."""
    name = repository_name(request)
    artifact_type = request.query_params.get("artifactType") or None
    rows = await registry(request).referrers(name, str(request.path_params["digest"]), artifact_type)
    descriptors = []
    for row in rows:
        desc: dict[str, object] = {"mediaType": row.media_type, "digest": row.digest, "size": row.size}
        if row.artifact_type:
            desc["artifactType"] = row.artifact_type
        if row.annotations:
            desc["annotations"] = json.loads(row.annotations)
        descriptors.append(desc)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else None
    return json_response(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": descriptors},
        headers=headers,
        media_type=mt.OCI_INDEX,
    )


routes = [
    route("/v2/", base, "v2.base", ["GET", "HEAD"]),
    route("/v2", base, "v2.base", ["GET", "HEAD"]),
    route("/v2/_catalog", catalog, "v2.catalog", ["GET"]),
    route("/v2/{name:path}/tags/list", tags_list, "v2.tags", ["GET"]),
    route("/v2/{name:path}/manifests/{reference}", manifest, "v2.manifest", ["GET", "HEAD", "PUT", "DELETE"]),
    route("/v2/{name:path}/blobs/uploads/", upload_start, "v2.upload_start", ["POST"]),
    route("/v2/{name:path}/blobs/uploads", upload_start, "v2.upload_start", ["POST"]),
    route("/v2/{name:path}/blobs/uploads/{upload_id}", upload, "v2.upload", ["GET", "PATCH", "PUT", "DELETE"]),
    route("/v2/{name:path}/blobs/{digest}", blob, "v2.blob", ["GET", "HEAD", "DELETE"]),
    route("/v2/{name:path}/referrers/{digest}", referrers, "v2.referrers", ["GET"]),
]
