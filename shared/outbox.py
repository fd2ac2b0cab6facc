"""The transactional outbox: an event is written with the change that caused it, then relayed.

A relay claims unpublished rows (`FOR UPDATE SKIP LOCKED`, so several relays share the work),
publishes them with publisher confirms, and marks them published in the same transaction. A
crash between the confirm and the commit republishes the row: consumers drop the duplicate by
its event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import metrics
from shared.bus import Bus
from shared.db.notify import OUTBOX_CHANNEL, notify
from shared.db.schema import OutboxMessage
from shared.events import Event

log = structlog.get_logger(__name__)

KEEP_PUBLISHED = timedelta(hours=1)


async def enqueue(session: AsyncSession, *events: Event) -> None:
    """Add events to the outbox in the caller's transaction."""
    for event in events:
        session.add(
            OutboxMessage(
                event_id=event.event_id,
                routing_key=event.routing_key,
                payload=event.to_json().decode(),
                created_at=datetime.now(UTC),
            )
        )
    if events:
        await notify(session, OUTBOX_CHANNEL)


class OutboxRelay:
    """Publish outbox rows until stopped; woken by NOTIFY, or by polling when none arrives."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        *,
        batch: int = 500,
        wake: asyncio.Event | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._batch = batch
        self.wake = wake or asyncio.Event()
        self._poll_interval = poll_interval
        self._last_prune = 0.0

    async def relay_once(self) -> int:
        """Publish one batch; return how many rows it published."""
        started = time.perf_counter()
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(
                        OutboxMessage.id,
                        OutboxMessage.routing_key,
                        OutboxMessage.payload,
                        OutboxMessage.event_id,
                    )
                    .where(OutboxMessage.published_at.is_(None))
                    .order_by(OutboxMessage.id)
                    .limit(self._batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            await asyncio.gather(
                *(
                    self._bus.publish_raw(
                        row.routing_key, row.payload.encode(), message_id=row.event_id
                    )
                    for row in rows
                )
            )
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([row.id for row in rows]))
                .values(published_at=datetime.now(UTC))
            )
        metrics.OUTBOX_PUBLISHED.inc(len(rows))
        metrics.OUTBOX_RELAY_SECONDS.observe(time.perf_counter() - started)
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                published = await self.relay_once() if self._bus.is_ready else 0
                if published >= self._batch:
                    continue
                await self._housekeeping()
            except Exception as exc:
                log.warning("outbox relay failed; will retry", error=str(exc))
                published = 0
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first_of(self.wake, stop), timeout=self._poll_interval)

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < 30:
            return
        self._last_prune = now
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.published_at < datetime.now(UTC) - KEEP_PUBLISHED
                )
            )
            pending = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.published_at.is_(None))
            )
        metrics.OUTBOX_PENDING.set(pending or 0)


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
