"""api indexes: the caller's last counted runs, for statistics' percentiles

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Kept literal here (not imported) so the migration stays what it was when written.
COUNTED_RUN = "status IN ('COMPLETED', 'FAILED', 'TIMEOUT') AND duration IS NOT NULL"


def upgrade() -> None:
    # Statistics without a job read the caller's last 100 counted runs; with only
    # (user_id, created_at, id) a user whose recent runs are mostly skipped, missed or
    # pending would walk back through history to find them. The partial index holds only
    # counted runs (and their duration, for an index-only read on PostgreSQL).
    op.create_index(
        "ix_cron_executions_user_counted",
        "cron_executions",
        ["user_id", "created_at", "id"],
        postgresql_include=["duration"],
        postgresql_where=sa.text(COUNTED_RUN),
        sqlite_where=sa.text(COUNTED_RUN),
    )


def downgrade() -> None:
    op.drop_index("ix_cron_executions_user_counted", table_name="cron_executions")
