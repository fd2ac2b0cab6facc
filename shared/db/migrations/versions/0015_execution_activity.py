"""a SYNC_GITHUB run records the items its scan found

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.db.types import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "execution_activity",
        sa.Column("execution_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sha", sa.String(length=64), nullable=True),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["cron_executions.id"],
            name="fk_execution_activity_execution_id_cron_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("execution_id", "position", name="pk_execution_activity"),
    )


def downgrade() -> None:
    op.drop_table("execution_activity")
