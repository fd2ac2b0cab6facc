"""a post keeps when an attempt with an unknown outcome began through FAILED and a new
schedule, and every text it may have sent once the post is edited; a Mastodon credential
keeps its instance's status limits as the publisher read them

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.db.types import UTCDateTime

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, nullable: a batch copy of `contents` would drop the table, and the
    # cascade from `post_changes` would empty the posts' history.
    op.add_column("contents", sa.Column("publish_unknown_since", UTCDateTime(), nullable=True))
    op.add_column(
        "contents",
        sa.Column(
            "publish_unknown_bodies", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True
        ),
    )
    op.add_column(
        "publishing_credentials", sa.Column("max_characters", sa.Integer(), nullable=True)
    )
    op.add_column(
        "publishing_credentials",
        sa.Column("characters_reserved_per_url", sa.Integer(), nullable=True),
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): no table is copied, as above.
    op.drop_column("publishing_credentials", "characters_reserved_per_url")
    op.drop_column("publishing_credentials", "max_characters")
    op.drop_column("contents", "publish_unknown_bodies")
    op.drop_column("contents", "publish_unknown_since")
