"""``Prefetch``: an iterator run on a thread of its own a few items ahead (what streamed downloads receive and
hash on), consumed from a thread or from a coroutine."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from dockyard.transport.prefetch import Prefetch


class Source:
    """A generator's bookkeeping: how many items it produced, and whether it was closed."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.produced = 0
        self.closed = threading.Event()

    def items(self) -> Iterator[bytes]:
        try:
            for index in range(self.count):
                if index == self.fail_at:
                    raise ValueError(f"item {index} failed")
                self.produced += 1
                yield bytes([index]) * 1000
        finally:
            self.closed.set()


def _wait_until(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the reader thread did not get there"
        time.sleep(0.01)


def test_items_arrive_in_order_and_the_source_is_closed_before_the_end_is_reported() -> None:
    source = Source(50)
    ahead = Prefetch(source.items())
    got = []
    while (item := ahead.get()) is not None:
        got.append(item)
    assert got == [bytes([i]) * 1000 for i in range(50)]
    assert source.closed.is_set(), "the end is reported only after the source finished"
    assert ahead.get() is None  # the end stays


def test_the_thread_stays_at_most_depth_items_ahead() -> None:
    source = Source(100)
    ahead = Prefetch(source.items(), depth=3)
    _wait_until(lambda: source.produced == 4)  # 3 waiting, the 4th held until there is room
    time.sleep(0.2)
    assert source.produced == 4
    assert ahead.get() == bytes([0]) * 1000
    _wait_until(lambda: source.produced == 5)
    ahead.close()


def test_close_stops_a_thread_that_waits_for_room_and_closes_the_source() -> None:
    source = Source(100)
    ahead = Prefetch(source.items(), depth=2)
    _wait_until(lambda: source.produced == 3)
    ahead.close()
    assert source.closed.wait(5), "close() lets the waiting thread stop and close its source"
    ahead.join(5)
    assert source.produced == 3


def test_an_error_of_the_source_reaches_the_consumer_after_the_items_before_it() -> None:
    ahead = Prefetch(Source(10, fail_at=4).items())
    got = [ahead.get() for _ in range(4)]
    assert got == [bytes([i]) * 1000 for i in range(4)]
    with pytest.raises(ValueError, match="item 4 failed"):
        ahead.get()
    assert ahead.get() is None


async def test_a_coroutine_awaits_items_without_blocking_the_event_loop() -> None:
    gate = threading.Event()

    def slow() -> Iterator[int]:
        gate.wait(5)  # the first item comes only once the loop proved it is free
        yield from range(20)

    ahead: Prefetch[int] = Prefetch(slow())
    waiting = asyncio.ensure_future(ahead.aget())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    gate.set()  # the event loop ran this while the coroutine above waited
    assert await asyncio.wait_for(waiting, 5) == 0
    got = [item async for item in _drain(ahead)]
    assert got == list(range(1, 20))


async def test_a_coroutine_gets_the_error_of_the_source() -> None:
    ahead = Prefetch(Source(10, fail_at=2).items())
    assert await ahead.aget() == bytes([0]) * 1000
    assert await ahead.aget() == bytes([1]) * 1000
    with pytest.raises(ValueError, match="item 2 failed"):
        await ahead.aget()


async def _drain(ahead: Prefetch[int]):  # type: ignore[no-untyped-def]
    while (item := await ahead.aget()) is not None:
        yield item
