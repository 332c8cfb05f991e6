"""Blob downloads over the async driver: ``AsyncDownloadBlobStream`` and file downloads with parallel ranges."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .._sync import rawrange
from ..protocol import download as plan
from ..protocol.download import BlobReadState
from ..protocol.session import Session
from .driver import AsyncDriver


class AsyncDownloadBlobStream(plan.BlobStreamInfo, AsyncIterator[bytes]):
    """An async iterator over a blob's bytes, verified at the end and resumed after dropped connections."""

    def __init__(self, driver: AsyncDriver, state: BlobReadState) -> None:
        self._state = state
        self._pieces = driver.stream(plan.read_blob(state))

    def __aiter__(self) -> AsyncDownloadBlobStream:
        return self

    async def __anext__(self) -> bytes:
        offset_and_data = await self._pieces.__anext__()
        return offset_and_data[1]

    async def close(self) -> None:
        """Stop the download and release its connection."""
        await self._pieces.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> AsyncDownloadBlobStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def read_range(driver: AsyncDriver, step: plan.ReadRange) -> None:
    """The lean socket reader for one part (in a thread), when allowed; failures leave the rest to httpx."""
    if not driver.raw_parts:
        return
    try:
        await asyncio.to_thread(rawrange.fetch_part, step.request.url, step.request.headers, step.state, step.sink,
                                timeout=driver.timeout, verify=driver.verify)
    except (rawrange.Unsupported, OSError):
        pass  # go on over httpx from wherever the reader stopped


async def _parallel(driver: AsyncDriver, step: plan.Parallel, handle: Callable[[Any], Awaitable[None]]) -> None:
    limit = asyncio.Semaphore(step.concurrency)

    async def one(state: BlobReadState) -> None:
        async with limit:
            await driver.run(plan.read_part(state, step.sink), handle)

    tasks = [asyncio.ensure_future(one(state)) for state in step.states]
    try:
        for index, task in enumerate(tasks):
            while not await asyncio.to_thread(step.catch_up, index):
                await asyncio.wait({task}, timeout=plan.CATCH_UP_WAIT)
                if task.done():
                    task.result()  # a failed part raises here
            await task
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def download_to_file(
    driver: AsyncDriver,
    session: Session,
    repository: str,
    digest: str,
    path: str | os.PathLike[str],
    *,
    max_concurrency: int = 4,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Run :func:`dockyard.protocol.download.download_to_file` with tasks for the parallel parts."""

    async def handle(step: Any) -> None:
        if isinstance(step, plan.ReadRange):
            await read_range(driver, step)
        elif isinstance(step, plan.Parallel):
            await _parallel(driver, step, handle)
        else:  # pragma: no cover - a protocol bug
            raise TypeError(f"unknown instruction {step!r}")

    gen = plan.download_to_file(session, repository, digest, path, concurrency=max_concurrency, progress=progress)
    return await driver.run(gen, handle)
