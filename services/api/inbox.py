"""The api's inbox: each event id is applied once, whatever the broker redelivers.

An id is kept for `RETENTION`, longer than any copy of its event can still arrive: a retry
waits at most `MAX_BACKOFF_SECONDS` (going down the delay ladder as often as it takes), and
a dead-lettered event is replayed (`herald dlq replay`) within `DLQ_REPLAY_WINDOW`, the window
docs/operations.md documents. Older ids are deleted by `run_pruning`, in chunks, so one pass
never holds a long lock on a table that grows with every event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Table, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from services.api.delivery_pruning import prune_deliveries
from shared import metrics
from shared.db.schema import ProcessedEvent
from shared.events import Event
from shared.retry import MAX_BACKOFF_SECONDS
from shared.runtime import pause
from shared.supervision import log_failed_pass

log = structlog.get_logger(__name__)

CONSUMER = "api"
#: How long after it was dead-lettered an event may still be replayed and applied once.
DLQ_REPLAY_WINDOW = timedelta(days=7)
RETENTION = DLQ_REPLAY_WINDOW + timedelta(seconds=MAX_BACKOFF_SECONDS) + timedelta(days=1)
#: Seconds between two pruning passes, and ids deleted per statement.
PRUNE_INTERVAL = 3600.0
PRUNE_CHUNK = 10_000

_INBOX = cast(Table, ProcessedEvent.__table__)


async def claim(connection: AsyncConnection, dialect: Any, events: Sequence[Event]) -> list[Event]:
    """Record the events in the inbox; return those not applied before, in order."""
    unique: dict[str, Event] = {}
    for event in events:
        if event.event_id in unique:
            _duplicate(event)
        else:
            unique[event.event_id] = event
    processed_at = datetime.now(UTC)
    claimed = set(
        (
            await connection.execute(
                dialect.insert(_INBOX).on_conflict_do_nothing().returning(_INBOX.c.event_id),
                [
                    {"consumer": CONSUMER, "event_id": event_id, "processed_at": processed_at}
                    for event_id in unique
                ],
            )
        ).scalars()
    )
    fresh = []
    for event in unique.values():
        if event.event_id in claimed:
            fresh.append(event)
        else:
            _duplicate(event)
    return fresh


def _duplicate(event: Event) -> None:
    metrics.EVENTS_DUPLICATE.labels(consumer=CONSUMER).inc()
    log.info("duplicate event ignored", consumer=CONSUMER, event_id=event.event_id)


async def prune(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, chunk: int = PRUNE_CHUNK
) -> int:
    """Delete the ids processed before `now - RETENTION`, a chunk per transaction."""
    cutoff = now - RETENTION
    # SKIP LOCKED (PostgreSQL; SQLite has one writer anyway): replicas pruning at the same
    # time take different chunks instead of waiting on, or deadlocking over, the same rows.
    oldest = (
        select(ProcessedEvent.consumer, ProcessedEvent.event_id)
        .where(ProcessedEvent.processed_at < cutoff)
        .limit(chunk)
        .with_for_update(skip_locked=True)
    )
    statement = delete(ProcessedEvent).where(
        tuple_(ProcessedEvent.consumer, ProcessedEvent.event_id).in_(oldest)
    )
    deleted = 0
    while True:
        async with sessions() as session, session.begin():
            count = int(getattr(await session.execute(statement), "rowcount", 0) or 0)
        deleted += count
        if count < chunk:
            return deleted


async def run_pruning(
    sessions: async_sessionmaker[AsyncSession],
    stop: asyncio.Event,
    *,
    clock: Callable[[], datetime],
    interval: float = PRUNE_INTERVAL,
    delivery_retention: timedelta | None = None,
) -> None:
    """Prune the inbox every `interval` seconds until `stop` is set, and GitHub's webhook
    deliveries past `delivery_retention` (`services.api.delivery_pruning`) when given."""
    while not stop.is_set():
        try:
            now = clock()
            deleted = await prune(sessions, now=now)
            if deleted:
                log.info("inbox pruned", deleted=deleted, retention_days=RETENTION.days)
            if delivery_retention is not None:
                gone = await prune_deliveries(sessions, now=now, retention=delivery_retention)
                if gone:
                    log.info(
                        "github deliveries pruned",
                        deleted=gone,
                        retention_days=delivery_retention.days,
                    )
        except Exception as exc:
            log_failed_pass(log, "inbox pruning failed; will retry", exc)
        await pause(interval, stop)
