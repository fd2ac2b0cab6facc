"""alert recipients other than the account's own address confirm by a link first

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.db.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recipient_confirmations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(), nullable=True),
        sa.Column("declined_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_recipient_confirmations_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_recipient_confirmations"),
        sa.UniqueConstraint("token_hash", name="uq_recipient_confirmations_token_hash"),
        sa.UniqueConstraint("user_id", "email", name="uq_recipient_confirmations_user_id"),
    )

    # Alerts go to confirmed addresses only. What is confirmed from the start: the account's
    # own address where a project lists it; every other address asks first.
    connection = op.get_bind()
    projects = sa.table(
        "projects",
        sa.column("id", sa.String),
        sa.column("user_id", sa.String),
        sa.column("notification_settings", sa.JSON),
    )
    users = sa.table("users", sa.column("id", sa.String), sa.column("email", sa.String))
    rows = connection.execute(
        sa.select(projects.c.id, projects.c.notification_settings, users.c.email).join(
            users, users.c.id == projects.c.user_id
        )
    ).all()
    for project_id, stored, email in rows:
        stored = dict(stored or {})
        own = (email or "").lower()
        stored["confirmedRecipients"] = [
            address for address in stored.get("recipients") or [] if address.lower() == own
        ]
        connection.execute(
            projects.update()
            .where(projects.c.id == project_id)
            .values(notification_settings=stored)
        )


def downgrade() -> None:
    op.drop_table("recipient_confirmations")
