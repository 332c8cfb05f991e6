"""The instructions a protocol generator yields to its driver, and what the driver sends back.

Every operation is a generator: it yields a :class:`Request` and receives a :class:`Response`, yields
:class:`Sleep` to back off, or :class:`CallCredential` to get an Entra ID token. A transport failure is
thrown into the generator as :class:`dockyard.errors.ServiceRequestError`. The sync driver runs these
generators over ``httpx.Client``, the async one over ``httpx.AsyncClient``; neither knows any registry rule.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

from ..errors import TransferCancelledError
from ..oci.digest import Hasher

T = TypeVar("T")

#: Read size for streamed request bodies: large reads keep the per-chunk Python overhead low.
BODY_CHUNK = 1024 * 1024
#: The most a driver reads of a response body it buffers (JSON pages, error bodies); manifests ask for less.
MAX_RESPONSE_BODY = 64 * 1024 * 1024


class BodySource:
    """A request body streamed from a readable binary file object, hashed in the same pass.

    ``limit`` caps how many bytes this body sends (one chunk of a chunked upload). ``hasher`` is the
    running hash of the bytes before this body; this body hashes into its own copy (``self.hasher``),
    so a retry can rewind a seekable stream and start the chunk's hash over.
    """

    def __init__(
        self,
        stream: IO[bytes],
        *,
        limit: int | None = None,
        hasher: Hasher | None = None,
        progress: Callable[[int], None] | None = None,
        chunk_size: int = BODY_CHUNK,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        self.stream = stream
        #: Checked before each piece: when it answers True the body stops with ``TransferCancelledError``.
        self.cancelled = cancelled
        self.limit = limit
        self._base = hasher
        self.hasher = hasher.copy() if hasher is not None else None
        self.progress = progress
        self.chunk_size = chunk_size
        self.sent = 0
        self._reported = 0
        self.exhausted = False
        try:
            self._start: int | None = stream.tell() if stream.seekable() else None
        except (AttributeError, OSError, ValueError):
            self._start = None

    @property
    def rewindable(self) -> bool:
        """True when the body can be sent again (its stream is seekable)."""
        return self._start is not None

    def rewind(self) -> None:
        """Go back to the start of this body for a retry (nothing to do when nothing was read)."""
        if not self.sent and not self.exhausted:
            return
        if self._start is None:
            raise ValueError("the body stream is not seekable")
        self.stream.seek(self._start)
        self.hasher = self._base.copy() if self._base is not None else None
        self.sent = 0
        self.exhausted = False

    def read_chunk(self) -> bytes:
        """The next piece of the body; ``b""`` at the end."""
        want = self.chunk_size if self.limit is None else min(self.chunk_size, self.limit - self.sent)
        if want <= 0:
            return b""
        if self.cancelled is not None and self.cancelled():
            raise TransferCancelledError("the upload was cancelled")
        data = self.stream.read(want)
        if not data:
            self.exhausted = True
            return b""
        if self.hasher is not None:
            self.hasher.update(data)
        self.sent += len(data)
        if self.progress is not None and self.sent > self._reported:
            self.progress(self.sent - self._reported)  # a retried chunk is reported once
            self._reported = self.sent
        return data

    def __iter__(self) -> Iterator[bytes]:
        while True:
            data = self.read_chunk()
            if not data:
                return
            yield data


@dataclass
class Request:
    """An HTTP request. ``body`` is bytes, a :class:`BodySource` (streamed, not replayable) or ``None``.

    ``stream`` asks the driver to leave a successful response body unread (``Response.raw``);
    ``follow_redirects`` is set for blob GETs (the driver never forwards ``Authorization`` to another host).
    ``extra_scope`` is a token scope the request needs beyond its own repository's (a mount's source).
    ``max_body`` is the most the driver reads of a buffered response body; past it, the driver stops
    reading and marks the response ``truncated`` (the session then raises ``ResponseTooLargeError``).
    """

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | BodySource | None = None
    stream: bool = False
    follow_redirects: bool = False
    extra_scope: str | None = None
    max_body: int = MAX_RESPONSE_BODY

    @property
    def replayable(self) -> bool:
        """True when the request can be sent again (its body is bytes or a seekable stream)."""
        return not isinstance(self.body, BodySource) or self.body.rewindable


class Response:
    """An HTTP response as the protocol sees it: status, lower-cased headers, body bytes.

    For streamed successful responses ``content`` is empty and ``raw`` is the driver's open response.
    ``truncated`` says the body went on past the request's ``max_body`` (``content`` holds its start).
    """

    __slots__ = ("content", "headers", "raw", "status", "truncated", "url")

    def __init__(
        self, status: int, headers: Mapping[str, str], content: bytes = b"", url: str = "", raw: Any = None,
        truncated: bool = False,
    ) -> None:
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.content = content
        self.url = url
        self.raw = raw
        self.truncated = truncated

    def header(self, name: str, default: str | None = None) -> str | None:
        """A header value by case-insensitive name."""
        return self.headers.get(name.lower(), default)

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.url!r})"


@dataclass(frozen=True)
class Sleep:
    """Ask the driver to wait ``seconds`` (retry backoff)."""

    seconds: float


@dataclass(frozen=True)
class CallCredential:
    """Ask the driver to call ``credential.get_token(*scopes)`` (awaiting it when it is async)."""

    credential: Any
    scopes: tuple[str, ...]


Instruction = Request | Sleep | CallCredential
#: A protocol operation: yields instructions, receives responses / token results, returns ``T``.
Gen = Generator[Instruction, Any, T]


class Stepper:
    """Advances a protocol generator for a driver: sends it the last value (or throws the last error) and
    keeps its return value once it finishes."""

    def __init__(self, gen: Gen[Any]) -> None:
        self.gen = gen
        self.value: Any = None
        self.error: BaseException | None = None
        self.result: Any = None

    def next(self) -> Any:
        """The next instruction, or ``None`` when the generator has returned (its value is in ``result``)."""
        try:
            step = self.gen.throw(self.error) if self.error is not None else self.gen.send(self.value)
        except StopIteration as stop:
            self.result = stop.value
            return None
        self.value, self.error = None, None
        return step
