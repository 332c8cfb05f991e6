"""The sync flavour's real differences from the async one (hand-written; ``driver.py`` is generated).

Sleeping, calling a credential (an async one is refused), reading one part with the lean range reader, and
running the parts of a parallel download in threads.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any

from ..protocol.download import CATCH_UP_WAIT, read_part
from ..protocol.instructions import CallCredential, Gen, Parallel, ReadRange
from ..transport.prefetch import Prefetch
from ..transport.rawrange import PartReader


def sleep(seconds: float) -> None:
    """Wait ``seconds``."""
    time.sleep(seconds)


def call_credential(step: CallCredential) -> Any:
    """The credential's token; an async credential is refused with a clear ``TypeError``."""
    token = step.credential.get_token(*step.scopes)
    if inspect.isawaitable(token):
        close = getattr(token, "close", None)
        if close is not None:
            close()  # do not leave the coroutine un-awaited
        raise TypeError("this credential is asynchronous; use it with dockyard.aio.ContainerRegistryClient")
    return token


def read_range(reader: PartReader, step: ReadRange) -> None:
    """The lean socket reader for one part (it checks itself whether it may run); failures leave the rest
    to httpx."""
    reader(step)


def stream_range(reader: PartReader, step: ReadRange) -> Generator[tuple[int, bytes], None, None]:
    """The lean socket reader's pieces of a streamed download, received and hashed on a thread of their own
    ahead of the caller (:class:`~dockyard.transport.prefetch.Prefetch`), so the next piece arrives while the
    caller handles this one; failures end them early and leave the rest to httpx.

    The reader's state is final once the pieces end: the thread marks the end only after the reader's generator
    finished. A caller that stops early leaves the thread to close the reader on its own."""
    ahead = Prefetch(reader.stream(step), name="dockyard-stream-reader")
    try:
        while (piece := ahead.get()) is not None:
            yield piece
    finally:
        ahead.close()


def parallel(run: Callable[[Gen[None]], None], step: Parallel) -> None:
    """Run the parts of a parallel download in threads, hashing in order as their bytes land."""
    with ThreadPoolExecutor(max_workers=step.concurrency) as pool:
        futures = [pool.submit(run, read_part(state, step.sink)) for state in step.states]
        try:
            for index, future in enumerate(futures):
                while not step.catch_up(index):
                    try:
                        future.result(timeout=CATCH_UP_WAIT)  # a failed part raises here
                    except FuturesTimeout:
                        pass
                future.result()
        finally:
            for future in futures:
                future.cancel()
