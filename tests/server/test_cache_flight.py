"""Single flight across processes (:mod:`dockyard.server.cache.flight`): two ``Flights`` on one SQLite metadata
database stand for two worker processes or replicas. The one holding a key's lease fills it; the other waits for
the result, and takes over when the holder stops renewing (it died or stalled).

The lease times are shortened here; the real ones (15 s) are what the end-to-end cache tests run with.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.server.cache import flight
from dockyard.server.cache.flight import Flights, Renewal
from dockyard.server.registry import Registry

KEY = "blob:sha256:" + "ab" * 32


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setattr(flight, "LEASE_TTL", 0.5)
    monkeypatch.setattr(flight, "RENEW_EVERY", 0.1)
    monkeypatch.setattr(flight, "POLL_EVERY", 0.02)
    monkeypatch.setattr(flight, "LEASE_EVERY", 0.05)
    reg = Registry.open(tmp_path / "data")
    try:
        yield reg
    finally:
        reg.close()


class Store:
    """What the fills store: the result for the key once one fill finished, and who filled it."""

    def __init__(self) -> None:
        self.result: str | None = None
        self.fills: list[str] = []

    async def ready(self) -> str | None:
        return self.result


async def _wait_for(condition: object, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_stalled_holder_is_taken_over_once_its_lease_lapses(registry: Registry) -> None:
    store = Store()
    stalled = asyncio.Event()

    async def hangs(renew: Renewal) -> str:
        store.fills.append("first")
        stalled.set()
        await asyncio.Event().wait()  # receives nothing, so it never renews
        raise AssertionError("unreachable")

    async def fills(renew: Renewal) -> str:
        store.fills.append("second")
        store.result = "filled by the second"
        return store.result

    first = asyncio.ensure_future(Flights(registry).run(KEY, store.ready, hangs))
    try:
        await asyncio.wait_for(stalled.wait(), 5)
        started = time.monotonic()
        result = await asyncio.wait_for(Flights(registry).run(KEY, store.ready, fills), 10)
        waited = time.monotonic() - started
    finally:
        first.cancel()
    assert result == "filled by the second"
    assert store.fills == ["first", "second"]
    assert waited >= 0.4  # it waited for the lease to lapse, not fetched beside a live holder


async def test_a_holder_that_renews_keeps_the_fill_and_the_other_gets_its_result(registry: Registry) -> None:
    store = Store()
    started = asyncio.Event()

    async def slow(renew: Renewal) -> str:
        store.fills.append("first")
        started.set()
        for _ in range(30):  # 1.5 s of "bytes arriving", three lease lifetimes
            renew()
            await asyncio.sleep(0.05)
        store.result = "filled by the first"
        return store.result

    async def must_not_run(renew: Renewal) -> str:
        store.fills.append("second")
        return "filled by the second"

    first = asyncio.ensure_future(Flights(registry).run(KEY, store.ready, slow))
    await asyncio.wait_for(started.wait(), 5)
    second = await asyncio.wait_for(Flights(registry).run(KEY, store.ready, must_not_run), 10)
    assert second == "filled by the first" and await first == "filled by the first"
    assert store.fills == ["first"]


async def test_requests_in_one_process_share_one_fill(registry: Registry) -> None:
    store = Store()

    async def fills(renew: Renewal) -> str:
        store.fills.append("one")
        await asyncio.sleep(0.1)
        store.result = "filled"
        return store.result

    flights = Flights(registry)
    results = await asyncio.gather(*(flights.run(KEY, store.ready, fills) for _ in range(8)))
    assert results == ["filled"] * 8 and store.fills == ["one"]
