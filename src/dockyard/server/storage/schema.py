"""Which schema revision a metadata database is at, and bringing it to the one this dockyard knows.

The revisions are alembic's, in :mod:`.migrations` (shipped in the wheel). A database of the releases before
migrations (the tables, no ``alembic_version``) is the first revision and is stamped as such, never rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import sqlalchemy as sa

from .private import FILE_MODE, create_private_file, make_private_dir

#: The newest revision this dockyard knows (the head of :mod:`.migrations`; a test checks they agree).
HEAD = "0002"
#: The revision a database without ``alembic_version`` but with the tables is at (the releases before).
FIRST = "0001"
#: Every revision this dockyard knows, oldest first.
KNOWN = ("0001", "0002")

#: Where a database stands: ``current``; ``empty`` (no tables); ``unversioned`` (tables of the releases before
#: migrations); ``older`` (a known revision before :data:`HEAD`); ``newer`` (a revision this dockyard does not know).
State = Literal["current", "empty", "unversioned", "older", "newer"]


class SchemaError(Exception):
    """The metadata database's schema is not the one this dockyard uses (the message says what to run)."""


def engine_url(url: str) -> str:
    """``url`` as SQLAlchemy wants it: ``postgresql://`` goes through psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def revision_of(conn: sa.Connection) -> str | None:
    """The revision stamped in the database (``None``: none)."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    value = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)


def state_of(conn: sa.Connection) -> State:
    """Where the database on ``conn`` stands (see :data:`State`)."""
    revision = revision_of(conn)
    if revision is None:
        return "unversioned" if sa.inspect(conn).has_table("repositories") else "empty"
    if revision == HEAD:
        return "current"
    return "older" if revision in KNOWN else "newer"


def describe(state: State, where: str) -> str:
    """The one-line refusal for a database at ``state`` (``where``: the URL or data dir, as the user gave it)."""
    if state == "newer":
        return (
            f"the metadata database {where} has a newer schema than this dockyard knows: this dockyard is older "
            "than the database; run a newer dockyard"
        )
    return f"the metadata database {where} has an older schema (or none): run `dockyard db upgrade` for it"


def _config(conn: sa.Connection) -> object:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "dockyard.server.storage:migrations")
    config.attributes["connection"] = conn
    return config


def upgrade_connection(conn: sa.Connection) -> tuple[State, State]:
    """Bring the database on ``conn`` to :data:`HEAD`; (state before, state after). A newer database is left
    alone (:class:`SchemaError`)."""
    from alembic import command

    before = state_of(conn)
    if before == "newer":
        raise SchemaError(describe(before, str(conn.engine.url.render_as_string(hide_password=True))))
    if before == "current":
        return before, before
    config = _config(conn)
    if before == "unversioned":
        command.stamp(config, FIRST)  # type: ignore[arg-type]
    command.upgrade(config, HEAD)  # type: ignore[arg-type]
    conn.commit()
    return before, state_of(conn)


def upgrade(url: str) -> tuple[State, State]:
    """``dockyard db upgrade``: bring the database at ``url`` to :data:`HEAD`; (state before, after)."""
    engine = sa.create_engine(engine_url(url), poolclass=sa.pool.NullPool)
    try:
        with _serialised(url), engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # Replicas and operators may run this at once: one at a time, released with the transaction.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            return upgrade_connection(conn)
    finally:
        engine.dispose()


def check(url: str) -> State:
    """The database's state; :class:`SchemaError` with the command to run unless it is :data:`HEAD`."""
    engine = sa.create_engine(engine_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            state = state_of(conn)
    finally:
        engine.dispose()
    if state != "current":
        raise SchemaError(describe(state, sa.engine.make_url(engine_url(url)).render_as_string(hide_password=True)))
    return state


#: The PostgreSQL advisory lock key that serialises migrations ("dockyard" in ASCII, as a bigint).
MIGRATION_LOCK = int.from_bytes(b"dockyard", "big") >> 1


@contextlib.contextmanager
def _serialised(url: str) -> Iterator[None]:
    """For a SQLite file: created private (0600, in a 0700 directory; its -wal and -shm files take its mode) and
    upgraded by one process at a time (a lock file beside it); else nothing."""
    path = sqlite_path(url)
    if path is None:
        yield
        return
    make_private_dir(path.parent)
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            create_private_file(path)
    fd = os.open(f"{path}.migrate-lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL, ``None`` for any other URL."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def sqlite_url(path: Path) -> str:
    """The ``sqlite:///`` URL of a database file."""
    return f"sqlite:///{Path(path).resolve()}"
