"""a publishing webhook's URL is stored encrypted, shown only as its host; a publish run finds
a project's approved, unclaimed posts by an index; a due post keeps its first claim's time

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from shared.db.types import UTCDateTime
from shared.destinations import webhook_host
from shared.secrets import decrypt, encrypt
from shared.settings import Settings

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# The migration's own copy: a later change to the model must not rewrite history.
APPROVED_UNCLAIMED = "state = 'APPROVED' AND publish_claimed_at IS NULL"

_CREDENTIALS = sa.table(
    "publishing_credentials",
    sa.column("project_id", sa.String),
    sa.column("network", sa.String),
    sa.column("settings", sa.JSON),
    sa.column("url_encrypted", sa.Text),
)


def upgrade() -> None:
    # A plain ADD COLUMN, nullable: no table is copied on SQLite.
    op.add_column("publishing_credentials", sa.Column("url_encrypted", sa.Text(), nullable=True))
    # Plain ADD COLUMN, nullable: a batch copy of `contents` would drop the table, and the
    # cascade from `post_changes` would empty the posts' history.
    op.add_column("contents", sa.Column("publish_first_claimed_at", UTCDateTime(), nullable=True))
    op.create_index(
        "ix_contents_approved_unclaimed",
        "contents",
        ["project_id", "execution_id"],
        postgresql_where=sa.text(APPROVED_UNCLAIMED),
        sqlite_where=sa.text(APPROVED_UNCLAIMED),
    )
    rows = _webhooks()
    if not rows:
        return
    key = _key("encrypt the publishing webhooks' URLs")
    for project_id, settings in rows:
        url = settings.pop("url", None)
        if not url:
            continue
        _save(project_id, settings | {"urlHost": webhook_host(url)}, encrypt(url, key))


def downgrade() -> None:
    op.drop_index("ix_contents_approved_unclaimed", table_name="contents")
    # Plain DROP COLUMN (SQLite 3.35+): no copy of `contents`, as above.
    op.drop_column("contents", "publish_first_claimed_at")
    rows = _webhooks(with_url=True)
    if rows:
        key = _key("decrypt the publishing webhooks' URLs back into their settings")
        for project_id, settings, sealed in rows:
            settings.pop("urlHost", None)
            if sealed:
                settings["url"] = decrypt(sealed, key)
            _save(project_id, settings, None)
    op.drop_column("publishing_credentials", "url_encrypted")


def _webhooks(*, with_url: bool = False) -> list[Any]:
    columns = [_CREDENTIALS.c.project_id, _CREDENTIALS.c.settings]
    if with_url:
        columns.append(_CREDENTIALS.c.url_encrypted)
    found = op.get_bind().execute(sa.select(*columns).where(_CREDENTIALS.c.network == "webhook"))
    return [(row[0], dict(row[1] or {}), *row[2:]) for row in found]


def _save(project_id: str, settings: dict[str, Any], sealed: str | None) -> None:
    op.get_bind().execute(
        _CREDENTIALS.update()
        .where(_CREDENTIALS.c.project_id == project_id, _CREDENTIALS.c.network == "webhook")
        .values(settings=settings, url_encrypted=sealed)
    )


def _key(purpose: str) -> str:
    """HERALD_SECRET_KEY, which the services encrypt the URL with (a SecretKeyError names it)."""
    key = Settings().secret_key.get_secret_value()
    if not key:
        raise RuntimeError(f"HERALD_SECRET_KEY must be set to {purpose} (migration 0022)")
    return key
