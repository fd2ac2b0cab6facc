"""api contract: an Idempotency-Key is unique per user

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A manual trigger's key is looked up per user (the same key on another job is a
    # different request, answered 422), so the look-up needs its own index.
    op.create_index(
        "uq_cron_executions_user_idempotency",
        "cron_executions",
        ["user_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        sqlite_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_cron_executions_user_idempotency", table_name="cron_executions")
