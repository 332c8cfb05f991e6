"""The metadata tables as rows keyed by what they mean (repository name, digest, tag name …), not by the
surrogate ids of one database: read in key order from either backend, and written into another database as
idempotent upserts.

Keys are text compared byte-wise on both backends (``COLLATE "C"`` on PostgreSQL, SQLite's default), and Python
compares ``str`` by code point, which is the same order as UTF-8 bytes: two databases walked in key order can be
merged side by side (see :mod:`.verify`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..storage import tables as t
from ..storage.postgres import WRITE_LOCK

#: Rows written per destination transaction.
BATCH = 500

Key = tuple[Any, ...]
Values = tuple[Any, ...]


@dataclass(frozen=True)
class Kind:
    """One kind of metadata row: its table, the columns naming a row (``repository`` for a row of a repository,
    then the table's own key columns) and the columns compared and copied."""

    name: str
    table: sa.Table
    key: tuple[str, ...]
    values: tuple[str, ...]
    #: Rows read and written at a time (manifests carry their bytes, up to a few MiB each: fewer of them).
    batch: int = BATCH

    @property
    def per_repository(self) -> bool:
        return "repo_id" in self.table.c


def _columns(table: sa.Table, *, without: Sequence[str]) -> tuple[str, ...]:
    return tuple(c.name for c in table.c if c.name not in without)


REPOSITORIES = Kind("repositories", t.repositories, ("name",), _columns(t.repositories, without=("id", "name")))
MANIFESTS = Kind("manifests", t.manifests, ("digest",), _columns(t.manifests, without=("id", "repo_id", "digest")),
                 batch=50)
TAGS = Kind("tags", t.tags, ("name",), _columns(t.tags, without=("repo_id", "name")))
BLOB_LINKS = Kind("blob_links", t.repo_blobs, ("digest",), _columns(t.repo_blobs, without=("repo_id", "digest")))
SCOPE_MAPS = Kind("scope_maps", t.scope_maps, ("name",), _columns(t.scope_maps, without=("name",)))
TOKENS = Kind("tokens", t.tokens, ("name",), _columns(t.tokens, without=("id", "name")))

#: Every kind, in the order they are copied (repositories first: the others name them).
KINDS: tuple[Kind, ...] = (REPOSITORIES, MANIFESTS, TAGS, BLOB_LINKS, SCOPE_MAPS, TOKENS)

#: Tables a migration does not copy row by row, and why (every other table of :mod:`..storage.tables` must be a
#: :class:`Kind` above; a test holds the two lists to the schema).
NOT_MOVED: dict[str, str] = {
    "auth_version": "one number, carried over on its own (see :func:`auth_version`)",
    "leases": "who runs a scheduled job right now: replicas take them afresh",
    "gc_runs": "the source's garbage collection history: the destination's own runs start a new one",
}

#: The kinds whose names say whose registry a database is (a destination holding names the source lacks holds
#: another registry's data).
IDENTIFYING: tuple[Kind, ...] = (REPOSITORIES, SCOPE_MAPS, TOKENS)


def _select(kind: Kind) -> sa.Select[Any]:
    table = kind.table
    own = [table.c[name] for name in kind.key]
    values = [table.c[name] for name in kind.values]
    if kind.per_repository:
        repo = t.repositories.c.name.label("repository")
        joined = table.join(t.repositories, table.c.repo_id == t.repositories.c.id)
        return sa.select(repo, *own, *values).select_from(joined).order_by(t.repositories.c.name, *own)
    return sa.select(*own, *values).order_by(*own)


def key_width(kind: Kind) -> int:
    """How many leading columns of a row of ``kind`` are its key."""
    return len(kind.key) + (1 if kind.per_repository else 0)


def walk(conn: sa.Connection, kind: Kind) -> Iterator[tuple[Key, Values]]:
    """Every row of ``kind`` as (key, values), in key order; streamed (bounded memory)."""
    width = key_width(kind)
    result = conn.execution_options(stream_results=True, yield_per=kind.batch).execute(_select(kind))
    for row in result:
        yield tuple(row[:width]), tuple(_plain(v) for v in row[width:])


def _plain(value: Any) -> Any:
    """Bytes as ``bytes`` (drivers hand back ``memoryview``), everything else as it is."""
    return bytes(value) if isinstance(value, (memoryview, bytearray)) else value


def count(conn: sa.Connection, kind: Kind) -> int:
    """How many rows of ``kind`` the database holds."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(kind.table)).scalar_one())


def auth_version(conn: sa.Connection) -> int:
    """The stored auth version (0 when the row is missing)."""
    value = conn.execute(sa.select(t.auth_version.c.version).where(t.auth_version.c.id == 1)).scalar()
    return int(value or 0)


# -- writing ---------------------------------------------------------------------------------------------------


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def write_lock(conn: sa.Connection) -> None:
    """Take the write lock every PostgreSQL writer takes (a running replica's writes and ours take turns)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK})


def _upsert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], conflict: Sequence[str]) -> None:
    """Insert ``rows``, overwriting every non-key column of rows already there."""
    if not rows:
        return
    stmt = _insert(conn, table)
    changed = {name: stmt.excluded[name] for name in rows[0] if name not in conflict}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(conflict), set_=changed), rows)


class Writer:
    """Upserts rows into the destination, one transaction per batch; never deletes anything."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._repo_ids: dict[str, int] = {}

    def repository_ids(self) -> dict[str, int]:
        """The destination's repository ids by name (after :meth:`write` of repositories)."""
        return self._repo_ids

    def write(self, kind: Kind, rows: Iterator[tuple[Key, Values, int | None]],
              on_batch: Callable[[int], None] | None = None) -> int:
        """Write every (key, values, source id) of ``kind``; the number of rows written."""
        total = 0
        batch: list[tuple[Key, Values, int | None]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= kind.batch:
                total += self._flush(kind, batch, on_batch)
        return total + self._flush(kind, batch, on_batch)

    def _flush(self, kind: Kind, batch: list[tuple[Key, Values, int | None]],
               on_batch: Callable[[int], None] | None) -> int:
        if not batch:
            return 0
        with self.engine.begin() as conn:
            write_lock(conn)
            if kind in (REPOSITORIES, TOKENS):
                self._by_name(conn, kind, batch)
            else:
                rows = []
                for key, values, _ in batch:
                    row = dict(zip(kind.values, values, strict=True))
                    if kind.per_repository:
                        row["repo_id"] = self._repo_ids[key[0]]
                        row.update(zip(kind.key, key[1:], strict=True))
                    else:
                        row.update(zip(kind.key, key, strict=True))
                    rows.append(row)
                conflict = ("repo_id", *kind.key) if kind.per_repository else kind.key
                _upsert(conn, kind.table, rows, conflict)
        done = len(batch)
        batch.clear()
        if on_batch is not None:
            on_batch(done)
        return done

    def _by_name(self, conn: sa.Connection, kind: Kind, batch: list[tuple[Key, Values, int | None]]) -> None:
        """Repositories and tokens: matched by name. A new one keeps its source id when the destination has no row
        with that id (so an empty destination gets the very same ids), else it gets one above every id the
        destination ever handed out (ids are given explicitly: a database's own counter may trail them)."""
        table = kind.table
        names = [key[0] for key, _, _ in batch]
        existing = dict(conn.execute(sa.select(table.c.name, table.c.id).where(table.c.name.in_(names))).all())
        wanted = [source_id for _, _, source_id in batch if source_id is not None]
        taken = set(conn.execute(sa.select(table.c.id).where(table.c.id.in_(wanted))).scalars())
        later: list[tuple[str, dict[str, Any]]] = []
        for key, values, source_id in batch:
            name = key[0]
            row = dict(zip(kind.values, values, strict=True))
            if name in existing:
                conn.execute(sa.update(table).where(table.c.id == existing[name]).values(**row))
            elif source_id is not None and source_id not in taken:
                conn.execute(sa.insert(table).values(id=source_id, name=name, **row))
                taken.add(source_id)
                existing[name] = source_id
            else:
                later.append((name, row))
        if later:
            next_id = id_high_water(conn, table) + 1
            for name, row in later:
                conn.execute(sa.insert(table).values(id=next_id, name=name, **row))
                existing[name] = next_id
                next_id += 1
        if kind is REPOSITORIES:
            self._repo_ids.update((name, int(ident)) for name, ident in existing.items())

    def load_repository_ids(self) -> None:
        """Read the destination's repository ids by name (when repositories were written by an earlier run)."""
        with self.engine.connect() as conn:
            self._repo_ids = dict(conn.execute(sa.select(t.repositories.c.name, t.repositories.c.id)).all())


def source_ids(conn: sa.Connection, kind: Kind) -> dict[str, int]:
    """Ids by name of the source's repositories or tokens."""
    return dict(conn.execute(sa.select(kind.table.c.name, kind.table.c.id)).all())


def id_high_water(conn: sa.Connection, table: sa.Table) -> int:
    """The highest id ``table`` has ever handed out (ids of deleted tokens are never reused)."""
    highest = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one())
    if conn.dialect.name == "postgresql":
        sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}).scalar()
        if sequence:
            last, called = conn.execute(sa.text(f"SELECT last_value, is_called FROM {sequence}")).one()
            highest = max(highest, int(last) if called else int(last) - 1)
    elif sa.inspect(conn).has_table("sqlite_sequence"):
        seq = conn.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table.name}).scalar()
        highest = max(highest, int(seq or 0))
    return highest


def raise_id_high_water(conn: sa.Connection, table: sa.Table, value: int) -> None:
    """Make the destination hand out ids above ``value`` (and above its own rows) for ``table``: ids inserted
    explicitly do not move a PostgreSQL sequence, and a token id must never be handed out twice."""
    value = max(value, id_high_water(conn, table))
    if value <= 0:
        return
    if conn.dialect.name == "postgresql":
        sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}).scalar()
        if sequence:
            conn.execute(sa.text("SELECT setval(CAST(:s AS regclass), :v, true)"), {"s": sequence, "v": value})
    elif table.name == "tokens" and sa.inspect(conn).has_table("sqlite_sequence"):
        updated = conn.execute(sa.text("UPDATE sqlite_sequence SET seq = :v WHERE name = :t"),
                               {"v": value, "t": table.name}).rowcount
        if not updated:
            conn.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :v)"),
                         {"t": table.name, "v": value})


def set_auth_version(conn: sa.Connection, value: int) -> None:
    """Store ``value`` as the auth version (the row exists from the first revision)."""
    conn.execute(sa.update(t.auth_version).where(t.auth_version.c.id == 1).values(version=value))
