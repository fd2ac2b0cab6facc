"""projects read GitHub with an App installation or a token of their own

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("github_installation_id", sa.BigInteger(), nullable=True))
        # Text: installation-style tokens run to ~520 characters, and encryption adds more.
        batch.add_column(sa.Column("github_token_encrypted", sa.Text(), nullable=True))
        batch.add_column(sa.Column("github_credential", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column(
                "github_rate_limit",
                sa.JSON().with_variant(JSONB(), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    op.drop_column("projects", "github_rate_limit")
    op.drop_column("projects", "github_credential")
    op.drop_column("projects", "github_token_encrypted")
    op.drop_column("projects", "github_installation_id")
