"""A page of a time-ordered listing (``/acr/v1/<name>/_tags?orderby=timeasc|timedesc``, ``_manifests`` alike)
costs the database one page of rows wherever it starts — also among many tags that carry one update time
(tags imported or migrated together): the keyset seeks to (update time, name), it does not walk the tied rows.

What the database did is read from the database itself: on SQLite the virtual-machine steps of the page's
queries (a progress handler), on PostgreSQL the rows the plan of the store's own statement read
(``EXPLAIN ANALYZE``). No timing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dockyard.server.storage import records as r
from dockyard.server.storage import tables as t
from dockyard.server.storage.metadata import SqliteMetadataStore
from dockyard.server.storage.postgres import PostgresMetadataStore
from dockyard.server.storage.schema import engine_url, sqlite_url

#: Tags sharing one update time, and the page size read in their middle.
TIED = 3000
PAGE = 10
STAMP = "2026-01-01T00:00:00.000000Z"
DIGEST = "sha256:" + "ab" * 32

Store = SqliteMetadataStore | PostgresMetadataStore


@pytest.fixture(params=["sqlite", "postgres"])
def tied(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, int, str]]:
    """A store holding one repository of :data:`TIED` tags with one update time: (store, repo id, its URL)."""
    if request.param == "sqlite":
        store: Store = SqliteMetadataStore(tmp_path)
        url = sqlite_url(store.path)
    else:
        url = request.getfixturevalue("postgres_url")
        store = PostgresMetadataStore(url)
    with store.write():
        repo_id = store.ensure_repository("tied/app")
        store.put_manifest(repo_id, r.NewManifest(DIGEST, "application/vnd.oci.image.manifest.v1+json", 0, None, None,
                                                  None, None, None, None, b"{}"))
    engine = sa.create_engine(engine_url(url), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.insert(t.tags), [{"repo_id": repo_id, "name": f"t{i:05d}", "digest": DIGEST,
                                          "created": STAMP, "updated": STAMP} for i in range(TIED)])
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE tags")  # the planner statistics autovacuum keeps up to date
    engine.dispose()
    try:
        yield store, repo_id, url
    finally:
        store.close()


def _sqlite_work(store: SqliteMetadataStore, call: Any) -> int:
    """Virtual-machine steps (in hundreds) SQLite ran for ``call``."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    store.conn.set_progress_handler(count, 100)
    try:
        call()
    finally:
        store.conn.set_progress_handler(None, 100)
    return steps[0]


def _rows_read(plan: dict[str, Any]) -> int:
    """Rows every scan of the plan read: those it returned plus those its filter removed, over all loops."""
    own = 0
    if "Relation Name" in plan:
        loops = plan.get("Actual Loops", 1)
        own = (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * loops
    return own + sum(_rows_read(child) for child in plan.get("Plans", []))


def _postgres_work(store: PostgresMetadataStore, url: str, call: Any) -> int:
    """Rows PostgreSQL read for the page query ``call`` sends (its last statement, explained with its values)."""
    sent: list[tuple[str, Any]] = []

    def remember(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        sent.append((statement, parameters))

    sa.event.listen(store._engine, "before_cursor_execute", remember)
    try:
        call()
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", remember)
    statement, parameters = next((s, p) for s, p in reversed(sent) if "ORDER BY" in s)
    engine = sa.create_engine(engine_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            explained = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters).scalar()
    finally:
        engine.dispose()
    document = json.loads(explained) if isinstance(explained, str) else explained
    return _rows_read(document[0]["Plan"])


@pytest.mark.parametrize("order", ["timeasc", "timedesc"])
def test_a_page_among_tags_of_one_update_time_reads_one_page(tied: tuple[Store, int, str], order: str) -> None:
    store, repo_id, url = tied

    def page(last: str | None) -> Any:
        return lambda: store.list_tags(repo_id, last, PAGE + 1, order)

    middle = f"t{TIED // 2:05d}"
    following = store.list_tags(repo_id, middle, PAGE, order)
    step = 1 if order == "timeasc" else -1
    assert [tag.name for tag in following] == [f"t{TIED // 2 + step * (i + 1):05d}" for i in range(PAGE)]

    if isinstance(store, SqliteMetadataStore):
        first, inside = _sqlite_work(store, page(None)), _sqlite_work(store, page(middle))
        # One page of rows (plus looking up the cursor's row), not the ~1,500 tied rows before the cursor.
        assert inside <= 3 * first, (first, inside)
    else:
        read = _postgres_work(store, url, page(middle))
        assert read <= 3 * PAGE, read
