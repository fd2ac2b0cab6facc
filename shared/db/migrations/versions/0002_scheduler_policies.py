"""scheduler policies

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

OPEN = "status IN ('PENDING', 'RUNNING')"


def upgrade() -> None:
    # BUFFER_ONE: the one execution waiting for its job's running one to finish.
    with op.batch_alter_table("cron_jobs") as batch:
        batch.add_column(sa.Column("buffered_execution_id", sa.String(length=40), nullable=True))
    op.create_index(
        "ix_cron_jobs_buffered",
        "cron_jobs",
        ["buffered_execution_id"],
        unique=False,
        postgresql_where=sa.text("buffered_execution_id IS NOT NULL"),
        sqlite_where=sa.text("buffered_execution_id IS NOT NULL"),
    )
    # The claim asks, per batch, which jobs have an unfinished run (overlap policy) and where
    # each job's last completed window ended (the activity window): both by job id.
    op.create_index(
        "ix_cron_executions_job_open",
        "cron_executions",
        ["job_id"],
        unique=False,
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )
    op.create_index(
        "ix_cron_executions_job_completed",
        "cron_executions",
        ["job_id", "window_end"],
        unique=False,
        postgresql_where=sa.text("status = 'COMPLETED'"),
        sqlite_where=sa.text("status = 'COMPLETED'"),
    )


def downgrade() -> None:
    op.drop_index("ix_cron_executions_job_completed", table_name="cron_executions")
    op.drop_index("ix_cron_executions_job_open", table_name="cron_executions")
    op.drop_index("ix_cron_jobs_buffered", table_name="cron_jobs")
    op.drop_column("cron_jobs", "buffered_execution_id")
