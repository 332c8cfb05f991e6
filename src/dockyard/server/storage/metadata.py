"""Registry metadata in SQLite (WAL): repositories, manifests, tags, blob links and their lock attributes.

Every query the server needs lives here; the rules about *when* to run them live in ``registry.py``.
Writes run inside ``BEGIN IMMEDIATE`` transactions so several worker processes can share one database.

Each thread gets its own connection (WAL lets readers run while a writer holds the lock), and writers of one
process queue on a lock before asking SQLite for its write lock. The file is watched: when ``metadata.db`` is
deleted or replaced under a running server, :class:`DatabaseGoneError` refuses every further access instead of
writing into a file nobody will ever open again.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from . import records as r
from .batches import in_batches
from .private import create_private_file, make_private_dir
from .protocols import StoreGoneError
from .resolve import Resolved, resolve_manifest
from .schema import HEAD, sqlite_url, upgrade

#: The lock-flag columns (named as the :class:`Attributes` fields).
_FLAG_COLUMNS = frozenset(r.ATTRIBUTE_FIELDS.values())

MANIFEST_INFO_COLUMNS = (
    "id, repo_id, digest, media_type, size, image_size, config_media_type, artifact_type, subject, annotations, "
    "architecture, os, created, updated, delete_enabled, write_enabled, read_enabled, list_enabled"
)


#: Most values bound in one ``IN (...)`` list (SQLite allows 32766 variables per statement since 3.32).
_IN_BATCH = 500

#: The database's file name inside a data directory (its presence marks a dockyard data directory).
DB_NAME = "metadata.db"


class DatabaseGoneError(StoreGoneError):
    """``metadata.db`` was deleted or replaced while this process had it open: nothing written now would last."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"the metadata database {path} was deleted or replaced while the server was running; writes are refused "
            "so that nothing acknowledged is lost: restore the file (or remove the data directory) and restart"
        )
        self.path = path


def _attributes(row: sqlite3.Row) -> r.Attributes:
    return r.Attributes.from_row(row)


def _repository(row: sqlite3.Row) -> r.RepositoryRecord:
    return r.RepositoryRecord(row["id"], row["name"], row["created"], row["updated"], _attributes(row))


def _tag(row: sqlite3.Row) -> r.TagRecord:
    return r.TagRecord(row["name"], row["digest"], row["created"], row["updated"], _attributes(row))


#: A tag listing's columns: a :class:`~.records.TagRecord`'s fields, then its lock flags in field order.
_TAG_COLUMNS = ", ".join(("name", "digest", "created", "updated", *r.ATTRIBUTE_FIELDS.values()))


def _tag_values(values: tuple[Any, ...]) -> r.TagRecord:
    """A row of :data:`_TAG_COLUMNS` (a plain tuple: listings read thousands) as a record."""
    return r.TagRecord(values[0], values[1], values[2], values[3], r.Attributes.from_flags(values[4:]))


def _manifest(row: sqlite3.Row) -> r.ManifestInfo:
    content = bytes(row["content"]) if "content" in row.keys() else None  # noqa: SIM118 (Row: "in" tests values)
    return r.ManifestInfo(
        digest=row["digest"],
        media_type=row["media_type"],
        size=row["size"],
        image_size=row["image_size"],
        config_media_type=row["config_media_type"],
        artifact_type=row["artifact_type"],
        subject=row["subject"],
        annotations=row["annotations"],
        architecture=row["architecture"],
        os=row["os"],
        created=row["created"],
        updated=row["updated"],
        attributes=_attributes(row),
        content=content,
    )


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of ``path``, or ``None`` when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class SqliteMetadataStore:
    """The SQLite database of one data directory (one connection per thread that uses it); a
    :class:`~.protocols.MetadataStore`."""

    def __init__(self, root: Path, path: Path | None = None) -> None:
        """The database ``root/metadata.db`` (or ``path``), created or upgraded to the current schema."""
        self.path = Path(path) if path is not None else Path(root) / DB_NAME
        make_private_dir(self.path.parent)
        # Created 0600 before SQLite opens it: its -wal and -shm files take the database file's mode.
        if not self.path.exists():
            with contextlib.suppress(FileExistsError):
                create_private_file(self.path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        #: Writers of this process take turns here before asking SQLite for the write lock.
        self._write_lock = threading.Lock()
        conn = self.conn
        for _ in range(100):
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError:
                time.sleep(0.05)
        self._ensure_schema(conn)
        self._identity = _identity(self.path)

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        """Create or upgrade the schema (SQLite is embedded: it upgrades itself); a newer one is refused
        (:class:`~.schema.SchemaError`). Cheap when current: one query."""
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            row = None
        if row is None or row[0] != HEAD:
            upgrade(sqlite_url(self.path))

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # ``timeout`` is SQLite's busy timeout: a writer waits up to a minute for another process's transaction.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60.0)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = OFF")
            with self._connections_lock:
                self._connections.append(conn)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def check_present(self) -> None:
        """Raise :class:`DatabaseGoneError` when the database file is no longer the one this store opened."""
        if _identity(self.path) != self._identity:
            raise DatabaseGoneError(self.path)

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """One write transaction (``BEGIN IMMEDIATE``: takes the write lock up front, waits while busy)."""
        with self._write_lock:
            self.check_present()
            with self._transaction():
                yield

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            # A COMMIT that failed (a full or read-only disk) may leave the transaction open, and every later
            # BEGIN would fail: roll it back (an error here means SQLite already did).
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        """A consistent snapshot for several reads (nested in a write transaction, that transaction's view)."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, args).fetchone()
        return row

    def _count(self, sql: str, *args: Any) -> int:
        row = self._one(sql, *args)
        return 0 if row is None else int(row[0])

    def _all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self.conn.execute(sql, args).fetchall()

    def _all_tuples(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Like :meth:`_all`, as plain tuples (no per-row ``sqlite3.Row``; for listings of thousands)."""
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return cursor.execute(sql, args).fetchall()

    # -- repositories -------------------------------------------------------------------------------------------

    def repository(self, name: str) -> r.RepositoryRecord | None:
        row = self._one("SELECT * FROM repositories WHERE name = ?", name)
        return None if row is None else _repository(row)

    def ensure_repository(self, name: str) -> int:
        """The repository's id, creating it (inside the caller's write transaction) when new."""
        row = self._one("SELECT id FROM repositories WHERE name = ?", name)
        if row is not None:
            return int(row["id"])
        stamp = r.now()
        cur = self.conn.execute(
            "INSERT INTO repositories (name, created, updated) VALUES (?, ?, ?)", (name, stamp, stamp)
        )
        assert cur.lastrowid is not None  # set by every INSERT
        return cur.lastrowid

    def touch_repository(self, repo_id: int) -> None:
        self.conn.execute("UPDATE repositories SET updated = ? WHERE id = ?", (r.now(), repo_id))

    def delete_repository(self, repo_id: int) -> tuple[list[str], list[str]]:
        """Remove the repository and everything in it; returns (manifest digests, tag names) removed."""
        digests = [row["digest"] for row in self._all("SELECT digest FROM manifests WHERE repo_id = ?", repo_id)]
        tags = [row["name"] for row in self._all("SELECT name FROM tags WHERE repo_id = ?", repo_id)]
        for table in ("tags", "manifests", "repo_blobs"):
            self.conn.execute(f"DELETE FROM {table} WHERE repo_id = ?", (repo_id,))
        self.conn.execute("DELETE FROM repositories WHERE id = ?", (repo_id,))
        return digests, tags

    def has_manifests(self, repo_id: int) -> bool:
        """True when the repository holds at least one manifest."""
        return self._one("SELECT 1 FROM manifests WHERE repo_id = ? LIMIT 1", repo_id) is not None

    def counts(self, repo_id: int) -> tuple[int, int]:
        """(manifest count, tag count) of a repository."""
        return (
            self._count("SELECT COUNT(*) FROM manifests WHERE repo_id = ?", repo_id),
            self._count("SELECT COUNT(*) FROM tags WHERE repo_id = ?", repo_id),
        )

    def catalog(self, last: str | None, limit: int | None, include_hidden: bool = False) -> list[str]:
        """Names of repositories holding at least one manifest, sorted, after ``last``."""
        sql = (
            "SELECT name FROM repositories r WHERE EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id)"
            + ("" if include_hidden else " AND list_enabled = 1")
            + " AND name > ? ORDER BY name"
        )
        args: list[Any] = [last or ""]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [row["name"] for row in self._all(sql, *args)]

    def set_repository_attributes(self, repo_id: int, changes: r.AttributeChanges) -> None:
        self._set_flags("repositories", "id = ?", [repo_id], changes)

    def set_tag_attributes(self, repo_id: int, name: str, changes: r.AttributeChanges) -> None:
        self._set_flags("tags", "repo_id = ? AND name = ?", [repo_id, name], changes)

    def set_manifest_attributes(self, repo_id: int, digest: str, changes: r.AttributeChanges) -> None:
        self._set_flags("manifests", "repo_id = ? AND digest = ?", [repo_id, digest], changes)

    def _set_flags(self, table: str, where: str, args: list[Any], changes: r.AttributeChanges) -> None:
        """Update lock flags (:class:`Attributes` field names) of one row of ``table``."""
        unknown = set(changes) - _FLAG_COLUMNS
        if unknown:
            raise ValueError(f"not lock flags: {sorted(unknown)}")
        if not changes:
            return
        assignments = ", ".join(f"{column} = ?" for column in changes)
        values = [int(v) for v in changes.values()]
        self.conn.execute(f"UPDATE {table} SET {assignments} WHERE {where}", (*values, *args))

    def undeletable_manifest(self, repo_id: int) -> str | None:
        return self._undeletable("manifests", "digest", repo_id)

    def undeletable_tag(self, repo_id: int, digest: str | None = None) -> str | None:
        return self._undeletable("tags", "name", repo_id, digest)

    def _undeletable(self, table: str, column: str, repo_id: int, digest: str | None = None) -> str | None:
        """``column`` of the first row of ``table`` (``manifests`` or ``tags``) in the repository, optionally only
        those of ``digest``, that a delete must leave alone (``deleteEnabled`` or ``writeEnabled`` false)."""
        sql = f"SELECT {column} FROM {table} WHERE repo_id = ? AND (delete_enabled = 0 OR write_enabled = 0)"
        args: list[Any] = [repo_id]
        if digest is not None:
            sql += " AND digest = ?"
            args.append(digest)
        row = self._one(sql + " LIMIT 1", *args)
        return None if row is None else str(row[column])

    def _after(
        self, table: str, key: str, repo_id: int, last: str | None, order: r.Order
    ) -> tuple[str, list[Any], str] | None:
        """Keyset paging of ``table`` after the row ``last``: (WHERE fragment, its arguments, ORDER BY).

        Order ``none`` is by ``key``; ``timeasc``/``timedesc`` by update time, then ``key``. ``None`` when ``last``
        names a row that no longer exists (the page is empty).
        """
        if order == "none":
            return f" AND {key} > ?", [last or ""], key
        desc = order == "timedesc"
        sort = f"updated DESC, {key} DESC" if desc else f"updated, {key}"
        if not last:
            return "", [], sort
        ref = self._one(f"SELECT updated FROM {table} WHERE repo_id = ? AND {key} = ?", repo_id, last)
        if ref is None:
            return None
        op = "<" if desc else ">"
        # One row-value comparison: SQLite seeks to (updated, key) in the time index, so a page costs the same
        # wherever it starts, even among many rows of one update time.
        return f" AND (updated, {key}) {op} (?, ?)", [ref["updated"], last], sort

    # -- manifests ----------------------------------------------------------------------------------------------

    def manifest(self, repo_id: int, digest: str, with_content: bool = False) -> r.ManifestInfo | None:
        columns = MANIFEST_INFO_COLUMNS + (", content" if with_content else "")
        row = self._one(f"SELECT {columns} FROM manifests WHERE repo_id = ? AND digest = ?", repo_id, digest)
        return None if row is None else _manifest(row)

    def resolve_manifest(self, name: str, tag: str | None, digest: str | None) -> Resolved:
        return resolve_manifest(self, name, tag, digest)

    def manifest_contents(self, repo_id: int, digests: list[str]) -> dict[str, bytes]:
        """The stored bytes of the given manifests of a repository, by digest (one query for a page)."""
        out: dict[str, bytes] = {}
        for batch in in_batches(digests, _IN_BATCH):
            marks = ",".join("?" * len(batch))
            rows = self._all(
                f"SELECT digest, content FROM manifests WHERE repo_id = ? AND digest IN ({marks})", repo_id, *batch
            )
            out.update((row["digest"], bytes(row["content"])) for row in rows)
        return out

    def put_manifest(self, repo_id: int, rec: r.NewManifest) -> None:
        """Insert a manifest; pushing the same digest again changes nothing (same bytes, same times)."""
        stamp = r.now()
        self.conn.execute(
            "INSERT INTO manifests (repo_id, digest, media_type, size, image_size, config_media_type, artifact_type,"
            " subject, annotations, architecture, os, created, updated, content)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (repo_id, digest) DO NOTHING",
            (
                repo_id, rec.digest, rec.media_type, len(rec.content), rec.image_size, rec.config_media_type,
                rec.artifact_type, rec.subject, rec.annotations, rec.architecture, rec.os, stamp, stamp, rec.content,
            ),
        )

    def delete_manifest(self, repo_id: int, digest: str) -> list[str]:
        """Remove a manifest and the tags pointing at it; returns the removed tag names."""
        sql = "SELECT name FROM tags WHERE repo_id = ? AND digest = ?"
        tags = [row["name"] for row in self._all(sql, repo_id, digest)]
        self.conn.execute("DELETE FROM tags WHERE repo_id = ? AND digest = ?", (repo_id, digest))
        self.conn.execute("DELETE FROM manifests WHERE repo_id = ? AND digest = ?", (repo_id, digest))
        return tags

    def list_manifests(
        self, repo_id: int, last: str | None, limit: int | None, order: r.Order, include_hidden: bool = False
    ) -> list[r.ManifestInfo]:
        """A page of manifests (no content): order ``none`` by digest, ``timeasc``/``timedesc`` by update time."""
        hidden = "" if include_hidden else " AND list_enabled = 1"
        after = self._after("manifests", "digest", repo_id, last, order)
        if after is None:
            return []
        where, keys, sort = after
        args: list[Any] = [repo_id, *keys]
        sql = f"SELECT {MANIFEST_INFO_COLUMNS} FROM manifests WHERE repo_id = ?{hidden}{where} ORDER BY {sort}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_manifest(row) for row in self._all(sql, *args)]

    def referrers(self, repo_id: int, subject: str, artifact_type: str | None) -> list[r.ManifestInfo]:
        sql = f"SELECT {MANIFEST_INFO_COLUMNS} FROM manifests WHERE repo_id = ? AND subject = ?"
        args: list[Any] = [repo_id, subject]
        if artifact_type is not None:
            sql += " AND artifact_type = ?"
            args.append(artifact_type)
        return [_manifest(row) for row in self._all(sql + " ORDER BY digest", *args)]

    def locked_manifests(self, repo_id: int) -> list[r.ManifestInfo]:
        """The manifests (with content) a delete must keep whole: delete- or write-locked ones and those a
        delete- or write-locked tag points to."""
        rows = self._all(
            f"SELECT {MANIFEST_INFO_COLUMNS}, content FROM manifests m WHERE repo_id = ? AND (delete_enabled = 0"
            " OR write_enabled = 0 OR EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id"
            " AND t.digest = m.digest AND (t.delete_enabled = 0 OR t.write_enabled = 0)))",
            repo_id,
        )
        return [_manifest(row) for row in rows]

    def all_manifest_contents(self) -> Iterator[tuple[str, bytes]]:
        """(media type, content) of every manifest (for garbage collection)."""
        for row in self.conn.execute("SELECT media_type, content FROM manifests"):
            yield row["media_type"], bytes(row["content"])

    def manifests_after(self, mark: r.ManifestMark, limit: int) -> list[r.StoredManifest] | None:
        """Manifests by row id after ``mark``. SQLite gives a new row the largest id + 1, so a later manifest can
        only get an id at or below ``mark``'s when the row of ``mark`` was deleted in between: then ``None``."""
        if mark.id and self._one("SELECT 1 FROM manifests WHERE id = ? AND created = ?", mark.id, mark.created) is None:
            return None
        rows = self._all(
            "SELECT id, created, media_type, content FROM manifests WHERE id > ? ORDER BY id LIMIT ?", mark.id, limit
        )
        return [
            r.StoredManifest(r.ManifestMark(row["id"], row["created"]), row["media_type"], bytes(row["content"]))
            for row in rows
        ]

    # -- tags ---------------------------------------------------------------------------------------------------

    def tag(self, repo_id: int, name: str) -> r.TagRecord | None:
        row = self._one("SELECT * FROM tags WHERE repo_id = ? AND name = ?", repo_id, name)
        return None if row is None else _tag(row)

    def put_tag(self, repo_id: int, name: str, digest: str) -> None:
        stamp = r.now()
        self.conn.execute(
            "INSERT INTO tags (repo_id, name, digest, created, updated) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated = excluded.updated",
            (repo_id, name, digest, stamp, stamp),
        )

    def delete_tag(self, repo_id: int, name: str) -> None:
        self.conn.execute("DELETE FROM tags WHERE repo_id = ? AND name = ?", (repo_id, name))

    def tags_of(self, repo_id: int, digests: list[str]) -> dict[str, list[str]]:
        """Tag names per manifest digest, for a page of manifests."""
        out: dict[str, list[str]] = {d: [] for d in digests}
        for batch in in_batches(digests, _IN_BATCH):  # a digest's tags all come in its batch, in name order
            marks = ",".join("?" * len(batch))
            sql = f"SELECT name, digest FROM tags WHERE repo_id = ? AND digest IN ({marks}) ORDER BY name"
            for row in self._all(sql, repo_id, *batch):
                out[row["digest"]].append(row["name"])
        return out

    def list_tags(self, repo_id: int, last: str | None, limit: int | None, order: r.Order = "none",
                  digest: str | None = None, include_hidden: bool = False) -> list[r.TagRecord]:
        """A page of tags: order ``none`` by name, ``timeasc``/``timedesc`` by update time (index-backed)."""
        filters = "" if include_hidden else " AND list_enabled = 1"
        args: list[Any] = [repo_id]
        if digest is not None:
            filters += " AND digest = ?"
            args.append(digest)
        after = self._after("tags", "name", repo_id, last, order)
        if after is None:
            return []
        where, keys, sort = after
        args += keys
        sql = f"SELECT {_TAG_COLUMNS} FROM tags WHERE repo_id = ?{filters}{where} ORDER BY {sort}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_tag_values(row) for row in self._all_tuples(sql, *args)]

    # -- blob links ---------------------------------------------------------------------------------------------

    def blob_link(self, repo_id: int, digest: str) -> r.BlobLink | None:
        sql = "SELECT repo_id, digest, created FROM repo_blobs WHERE repo_id = ? AND digest = ?"
        row = self._one(sql, repo_id, digest)
        return None if row is None else r.BlobLink(row["repo_id"], row["digest"], float(row["created"]))

    def linked_digests(self, repo_id: int, digests: Iterable[str]) -> set[str]:
        """Those of ``digests`` linked into the repository (a few queries for any number of digests)."""
        return self._present("repo_blobs", repo_id, digests)

    def manifest_digests(self, repo_id: int, digests: Iterable[str]) -> set[str]:
        """Those of ``digests`` stored as manifests of the repository (a few queries for any number of digests)."""
        return self._present("manifests", repo_id, digests)

    def _present(self, table: str, repo_id: int, digests: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for batch in in_batches(digests, _IN_BATCH):
            marks = ",".join("?" * len(batch))
            rows = self._all(f"SELECT digest FROM {table} WHERE repo_id = ? AND digest IN ({marks})", repo_id, *batch)
            found.update(row["digest"] for row in rows)
        return found

    def link_blob(self, repo_id: int, digest: str, size: int) -> None:
        """Link a blob into a repository; linking it again (a re-upload, a mount) restarts its grace period."""
        self.conn.execute(
            "INSERT INTO repo_blobs (repo_id, digest, size, created) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (repo_id, digest) DO UPDATE SET created = excluded.created",
            (repo_id, digest, size, time.time()),
        )

    def unlink_blob(self, repo_id: int, digest: str) -> bool:
        cur = self.conn.execute("DELETE FROM repo_blobs WHERE repo_id = ? AND digest = ?", (repo_id, digest))
        return cur.rowcount > 0

    def blob_links(self) -> Iterator[r.BlobLink]:
        """Every blob link (for garbage collection)."""
        for row in self.conn.execute("SELECT repo_id, digest, created FROM repo_blobs"):
            yield r.BlobLink(row["repo_id"], row["digest"], float(row["created"]))

    def drop_blob_links(self, digest: str) -> None:
        self.conn.execute("DELETE FROM repo_blobs WHERE digest = ?", (digest,))

    def blob_links_of(self, digests: Iterable[str]) -> list[r.BlobLink]:
        """Every link of ``digests`` in any repository (one query per :data:`_IN_BATCH` digests)."""
        found: list[r.BlobLink] = []
        for batch in in_batches(digests, _IN_BATCH):
            marks = ",".join("?" * len(batch))
            rows = self._all(f"SELECT repo_id, digest, created FROM repo_blobs WHERE digest IN ({marks})", *batch)
            found.extend(r.BlobLink(row["repo_id"], row["digest"], float(row["created"])) for row in rows)
        return found

    def blob_usage(self) -> tuple[int, int]:
        """(distinct linked blobs, their total size): one pass over the digest index."""
        sql = (
            "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes"
            " FROM (SELECT MAX(size) AS size FROM repo_blobs GROUP BY digest)"
        )
        row = self._one(sql)
        return (int(row["n"]), int(row["bytes"])) if row is not None else (0, 0)

    # -- garbage collection runs --------------------------------------------------------------------------------

    def record_gc_run(self, run: r.GcRunRecord) -> None:
        self.conn.execute(
            "INSERT INTO gc_runs (kind, holder, started, finished, blobs, bytes, uploads) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run.kind, run.holder, run.started, run.finished, run.blobs, run.bytes, run.uploads),
        )

    def last_gc_run(self, kind: str) -> tuple[r.GcRunRecord, int] | None:
        row = self._one("SELECT * FROM gc_runs WHERE kind = ? ORDER BY id DESC LIMIT 1", kind)
        if row is None:
            return None
        record = r.GcRunRecord(row["kind"], row["holder"], row["started"], row["finished"], row["blobs"],
                               row["bytes"], row["uploads"])
        return record, self._count("SELECT COUNT(*) FROM gc_runs WHERE kind = ?", kind)

    # -- repository-scoped tokens and scope maps ----------------------------------------------------------------

    def _bump_auth(self) -> None:
        self.conn.execute("UPDATE auth_version SET version = version + 1 WHERE id = 1")

    def auth_version(self) -> int:
        row = self._one("SELECT version FROM auth_version WHERE id = 1")
        return int(row["version"]) if row is not None else 0

    def tokens(self) -> list[r.TokenRecord]:
        return [_token(row) for row in self._all("SELECT * FROM tokens ORDER BY name")]

    def token(self, name: str) -> r.TokenRecord | None:
        row = self._one("SELECT * FROM tokens WHERE name = ?", name)
        return None if row is None else _token(row)

    def add_token(self, name: str, secret_hash: str, scope_map: str | None, rules: r.Rules,
                  expires: float | None) -> r.TokenRecord:
        self.conn.execute(
            "INSERT INTO tokens (name, secret_hash, scope_map, rules, enabled, expires, created, generation) "
            "VALUES (?, ?, ?, ?, 1, ?, ?, 1)", (name, secret_hash, scope_map, _rules_json(rules), expires, time.time()),
        )
        self._bump_auth()
        record = self.token(name)
        assert record is not None
        return record

    def update_token(self, name: str, *, scope_map: str | None, rules: r.Rules, enabled: bool,
                     expires: float | None) -> None:
        self.conn.execute(
            "UPDATE tokens SET scope_map = ?, rules = ?, enabled = ?, expires = ?, generation = generation + 1 "
            "WHERE name = ?", (scope_map, _rules_json(rules), int(enabled), expires, name),
        )
        self._bump_auth()

    def delete_token(self, name: str) -> bool:
        gone = self.conn.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount > 0
        self._bump_auth()
        return gone

    def scope_maps(self) -> list[r.ScopeMapRecord]:
        return [_scope_map(row) for row in self._all("SELECT * FROM scope_maps ORDER BY name")]

    def scope_map(self, name: str) -> r.ScopeMapRecord | None:
        row = self._one("SELECT * FROM scope_maps WHERE name = ?", name)
        return None if row is None else _scope_map(row)

    def put_scope_map(self, name: str, description: str, rules: r.Rules) -> None:
        self.conn.execute(
            "INSERT INTO scope_maps (name, description, rules, created) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET description = excluded.description, rules = excluded.rules",
            (name, description, _rules_json(rules), time.time()),
        )
        self._bump_auth()

    def delete_scope_map(self, name: str) -> bool:
        gone = self.conn.execute("DELETE FROM scope_maps WHERE name = ?", (name,)).rowcount > 0
        self._bump_auth()
        return gone

    # leases
    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        now = time.time()
        taken = self.conn.execute(
            "INSERT INTO leases (name, holder, expires) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
            "SET holder = excluded.holder, expires = excluded.expires "
            "WHERE leases.holder = excluded.holder OR leases.expires <= ?", (name, holder, now + ttl, now),
        ).rowcount
        return taken > 0

    def release_lease(self, name: str, holder: str) -> None:
        self.conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


def _rules_json(rules: r.Rules) -> str:
    return json.dumps([[pattern, list(actions)] for pattern, actions in rules])


def _rules(text: str) -> r.Rules:
    return tuple((str(pattern), tuple(str(a) for a in actions)) for pattern, actions in json.loads(text))


def _token(row: sqlite3.Row) -> r.TokenRecord:
    return r.TokenRecord(
        id=row["id"], name=row["name"], secret_hash=row["secret_hash"], scope_map=row["scope_map"],
        rules=_rules(row["rules"]), enabled=bool(row["enabled"]), expires=row["expires"], created=row["created"],
        generation=row["generation"],
    )


def _scope_map(row: sqlite3.Row) -> r.ScopeMapRecord:
    return r.ScopeMapRecord(row["name"], row["description"], _rules(row["rules"]), row["created"])
