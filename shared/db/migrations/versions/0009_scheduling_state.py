"""the time-zone database version the stored next runs were computed with

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.db.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No row yet: the first scheduler to start records the version it runs with, moving
    # nothing (what was stored before is taken as computed with it).
    op.create_table(
        "scheduling_state",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=True),
        sa.Column("target_version", sa.String(length=40), nullable=True),
        sa.Column("cursor", sa.String(length=40), nullable=True),
        sa.Column("moved", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_scheduling_state"),
    )


def downgrade() -> None:
    op.drop_table("scheduling_state")
