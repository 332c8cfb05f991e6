"""Registry metadata in PostgreSQL through SQLAlchemy Core (psycopg 3): the same records and rules as SQLite.

Any number of ``dockyard serve`` processes on any hosts share one database. The semantics are SQLite's:

- :meth:`PostgresMetadataStore.write` is one transaction, and writers take turns — every write transaction
  first takes one transaction-scoped advisory lock (``pg_advisory_xact_lock``), as SQLite's ``BEGIN IMMEDIATE``
  takes its one write lock. A rule's check and its change (a lock flag, then the push it forbids) therefore see
  one state across replicas, and at ``READ COMMITTED`` each statement after the lock sees every earlier commit.
- :meth:`PostgresMetadataStore.read` is a ``REPEATABLE READ`` transaction: one snapshot for several reads.
- Keyset paging compares text byte-wise (the key columns are ``COLLATE "C"``, see :mod:`.tables`).

Connections come from a small SQLAlchemy pool; a transaction belongs to the thread that opened it (the
registry's store threads, never the event loop). Pooled connections are not pinged at checkout (a round trip per
request): a transaction's ``BEGIN`` is its first round trip, and one that fails because the server dropped the
connection (a restart) is tried once more on a new connection, the pool having discarded the old ones — SQLAlchemy's
"optimistic" disconnect handling. A single read outside a transaction runs as one statement, retried likewise.
The schema is never changed here: a database that is not at
this dockyard's revision is refused (:class:`~.schema.SchemaError`) — ``dockyard db upgrade`` changes it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterable, Iterator
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from . import records as r
from . import tables as t
from .batches import in_batches
from .protocols import StoreGoneError
from .resolve import Resolved, resolve_manifest
from .schema import SchemaError, describe, engine_url, state_of

#: The advisory lock key every write transaction takes ("dockyard" + 1, distinct from the migration lock).
WRITE_LOCK = (int.from_bytes(b"dockyard", "big") >> 1) + 1
#: Pooled connections per process (the reader threads, the writer, the upload sweeper and a spare).
POOL_SIZE = 6
#: Most values bound in one ``IN (...)`` list.
_IN_BATCH = 1000

_FLAG_COLUMNS = frozenset(r.ATTRIBUTE_FIELDS.values())
_LOCKABLE = {"repositories": t.repositories, "tags": t.tags, "manifests": t.manifests}
_INFO = [c for c in t.manifests.c if c.name != "content"]


class DatabaseUnreachableError(StoreGoneError):
    """The PostgreSQL server cannot be reached (or dropped the connection): this request is refused with 503; the
    next one tries again."""

    def __init__(self, where: str, reason: BaseException) -> None:
        text = str(getattr(reason, "orig", None) or reason).strip().splitlines()
        super().__init__(f"the metadata database {where} cannot be reached: {text[0] if text else 'no reason given'}")


@contextlib.contextmanager
def _reachable(where: str) -> Iterator[None]:
    """Turn a lost or refused connection into :class:`DatabaseUnreachableError`."""
    try:
        yield
    except sa.exc.OperationalError as exc:
        raise DatabaseUnreachableError(where, exc) from exc
    except sa.exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseUnreachableError(where, exc) from exc
        raise


def _attributes(row: sa.Row[Any]) -> r.Attributes:
    return r.Attributes.from_row(row._mapping)


def _repository(row: sa.Row[Any]) -> r.RepositoryRecord:
    return r.RepositoryRecord(row.id, row.name, row.created, row.updated, _attributes(row))


def _tag(row: sa.Row[Any]) -> r.TagRecord:
    return r.TagRecord(row.name, row.digest, row.created, row.updated, _attributes(row))


def _manifest(row: sa.Row[Any]) -> r.ManifestInfo:
    m = row._mapping
    return r.ManifestInfo(
        digest=row.digest, media_type=row.media_type, size=row.size, image_size=row.image_size,
        config_media_type=row.config_media_type, artifact_type=row.artifact_type, subject=row.subject,
        annotations=row.annotations, architecture=row.architecture, os=row.os, created=row.created,
        updated=row.updated, attributes=_attributes(row),
        content=bytes(m["content"]) if "content" in m else None,
    )


def _rules_json(rules: r.Rules) -> str:
    return json.dumps([[pattern, list(actions)] for pattern, actions in rules])


def _rules(text: str) -> r.Rules:
    return tuple((str(pattern), tuple(str(a) for a in actions)) for pattern, actions in json.loads(text))


def _token(row: sa.Row[Any]) -> r.TokenRecord:
    return r.TokenRecord(
        id=row.id, name=row.name, secret_hash=row.secret_hash, scope_map=row.scope_map, rules=_rules(row.rules),
        enabled=bool(row.enabled), expires=row.expires, created=row.created, generation=row.generation,
    )


def _scope_map(row: sa.Row[Any]) -> r.ScopeMapRecord:
    return r.ScopeMapRecord(row.name, row.description, _rules(row.rules), row.created)


class _Part:
    """The columns of one table in a joined row (their labels start with ``prefix``), as a row of their own."""

    def __init__(self, row: sa.Row[Any], prefix: str) -> None:
        self._values = {k[len(prefix):]: v for k, v in row._mapping.items() if k.startswith(prefix)}

    def present(self, column: str) -> bool:
        """False when the table was not selected, or the outer join found no row (a NOT NULL ``column`` is
        NULL)."""
        return self._values.get(column) is not None

    def row(self) -> sa.Row[Any]:
        """A stand-in row: attribute access and ``_mapping``, what the record builders use."""
        values = self._values
        return cast("sa.Row[Any]", SimpleNamespace(**values, _mapping=values))


class PostgresMetadataStore:
    """The metadata of a registry in one PostgreSQL database; a :class:`~.protocols.MetadataStore`."""

    def __init__(self, url: str) -> None:
        """Connect to ``url`` (``postgresql://user:pass@host:port/db``); :class:`SchemaError` unless its schema is
        this dockyard's."""
        self.url = url
        # Autocommit at the driver: transactions are opened and ended by the statements below (see _transaction).
        self._engine = sa.create_engine(
            engine_url(url), pool_size=POOL_SIZE, max_overflow=POOL_SIZE, isolation_level="AUTOCOMMIT"
        )
        self._local = threading.local()
        self._where = self._engine.url.render_as_string(hide_password=True)
        with self._engine.connect() as conn:
            state = state_of(conn)
        if state != "current":
            self._engine.dispose()
            raise SchemaError(describe(state, self._engine.url.render_as_string(hide_password=True)))

    def close(self) -> None:
        """Close the pool's connections."""
        self._engine.dispose()

    def check_present(self) -> None:
        """Nothing to watch: a database server cannot be replaced under a connection unnoticed."""

    # -- transactions -------------------------------------------------------------------------------------------

    def _connected(self, first: str | sa.Executable) -> tuple[sa.Connection, sa.CursorResult[Any]]:
        """A pooled connection and the result of ``first`` (SQL text or a statement), its first round trip; run
        once more on a new connection when the server had dropped the pooled one (nothing ran then)."""
        for attempt in (1, 2):
            conn = self._engine.connect()
            try:
                result = conn.exec_driver_sql(first) if isinstance(first, str) else conn.execute(first)
                return conn, result
            except sa.exc.DBAPIError as exc:
                conn.close()
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _transaction(self, begin: str) -> Iterator[sa.Connection]:
        """A transaction opened by ``begin`` (see :meth:`_connected`) on a connection of its own, committed when
        the block ends, rolled back when it raises."""
        with _reachable(self._where):
            conn, _ = self._connected(begin)
            try:
                try:
                    yield conn
                except BaseException:
                    if not conn.invalidated:
                        with contextlib.suppress(sa.exc.DBAPIError):
                            conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
            finally:
                conn.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """One write transaction; writers of every process take turns (one advisory lock)."""
        with self._transaction("BEGIN") as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(WRITE_LOCK)))
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        """One snapshot for several reads (inside a write transaction, that transaction's view)."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ") as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    @contextlib.contextmanager
    def _conn(self) -> Iterator[sa.Connection]:
        """The thread's transaction, else a short one of its own."""
        conn: sa.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        with self._transaction("BEGIN") as own:
            yield own

    def _query(self, query: sa.Executable) -> sa.Result[Any]:
        """The result of one read: in the thread's transaction, else one statement alone (atomic by itself: no
        ``BEGIN``/``COMMIT`` round trips), on a fresh connection when the pooled one was dropped."""
        conn: sa.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn.execute(query)
        with _reachable(self._where):
            own, result = self._connected(query)
            with own:
                return result.freeze()()  # fetched before the connection goes back to the pool

    def _all(self, query: sa.Executable) -> list[sa.Row[Any]]:
        return list(self._query(query).all())

    def _one(self, query: sa.Executable) -> sa.Row[Any] | None:
        return self._query(query).first()

    def _run(self, query: sa.Executable) -> int:
        """Run a change; the number of rows it touched."""
        with self._conn() as conn:
            result: sa.CursorResult[Any] = conn.execute(query)
            return int(result.rowcount)

    # -- repositories -------------------------------------------------------------------------------------------

    def repository(self, name: str) -> r.RepositoryRecord | None:
        row = self._one(sa.select(t.repositories).where(t.repositories.c.name == name))
        return None if row is None else _repository(row)

    def ensure_repository(self, name: str) -> int:
        """The repository's id, creating it (inside the caller's write transaction) when new."""
        repos = t.repositories
        row = self._one(sa.select(repos.c.id).where(repos.c.name == name))
        if row is not None:
            return int(row.id)
        stamp = r.now()
        new = self._one(sa.insert(repos).values(name=name, created=stamp, updated=stamp).returning(repos.c.id))
        assert new is not None
        return int(new.id)

    def touch_repository(self, repo_id: int) -> None:
        self._run(sa.update(t.repositories).where(t.repositories.c.id == repo_id).values(updated=r.now()))

    def delete_repository(self, repo_id: int) -> tuple[list[str], list[str]]:
        m, g = t.manifests, t.tags
        digests = [row.digest for row in self._all(sa.select(m.c.digest).where(m.c.repo_id == repo_id))]
        names = [row.name for row in self._all(sa.select(g.c.name).where(g.c.repo_id == repo_id))]
        for table in (t.tags, t.manifests, t.repo_blobs):
            self._run(sa.delete(table).where(table.c.repo_id == repo_id))
        self._run(sa.delete(t.repositories).where(t.repositories.c.id == repo_id))
        return digests, names

    def has_manifests(self, repo_id: int) -> bool:
        return self._one(sa.select(1).where(t.manifests.c.repo_id == repo_id).limit(1)) is not None

    def counts(self, repo_id: int) -> tuple[int, int]:
        m = self._one(sa.select(sa.func.count()).select_from(t.manifests).where(t.manifests.c.repo_id == repo_id))
        g = self._one(sa.select(sa.func.count()).select_from(t.tags).where(t.tags.c.repo_id == repo_id))
        return (int(m[0]) if m else 0, int(g[0]) if g else 0)

    def catalog(self, last: str | None, limit: int | None, include_hidden: bool = False) -> list[str]:
        repos, m = t.repositories, t.manifests
        query = (
            sa.select(repos.c.name)
            .where(sa.exists().where(m.c.repo_id == repos.c.id), repos.c.name > (last or ""))
            .order_by(repos.c.name)
        )
        if not include_hidden:
            query = query.where(repos.c.list_enabled == 1)
        if limit is not None:
            query = query.limit(limit)
        return [row.name for row in self._all(query)]

    def set_repository_attributes(self, repo_id: int, changes: r.AttributeChanges) -> None:
        self._set_flags("repositories", [t.repositories.c.id == repo_id], changes)

    def set_tag_attributes(self, repo_id: int, name: str, changes: r.AttributeChanges) -> None:
        self._set_flags("tags", [t.tags.c.repo_id == repo_id, t.tags.c.name == name], changes)

    def set_manifest_attributes(self, repo_id: int, digest: str, changes: r.AttributeChanges) -> None:
        self._set_flags("manifests", [t.manifests.c.repo_id == repo_id, t.manifests.c.digest == digest], changes)

    def _set_flags(self, table: str, where: list[sa.ColumnElement[bool]], changes: r.AttributeChanges) -> None:
        unknown = set(changes) - _FLAG_COLUMNS
        if unknown:
            raise ValueError(f"not lock flags: {sorted(unknown)}")
        if changes:
            values = {column: int(v) for column, v in changes.items()}
            self._run(sa.update(_LOCKABLE[table]).where(*where).values(**values))

    def undeletable_manifest(self, repo_id: int) -> str | None:
        return self._undeletable(t.manifests, "digest", repo_id)

    def undeletable_tag(self, repo_id: int, digest: str | None = None) -> str | None:
        return self._undeletable(t.tags, "name", repo_id, digest)

    def _undeletable(self, table: sa.Table, column: str, repo_id: int, digest: str | None = None) -> str | None:
        c = table.c
        query = sa.select(c[column]).where(
            c.repo_id == repo_id, sa.or_(c.delete_enabled == 0, c.write_enabled == 0)
        )
        if digest is not None:
            query = query.where(c.digest == digest)
        row = self._one(query.limit(1))
        return None if row is None else str(row[0])

    def _after(
        self, table: sa.Table, key: str, repo_id: int, last: str | None, order: r.Order
    ) -> tuple[list[sa.ColumnElement[bool]], list[sa.ColumnElement[Any]]] | None:
        """Keyset paging of ``table`` after the row ``last``: (conditions, ORDER BY); ``None`` when ``last`` names
        a row that no longer exists (the page is empty)."""
        c = table.c
        if order == "none":
            return [c[key] > (last or "")], [c[key]]
        desc = order == "timedesc"
        sort: list[sa.ColumnElement[Any]] = [c.updated.desc(), c[key].desc()] if desc else [c.updated, c[key]]
        if not last:
            return [], sort
        ref = self._one(sa.select(c.updated).where(c.repo_id == repo_id, c[key] == last))
        if ref is None:
            return None
        # One row comparison: an index condition on (updated, key), so a page costs the same wherever it starts,
        # even among many rows of one update time.
        position, after = sa.tuple_(c.updated, c[key]), sa.tuple_(ref.updated, last)
        return [position < after if desc else position > after], sort

    # -- manifests ----------------------------------------------------------------------------------------------

    def manifest(self, repo_id: int, digest: str, with_content: bool = False) -> r.ManifestInfo | None:
        m = t.manifests
        columns = [*_INFO, m.c.content] if with_content else _INFO
        row = self._one(sa.select(*columns).where(m.c.repo_id == repo_id, m.c.digest == digest))
        return None if row is None else _manifest(row)

    def resolve_manifest(self, name: str, tag: str | None, digest: str | None) -> Resolved:
        """One statement (one round trip, one snapshot) outside a transaction: the repository, left-joined with
        its tag and the manifest the tag or ``digest`` names."""
        if getattr(self._local, "conn", None) is not None:
            return resolve_manifest(self, name, tag, digest)
        repos, tags, m = t.repositories, t.tags, t.manifests
        joined: sa.FromClause = repos
        columns = [c.label(f"r_{c.name}") for c in repos.c]
        if tag is not None:
            joined = joined.outerjoin(tags, sa.and_(tags.c.repo_id == repos.c.id, tags.c.name == tag))
            columns += [c.label(f"t_{c.name}") for c in tags.c]
            wanted: Any = tags.c.digest
        else:
            wanted = sa.literal(digest, t.Key)
        joined = joined.outerjoin(m, sa.and_(m.c.repo_id == repos.c.id, m.c.digest == wanted))
        columns += [c.label(f"m_{c.name}") for c in m.c]
        row = self._one(sa.select(*columns).select_from(joined).where(repos.c.name == name))
        if row is None:
            return None, None, None
        repo, found, manifest = (_Part(row, prefix) for prefix in ("r_", "t_", "m_"))
        return (_repository(repo.row()), _tag(found.row()) if found.present("name") else None,
                _manifest(manifest.row()) if manifest.present("id") else None)

    def manifest_contents(self, repo_id: int, digests: list[str]) -> dict[str, bytes]:
        m = t.manifests
        out: dict[str, bytes] = {}
        for batch in in_batches(digests, _IN_BATCH):
            rows = self._all(sa.select(m.c.digest, m.c.content).where(m.c.repo_id == repo_id, m.c.digest.in_(batch)))
            out.update((row.digest, bytes(row.content)) for row in rows)
        return out

    def put_manifest(self, repo_id: int, rec: r.NewManifest) -> None:
        stamp = r.now()
        self._run(
            insert(t.manifests)
            .values(
                repo_id=repo_id, digest=rec.digest, media_type=rec.media_type, size=len(rec.content),
                image_size=rec.image_size, config_media_type=rec.config_media_type, artifact_type=rec.artifact_type,
                subject=rec.subject, annotations=rec.annotations, architecture=rec.architecture, os=rec.os,
                created=stamp, updated=stamp, content=rec.content,
            )
            .on_conflict_do_nothing(index_elements=["repo_id", "digest"])
        )

    def delete_manifest(self, repo_id: int, digest: str) -> list[str]:
        g, m = t.tags, t.manifests
        of_digest = (g.c.repo_id == repo_id, g.c.digest == digest)
        names = [row.name for row in self._all(sa.select(g.c.name).where(*of_digest))]
        self._run(sa.delete(g).where(*of_digest))
        self._run(sa.delete(m).where(m.c.repo_id == repo_id, m.c.digest == digest))
        return names

    def list_manifests(
        self, repo_id: int, last: str | None, limit: int | None, order: r.Order, include_hidden: bool = False
    ) -> list[r.ManifestInfo]:
        m = t.manifests
        after = self._after(m, "digest", repo_id, last, order)
        if after is None:
            return []
        where, sort = after
        query = sa.select(*_INFO).where(m.c.repo_id == repo_id, *where).order_by(*sort)
        if not include_hidden:
            query = query.where(m.c.list_enabled == 1)
        if limit is not None:
            query = query.limit(limit)
        return [_manifest(row) for row in self._all(query)]

    def referrers(self, repo_id: int, subject: str, artifact_type: str | None) -> list[r.ManifestInfo]:
        m = t.manifests
        query = sa.select(*_INFO).where(m.c.repo_id == repo_id, m.c.subject == subject)
        if artifact_type is not None:
            query = query.where(m.c.artifact_type == artifact_type)
        return [_manifest(row) for row in self._all(query.order_by(m.c.digest))]

    def locked_manifests(self, repo_id: int) -> list[r.ManifestInfo]:
        m, g = t.manifests, t.tags
        locked_tag = sa.exists().where(
            g.c.repo_id == m.c.repo_id,
            g.c.digest == m.c.digest,
            sa.or_(g.c.delete_enabled == 0, g.c.write_enabled == 0),
        )
        query = sa.select(*_INFO, m.c.content).where(
            m.c.repo_id == repo_id, sa.or_(m.c.delete_enabled == 0, m.c.write_enabled == 0, locked_tag)
        )
        return [_manifest(row) for row in self._all(query)]

    def manifest_digests(self, repo_id: int, digests: Iterable[str]) -> set[str]:
        return self._present(t.manifests, repo_id, digests)

    def all_manifest_contents(self) -> Iterator[tuple[str, bytes]]:
        rows = self._all(sa.select(t.manifests.c.media_type, t.manifests.c.content))
        for row in rows:
            yield row.media_type, bytes(row.content)

    def manifests_after(self, mark: r.ManifestMark, limit: int) -> list[r.StoredManifest] | None:
        """Manifests by row id after ``mark``: the ids come from a sequence, drawn while the write lock is held,
        so they rise in the order manifests are stored and are never reused (never ``None``)."""
        m = t.manifests
        rows = self._all(
            sa.select(m.c.id, m.c.created, m.c.media_type, m.c.content)
            .where(m.c.id > mark.id).order_by(m.c.id).limit(limit)
        )
        return [r.StoredManifest(r.ManifestMark(row.id, row.created), row.media_type, bytes(row.content))
                for row in rows]

    # -- tags ---------------------------------------------------------------------------------------------------

    def tag(self, repo_id: int, name: str) -> r.TagRecord | None:
        row = self._one(sa.select(t.tags).where(t.tags.c.repo_id == repo_id, t.tags.c.name == name))
        return None if row is None else _tag(row)

    def put_tag(self, repo_id: int, name: str, digest: str) -> None:
        stamp = r.now()
        new = insert(t.tags).values(repo_id=repo_id, name=name, digest=digest, created=stamp, updated=stamp)
        self._run(
            new.on_conflict_do_update(
                index_elements=["repo_id", "name"],
                set_={"digest": new.excluded.digest, "updated": new.excluded.updated},
            )
        )

    def delete_tag(self, repo_id: int, name: str) -> None:
        self._run(sa.delete(t.tags).where(t.tags.c.repo_id == repo_id, t.tags.c.name == name))

    def tags_of(self, repo_id: int, digests: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {d: [] for d in digests}
        g = t.tags
        for batch in in_batches(digests, _IN_BATCH):  # a digest's tags all come in its batch, in name order
            query = sa.select(g.c.name, g.c.digest).where(g.c.repo_id == repo_id, g.c.digest.in_(batch))
            for row in self._all(query.order_by(g.c.name)):
                out[row.digest].append(row.name)
        return out

    def list_tags(self, repo_id: int, last: str | None, limit: int | None, order: r.Order = "none",
                  digest: str | None = None, include_hidden: bool = False) -> list[r.TagRecord]:
        g = t.tags
        after = self._after(g, "name", repo_id, last, order)
        if after is None:
            return []
        where, sort = after
        query = sa.select(g).where(g.c.repo_id == repo_id, *where).order_by(*sort)
        if not include_hidden:
            query = query.where(g.c.list_enabled == 1)
        if digest is not None:
            query = query.where(g.c.digest == digest)
        if limit is not None:
            query = query.limit(limit)
        return [_tag(row) for row in self._all(query)]

    # -- blob links ---------------------------------------------------------------------------------------------

    def blob_link(self, repo_id: int, digest: str) -> r.BlobLink | None:
        b = t.repo_blobs
        query = sa.select(b.c.repo_id, b.c.digest, b.c.created).where(b.c.repo_id == repo_id, b.c.digest == digest)
        row = self._one(query)
        return None if row is None else r.BlobLink(row.repo_id, row.digest, float(row.created))

    def linked_digests(self, repo_id: int, digests: Iterable[str]) -> set[str]:
        return self._present(t.repo_blobs, repo_id, digests)

    def _present(self, table: sa.Table, repo_id: int, digests: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for batch in in_batches(digests, _IN_BATCH):
            query = sa.select(table.c.digest).where(table.c.repo_id == repo_id, table.c.digest.in_(batch))
            found.update(row.digest for row in self._all(query))
        return found

    def link_blob(self, repo_id: int, digest: str, size: int) -> None:
        new = insert(t.repo_blobs).values(repo_id=repo_id, digest=digest, size=size, created=time.time())
        again = {"created": new.excluded.created}
        self._run(new.on_conflict_do_update(index_elements=["repo_id", "digest"], set_=again))

    def unlink_blob(self, repo_id: int, digest: str) -> bool:
        b = t.repo_blobs
        return self._run(sa.delete(b).where(b.c.repo_id == repo_id, b.c.digest == digest)) > 0

    def blob_links(self) -> Iterator[r.BlobLink]:
        b = t.repo_blobs
        for row in self._all(sa.select(b.c.repo_id, b.c.digest, b.c.created)):
            yield r.BlobLink(row.repo_id, row.digest, float(row.created))

    def drop_blob_links(self, digest: str) -> None:
        self._run(sa.delete(t.repo_blobs).where(t.repo_blobs.c.digest == digest))

    def blob_links_of(self, digests: Iterable[str]) -> list[r.BlobLink]:
        b = t.repo_blobs
        found: list[r.BlobLink] = []
        for batch in in_batches(digests, _IN_BATCH):
            query = sa.select(b.c.repo_id, b.c.digest, b.c.created).where(b.c.digest.in_(batch))
            found.extend(r.BlobLink(row.repo_id, row.digest, float(row.created)) for row in self._all(query))
        return found

    def blob_usage(self) -> tuple[int, int]:
        b = t.repo_blobs
        per_digest = sa.select(sa.func.max(b.c.size).label("size")).group_by(b.c.digest).subquery()
        total = sa.func.coalesce(sa.func.sum(per_digest.c.size), 0)
        row = self._one(sa.select(sa.func.count().label("n"), total.label("bytes")).select_from(per_digest))
        return (int(row.n), int(row.bytes)) if row is not None else (0, 0)

    # -- garbage collection runs --------------------------------------------------------------------------------

    def record_gc_run(self, run: r.GcRunRecord) -> None:
        self._run(sa.insert(t.gc_runs).values(
            kind=run.kind, holder=run.holder, started=run.started, finished=run.finished, blobs=run.blobs,
            bytes=run.bytes, uploads=run.uploads,
        ))

    def last_gc_run(self, kind: str) -> tuple[r.GcRunRecord, int] | None:
        g = t.gc_runs
        row = self._one(sa.select(g).where(g.c.kind == kind).order_by(g.c.id.desc()).limit(1))
        if row is None:
            return None
        count = self._one(sa.select(sa.func.count()).select_from(g).where(g.c.kind == kind))
        record = r.GcRunRecord(row.kind, row.holder, row.started, row.finished, row.blobs, row.bytes, row.uploads)
        return record, int(count[0]) if count else 1

    # -- repository-scoped tokens and scope maps ----------------------------------------------------------------

    def _bump_auth(self) -> None:
        a = t.auth_version
        self._run(sa.update(a).where(a.c.id == 1).values(version=a.c.version + 1))

    def auth_version(self) -> int:
        row = self._one(sa.select(t.auth_version.c.version).where(t.auth_version.c.id == 1))
        return int(row.version) if row is not None else 0

    def tokens(self) -> list[r.TokenRecord]:
        return [_token(row) for row in self._all(sa.select(t.tokens).order_by(t.tokens.c.name))]

    def token(self, name: str) -> r.TokenRecord | None:
        row = self._one(sa.select(t.tokens).where(t.tokens.c.name == name))
        return None if row is None else _token(row)

    def add_token(self, name: str, secret_hash: str, scope_map: str | None, rules: r.Rules,
                  expires: float | None) -> r.TokenRecord:
        self._run(
            sa.insert(t.tokens).values(
                name=name, secret_hash=secret_hash, scope_map=scope_map, rules=_rules_json(rules), enabled=1,
                expires=expires, created=time.time(), generation=1,
            )
        )
        self._bump_auth()
        record = self.token(name)
        assert record is not None
        return record

    def update_token(self, name: str, *, scope_map: str | None, rules: r.Rules, enabled: bool,
                     expires: float | None) -> None:
        k = t.tokens
        self._run(
            sa.update(k).where(k.c.name == name).values(
                scope_map=scope_map, rules=_rules_json(rules), enabled=int(enabled), expires=expires,
                generation=k.c.generation + 1,
            )
        )
        self._bump_auth()

    def delete_token(self, name: str) -> bool:
        gone = self._run(sa.delete(t.tokens).where(t.tokens.c.name == name)) > 0
        self._bump_auth()
        return gone

    def scope_maps(self) -> list[r.ScopeMapRecord]:
        return [_scope_map(row) for row in self._all(sa.select(t.scope_maps).order_by(t.scope_maps.c.name))]

    def scope_map(self, name: str) -> r.ScopeMapRecord | None:
        row = self._one(sa.select(t.scope_maps).where(t.scope_maps.c.name == name))
        return None if row is None else _scope_map(row)

    def put_scope_map(self, name: str, description: str, rules: r.Rules) -> None:
        new = insert(t.scope_maps).values(name=name, description=description, rules=_rules_json(rules),
                                          created=time.time())
        self._run(
            new.on_conflict_do_update(
                index_elements=["name"], set_={"description": new.excluded.description, "rules": new.excluded.rules}
            )
        )
        self._bump_auth()

    def delete_scope_map(self, name: str) -> bool:
        gone = self._run(sa.delete(t.scope_maps).where(t.scope_maps.c.name == name)) > 0
        self._bump_auth()
        return gone

    # -- leases --------------------------------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        now = time.time()
        new = insert(t.leases).values(name=name, holder=holder, expires=now + ttl)
        taken = new.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": new.excluded.holder, "expires": new.excluded.expires},
            where=sa.or_(t.leases.c.holder == new.excluded.holder, t.leases.c.expires <= now),
        ).returning(t.leases.c.holder)
        # A row comes back only when the insert or the update happened (rowcount is not reliable for upserts).
        return self._one(taken) is not None

    def release_lease(self, name: str, holder: str) -> None:
        self._run(sa.delete(t.leases).where(t.leases.c.name == name, t.leases.c.holder == holder))
