"""Blob download planning: the resumable streaming state, and range plans for parallel downloads."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, overload

from ..errors import DigestValidationError, HttpResponseError, ResponseTooLargeError, ServiceRequestError
from ..oci.digest import Hasher, parse_digest
from ..oci.ranges import parse_content_range, range_header
from . import paths
from .instructions import CloseResponse, Emit, Gen, NextChunk, OpenSink, Parallel, ReadRange, Request, Sleep
from .messages import Response
from .responses import error_from_response
from .session import Session

#: Blobs at least this big are fetched as parallel ranges when the server supports ``Range``.
PARALLEL_THRESHOLD = 64 * 1024 * 1024
#: The first request of a file download asks for this many bytes (it also tells the size and Range support).
FIRST_RANGE = 8 * 1024 * 1024
#: Parallel parts are at least this big.
MIN_PART = 16 * 1024 * 1024
#: How long (seconds) the hashing side of a parallel download waits for more bytes of the part it follows.
CATCH_UP_WAIT = 0.005
#: How many times one download may resume after a dropped connection.
MAX_RESUMES = 5


class Sink(Protocol):
    """Where a download to a file writes (the driver opens one for :class:`OpenSink`): positional writes,
    in-order hashing, and an atomic commit once the digest verified."""

    hashed: int

    def write(self, data: bytes | memoryview, offset: int) -> None: ...
    def hash_through(self, end: int) -> None: ...
    def commit(self, total: int | None = None) -> int: ...
    def discard(self) -> None: ...


def blob_request(session: Session, repository: str, digest: str, start: int = 0, end: int | None = None) -> Request:
    """A streamed blob ``GET`` (redirects followed), with a ``Range`` when not starting at 0 or bounded."""
    headers = {"Accept": "application/octet-stream, */*"}
    if start > 0 or end is not None:
        headers["Range"] = range_header(start, end)
    return Request("GET", session.url(paths.blob(repository, digest)), headers, stream=True, follow_redirects=True)


class BlobReadState:
    """A streamed blob read from ``offset`` (to ``end`` inclusive when bounded), resumable after a drop.

    The driver opens :meth:`open`, feeds every received chunk to :meth:`feed` (which returns the bytes
    to hand on), calls :meth:`resume_allowed` after a transport error and :meth:`finish` at the end.
    The digest is verified when the read covers the whole blob. Never more than the blob's size is read:
    ``size`` (a descriptor's) when given, else what the registry declares (``Content-Length``, a
    ``Content-Range`` total, or a ``HEAD``); a body that goes on past it, a declared size that disagrees
    with ``size``, or a size nobody tells raises :class:`~dockyard.errors.ResponseTooLargeError`.
    """

    def __init__(
        self,
        session: Session,
        repository: str,
        digest: str,
        *,
        offset: int = 0,
        end: int | None = None,
        progress: Callable[[int], None] | None = None,
        verify: bool = True,
        size: int | None = None,
    ) -> None:
        if size is not None and size < 0:
            raise ValueError("size must not be negative")
        self.session = session
        self.repository = repository
        self.digest = digest
        algorithm = parse_digest(digest).algorithm
        self.start = offset
        self.position = offset
        self.end = end
        #: The blob's size as the caller knows it (a descriptor's); the registry must agree with it.
        self.size = size
        self.total: int | None = size
        self.hasher = Hasher(algorithm) if verify and offset == 0 and end is None else None
        self.progress = progress
        self.resumes = 0
        self._skip = 0
        #: One past the last byte written to a sink (it trails ``position`` while a write is under way).
        self.written = offset
        #: Whether the registry is known to serve this blob (a part of a download whose first answer came, or a
        #: read that received bytes): a connection it then refuses is a restart to wait out, not an error.
        self.reached = False
        #: An error answer the driver's lean reader received for this read (see :func:`settle_refusal`).
        self.refusal: Response | None = None
        #: Attempts the next request of this read already had (a retryable refusal counts as one).
        self.attempts = 0

    @property
    def expected_end(self) -> int | None:
        """One past the last byte this read should deliver, when known."""
        if self.end is not None:
            return self.end + 1 if self.total is None else min(self.end + 1, self.total)
        return self.total

    @property
    def complete(self) -> bool:
        """True when every byte this read should deliver has been fed."""
        limit = self.expected_end
        return limit is not None and self.position >= limit

    def request(self) -> Request:
        """The GET for what this read still needs."""
        return blob_request(self.session, self.repository, self.digest, self.position, self.end)

    def open(self) -> Gen[Response]:
        """Send the (next) GET and check its status and ``Content-Range``; returns the streamed response."""
        response = yield from self.session.send(self.request(), first_attempt=self.attempts)
        self.attempts = 0
        if response.status == 416 and self.position > 0 and self.total is not None and self.complete:
            return response
        if response.status == 416 and self.position == 0:
            # An empty blob cannot satisfy a range; ask for it whole.
            request = blob_request(self.session, self.repository, self.digest)
            response = yield from self.session.send(request)
        self.accept(response)
        return response

    def accept(self, response: Response) -> None:
        """Check a response's status and range against what this read asked for."""
        if response.status == 206:
            parsed = parse_content_range(response.header("content-range"))
            if parsed is None or parsed[0] != self.position:
                raise HttpResponseError(
                    f"invalid Content-Range {response.header('content-range')!r} for a read at {self.position}",
                    status_code=206,
                )
            if parsed[2] is not None:
                self._declare(parsed[2])
            self._skip = 0
        elif response.status == 200:
            length = response.header("content-length")
            if length and length.isdigit() and not response.header("content-encoding"):
                self._declare(int(length))
            # The server ignored Range: the body starts at 0, skip what we already have.
            self._skip = self.position
        else:
            raise error_from_response(response, f"blob {self.repository}@{self.digest}")

    def _declare(self, total: int) -> None:
        """The registry told the blob's size: it must agree with the size the caller expects."""
        if self.size is not None and total != self.size:
            raise ResponseTooLargeError(
                f"blob {self.digest}: the registry says it has {total} bytes, its descriptor says {self.size}"
            )
        self.total = total

    @property
    def unbounded(self) -> bool:
        """True when nothing yet bounds how much this read takes (no size known, no range end)."""
        return self.total is None and self.end is None

    def learn_size(self) -> Gen[None]:
        """Ask the registry for the blob's size with a ``HEAD``; refuse to read a blob of unknown size."""
        response = yield from self.session.send(Request("HEAD", self.session.url(paths.blob(self.repository,
                                                                                           self.digest))))
        length = response.header("content-length")
        if 200 <= response.status < 300 and length and length.isdigit():
            self._declare(int(length))
            return
        raise ResponseTooLargeError(
            f"blob {self.digest}: the registry does not tell its size; pass size= (the descriptor's) to read it"
        )

    def take_whole_body(self, response: Response) -> None:
        """A bounded read answered with the whole blob (``200``): keep all of it instead of one range."""
        if response.status == 200 and self.start == 0:
            self.end = None

    @overload
    def feed(self, chunk: bytes) -> bytes: ...
    @overload
    def feed(self, chunk: memoryview) -> bytes | memoryview: ...

    def feed(self, chunk: bytes | memoryview) -> bytes | memoryview:
        """Account for ``chunk``; return the part of it that belongs to this read."""
        if self._skip:
            if len(chunk) <= self._skip:
                self._skip -= len(chunk)
                return b""
            chunk = chunk[self._skip :]
            self._skip = 0
        limit = self.expected_end
        if limit is not None and self.position + len(chunk) > limit:
            if self.end is None:
                raise ResponseTooLargeError(
                    f"blob {self.digest}: the registry sent more than its {limit} bytes; reading stopped there"
                )
            chunk = chunk[: max(0, limit - self.position)]
        if not chunk:
            return b""
        if self.hasher is not None:
            self.hasher.update(chunk)
        self.position += len(chunk)
        self.reached = True
        if self.progress is not None:
            self.progress(len(chunk))
        return chunk

    def resume_allowed(self, error: BaseException | None = None) -> bool:
        """After a dropped connection (or a short body): may the read go on from where it stopped?"""
        if self.resumes >= MAX_RESUMES:
            return False
        self.resumes += 1
        return True

    def needs_more(self) -> bool:
        """At the end of a response body: is data missing (a short body to resume)?"""
        limit = self.expected_end
        return limit is not None and self.position < limit

    def finish(self) -> None:
        """At the end of the read: raise when truncated, or when the content does not match the digest."""
        if self.needs_more():
            raise ServiceRequestError(
                f"blob {self.digest} ended at byte {self.position} of {self.expected_end}"
            )
        if self.hasher is not None and self.hasher.digest != self.digest:
            raise DigestValidationError("The content of retrieved blob digest does not match the requested digest.")


@dataclass(frozen=True)
class Part:
    """A byte range ``[start, end]`` (inclusive) of a blob."""

    start: int
    end: int

    @property
    def size(self) -> int:
        """The number of bytes in the range."""
        return self.end - self.start + 1


def plan_parts(total: int, start: int, concurrency: int, min_part: int = MIN_PART) -> list[Part]:
    """Split ``[start, total)`` into ranges for parallel fetching: a few per worker, each at least ``min_part``."""
    remaining = total - start
    if remaining <= 0:
        return []
    count = max(1, min(remaining // max(1, min_part), max(1, concurrency) * 4))
    size = -(-remaining // count)
    parts = []
    offset = start
    while offset < total:
        end = min(total, offset + size) - 1
        parts.append(Part(offset, end))
        offset = end + 1
    return parts


def first_file_read(
    session: Session, repository: str, digest: str, progress: Callable[[int], None] | None = None,
    size: int | None = None,
) -> BlobReadState:
    """The first read of a file download: a bounded range that also tells the size and ``Range`` support."""
    return BlobReadState(session, repository, digest, end=FIRST_RANGE - 1, progress=progress, verify=False,
                         size=size)


def part_read(
    session: Session, repository: str, digest: str, part: Part, progress: Callable[[int], None] | None = None
) -> BlobReadState:
    """The read of one part of a parallel download (the registry answered the download's first request)."""
    state = BlobReadState(session, repository, digest, offset=part.start, end=part.end, progress=progress,
                          verify=False)
    state.reached = True
    return state


def use_parallel(state: BlobReadState, response: Response, threshold: int = PARALLEL_THRESHOLD) -> bool:
    """After the first ranged response: is the blob big enough and does the server do ranges?"""
    return response.status == 206 and state.total is not None and state.total >= threshold


class BlobStreamInfo:
    """What both download streams tell about the blob they read."""

    _state: BlobReadState

    @property
    def digest(self) -> str:
        """The digest the content is verified against."""
        return self._state.digest

    @property
    def blob_size(self) -> int | None:
        """The blob's size once the first response told it."""
        return self._state.total


def settle_refusal(state: BlobReadState) -> Gen[None]:
    """After the driver's lean reader: an error answer it received (``state.refusal``) is the read's first attempt,
    not a reason to send the request again at once. A status the retry policy retries (429, 503, …) is waited out
    as it says (``Retry-After`` honoured) and the read goes on over the ordinary transport as its next attempt; any
    other status, or one with no retries left, raises as that answer over the ordinary transport would."""
    response, state.refusal = state.refusal, None
    if response is None:
        return
    retry = state.session.retry
    if retry.should_retry(0, response):
        yield Sleep(retry.delay(0, response))
        state.attempts = 1
        return
    raise error_from_response(response, f"blob {state.repository}@{state.digest}")


def read_part(state: BlobReadState, sink: Sink) -> Gen[None]:
    """One part of a parallel download: the driver's lean reader first, then :func:`read_blob` for the rest."""
    request = yield from state.session.authorize(state.request())
    yield ReadRange(request, state, sink)
    yield from settle_refusal(state)
    if not state.complete:
        yield from read_blob(state, sink)


def stream_blob(state: BlobReadState) -> Gen[None]:
    """A streamed download: the driver's lean reader hands out the bytes when it can, :func:`read_blob` the rest.

    The lean reader sends credentials it is given but cannot answer a challenge: with a credential and no
    token yet, a ``HEAD`` of the blob (which also tells its size) learns the challenge and fetches the token.
    """
    request = yield from state.session.authorize(state.request())
    if "Authorization" not in request.headers and state.session.credential is not None:
        yield from state.learn_size()
        request = yield from state.session.authorize(state.request())
    yield ReadRange(request, state)
    yield from settle_refusal(state)
    if state.complete:
        state.finish()
        return
    yield from read_blob(state)


def read_blob(state: BlobReadState, sink: Sink | None = None, response: Response | None = None) -> Gen[None]:
    """Read ``state``'s bytes, resuming with ``Range`` after a drop or a short body, then verify.

    Pieces go to ``sink`` at their offsets, or (without a sink) out to the caller as :class:`Emit`.
    ``response`` is an already opened first response.
    """
    while True:
        if response is None:
            try:
                response = yield from state.open()
            except ServiceRequestError as exc:
                # A registry that served this blob and now refuses connections is restarting: wait and resume.
                if not (exc.connect_failed and state.reached and state.resume_allowed(exc)):
                    raise
                yield Sleep(state.session.retry.delay(state.resumes - 1, None))
                continue
        if state.unbounded:
            yield from state.learn_size()
        try:
            while response.raw is not None and not state.complete:
                chunk = yield NextChunk(response)
                if not chunk:
                    break
                offset = state.position
                data = state.feed(chunk)
                if not data:
                    continue
                if sink is not None:
                    sink.write(data, offset)
                    state.written = state.position
                else:
                    yield Emit(offset, data)
        except ServiceRequestError as exc:
            yield CloseResponse(response)
            if not state.resume_allowed(exc):
                raise
            response = None
            continue
        yield CloseResponse(response)
        if state.needs_more() and state.resume_allowed():
            response = None
            continue
        state.finish()
        return


def download_to_file(
    session: Session,
    repository: str,
    digest: str,
    path: str | os.PathLike[str],
    *,
    concurrency: int = 4,
    progress: Callable[[int], None] | None = None,
    size: int | None = None,
) -> Gen[int]:
    """Download a blob to ``path``: temp file, verified digest, atomic rename. Returns the size.

    The first request asks for a bounded range; its answer tells the size and whether the server does
    ranges. Big blobs then go as parallel ranges from byte 0 (written with ``pwrite``, hashed in order as they
    land; the first answer's body is not read); others continue sequentially. Servers that ignore ``Range``
    send the whole blob in the first answer.
    """
    sink: Sink = yield OpenSink(path, digest)
    try:
        first = first_file_read(session, repository, digest, progress, size)
        response = yield from first.open()
        first.take_whole_body(response)
        if not use_parallel(first, response):
            yield from read_blob(first, sink, response)
            if first.total is not None and first.position < first.total:
                rest = BlobReadState(session, repository, digest, offset=first.position, progress=progress,
                                     verify=False, size=first.total)
                yield from read_blob(rest, sink)
            return sink.commit()
        # The answer told what the plan needs; the parts (over the lean reader) fetch every byte, its own too.
        yield CloseResponse(response)
        total = first.total or 0
        # More readers than cores only add contention: the copy and the hash are CPU work on loopback.
        concurrency = max(1, min(concurrency, os.cpu_count() or 2))
        parts = plan_parts(total, 0, concurrency)
        states = [part_read(session, repository, digest, part, progress) for part in parts]
        yield Parallel(states, sink, concurrency)
        return sink.commit(total)
    except BaseException:
        sink.discard()
        raise
