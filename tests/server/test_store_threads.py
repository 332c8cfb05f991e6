"""The reader threads that keep the registry's blocking reads off the event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from dockyard.server.offload import ReaderThreads


class Refused(Exception):
    pass


def _refuse() -> None:
    raise Refused("no")


def _stop() -> None:
    raise StopIteration


async def test_reads_run_on_the_reader_threads_and_their_errors_reach_the_caller() -> None:
    readers = ReaderThreads(2, "test-read")
    try:
        names = await asyncio.gather(*(readers.run(lambda: threading.current_thread().name) for _ in range(20)))
        assert set(names) <= {"test-read_0", "test-read_1"}
        assert threading.current_thread().name not in names
        with pytest.raises(Refused):
            await readers.run(_refuse)
        with pytest.raises(RuntimeError):  # a StopIteration cannot travel through a future as itself
            await readers.run(_stop)
    finally:
        await asyncio.to_thread(readers.close)


async def test_a_cancelled_caller_does_not_break_the_threads() -> None:
    readers = ReaderThreads(1, "test-cancel")
    gate = threading.Event()
    try:
        slow = asyncio.ensure_future(readers.run(gate.wait))
        await asyncio.sleep(0.05)
        slow.cancel()
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert await readers.run(lambda: 42) == 42
    finally:
        await asyncio.to_thread(readers.close)


async def test_closed_threads_finish_what_was_queued_and_take_no_more() -> None:
    readers = ReaderThreads(1, "test-close")
    done: list[int] = []
    assert await readers.run(lambda: "started") == "started"
    pending = [asyncio.ensure_future(readers.run(lambda i=i: done.append(i))) for i in range(5)]
    await asyncio.sleep(0)  # every call queued before close() asks the threads to stop
    await asyncio.gather(asyncio.to_thread(readers.close), *pending)
    assert done == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError):
        await readers.run(lambda: None)
