"""What travels with the instructions (:mod:`dockyard.protocol.instructions`): streamed request bodies and
the responses a driver sends back."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from ..errors import TransferCancelledError
from ..oci.digest import Hasher

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
