"""GitHub webhook deliveries run jobs: a per-project secret, jobs' triggers, delivery ids kept

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.db.types import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("github_webhook_secret_encrypted", sa.Text(), nullable=True))
    with op.batch_alter_table("cron_jobs") as batch:
        batch.add_column(
            sa.Column(
                "webhook_triggers", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True
            )
        )
    op.create_table(
        "github_deliveries",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_github_deliveries_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "delivery_id", name="pk_github_deliveries"),
    )
    op.create_index("ix_github_deliveries_received_at", "github_deliveries", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_github_deliveries_received_at", table_name="github_deliveries")
    op.drop_table("github_deliveries")
    op.drop_column("cron_jobs", "webhook_triggers")
    op.drop_column("projects", "github_webhook_secret_encrypted")
