"""A listing page may name more manifests than one SQL statement can bind (SQLite's default limit is 32,766
variables, PostgreSQL's 65,535, and a page holds up to 100,000): the store binds them a batch at a time. Here
SQLite's limit is lowered on the store's connection, so a page of a few thousand manifests crosses it."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from dockyard.server.storage import records as r
from dockyard.server.storage.metadata import SqliteMetadataStore

MANIFESTS = 1500
VARIABLE_LIMIT = 700


def _manifest(index: int) -> r.NewManifest:
    content = f'{{"schemaVersion":2,"n":{index}}}'.encode()
    return r.NewManifest(f"sha256:{hashlib.sha256(content).hexdigest()}", "application/vnd.oci.image.manifest.v1+json",
                         0, None, None, None, None, None, None, content)


def test_a_page_beyond_the_variable_limit_is_read_in_batches(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path)
    manifests = [_manifest(i) for i in range(MANIFESTS)]
    with store.write():
        repo_id = store.ensure_repository("big/repo")
        for index, manifest in enumerate(manifests):
            store.put_manifest(repo_id, manifest)
            store.put_tag(repo_id, f"t{index:05d}-b", manifest.digest)
            store.put_tag(repo_id, f"t{index:05d}-a", manifest.digest)
    store.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, VARIABLE_LIMIT)
    digests = [manifest.digest for manifest in manifests]

    with store.read():
        contents = store.manifest_contents(repo_id, digests)
        tags = store.tags_of(repo_id, digests)

    assert contents == {manifest.digest: manifest.content for manifest in manifests}
    assert tags == {manifest.digest: [f"t{i:05d}-a", f"t{i:05d}-b"] for i, manifest in enumerate(manifests)}
    store.close()
