"""jobs carry run conditions; executions skipped for them say why

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SCANNED_SKIP = "status = 'SKIPPED' AND skip_reason IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("cron_jobs") as batch:
        batch.add_column(
            sa.Column("conditions", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True)
        )
    with op.batch_alter_table("cron_executions") as batch:
        batch.add_column(sa.Column("skip_reason", sa.Text(), nullable=True))
    op.create_index(
        "ix_cron_executions_job_scanned_skip",
        "cron_executions",
        ["job_id", "window_end"],
        postgresql_where=sa.text(SCANNED_SKIP),
        sqlite_where=sa.text(SCANNED_SKIP),
    )


def downgrade() -> None:
    op.drop_index("ix_cron_executions_job_scanned_skip", table_name="cron_executions")
    op.drop_column("cron_executions", "skip_reason")
    op.drop_column("cron_jobs", "conditions")
