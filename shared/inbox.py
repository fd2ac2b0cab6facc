"""The inbox: apply each event once per consumer, whatever the broker redelivers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from shared import metrics
from shared.db.schema import ProcessedEvent
from shared.db.upsert import insert_ignore

log = structlog.get_logger(__name__)

RETENTION = timedelta(days=3)


async def claim_event(session: AsyncSession, *, consumer: str, event_id: str) -> bool:
    """Record the event as processed in the caller's transaction; False if it already was."""
    first = await insert_ignore(
        session,
        ProcessedEvent.__table__,  # type: ignore[arg-type]
        {"consumer": consumer, "event_id": event_id, "processed_at": datetime.now(UTC)},
    )
    if not first:
        metrics.EVENTS_DUPLICATE.labels(consumer=consumer).inc()
        log.info("duplicate event ignored", consumer=consumer, event_id=event_id)
    return first


async def prune(session: AsyncSession, *, now: datetime) -> int:
    """Forget processed ids older than the retention; redeliveries never arrive that late."""
    result = await session.execute(
        delete(ProcessedEvent).where(ProcessedEvent.processed_at < now - RETENTION)
    )
    return int(getattr(result, "rowcount", 0) or 0)
