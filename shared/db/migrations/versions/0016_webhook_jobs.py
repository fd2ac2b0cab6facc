"""a WEBHOOK job keeps its destination and signing secret, encrypted, and the destination's host

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cron_jobs") as batch:
        batch.add_column(sa.Column("webhook_url_encrypted", sa.Text(), nullable=True))
        batch.add_column(sa.Column("webhook_secret_encrypted", sa.Text(), nullable=True))
        batch.add_column(sa.Column("webhook_host", sa.String(length=300), nullable=True))


def downgrade() -> None:
    op.drop_column("cron_jobs", "webhook_host")
    op.drop_column("cron_jobs", "webhook_secret_encrypted")
    op.drop_column("cron_jobs", "webhook_url_encrypted")
