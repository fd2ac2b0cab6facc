"""jobs may run after other jobs; an execution a dependency started names its upstream

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

DEPENDENT = "depends_on IS NOT NULL AND deleted_at IS NULL"
UPSTREAM = "upstream_execution_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("cron_jobs") as batch:
        batch.add_column(
            sa.Column("depends_on", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True)
        )
    with op.batch_alter_table("cron_executions") as batch:
        batch.add_column(sa.Column("upstream_execution_id", sa.String(length=40), nullable=True))
    op.create_index(
        "ix_cron_jobs_user_dependent",
        "cron_jobs",
        ["user_id"],
        postgresql_where=sa.text(DEPENDENT),
        sqlite_where=sa.text(DEPENDENT),
    )
    op.create_index(
        "uq_cron_executions_job_upstream",
        "cron_executions",
        ["job_id", "upstream_execution_id"],
        unique=True,
        postgresql_where=sa.text(UPSTREAM),
        sqlite_where=sa.text(UPSTREAM),
    )


def downgrade() -> None:
    op.drop_index("uq_cron_executions_job_upstream", table_name="cron_executions")
    op.drop_index("ix_cron_jobs_user_dependent", table_name="cron_jobs")
    op.drop_column("cron_executions", "upstream_execution_id")
    op.drop_column("cron_jobs", "depends_on")
