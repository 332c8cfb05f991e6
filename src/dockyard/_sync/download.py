"""Blob downloads over the sync driver: the verifying, resuming ``DownloadBlobStream`` and file downloads."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from ..errors import ServiceRequestError
from ..protocol.download import BlobReadState, first_file_read, part_read, plan_parts, use_parallel
from ..protocol.filesink import FileSink
from ..protocol.messages import Response
from .driver import SyncDriver

READ_CHUNK = 1024 * 1024


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
                for chunk in raw.iter_raw(READ_CHUNK):
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


def download_to_file(
    driver: SyncDriver,
    operations: Any,
    repository: str,
    digest: str,
    path: str | os.PathLike[str],
    *,
    max_concurrency: int = 4,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Download a blob to ``path`` (temp file + verify + rename); big blobs as parallel ranges."""
    session = operations.session
    sink = FileSink(path, digest)
    try:
        first = first_file_read(session, repository, digest, progress)
        response = driver.run(first.open())
        first.take_whole_body(response)
        parallel = use_parallel(first, response)
        for offset, data in iter_read(driver, first, response):
            sink.write(data, offset)
        if not parallel:
            if first.total is not None and first.position < first.total:
                rest = BlobReadState(session, repository, digest, offset=first.position, progress=progress,
                                     verify=False)
                for offset, data in iter_read(driver, rest):
                    sink.write(data, offset)
            return sink.commit()
        total = first.total or 0
        sink.hash_through(first.position)
        parts = plan_parts(total, first.position, max_concurrency)

        def fetch(part: Any) -> None:
            state = part_read(session, repository, digest, part, progress)
            for offset, data in iter_read(driver, state):
                sink.write(data, offset)

        with ThreadPoolExecutor(max_workers=max_concurrency) as pool:
            futures = [pool.submit(fetch, part) for part in parts]
            try:
                for part, future in zip(parts, futures, strict=True):
                    future.result()
                    sink.hash_through(part.end + 1)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return sink.commit(total)
    except BaseException:
        sink.discard()
        raise
