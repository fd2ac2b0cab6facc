"""statistics across a user's jobs without a join: owner and liveness on job_statistics

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A user's statistics sum their live jobs' counters: with the owner and liveness on the
    # counters' row, that is one indexed read of those rows instead of a join of every job
    # to its counters on each request.
    with op.batch_alter_table("job_statistics") as batch:
        batch.add_column(sa.Column("user_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("live", sa.Boolean(), nullable=True))
    op.execute(
        """
        UPDATE job_statistics SET
            user_id = (SELECT j.user_id FROM cron_jobs j WHERE j.id = job_statistics.job_id),
            live = (SELECT j.deleted_at IS NULL FROM cron_jobs j WHERE j.id = job_statistics.job_id)
        """
    )
    with op.batch_alter_table("job_statistics") as batch:
        batch.alter_column("user_id", existing_type=sa.String(length=40), nullable=False)
        batch.alter_column("live", existing_type=sa.Boolean(), nullable=False)
        batch.create_foreign_key(
            "fk_job_statistics_user_id_users", "users", ["user_id"], ["id"], ondelete="CASCADE"
        )
    op.create_index(
        "ix_job_statistics_user_live",
        "job_statistics",
        ["user_id"],
        postgresql_where=sa.text("live"),
        sqlite_where=sa.text("live"),
    )
    # The next run across a user's live jobs: the first entry of this index.
    op.create_index(
        "ix_cron_jobs_user_next_run",
        "cron_jobs",
        ["user_id", "next_run_at"],
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_cron_jobs_user_next_run", table_name="cron_jobs")
    op.drop_index("ix_job_statistics_user_live", table_name="job_statistics")
    with op.batch_alter_table("job_statistics") as batch:
        batch.drop_constraint("fk_job_statistics_user_id_users", type_="foreignkey")
        batch.drop_column("live")
        batch.drop_column("user_id")
