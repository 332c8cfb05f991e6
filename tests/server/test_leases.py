"""Leases on every metadata store: one holder at a time, renewable by its holder, free again once expired."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.server.storage.memory import MemoryMetadataStore
from dockyard.server.storage.metadata import SqliteMetadataStore
from dockyard.server.storage.postgres import PostgresMetadataStore
from dockyard.server.storage.protocols import MetadataStore


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[MetadataStore, MetadataStore]]:
    """Two stores on one database, as two replicas (or two processes) have them."""
    pair: tuple[MetadataStore, MetadataStore]
    if request.param == "sqlite":
        pair = (SqliteMetadataStore(tmp_path), SqliteMetadataStore(tmp_path))
    elif request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        pair = (PostgresMetadataStore(url), PostgresMetadataStore(url))
    else:
        shared = MemoryMetadataStore()
        pair = (shared, shared)
    try:
        yield pair
    finally:
        for store in pair:
            store.close()


def _acquire(store: MetadataStore, name: str, holder: str, ttl: float) -> bool:
    with store.write():
        return store.acquire_lease(name, holder, ttl)


def test_one_holder_at_a_time(stores: tuple[MetadataStore, MetadataStore]) -> None:
    one, two = stores
    assert _acquire(one, "gc", "replica-1", 60)
    assert not _acquire(two, "gc", "replica-2", 60)
    assert _acquire(one, "gc", "replica-1", 60), "the holder renews its own lease"
    assert _acquire(two, "other-job", "replica-2", 60), "leases are per name"


def test_a_released_lease_is_free_and_others_cannot_release_it(stores: tuple[MetadataStore, MetadataStore]) -> None:
    one, two = stores
    assert _acquire(one, "gc", "replica-1", 60)
    with two.write():
        two.release_lease("gc", "replica-2")
    assert not _acquire(two, "gc", "replica-2", 60), "releasing someone else's lease does nothing"
    with one.write():
        one.release_lease("gc", "replica-1")
    assert _acquire(two, "gc", "replica-2", 60)


def test_an_expired_lease_can_be_taken(stores: tuple[MetadataStore, MetadataStore]) -> None:
    one, two = stores
    assert _acquire(one, "gc", "replica-1", 0.2)
    deadline = time.monotonic() + 5
    while not _acquire(two, "gc", "replica-2", 60):
        assert time.monotonic() < deadline, "an expired lease stays taken"
        time.sleep(0.05)
    assert not _acquire(one, "gc", "replica-1", 60)


def test_racing_holders_get_exactly_one_lease(stores: tuple[MetadataStore, MetadataStore]) -> None:
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def contend(index: int) -> None:
        store = stores[index % 2]
        barrier.wait()
        if _acquire(store, "race", f"holder-{index}", 60):
            winners.append(f"holder-{index}")

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1, winners
