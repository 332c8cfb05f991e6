"""Manifest operations on ``/v2``: get (digest-checked, 4 MiB cap), put, HEAD descriptors, referrers."""

from __future__ import annotations

import json
from typing import IO, Any

from ..errors import DigestValidationError, ResourceNotFoundError, ResponseTooLargeError
from ..models import GetManifestResult
from ..oci import mediatypes as mt
from ..oci.digest import InvalidDigestError, compute_digest, is_digest_reference, parse_digest
from ..oci.manifest import EMPTY_DESCRIPTOR, Descriptor, InvalidManifestError, parse_manifest
from . import paths
from .instructions import Gen, Request
from .responses import json_body, raise_for_status
from .session import Session


def _digest_of(content: bytes, like: str | None) -> str:
    algorithm = "sha256"
    if like and ":" in like:
        candidate = like.split(":", 1)[0]
        if candidate in ("sha256", "sha512"):
            algorithm = candidate
    return compute_digest(content, algorithm)


def _media_type(header: str | None, content: bytes) -> str:
    if header:
        value = header.split(";")[0].strip()
        if value and value not in ("application/json", "text/plain", "application/octet-stream"):
            return value
    try:
        body_type = json.loads(content).get("mediaType")
    except (ValueError, AttributeError, UnicodeDecodeError):
        body_type = None
    return body_type or (header or mt.OCI_MANIFEST)


def _too_big(repository: str, reference: str) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"Manifest size is bigger than max allowed size of 4MB. [manifest {repository}:{reference}]"
    )


def get_manifest(session: Session, repository: str, reference: str) -> Gen[GetManifestResult]:
    """``GET /v2/<name>/manifests/<ref>``, verified against the requested digest and the header digest."""
    request = Request(
        "GET", session.url(paths.manifest(repository, reference)), {"Accept": mt.MANIFEST_ACCEPT},
        max_body=mt.MAX_MANIFEST_SIZE,
    )
    try:
        response = yield from session.send(request)
    except ResponseTooLargeError:
        raise _too_big(repository, reference) from None
    raise_for_status(response, 200, context=f"manifest {repository}:{reference}")
    length = response.header("content-length")
    if length and length.isdigit() and int(length) > mt.MAX_MANIFEST_SIZE:
        raise _too_big(repository, reference)
    content = response.content
    header_digest = response.header("docker-content-digest")
    if is_digest_reference(reference):
        computed = _digest_of(content, reference)
        if computed != reference:
            raise DigestValidationError("The content of retrieved manifest digest does not match the requested digest.")
    if header_digest:
        if _digest_of(content, header_digest) != header_digest:
            raise DigestValidationError("The server-computed digest does not match the client-computed digest.")
        digest = header_digest
    else:
        digest = reference if is_digest_reference(reference) else compute_digest(content)
    try:
        manifest = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidManifestError(f"manifest {repository}:{reference} is not JSON (or nested too deeply)") from None
    return GetManifestResult(
        manifest=manifest, media_type=_media_type(response.header("content-type"), content), digest=digest,
        content=content,
    )


def manifest_bytes(manifest: dict[str, Any] | bytes | IO[bytes] | Any) -> bytes:
    """The exact bytes to push: a dict as ``json.dumps`` (as the original SDK), bytes verbatim, a stream read."""
    if manifest is None:
        raise ValueError("The parameter repository and manifest/data cannot be None.")
    if isinstance(manifest, (bytes, bytearray, memoryview)):
        data = bytes(manifest)
    elif hasattr(manifest, "read"):
        data = manifest.read(mt.MAX_MANIFEST_SIZE + 1)
        if isinstance(data, str):
            data = data.encode()
    elif isinstance(manifest, dict) or hasattr(manifest, "keys"):
        data = json.dumps(dict(manifest)).encode()
    else:
        raise TypeError("manifest must be a JSON mapping, bytes or a binary stream")
    if len(data) > mt.MAX_MANIFEST_SIZE:
        raise ValueError("Manifest size is bigger than max allowed size of 4MB.")
    return data


def set_manifest(
    session: Session,
    repository: str,
    manifest: dict[str, Any] | bytes | IO[bytes],
    *,
    tag: str | None = None,
    media_type: str = mt.OCI_MANIFEST,
) -> Gen[str]:
    """``PUT /v2/<name>/manifests/<tag or digest>``; returns the digest, checked against the server's."""
    data = manifest_bytes(manifest)
    digest = compute_digest(data)
    request = Request(
        "PUT",
        session.url(paths.manifest(repository, tag or digest)),
        {"Content-Type": media_type or mt.OCI_MANIFEST, "Accept": "application/json"},
        data,
    )
    response = yield from session.send(request)
    raise_for_status(response, context=f"push manifest {repository}:{tag or digest}")
    returned = response.header("docker-content-digest")
    if returned and returned != digest:
        try:
            same = compute_digest(data, parse_digest(returned).algorithm) == returned
        except InvalidDigestError:
            same = False
        if not same:
            raise DigestValidationError("The server-computed digest does not match the client-computed digest.")
    if response.header("oci-subject") is None:
        yield from _update_referrers_tag(session, repository, data, digest, media_type)
    return digest


def _update_referrers_tag(session: Session, repository: str, data: bytes, digest: str, media_type: str) -> Gen[None]:
    """On a registry without the referrers API, list a pushed manifest with a ``subject`` in the fallback
    ``<alg>-<hex>`` tag index (the OCI distribution-spec "referrers tag schema")."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return
    subject = body.get("subject") if isinstance(body, dict) else None
    if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
        return
    tag = subject["digest"].replace(":", "-")
    try:
        current = yield from get_manifest(session, repository, tag)
        index = current.manifest if isinstance(current.manifest, dict) else {}
    except ResourceNotFoundError:
        index = {}
    children = [c for c in index.get("manifests") or [] if isinstance(c, dict)]
    if any(c.get("digest") == digest for c in children):
        return
    entry: dict[str, Any] = {"mediaType": body.get("mediaType") or media_type, "digest": digest, "size": len(data)}
    config = body.get("config") if isinstance(body.get("config"), dict) else {}
    artifact_type = body.get("artifactType") or config.get("mediaType")
    if artifact_type:
        entry["artifactType"] = artifact_type
    if isinstance(body.get("annotations"), dict) and body["annotations"]:
        entry["annotations"] = body["annotations"]
    updated = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [*children, entry]}
    payload = json.dumps(updated, separators=(",", ":")).encode()
    yield from set_manifest(session, repository, payload, tag=tag, media_type=mt.OCI_INDEX)


def get_manifest_descriptor(session: Session, repository: str, reference: str) -> Gen[Descriptor]:
    """A ``HEAD`` of the manifest: its media type, digest and size (a ``GET`` when the registry omits them)."""
    request = Request("HEAD", session.url(paths.manifest(repository, reference)), {"Accept": mt.MANIFEST_ACCEPT})
    response = yield from session.send(request)
    if response.status == 404:
        raise ResourceNotFoundError(
            f"manifest {repository}:{reference} not found", status_code=404, error_code="MANIFEST_UNKNOWN"
        )
    raise_for_status(response, context=f"manifest {repository}:{reference}")
    digest = response.header("docker-content-digest")
    length = response.header("content-length")
    media_type = response.header("content-type")
    if not digest or not length or not length.isdigit() or not media_type:
        result = yield from get_manifest(session, repository, reference)
        return Descriptor(media_type=result.media_type, digest=result.digest, size=len(result.content))
    return Descriptor(media_type=_media_type(media_type, b"{}"), digest=digest, size=int(length))


def list_referrers(
    session: Session, repository: str, digest: str, *, artifact_type: str | None = None
) -> Gen[list[Descriptor]]:
    """The OCI referrers API (``/v2/<name>/referrers/<digest>``), falling back to the ``sha256-<hex>`` tag schema."""
    query = {"artifactType": artifact_type} if artifact_type else None
    request = Request("GET", session.url(paths.referrers(repository, digest), query), {"Accept": mt.OCI_INDEX})
    response = yield from session.send(request)
    if response.status == 200:
        index = json_body(response)
    elif response.status in (404, 405):
        tag = digest.replace(":", "-")
        try:
            result = yield from get_manifest(session, repository, tag)
        except ResourceNotFoundError:
            return []
        index = result.manifest
    else:
        raise_for_status(response, context=f"referrers of {repository}@{digest}")
        index = {}
    children = index.get("manifests") if isinstance(index, dict) else None
    found = [Descriptor.from_json(item, "referrer") for item in children or [] if isinstance(item, dict)]
    if artifact_type:
        found = [d for d in found if d.artifact_type == artifact_type]
    return found


def empty_manifest_bytes(marker: str) -> tuple[bytes, str]:
    """A tiny unique OCI manifest (empty config, no layers) and its digest: the untag placeholder."""
    body = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": "application/vnd.dockyard.untag.v1",
        "config": _EMPTY,
        "layers": [_EMPTY],
        "annotations": {"dev.dockyard.untag": marker},
    }
    data = json.dumps(body, separators=(",", ":")).encode()
    return data, compute_digest(data)


_EMPTY = {"mediaType": EMPTY_DESCRIPTOR.media_type, "digest": EMPTY_DESCRIPTOR.digest, "size": EMPTY_DESCRIPTOR.size}


def parse_result(result: GetManifestResult) -> Any:
    """The :class:`dockyard.oci.Manifest` of a fetched manifest, or ``None`` when it is not one we can read."""
    try:
        return parse_manifest(result.content, result.media_type)
    except InvalidManifestError:
        return None


__all__ = [
    "get_manifest",
    "get_manifest_descriptor",
    "is_digest_reference",
    "list_referrers",
    "manifest_bytes",
    "set_manifest",
]
