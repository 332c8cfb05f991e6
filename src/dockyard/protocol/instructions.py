"""The closed set of instructions a protocol generator yields to its driver.

Every operation is a generator (:data:`Gen`): it yields an :data:`Instruction` and receives the driver's answer
(a :class:`~dockyard.protocol.messages.Response` for a :class:`Request`, a token for :class:`CallCredential`,
body bytes for :class:`NextChunk`, ``None`` otherwise); a transport failure is thrown into the generator as
:class:`dockyard.errors.ServiceRequestError`. All instruction types derive from :class:`BaseInstruction` and are
listed once in :data:`Instruction`; drivers dispatch over them with ``match`` and ``assert_never``.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from .messages import MAX_RESPONSE_BODY, BodySource, Response

if TYPE_CHECKING:
    import os

    from .download import BlobReadState, Sink

T = TypeVar("T")


class BaseInstruction:
    """The base type of every instruction (see :data:`Instruction` for the closed set)."""

    __slots__ = ()


@dataclass
class Request(BaseInstruction):
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


@dataclass(frozen=True)
class Sleep(BaseInstruction):
    """Ask the driver to wait ``seconds`` (retry backoff)."""

    seconds: float


@dataclass(frozen=True)
class CallCredential(BaseInstruction):
    """Ask the driver to call ``credential.get_token(*scopes)`` (awaiting it when it is async)."""

    credential: Any
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class NextChunk(BaseInstruction):
    """Ask the driver for the next piece of ``response``'s body (``b""`` at its end).

    A dropped connection is thrown into the generator as :class:`dockyard.errors.ServiceRequestError`.
    """

    response: Response


@dataclass(frozen=True)
class CloseResponse(BaseInstruction):
    """Ask the driver to release ``response``'s connection."""

    response: Response


@dataclass(frozen=True)
class Emit(BaseInstruction):
    """Hand ``data`` (the blob's bytes at ``offset``) to whoever iterates the download."""

    offset: int
    data: bytes


@dataclass(frozen=True)
class OpenSink(BaseInstruction):
    """Ask the driver for a :class:`~dockyard.protocol.download.Sink` writing the blob ``digest`` to ``path``
    (a temp file next to it until the digest verified); the answer is the sink."""

    path: str | os.PathLike[str]
    digest: str


@dataclass
class Parallel(BaseInstruction):
    """Ask the driver to run the reads of ``states`` into ``sink`` concurrently (see :func:`read_blob`).

    Meanwhile the driver calls :meth:`catch_up` with the index of the first unfinished part, over and
    over (until it returns True), so the hash follows the bytes as they land, in order.
    """

    states: list[BlobReadState]
    sink: Sink
    concurrency: int

    def catch_up(self, index: int) -> bool:
        """Hash what part ``index`` has written so far; True when the whole part is hashed."""
        state = self.states[index]
        self.sink.hash_through(state.written)
        limit = state.expected_end
        return limit is not None and self.sink.hashed >= limit


@dataclass(frozen=True)
class ReadRange(BaseInstruction):
    """Ask the driver to fetch the rest of ``state`` with its lean socket reader, when it has one: into ``sink``,
    or (without a sink) out to whoever iterates the download, as :class:`Emit` pieces would go.

    ``request`` carries the URL and credentials. The driver answers nothing and swallows the reader's
    failures: whatever is still missing afterwards is read over the ordinary transport.
    """

    request: Request
    state: BlobReadState
    sink: Sink | None = None


@dataclass(frozen=True)
class CutConnections(BaseInstruction):
    """Ask the driver to shut down every connection it has open, in whichever thread it is used: requests in flight
    (a stalled download, a running upload) fail at once; an idle connection is dropped by its pool before reuse."""


#: What a driver carries out itself (everything but :class:`Emit`).
Command: TypeAlias = (Request | Sleep | CallCredential | NextChunk | CloseResponse | OpenSink | ReadRange | Parallel
                      | CutConnections)
#: The closed set of instructions.
Instruction: TypeAlias = Command | Emit
#: A protocol operation: yields instructions, receives the driver's answers, returns ``T``.
Gen: TypeAlias = Generator[Instruction, Any, T]


class Stepper:
    """Advances a protocol generator for a driver: sends it the last value (or throws the last error) and
    keeps its return value once it finishes."""

    def __init__(self, gen: Gen[Any]) -> None:
        self.gen = gen
        self.value: Any = None
        self.error: BaseException | None = None
        self.result: Any = None

    def next(self) -> Instruction | None:
        """The next instruction, or ``None`` when the generator has returned (its value is in ``result``)."""
        try:
            step = self.gen.throw(self.error) if self.error is not None else self.gen.send(self.value)
        except StopIteration as stop:
            self.result = stop.value
            return None
        self.value, self.error = None, None
        return step
