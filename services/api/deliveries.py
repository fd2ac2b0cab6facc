"""A project's recent GitHub webhook deliveries and what each came to, newest first.

The api, the console and `herald projects deliveries` all read them here, so the three
say the same of a delivery.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.pagination import page, split
from services.api.views import iso
from shared.db.schema import GitHubDelivery

# GitHub's delivery ids are GUIDs; a cursor naming anything else was not issued here.
DELIVERY_ID = re.compile(r"[0-9A-Za-z-]{1,64}")


def delivery_view(row: GitHubDelivery) -> dict[str, Any]:
    ran = row.executions or {}
    return {
        "deliveryId": row.delivery_id,
        "event": row.event,
        "action": row.action,
        "receivedAt": iso(row.received_at),
        # started | ignored | refused; "unrecorded" for deliveries kept from before outcomes.
        "outcome": row.outcome or "unrecorded",
        "reason": row.reason,
        "executions": list(ran.get("started") or []),
        "skipped": list(ran.get("skipped") or []),
        "redeliveries": row.redeliveries,
        "lastRedeliveredAt": iso(row.last_redelivered_at),
    }


async def recent_deliveries(
    session: AsyncSession, project_id: str, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the project's deliveries, newest first, and the next page's cursor."""
    statement = page(
        select(GitHubDelivery).where(GitHubDelivery.project_id == project_id),
        created=GitHubDelivery.received_at,
        row_id=GitHubDelivery.delivery_id,
        limit=limit,
        cursor=cursor,
        id_pattern=DELIVERY_ID,
    )
    rows, next_cursor = split(
        list((await session.scalars(statement)).all()),
        limit,
        lambda row: (row.received_at, row.delivery_id),
    )
    return [delivery_view(row) for row in rows], next_cursor
