"""The metadata schema as SQLAlchemy Core tables: one definition for SQLite and PostgreSQL.

The database itself is created and changed only by the alembic revisions in :mod:`.migrations`; these tables
are what the current revision (:data:`.schema.HEAD`) looks like and what the SQLAlchemy-based stores query.
Text keys that are paged or sorted compare byte-wise on PostgreSQL too (``COLLATE "C"``), as SQLite compares
them, so a listing's order and its ``last`` cursor mean the same on both.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ...oci.locks import LOCK_FLAGS

#: Text that sorts byte-wise on every backend (SQLite's default; ``COLLATE "C"`` on PostgreSQL).
Key = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")

metadata = sa.MetaData()


def lock_columns() -> list[sa.Column[int]]:
    """The lock flags' columns, which every lockable table carries (all enabled by default)."""
    return [sa.Column(flag.column, sa.Integer, nullable=False, server_default=sa.text("1")) for flag in LOCK_FLAGS]


repositories = sa.Table(
    "repositories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", Key, nullable=False, unique=True),
    sa.Column("created", Key, nullable=False),
    sa.Column("updated", Key, nullable=False),
    *lock_columns(),
)

manifests = sa.Table(
    "manifests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repositories.id"), nullable=False),
    sa.Column("digest", Key, nullable=False),
    sa.Column("media_type", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("image_size", sa.BigInteger, nullable=False),
    sa.Column("config_media_type", sa.Text),
    sa.Column("artifact_type", sa.Text),
    sa.Column("subject", Key),
    sa.Column("annotations", sa.Text),
    sa.Column("architecture", sa.Text),
    sa.Column("os", sa.Text),
    sa.Column("created", Key, nullable=False),
    sa.Column("updated", Key, nullable=False),
    *lock_columns(),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("repo_id", "digest"),
)
sa.Index("manifests_by_time", manifests.c.repo_id, manifests.c.updated, manifests.c.digest)
sa.Index("manifests_by_subject", manifests.c.repo_id, manifests.c.subject)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repositories.id"), primary_key=True),
    sa.Column("name", Key, primary_key=True),
    sa.Column("digest", Key, nullable=False),
    sa.Column("created", Key, nullable=False),
    sa.Column("updated", Key, nullable=False),
    *lock_columns(),
    sqlite_with_rowid=False,
)
sa.Index("tags_by_time", tags.c.repo_id, tags.c.updated, tags.c.name)
sa.Index("tags_by_digest", tags.c.repo_id, tags.c.digest)

repo_blobs = sa.Table(
    "repo_blobs",
    metadata,
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repositories.id"), primary_key=True),
    sa.Column("digest", Key, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sqlite_with_rowid=False,
)
sa.Index("repo_blobs_by_digest", repo_blobs.c.digest)

scope_maps = sa.Table(
    "scope_maps",
    metadata,
    sa.Column("name", Key, primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("rules", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", Key, nullable=False, unique=True),
    sa.Column("secret_hash", sa.Text, nullable=False),
    sa.Column("scope_map", sa.Text),
    sa.Column("rules", sa.Text, nullable=False),
    sa.Column("enabled", sa.Integer, nullable=False),
    sa.Column("expires", sa.Float),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sqlite_autoincrement=True,
)

auth_version = sa.Table(
    "auth_version",
    metadata,
    sa.Column("id", sa.Integer, sa.CheckConstraint("id = 1"), primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", Key, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
)
