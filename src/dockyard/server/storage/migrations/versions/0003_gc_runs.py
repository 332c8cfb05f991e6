"""Garbage collection runs, in the shared metadata: every replica's ``/metrics`` shows the last one of each kind
(``dockyard gc`` and the server's ``--gc-interval`` schedule), and the schedule reads when one last started.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_KEY = sa.Text().with_variant(sa.dialects.postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "gc_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", _KEY, nullable=False),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("started", sa.Float, nullable=False),
        sa.Column("finished", sa.Float, nullable=False),
        sa.Column("blobs", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("uploads", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("gc_runs_by_kind", "gc_runs", ["kind", "id"])


def downgrade() -> None:
    op.drop_index("gc_runs_by_kind", "gc_runs")
    op.drop_table("gc_runs")
