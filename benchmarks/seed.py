"""Bulk-seeding a metadata database for the list-growth benchmark (B11): many tags in one repository and many
repositories, written straight into the tables (SQLite ``executemany`` in one transaction, PostgreSQL ``COPY``).

Going through HTTP would take hours for a million tags; the rows written here are the ones ``dockyard serve``
writes itself (same columns, same timestamp format), so what is measured afterwards is the server's listing.
The schema is made first by the migrations (:func:`dockyard.server.storage.schema.upgrade`), never here.

Tag ``i`` of the big repository is named ``t{i:07d}``; its update time is not in name order (time rank
``i * STRIDE mod N``), so the name order and the time order are two different walks through the same rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from dockyard.server.storage.schema import sqlite_path, upgrade

#: Multiplier that spreads tag update times (prime, so it is a bijection modulo any count it does not divide).
STRIDE = 7_919
#: The first seeded timestamp.
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed` wrote: the big repository's name and tag count, the number of other repositories."""

    tag_repository: str
    tag_count: int
    repository_count: int

    def tag_name(self, i: int) -> str:
        """The name of tag ``i`` (name order)."""
        return f"t{i:07d}"

    def time_rank(self, i: int) -> int:
        """The position of tag ``i`` in update-time order (0 = oldest)."""
        return (i * _stride(self.tag_count)) % self.tag_count

    def tag_at_time_rank(self, rank: int) -> str:
        """The name of the tag at ``rank`` in update-time order."""
        stride = _stride(self.tag_count)
        return self.tag_name((rank * pow(stride, -1, self.tag_count)) % self.tag_count)

    def repository_name(self, i: int) -> str:
        """Repository ``i`` of the many (catalog order is name order; the tag repository sorts before them)."""
        return f"bench/r{i:07d}"


def _stride(count: int) -> int:
    return STRIDE if count % STRIDE else 1


def _stamp(offset_us: int) -> str:
    return (EPOCH + timedelta(microseconds=offset_us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _tag_rows(seeded: Seeded, repo_id: int, digest: str) -> Iterator[tuple[int, str, str, str, str]]:
    for i in range(seeded.tag_count):
        # 1 ms apart in time order: far from the microsecond stamps a real push writes, never equal.
        stamp = _stamp(seeded.time_rank(i) * 1000)
        yield repo_id, seeded.tag_name(i), digest, stamp, stamp


def _manifest_row(repo_id: int, digest: str, media_type: str, content: bytes, stamp: str) -> tuple[object, ...]:
    return (repo_id, digest, media_type, len(content), len(content), stamp, stamp, content)


_MANIFEST_COLUMNS = "repo_id, digest, media_type, size, image_size, created, updated, content"


def seed(url: str, *, tag_count: int, repository_count: int, manifest: tuple[str, str, bytes]) -> Seeded:
    """Create the schema at ``url`` and write one repository of ``tag_count`` tags plus ``repository_count``
    repositories holding one manifest each. ``manifest`` is (digest, media type, bytes) of the manifest every
    repository holds and every tag points to."""
    upgrade(url)
    seeded = Seeded("bench/many-tags", tag_count, repository_count)
    if sqlite_path(url) is not None:
        _seed_sqlite(url, seeded, manifest)
    else:
        _seed_postgres(url, seeded, manifest)
    return seeded


def _repository_rows(seeded: Seeded) -> Iterator[tuple[int, str, str, str]]:
    stamp = _stamp(0)
    yield 1, seeded.tag_repository, stamp, stamp
    for i in range(seeded.repository_count):
        yield i + 2, seeded.repository_name(i), stamp, stamp


def _seed_sqlite(url: str, seeded: Seeded, manifest: tuple[str, str, bytes]) -> None:
    digest, media_type, content = manifest
    path = sqlite_path(url)
    assert path is not None
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO repositories (id, name, created, updated) VALUES (?, ?, ?, ?)",
                         _repository_rows(seeded))
        stamp = _stamp(0)
        conn.executemany(f"INSERT INTO manifests ({_MANIFEST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (_manifest_row(repo_id, digest, media_type, content, stamp)
                          for repo_id in range(1, seeded.repository_count + 2)))
        conn.executemany("INSERT INTO tags (repo_id, name, digest, created, updated) VALUES (?, ?, ?, ?, ?)",
                         _tag_rows(seeded, 1, digest))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _seed_postgres(url: str, seeded: Seeded, manifest: tuple[str, str, bytes]) -> None:
    import psycopg

    digest, media_type, content = manifest
    stamp = _stamp(0)
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY repositories (id, name, created, updated) FROM STDIN") as copy:
                for row in _repository_rows(seeded):
                    copy.write_row(row)
            with cur.copy(f"COPY manifests ({_MANIFEST_COLUMNS}) FROM STDIN") as copy:
                for repo_id in range(1, seeded.repository_count + 2):
                    copy.write_row(_manifest_row(repo_id, digest, media_type, content, stamp))
            with cur.copy("COPY tags (repo_id, name, digest, created, updated) FROM STDIN") as copy:
                for row in _tag_rows(seeded, 1, digest):
                    copy.write_row(row)
            # Ids were given explicitly: move the sequences past them so that pushes get fresh ids.
            for table in ("repositories", "manifests"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()
        # What autovacuum does within a minute of a bulk load: fresh planner statistics.
        conn.autocommit = True
        conn.execute("ANALYZE")
