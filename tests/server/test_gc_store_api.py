"""What garbage collection reads from every metadata store (SQLite, PostgreSQL, memory): manifests in the order
they were stored, the links of a batch of digests, and the runs recorded for every replica to see."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.oci import compute_digest
from dockyard.oci import mediatypes as mt
from dockyard.server.storage.memory import MemoryMetadataStore
from dockyard.server.storage.metadata import SqliteMetadataStore
from dockyard.server.storage.postgres import PostgresMetadataStore
from dockyard.server.storage.protocols import MetadataStore
from dockyard.server.storage.records import NO_MANIFEST, GcRunRecord, NewManifest


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def meta(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    store: MetadataStore
    if request.param == "sqlite":
        store = SqliteMetadataStore(tmp_path)
    elif request.param == "postgres":
        store = PostgresMetadataStore(request.getfixturevalue("postgres_url"))
    else:
        store = MemoryMetadataStore()
    try:
        yield store
    finally:
        store.close()


def manifest(name: str) -> NewManifest:
    body = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "name": name}).encode()
    return NewManifest(digest=compute_digest(body), media_type=mt.OCI_MANIFEST, content=body, image_size=len(body),
                       config_media_type=None, artifact_type=None, subject=None, annotations=None,
                       architecture=None, os=None)


def test_manifests_after_pages_in_storage_order(meta: MetadataStore) -> None:
    with meta.write():
        repo = meta.ensure_repository("order/app")
        for i in range(5):
            meta.put_manifest(repo, manifest(f"m{i}"))
    first = meta.manifests_after(NO_MANIFEST, 3)
    assert first is not None and [m.content for m in first] == [manifest(f"m{i}").content for i in range(3)]
    rest = meta.manifests_after(first[-1].mark, 3)
    assert rest is not None and [m.content for m in rest] == [manifest(f"m{i}").content for i in (3, 4)]
    assert meta.manifests_after(rest[-1].mark, 3) == []
    with meta.write():
        meta.put_manifest(repo, manifest("late"))
    late = meta.manifests_after(rest[-1].mark, 3)
    assert late is not None and [m.content for m in late] == [manifest("late").content]


def test_a_manifest_stored_after_the_newest_was_deleted_is_never_missed(meta: MetadataStore) -> None:
    """SQLite gives a new row the largest id + 1: with the newest row deleted, a new manifest can take its id.
    Reading on from that position must either return the new manifest or say it cannot place the position."""
    with meta.write():
        repo = meta.ensure_repository("reuse/app")
        meta.put_manifest(repo, manifest("a"))
        meta.put_manifest(repo, manifest("b"))
    seen = meta.manifests_after(NO_MANIFEST, 10)
    assert seen is not None and len(seen) == 2
    with meta.write():
        meta.delete_manifest(repo, manifest("b").digest)
        meta.put_manifest(repo, manifest("c"))
    after = meta.manifests_after(seen[-1].mark, 10)
    assert after is None or [m.content for m in after] == [manifest("c").content]


def test_blob_links_of_a_batch(meta: MetadataStore) -> None:
    digests = [compute_digest(f"blob-{i}".encode()) for i in range(3)]
    with meta.write():
        one = meta.ensure_repository("links/one")
        two = meta.ensure_repository("links/two")
        meta.link_blob(one, digests[0], 1)
        meta.link_blob(two, digests[0], 1)
        meta.link_blob(one, digests[1], 1)
    found = {(link.repo_id, link.digest) for link in meta.blob_links_of(digests)}
    assert found == {(one, digests[0]), (two, digests[0]), (one, digests[1])}
    assert meta.blob_links_of([digests[2]]) == []


def test_gc_runs_are_recorded_per_kind(meta: MetadataStore) -> None:
    assert meta.last_gc_run("scheduled") is None
    with meta.write():
        meta.record_gc_run(GcRunRecord("scheduled", "host:1", 10.0, 12.0, 3, 300, 1))
        meta.record_gc_run(GcRunRecord("command", "host:2", 20.0, 21.0, 0, 0, 0))
        meta.record_gc_run(GcRunRecord("scheduled", "host:3", 30.0, 31.5, 1, 100, 0))
    last = meta.last_gc_run("scheduled")
    assert last == (GcRunRecord("scheduled", "host:3", 30.0, 31.5, 1, 100, 0), 2)
    assert meta.last_gc_run("command") == (GcRunRecord("command", "host:2", 20.0, 21.0, 0, 0, 0), 1)
