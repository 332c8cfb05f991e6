"""Leases: named, expiring claims that let one replica at a time do a job (a scheduled gc run, one upstream fetch).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: Byte-wise text on PostgreSQL, as in revision 0001.
_KEY = sa.Text().with_variant(sa.dialects.postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", _KEY, primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
