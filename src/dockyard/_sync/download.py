"""Blob downloads over the sync driver: the verifying, resuming ``DownloadBlobStream`` and file downloads."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any

from ..protocol import download as plan
from ..protocol.download import BlobReadState
from ..protocol.session import Session
from . import rawrange
from .driver import SyncDriver


class DownloadBlobStream(plan.BlobStreamInfo, Iterator[bytes]):
    """An iterator over a blob's bytes; the digest is verified when it ends (``DigestValidationError``).

    A dropped connection resumes with a ``Range`` request from the last byte received.
    """

    def __init__(self, driver: SyncDriver, state: BlobReadState) -> None:
        self._state = state
        self._pieces = driver.stream(plan.read_blob(state))

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


def read_range(driver: SyncDriver, step: plan.ReadRange) -> None:
    """The lean socket reader for one part, when this driver may use it; failures leave the rest to httpx."""
    if not driver.raw_parts:
        return
    try:
        rawrange.fetch_part(step.request.url, step.request.headers, step.state, step.sink, timeout=driver.timeout,
                            verify=driver.verify)
    except (rawrange.Unsupported, OSError):
        pass  # go on over httpx from wherever the reader stopped


def _parallel(driver: SyncDriver, step: plan.Parallel, handle: Callable[[Any], None]) -> None:
    with ThreadPoolExecutor(max_workers=step.concurrency) as pool:
        futures = [pool.submit(driver.run, plan.read_part(state, step.sink), handle) for state in step.states]
        try:
            for index, future in enumerate(futures):
                while not step.catch_up(index):
                    try:
                        future.result(timeout=plan.CATCH_UP_WAIT)  # a failed part raises here
                    except FuturesTimeout:
                        pass
                future.result()
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
        if isinstance(step, plan.ReadRange):
            read_range(driver, step)
        elif isinstance(step, plan.Parallel):
            _parallel(driver, step, handle)
        else:  # pragma: no cover - a protocol bug
            raise TypeError(f"unknown instruction {step!r}")

    gen = plan.download_to_file(session, repository, digest, path, concurrency=max_concurrency, progress=progress)
    return driver.run(gen, handle)
