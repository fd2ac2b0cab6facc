"""GitHub App installation events, and what each webhook delivery came to

`github_deliveries` gains what a delivery came to (started, ignored, refused), the runs it
started and how often GitHub sent it again; rows from before have no outcome.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.db.types import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("github_installation_status", sa.String(16), nullable=True))
    op.create_table(
        "github_installations",
        sa.Column("installation_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_login", sa.String(length=255), nullable=True),
        sa.Column("account_type", sa.String(length=32), nullable=True),
        sa.Column("repository_selection", sa.String(length=16), nullable=True),
        sa.Column("repositories", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True),
        sa.Column("suspended_at", UTCDateTime(), nullable=True),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.Column("reported_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("installation_id", name="pk_github_installations"),
    )
    op.create_table(
        "github_app_deliveries",
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=True),
        sa.Column("installation_id", sa.BigInteger(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_github_app_deliveries"),
    )
    op.create_index(
        "ix_github_app_deliveries_received_at", "github_app_deliveries", ["received_at"]
    )
    with op.batch_alter_table("github_deliveries") as batch:
        batch.add_column(sa.Column("action", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("executions", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True)
        )
        batch.add_column(
            sa.Column("redeliveries", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("last_redelivered_at", UTCDateTime(), nullable=True))
    op.create_index(
        "ix_github_deliveries_project_received",
        "github_deliveries",
        ["project_id", "received_at", "delivery_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_github_deliveries_project_received", table_name="github_deliveries")
    with op.batch_alter_table("github_deliveries") as batch:
        for column in (
            "last_redelivered_at",
            "redeliveries",
            "executions",
            "reason",
            "outcome",
            "action",
        ):
            batch.drop_column(column)
    op.drop_index("ix_github_app_deliveries_received_at", table_name="github_app_deliveries")
    op.drop_table("github_app_deliveries")
    op.drop_table("github_installations")
    op.drop_column("projects", "github_installation_status")
