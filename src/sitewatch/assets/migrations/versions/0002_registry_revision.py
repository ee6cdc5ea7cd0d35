"""registry revision counter

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 09:00:00
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    table = op.create_table(
        "registry_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_revision")),
    )
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    op.bulk_insert(table, [{"id": 1, "revision": 0, "changed_at": now}])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("registry_revision")
