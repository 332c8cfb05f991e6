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
from dockyard.server.cache.flight import Fill, Flights, Renewal
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

    def fill_as(self, name: str, seconds: float = 0.0) -> Fill[str]:
        """A fill that records ``name``, takes ``seconds`` and stores "filled by <name>"."""

        async def fill(renew: Renewal) -> str:
            self.fills.append(name)
            await asyncio.sleep(seconds)
            self.result = f"filled by {name}"
            return self.result

        return fill

    def holder(self, *, renews: bool) -> tuple[Fill[str], asyncio.Event]:
        """The first fill, and the event set once it runs (holding the lease): one that renews while 1.5 s of
        "bytes" arrive (three lease lifetimes) and stores "filled by first", or one that receives nothing, so it
        never renews and never ends."""
        running = asyncio.Event()

        async def fill(renew: Renewal) -> str:
            self.fills.append("first")
            running.set()
            if not renews:
                await asyncio.Event().wait()
            for _ in range(30):
                renew()
                await asyncio.sleep(0.05)
            self.result = "filled by first"
            return self.result

        return fill, running


async def test_a_stalled_holder_is_taken_over_once_its_lease_lapses(registry: Registry) -> None:
    store = Store()
    hangs, stalled = store.holder(renews=False)
    first = asyncio.ensure_future(Flights(registry).run(KEY, store.ready, hangs))
    try:
        await asyncio.wait_for(stalled.wait(), 5)
        started = time.monotonic()
        result = await asyncio.wait_for(Flights(registry).run(KEY, store.ready, store.fill_as("second")), 10)
        waited = time.monotonic() - started
    finally:
        first.cancel()
    assert result == "filled by second"
    assert store.fills == ["first", "second"]
    assert waited >= 0.4  # it waited for the lease to lapse, not fetched beside a live holder


async def test_a_holder_that_renews_keeps_the_fill_and_the_other_gets_its_result(registry: Registry) -> None:
    store = Store()
    slow, started = store.holder(renews=True)
    first = asyncio.ensure_future(Flights(registry).run(KEY, store.ready, slow))
    await asyncio.wait_for(started.wait(), 5)
    second = await asyncio.wait_for(Flights(registry).run(KEY, store.ready, store.fill_as("second")), 10)
    assert second == "filled by first" and await first == "filled by first"
    assert store.fills == ["first"]


async def test_requests_in_one_process_share_one_fill(registry: Registry) -> None:
    store = Store()
    flights = Flights(registry)
    fill = store.fill_as("one", 0.1)
    results = await asyncio.gather(*(flights.run(KEY, store.ready, fill) for _ in range(8)))
    assert results == ["filled by one"] * 8 and store.fills == ["one"]
