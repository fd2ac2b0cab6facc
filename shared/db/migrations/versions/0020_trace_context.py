"""outbox rows keep the trace context they were written in; executions record their trace id

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain nullable columns: on SQLite no table is rebuilt (cron_executions has children that
    # reference it with ON DELETE CASCADE), and rows written before them simply have no trace.
    op.add_column("outbox", sa.Column("traceparent", sa.String(length=55), nullable=True))
    op.add_column("cron_executions", sa.Column("trace_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("traceparent")
    # cron_executions is referenced with ON DELETE CASCADE: SQLite (3.35+) drops the column in
    # place rather than copying the table, which would empty its children.
    op.drop_column("cron_executions", "trace_id")
