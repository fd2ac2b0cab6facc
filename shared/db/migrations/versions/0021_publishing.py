"""publishing: each project's network credentials; a scheduled post's claim by a scheduler

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.db.types import UTCDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

SCHEDULED = "state = 'SCHEDULED'"


def upgrade() -> None:
    op.create_table(
        "publishing_credentials",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_publishing_credentials_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "network", name=op.f("pk_publishing_credentials")),
    )
    # Plain ADD COLUMNs, nullable: a batch copy of `contents` would drop the table, and the
    # cascade from `post_changes` would empty the posts' history.
    op.add_column("contents", sa.Column("publish_claimed_at", UTCDateTime(), nullable=True))
    op.add_column("contents", sa.Column("publish_attempts", sa.Integer(), nullable=True))
    op.add_column("contents", sa.Column("network_post_id", sa.String(length=500), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMNs (SQLite has them since 3.35): no copy of `contents`, as above.
    for column in ("network_post_id", "publish_attempts", "publish_claimed_at"):
        op.drop_column("contents", column)
    op.drop_table("publishing_credentials")
