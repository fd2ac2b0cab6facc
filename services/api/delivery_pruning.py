"""GitHub webhook deliveries are kept for `HERALD_GITHUB_DELIVERY_RETENTION_DAYS`, then deleted.

A delivery's id is what stops a redelivery from running anything twice, and GitHub lets an
owner redeliver by hand for days (3 on github.com, 7 on Enterprise Server): a delivery is
kept well past that (30 days by default, 7 at least), which also bounds the recent
deliveries a project shows. The inbox's pruning loop runs this pass too, in chunks, so one
pass never holds a long lock on a table every delivery writes to.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.schema import GitHubAppDelivery, GitHubDelivery

CHUNK = 10_000


async def prune_deliveries(
    sessions: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    retention: timedelta,
    chunk: int = CHUNK,
) -> int:
    """Delete the project and App deliveries received before `now - retention`."""
    cutoff = now - retention
    # SKIP LOCKED (PostgreSQL): replicas pruning at once take different chunks.
    project_rows = (
        select(GitHubDelivery.project_id, GitHubDelivery.delivery_id)
        .where(GitHubDelivery.received_at < cutoff)
        .limit(chunk)
        .with_for_update(skip_locked=True)
    )
    app_rows = (
        select(GitHubAppDelivery.delivery_id)
        .where(GitHubAppDelivery.received_at < cutoff)
        .limit(chunk)
        .with_for_update(skip_locked=True)
    )
    statements: list[Any] = [
        delete(GitHubDelivery).where(
            tuple_(GitHubDelivery.project_id, GitHubDelivery.delivery_id).in_(project_rows)
        ),
        delete(GitHubAppDelivery).where(GitHubAppDelivery.delivery_id.in_(app_rows)),
    ]
    deleted = 0
    for statement in statements:
        while True:
            async with sessions() as session, session.begin():
                count = int(getattr(await session.execute(statement), "rowcount", 0) or 0)
            deleted += count
            if count < chunk:
                break
    return deleted
