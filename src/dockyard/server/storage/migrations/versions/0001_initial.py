"""The schema of the releases before migrations: repositories, manifests, tags, blob links, tokens, scope maps.

On SQLite this runs the very statements those releases ran (``CREATE ... IF NOT EXISTS``), so a data directory
they made and a new one are the same database; such a directory is stamped with this revision, not rebuilt.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_LOCKS = """delete_enabled INTEGER NOT NULL DEFAULT 1,
    write_enabled INTEGER NOT NULL DEFAULT 1,
    read_enabled INTEGER NOT NULL DEFAULT 1,
    list_enabled INTEGER NOT NULL DEFAULT 1"""

#: The SQLite schema as the releases before migrations created it (their ``metadata.SCHEMA``).
SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS repositories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    {_LOCKS}
);
CREATE TABLE IF NOT EXISTS manifests (
    id INTEGER PRIMARY KEY,
    repo_id INTEGER NOT NULL REFERENCES repositories(id),
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    image_size INTEGER NOT NULL,
    config_media_type TEXT,
    artifact_type TEXT,
    subject TEXT,
    annotations TEXT,
    architecture TEXT,
    os TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    {_LOCKS},
    content BLOB NOT NULL,
    UNIQUE (repo_id, digest)
);
CREATE INDEX IF NOT EXISTS manifests_by_time ON manifests (repo_id, updated, digest);
CREATE INDEX IF NOT EXISTS manifests_by_subject ON manifests (repo_id, subject);
CREATE TABLE IF NOT EXISTS tags (
    repo_id INTEGER NOT NULL REFERENCES repositories(id),
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    {_LOCKS},
    PRIMARY KEY (repo_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_by_time ON tags (repo_id, updated, name);
CREATE INDEX IF NOT EXISTS tags_by_digest ON tags (repo_id, digest);
CREATE TABLE IF NOT EXISTS repo_blobs (
    repo_id INTEGER NOT NULL REFERENCES repositories(id),
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (repo_id, digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS repo_blobs_by_digest ON repo_blobs (digest);
CREATE TABLE IF NOT EXISTS scope_maps (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    rules TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    scope_map TEXT,
    rules TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    expires REAL,
    created REAL NOT NULL,
    generation INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT OR IGNORE INTO auth_version (id, version) VALUES (1, 0)
"""

#: Byte-wise text on PostgreSQL (SQLite compares text byte-wise already): keys page and sort alike on both.
_KEY = sa.Text().with_variant(sa.dialects.postgresql.TEXT(collation="C"), "postgresql")


def _locks() -> list[sa.Column[int]]:
    return [
        sa.Column(name, sa.Integer, nullable=False, server_default=sa.text("1"))
        for name in ("delete_enabled", "write_enabled", "read_enabled", "list_enabled")
    ]


def _portable() -> None:
    """The same tables, indexes and row on any other database (PostgreSQL)."""
    op.create_table(
        "repositories",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", _KEY, nullable=False, unique=True),
        sa.Column("created", _KEY, nullable=False),
        sa.Column("updated", _KEY, nullable=False),
        *_locks(),
    )
    op.create_table(
        "manifests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repositories.id"), nullable=False),
        sa.Column("digest", _KEY, nullable=False),
        sa.Column("media_type", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("image_size", sa.BigInteger, nullable=False),
        sa.Column("config_media_type", sa.Text),
        sa.Column("artifact_type", sa.Text),
        sa.Column("subject", _KEY),
        sa.Column("annotations", sa.Text),
        sa.Column("architecture", sa.Text),
        sa.Column("os", sa.Text),
        sa.Column("created", _KEY, nullable=False),
        sa.Column("updated", _KEY, nullable=False),
        *_locks(),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("repo_id", "digest"),
    )
    op.create_index("manifests_by_time", "manifests", ["repo_id", "updated", "digest"])
    op.create_index("manifests_by_subject", "manifests", ["repo_id", "subject"])
    op.create_table(
        "tags",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repositories.id"), primary_key=True),
        sa.Column("name", _KEY, primary_key=True),
        sa.Column("digest", _KEY, nullable=False),
        sa.Column("created", _KEY, nullable=False),
        sa.Column("updated", _KEY, nullable=False),
        *_locks(),
    )
    op.create_index("tags_by_time", "tags", ["repo_id", "updated", "name"])
    op.create_index("tags_by_digest", "tags", ["repo_id", "digest"])
    op.create_table(
        "repo_blobs",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repositories.id"), primary_key=True),
        sa.Column("digest", _KEY, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_index("repo_blobs_by_digest", "repo_blobs", ["digest"])
    op.create_table(
        "scope_maps",
        sa.Column("name", _KEY, primary_key=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("rules", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", _KEY, nullable=False, unique=True),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("scope_map", sa.Text),
        sa.Column("rules", sa.Text, nullable=False),
        sa.Column("enabled", sa.Integer, nullable=False),
        sa.Column("expires", sa.Float),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
    )
    auth = op.create_table(
        "auth_version",
        sa.Column("id", sa.Integer, sa.CheckConstraint("id = 1"), primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.bulk_insert(auth, [{"id": 1, "version": 0}])


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for statement in SQLITE_SCHEMA.split(";"):
            if statement.strip():
                op.execute(statement)
    else:
        _portable()
