"""repeated unread alerts of a job and kind collapse into one, with a count

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.db.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UNREAD = "read_at IS NULL AND job_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("job_id", sa.String(length=40), nullable=True))
        batch.add_column(
            sa.Column("count", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        batch.add_column(sa.Column("first_at", UTCDateTime(), nullable=True))
    op.execute("UPDATE notifications SET first_at = created_at")
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("first_at", existing_type=UTCDateTime(), nullable=False)
    # Alerts stored before keep no job (NULL): they stay as they were, one per run, and the
    # index holds only alerts stored from now on, so no existing row can break it.
    op.create_index(
        "uq_notifications_unread_job_kind",
        "notifications",
        ["user_id", "job_id", "kind"],
        unique=True,
        postgresql_where=sa.text(UNREAD),
        sqlite_where=sa.text(UNREAD),
    )


def downgrade() -> None:
    op.drop_index("uq_notifications_unread_job_kind", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("first_at")
        batch.drop_column("count")
        batch.drop_column("job_id")
