"""posts have a review and publishing lifecycle, with its history; projects may auto-publish

Revision ID: 0019
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.db.types import UTCDateTime

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None

SCHEDULED = "state = 'SCHEDULED'"


def upgrade() -> None:
    with op.batch_alter_table("contents") as batch:
        batch.add_column(sa.Column("state", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("user_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("project_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("publish_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("published_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("published_url", sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column("publish_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("edited_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("edited_by", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("state_changed_at", UTCDateTime(), nullable=True))
    # Posts generated before the lifecycle existed are drafts of their execution's owner.
    op.execute(
        "UPDATE contents SET state = CASE WHEN status = 'GENERATED' THEN 'DRAFT' END, "
        "user_id = (SELECT e.user_id FROM cron_executions e WHERE e.id = contents.execution_id), "
        "project_id = (SELECT e.project_id FROM cron_executions e "
        "WHERE e.id = contents.execution_id)"
    )
    op.create_index("ix_contents_user_created", "contents", ["user_id", "created_at", "id"])
    op.create_index(
        "ix_contents_scheduled_due",
        "contents",
        ["publish_at"],
        postgresql_where=sa.text(SCHEDULED),
        sqlite_where=sa.text(SCHEDULED),
    )
    op.create_table(
        "post_changes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("content_id", sa.String(length=40), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["content_id"],
            ["contents.id"],
            name=op.f("fk_post_changes_content_id_contents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_changes")),
    )
    op.create_index("ix_post_changes_content_id", "post_changes", ["content_id"])
    # A plain ADD COLUMN (SQLite takes a constant default): a batch copy of `projects` would
    # drop the table, and its cascades would empty the jobs and their statistics.
    op.add_column(
        "projects",
        sa.Column(
            "publish_modes",
            sa.JSON().with_variant(JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
    )


def downgrade() -> None:
    op.drop_column("projects", "publish_modes")
    op.drop_index("ix_post_changes_content_id", table_name="post_changes")
    op.drop_table("post_changes")
    op.drop_index("ix_contents_scheduled_due", table_name="contents")
    op.drop_index("ix_contents_user_created", table_name="contents")
    for column in (
        "state_changed_at",
        "edited_by",
        "edited_at",
        "publish_error",
        "published_url",
        "published_at",
        "publish_at",
        "project_id",
        "user_id",
        "state",
    ):
        op.drop_column("contents", column)
