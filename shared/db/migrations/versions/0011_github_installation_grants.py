"""a project reads through a GitHub App installation only if an operator granted it to its owner

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from shared.db.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    op.create_table(
        "github_installation_grants",
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
        sa.Column("granted_by", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_github_installation_grants_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("installation_id", "user_id", name="pk_github_installation_grants"),
    )
    op.create_index(
        "ix_github_installation_grants_user_id", "github_installation_grants", ["user_id"]
    )

    # Until now any caller could name any installation, so a stored one proves nothing about
    # who owns it: none is kept. Each is named here for the operator to grant and connect
    # again (`herald installations grant`, `herald projects connect --installation`).
    connection = op.get_bind()
    projects = sa.table(
        "projects",
        sa.column("id", sa.String),
        sa.column("github_installation_id", sa.BigInteger),
        sa.column("github_credential", sa.String),
        sa.column("github_rate_limit", sa.JSON),
    )
    named = connection.execute(
        sa.select(projects.c.id, projects.c.github_installation_id).where(
            projects.c.github_installation_id.is_not(None)
        )
    ).all()
    for project_id, installation_id in named:
        log.warning(
            "project %s no longer reads through GitHub App installation %s: an operator "
            "grants it to the project's owner, then connects the project again",
            project_id,
            installation_id,
        )
    if named:
        connection.execute(
            projects.update()
            .where(projects.c.github_installation_id.is_not(None))
            .values(github_installation_id=None, github_credential=None, github_rate_limit=None)
        )


def downgrade() -> None:
    op.drop_index("ix_github_installation_grants_user_id", "github_installation_grants")
    op.drop_table("github_installation_grants")
