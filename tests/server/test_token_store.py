"""The token and scope map methods of both metadata stores (SQLite and in memory) behave alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.server.storage.memory import MemoryMetadataStore
from dockyard.server.storage.metadata import SqliteMetadataStore
from dockyard.server.storage.postgres import PostgresMetadataStore
from dockyard.server.storage.protocols import MetadataStore


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    meta: MetadataStore
    if request.param == "sqlite":
        meta = SqliteMetadataStore(tmp_path)
    elif request.param == "postgres":
        meta = PostgresMetadataStore(request.getfixturevalue("postgres_url"))
    else:
        meta = MemoryMetadataStore()
    yield meta
    meta.close()


def test_tokens_bump_versions_and_never_reuse_ids(store: MetadataStore) -> None:
    start = store.auth_version()
    with store.write():
        first = store.add_token("ci", "h1", None, (("app", ("content/read",)),), None)
    assert (first.generation, first.enabled, first.rules) == (1, True, (("app", ("content/read",)),))
    assert store.auth_version() > start
    with store.write():
        store.update_token("ci", scope_map="_repositories_pull", rules=(), enabled=False, expires=123.0)
    changed = store.token("ci")
    assert changed is not None and (changed.generation, changed.enabled, changed.scope_map, changed.expires) == (
        2, False, "_repositories_pull", 123.0)
    with store.write():
        assert store.delete_token("ci") and not store.delete_token("ci")
        again = store.add_token("ci", "h2", None, (), None)
    assert again.id != first.id and [t.name for t in store.tokens()] == ["ci"]


def test_scope_maps_are_created_replaced_and_deleted(store: MetadataStore) -> None:
    with store.write():
        store.put_scope_map("readers", "team", (("team/*", ("content/read",)),))
    version = store.auth_version()
    with store.write():
        store.put_scope_map("readers", "team!", (("team/*", ("metadata/read",)),))
    record = store.scope_map("readers")
    assert record is not None and record.description == "team!" and record.rules == (("team/*", ("metadata/read",)),)
    assert store.auth_version() > version and [m.name for m in store.scope_maps()] == ["readers"]
    with store.write():
        assert store.delete_scope_map("readers")
    assert store.scope_map("readers") is None


def test_a_failed_transaction_leaves_no_token(store: MetadataStore) -> None:
    with pytest.raises(RuntimeError), store.write():
        store.add_token("ci", "h", None, (), None)
        raise RuntimeError("abort")
    assert store.token("ci") is None
