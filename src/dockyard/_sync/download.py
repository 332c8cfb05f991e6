"""Blob downloads over the sync driver: the verifying, resuming ``DownloadBlobStream`` and file downloads."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from ..errors import ServiceRequestError
from ..protocol import download as plan
from ..protocol.download import BlobReadState
from ..protocol.filesink import FileSink
from ..protocol.messages import Response
from ..protocol.session import Session
from . import rawrange
from .driver import SyncDriver


def iter_read(
    driver: SyncDriver, state: BlobReadState, response: Response | None = None
) -> Iterator[tuple[int, bytes]]:
    """``(offset, bytes)`` pieces of a blob read, resuming with ``Range`` after dropped connections."""
    while True:
        if response is None:
            response = driver.run(state.open())
        raw = response.raw
        try:
            if raw is not None:
                for chunk in raw.iter_raw():
                    offset = state.position
                    data = state.feed(chunk)
                    if data:
                        yield offset, data
                    if state.complete:
                        break
        except httpx.TransportError as exc:
            if not state.resume_allowed(exc):
                raise ServiceRequestError(f"download of {state.digest} failed: {exc}", error=exc) from exc
            response = None
            continue
        finally:
            if raw is not None:
                raw.close()
        if state.needs_more() and state.resume_allowed():
            response = None
            continue
        state.finish()
        return


class DownloadBlobStream(Iterator[bytes]):
    """An iterator over a blob's bytes; the digest is verified when it ends (``DigestValidationError``).

    A dropped connection resumes with a ``Range`` request from the last byte received.
    """

    def __init__(self, driver: SyncDriver, state: BlobReadState) -> None:
        self._state = state
        self._pieces = iter_read(driver, state)

    @property
    def digest(self) -> str:
        return self._state.digest

    @property
    def blob_size(self) -> int | None:
        """The blob's size once the first response told it."""
        return self._state.total

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._pieces)[1]

    def close(self) -> None:
        """Stop the download and release its connection."""
        self._pieces.close()

    def __enter__(self) -> DownloadBlobStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pump(driver: SyncDriver, step: plan.Pump) -> None:
    for offset, data in iter_read(driver, step.state, step.response):
        step.sink.write(data, offset)


def fetch_part(driver: SyncDriver, state: BlobReadState, sink: FileSink) -> None:
    """One part of a parallel download: the lean socket reader when possible, httpx for the rest."""
    if driver.raw_parts:
        request = driver.run(state.session.authorize(state.request()))
        try:
            rawrange.fetch_part(request.url, request.headers, state, sink, timeout=driver.timeout,
                                verify=driver.verify)
        except (rawrange.Unsupported, OSError):
            pass  # go on over httpx from wherever the reader stopped
        if state.complete:
            return
    _pump(driver, plan.Pump(state, sink))


def _parallel(driver: SyncDriver, step: plan.Parallel) -> None:
    with ThreadPoolExecutor(max_workers=step.concurrency) as pool:
        futures = [pool.submit(fetch_part, driver, state, step.sink) for state in step.states]
        try:
            for index, future in enumerate(futures):
                future.result()
                step.after(index)
        finally:
            for future in futures:
                future.cancel()


def download_to_file(
    driver: SyncDriver,
    session: Session,
    repository: str,
    digest: str,
    path: str | os.PathLike[str],
    *,
    max_concurrency: int = 4,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Run :func:`dockyard.protocol.download.download_to_file` with threads for the parallel parts."""

    def handle(step: Any) -> None:
        if isinstance(step, plan.Pump):
            _pump(driver, step)
        elif isinstance(step, plan.Parallel):
            _parallel(driver, step)
        else:  # pragma: no cover - a protocol bug
            raise TypeError(f"unknown instruction {step!r}")

    gen = plan.download_to_file(session, repository, digest, path, concurrency=max_concurrency, progress=progress)
    return driver.run(gen, handle)
