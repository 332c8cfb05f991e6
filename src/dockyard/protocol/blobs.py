"""Blob operations on ``/v2``: exists, mount, delete, and streamed uploads (monolithic or chunked)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import IO, Any
from urllib.parse import urljoin

from ..errors import DigestValidationError, HttpResponseError, ServiceRequestError, TransferCancelledError
from ..oci.digest import Hasher, compute_digest, parse_digest
from ..oci.ranges import upload_range
from . import paths
from .instructions import CutConnections, Gen, Request
from .messages import BodySource, Response
from .responses import raise_for_status
from .session import Session

#: Blobs up to this size go in one request; larger ones in chunks of at least this size.
CHUNK_THRESHOLD = 64 * 1024 * 1024

UploadData = IO[bytes] | bytes | bytearray | memoryview | str | os.PathLike[str]


def blob_exists(session: Session, repository: str, digest: str) -> Gen[bool]:
    """``HEAD /v2/<name>/blobs/<digest>``: True on 200, False on 404."""
    response = yield from session.send(Request("HEAD", session.url(paths.blob(repository, digest))))
    if response.status == 404:
        return False
    raise_for_status(response, context=f"blob {repository}@{digest}")
    return True


def delete_blob(session: Session, repository: str, digest: str) -> Gen[None]:
    """``DELETE /v2/<name>/blobs/<digest>``; a 404 is not an error (as the original SDK)."""
    request = Request("DELETE", session.url(paths.blob(repository, digest)), {"Accept": "*/*"})
    response = yield from session.send(request)
    if response.status != 404:
        raise_for_status(response, context=f"delete blob {repository}@{digest}")


def _location(response: Response) -> str:
    location = response.header("location")
    if not location:
        raise HttpResponseError("the registry started an upload without a Location header",
                                status_code=response.status)
    return urljoin(response.url, location)


def _with_digest(url: str, digest: str) -> str:
    from urllib.parse import quote

    return url + ("&" if "?" in url else "?") + "digest=" + quote(digest, safe="")


def mount_blob(session: Session, repository: str, digest: str, from_repository: str) -> Gen[bool]:
    """Cross-repository mount; True when mounted, False when the registry refused (the upload is cancelled)."""
    url = session.url(paths.uploads(repository), {"mount": digest, "from": from_repository})
    request = Request("POST", url, extra_scope=f"repository:{from_repository}:pull")
    response = yield from session.send(request)
    if response.status == 201:
        return True
    raise_for_status(response, 202, context=f"mount {from_repository}@{digest} into {repository}")
    cancel = yield from session.send(Request("DELETE", _location(response)))
    del cancel  # best effort: an upload session the server forgets on its own
    return False


def abort_uploads(session: Session) -> Gen[int]:
    """Stop the session's transfers and delete the upload sessions its uploads opened on the registry (best
    effort); the number deleted.

    Requests in flight, in whichever thread, fail at once (the driver cuts its connections: a stalled download
    and a running upload alike), and every later request but these deletes raises ``TransferCancelledError``.
    Safe to call again (e.g. for a session opened while the transfers were stopping)."""
    session.cancelled.set()
    yield CutConnections()
    deleted = 0
    for url in list(session.open_uploads):
        session.open_uploads.discard(url)
        try:
            response = yield from session.send(Request("DELETE", url), cleanup=True)
        except (ServiceRequestError, HttpResponseError):  # best effort: the registry forgets it in time
            continue
        deleted += 200 <= response.status < 300
    return deleted


def start_upload(session: Session, repository: str) -> Gen[tuple[str, int]]:
    """``POST /v2/<name>/blobs/uploads/``: the upload URL and the server's minimum chunk size."""
    response = yield from session.send(Request("POST", session.url(paths.uploads(repository))))
    raise_for_status(response, 202, 201, context=f"start upload to {repository}")
    minimum = response.header("oci-chunk-min-length") or "0"
    return _location(response), int(minimum) if minimum.isdigit() else 0


class _Source:
    """Where upload bytes come from: an open binary stream, its size when known, and whether we own it."""

    def __init__(self, data: Any, size: int | None) -> None:
        self.owned = False
        if isinstance(data, (bytes, bytearray, memoryview)):
            self.stream: IO[bytes] = io.BytesIO(bytes(data))
            self.size: int | None = len(data)
        elif isinstance(data, (str, os.PathLike)):
            self.stream = open(data, "rb")  # noqa: SIM115 - closed in close()
            self.owned = True
            self.size = os.fstat(self.stream.fileno()).st_size
        elif hasattr(data, "read"):
            self.stream = data
            self.size = size if size is not None else _remaining(data)
        else:
            raise TypeError("data must be bytes, a path or a readable binary stream")
        if size is not None:
            self.size = size

    def close(self) -> None:
        """Close the file when this source opened it."""
        if self.owned:
            self.stream.close()


def _remaining(stream: Any) -> int | None:
    try:
        if stream.seekable():
            here = stream.tell()
            end = stream.seek(0, os.SEEK_END)
            stream.seek(here)
            return int(end - here)
    except (AttributeError, OSError, ValueError):
        pass
    return None


def upload_blob(
    session: Session,
    repository: str,
    data: UploadData,
    *,
    digest: str | None = None,
    size: int | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = CHUNK_THRESHOLD,
    check_exists: bool = True,
) -> Gen[tuple[str, int]]:
    """Upload a blob from bytes, a path or a stream in one pass, hashing as it goes; ``(digest, size)``.

    When ``digest`` is given and the registry has the blob, nothing is sent (``check_exists=False``: the caller
    has just asked, so no ``HEAD`` is sent first). Known digest and small
    size: ``POST`` + one streamed ``PUT``. Otherwise ``POST`` + streamed ``PATCH`` (chunks of at least
    ``OCI-Chunk-Min-Length`` when the blob is large) + ``PUT ?digest=``.
    """
    if repository is None or data is None:
        raise ValueError("The parameter repository and manifest/data cannot be None.")
    source = _Source(data, size)
    try:
        if digest is not None:
            parse_digest(digest)
            if check_exists and (yield from blob_exists(session, repository, digest)):
                if source.size is None:
                    raise ValueError("size is required when skipping an existing blob read from a stream")
                return digest, source.size
        algorithm = parse_digest(digest).algorithm if digest else "sha256"
        hasher = Hasher(algorithm)
        if digest is None and isinstance(data, (bytes, bytearray, memoryview)):
            digest = compute_digest(data, algorithm)
        if session.cancelled.is_set():
            raise TransferCancelledError("the upload was cancelled")
        location, minimum = yield from start_upload(session, repository)
        session.open_uploads.add(location)
        started = location
        cancelled = session.cancelled.is_set
        total = source.size
        if digest is not None and total is not None and total <= max(chunk_size, minimum):
            body = BodySource(source.stream, limit=total, hasher=hasher, progress=progress, cancelled=cancelled)
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(total)}
            request = Request("PUT", _with_digest(location, digest), headers, body)
            response = yield from session.send(request)
            raise_for_status(response, context=f"upload blob to {repository}")
            hasher = body.hasher or hasher
        else:
            step = max(chunk_size, minimum)
            chunked = total is not None and total > step
            offset = 0
            while True:
                limit = min(step, total - offset) if chunked and total is not None else None
                body = BodySource(source.stream, limit=limit, hasher=hasher, progress=progress, cancelled=cancelled)
                headers = {"Content-Type": "application/octet-stream"}
                if chunked and limit is not None:
                    headers["Content-Length"] = str(limit)
                    headers["Content-Range"] = upload_range(offset, offset + limit - 1)
                elif total is not None:
                    headers["Content-Length"] = str(total)
                response = yield from session.send(Request("PATCH", location, headers, body))
                raise_for_status(response, 202, 204, context=f"upload blob to {repository}")
                hasher = body.hasher or hasher
                session.open_uploads.discard(location)
                location = _location(response)
                session.open_uploads.add(location)
                offset += body.sent
                if limit is not None and body.sent < limit:
                    raise ValueError(f"the stream ended after {offset} bytes; {total} were announced")
                if not chunked or offset >= (total or 0):
                    break
            final = digest or hasher.digest
            if cancelled():
                raise TransferCancelledError("the upload was cancelled")
            request = Request("PUT", _with_digest(location, final), {"Content-Length": "0"}, b"")
            response = yield from session.send(request)
            raise_for_status(response, context=f"upload blob to {repository}")
        session.open_uploads.difference_update((started, location))  # finished: nothing left to cancel
        computed = hasher.digest
        if digest is not None and computed != digest:
            raise DigestValidationError(f"the uploaded content has digest {computed}, not {digest}")
        returned = response.header("docker-content-digest")
        if returned and returned != computed:
            raise DigestValidationError("The server-computed digest does not match the client-computed digest.")
        return computed, hasher.size
    finally:
        source.close()
