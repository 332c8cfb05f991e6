"""The async flavour's real differences from the sync one (hand-written; ``driver.py`` is shared source).

Sleeping, calling a credential (sync or async ``get_token``), reading one part with the lean range reader, and
running the parts of a parallel download at once.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from ..protocol.download import CATCH_UP_WAIT, read_part
from ..protocol.instructions import CallCredential, Gen, Parallel, ReadRange
from ..transport.prefetch import Prefetch
from ..transport.rawrange import PartReader


async def sleep(seconds: float) -> None:
    """Wait ``seconds`` without blocking the event loop."""
    await asyncio.sleep(seconds)


async def call_credential(step: CallCredential) -> Any:
    """The credential's token; an async credential's ``get_token`` is awaited."""
    value = step.credential.get_token(*step.scopes)
    return await value if inspect.isawaitable(value) else value


async def read_range(reader: PartReader, step: ReadRange) -> None:
    """The lean socket reader for one part, in a thread, when allowed; failures leave the rest to httpx."""
    if reader.enabled:
        await asyncio.to_thread(reader, step)


async def stream_range(reader: PartReader, step: ReadRange) -> AsyncGenerator[tuple[int, bytes], None]:
    """The lean socket reader's pieces of a streamed download, received and hashed on a thread of their own
    ahead of the caller (the event loop only awaits them); failures end them early and leave the rest to httpx."""
    ahead = Prefetch(reader.stream(step), name="dockyard-stream-reader")
    try:
        while (piece := await ahead.aget()) is not None:
            yield piece
    finally:
        ahead.close()


async def parallel(run: Callable[[Gen[None]], Awaitable[None]], step: Parallel) -> None:
    """Run the parts of a parallel download as tasks, hashing in order (in a thread) as their bytes land."""
    limit = asyncio.Semaphore(step.concurrency)

    async def one(index: int) -> None:
        async with limit:
            await run(read_part(step.states[index], step.sink))

    tasks = [asyncio.ensure_future(one(index)) for index in range(len(step.states))]
    try:
        for index, task in enumerate(tasks):
            while not await asyncio.to_thread(step.catch_up, index):
                await asyncio.wait({task}, timeout=CATCH_UP_WAIT)
                if task.done():
                    task.result()  # a failed part raises here
            await task
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
