"""The transactional outbox: an event is written with the change that caused it, then relayed.

A relay claims unpublished rows (`FOR UPDATE SKIP LOCKED`, so several relays share the work),
publishes them with publisher confirms, and marks them published in the same transaction. A
crash between the confirm and the commit republishes the row: consumers drop the duplicate by
its event id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol, cast, runtime_checkable

import structlog
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import metrics, tracing
from shared.bus import Bus
from shared.db.notify import OUTBOX_CHANNEL, notify
from shared.db.schema import OutboxMessage
from shared.events import Event
from shared.runtime import pause
from shared.supervision import log_failed_pass

log = structlog.get_logger(__name__)

KEEP_PUBLISHED = timedelta(hours=1)


async def enqueue(
    session: AsyncSession, *events: Event, traceparents: Mapping[str, str | None] | None = None
) -> None:
    """Add events to the outbox in the caller's transaction: one Core multi-row INSERT.

    Core, not ORM objects: a scheduler batch writes hundreds of rows, and a unit-of-work
    flush of that many instances costs more than the INSERT itself. The same statement runs
    on PostgreSQL and SQLite.

    Each row keeps the trace context it was written in (the current span's, or the one
    `traceparents` gives its execution id), so its publish, later and maybe by another process,
    continues that trace. With tracing off the column stays empty.
    """
    if not events:
        return
    created_at = datetime.now(UTC)
    current = tracing.traceparent()
    chosen = traceparents or tracing.execution_parents()
    await session.execute(
        insert(_OUTBOX),
        [
            {
                "event_id": event.event_id,
                "routing_key": event.routing_key,
                "payload": event.to_json().decode(),
                "created_at": created_at,
                "traceparent": chosen.get(event.execution_id, current),
            }
            for event in events
        ],
    )
    await notify(session, OUTBOX_CHANNEL)


_OUTBOX = cast(Table, OutboxMessage.__table__)


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
        concurrency: int = 1,
        fanout: int = 1,
        confirm_timeout: float = 30.0,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._batch = batch
        self.wake = wake or asyncio.Event()
        self._poll_interval = poll_interval
        self._last_prune = 0.0
        # Relays at once: while one waits for its batch's confirms, another claims the next.
        self._concurrency = max(1, concurrency)
        # Batches a relay claims in one statement and publishes at once (see `relay_once`).
        self._fanout = max(1, fanout)
        # The claimed rows stay locked while their confirms are awaited: never for ever.
        self._confirm_timeout = confirm_timeout

    async def relay_once(self) -> int:
        """Publish what one claim took (up to `fanout` batches); return how many rows.

        The batches of a claim are published at once, each marked with the time its own
        confirms came back. One claim rather than one per batch: relays claiming side by side
        each skip the rows the others hold, and the last of four waited for that (4-48 ms
        for an instant's 2,000 rows). When a batch fails, the others are still marked, and
        the failure is raised once they are: its rows stay pending for the next claim (so
        they go out after rows behind them; order across batches is not kept).
        """
        started = time.perf_counter()
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(
                        OutboxMessage.id,
                        OutboxMessage.routing_key,
                        OutboxMessage.payload,
                        OutboxMessage.event_id,
                        OutboxMessage.traceparent,
                    )
                    .where(OutboxMessage.published_at.is_(None))
                    .order_by(OutboxMessage.id)
                    .limit(self._batch * self._fanout)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            batches = [
                rows[start : start + self._batch] for start in range(0, len(rows), self._batch)
            ]
            confirmed = await asyncio.gather(
                *(_publish(self._bus, batch, self._confirm_timeout) for batch in batches),
                return_exceptions=True,
            )
            published, failure = 0, None
            # One Core UPDATE per batch (no ORM session synchronisation to evaluate).
            for batch, at in zip(batches, confirmed, strict=True):
                if isinstance(at, BaseException):
                    failure = failure or _retriable(at)
                    continue
                await session.execute(
                    update(_OUTBOX)
                    .where(_OUTBOX.c.id.in_([row.id for row in batch]))
                    .values(published_at=at)
                )
                published += len(batch)
        metrics.OUTBOX_PUBLISHED.inc(published)
        metrics.OUTBOX_RELAY_SECONDS.observe(time.perf_counter() - started)
        if failure is not None:
            raise failure
        return published

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._loop(stop) for _ in range(self._concurrency)))

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Cleared before looking, so a wake-up that arrives meanwhile is never lost.
            self.wake.clear()
            try:
                published = await self.relay_once() if self._bus.is_ready else 0
                if published >= self._batch * self._fanout:
                    continue
                await self._housekeeping()
            except Exception as exc:
                log_failed_pass(log, "outbox relay failed; will retry", exc)
            await pause(self._poll_interval, self.wake, stop)

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


@runtime_checkable
class BatchPublisher(Protocol):
    """A bus that publishes a relay batch at once (the scheduler's: one write of frames)."""

    async def publish_many(self, messages: Sequence[Outgoing]) -> None: ...


class Outgoing(NamedTuple):
    routing_key: str
    body: bytes
    message_id: str | None
    #: The trace context the message was written in (an outbox row's), its publish's parent.
    traceparent: str | None = None


def _retriable(failure: BaseException) -> BaseException:
    """The error to raise for a batch that failed: a cancellation becomes a plain error.

    aiormq fails what waits on a channel it closes (a missed heartbeat, a reconnect) with
    `CancelledError`. Raised as such it would end the relay's loop, which retries only
    `Exception`s, and its rows would wait for a restart. The relay's own cancellation never
    lands here: it interrupts the gather instead.
    """
    if isinstance(failure, asyncio.CancelledError):
        error = ConnectionError("the broker connection closed before the batch was confirmed")
        error.__cause__ = failure
        return error
    return failure


class RawPublisher(Protocol):
    async def publish_raw(
        self, routing_key: str, body: bytes, *, message_id: str | None = None
    ) -> None: ...


async def publish_in_context(
    bus: RawPublisher,
    routing_key: str,
    body: bytes,
    message_id: str | None,
    traceparent: str | None,
) -> None:
    """Publish a message in the trace it was written in (run as a task of its own: the
    context attached here is that task's alone)."""
    with tracing.attached(traceparent):
        await bus.publish_raw(routing_key, body, message_id=message_id)


async def _publish(bus: Bus, rows: Sequence[Any], within: float) -> datetime:
    """Publish claimed rows with confirms (as one batch when the bus can, else concurrently);
    return when the last confirm came, or fail with TimeoutError after `within` seconds."""
    try:
        async with asyncio.timeout(within):
            if isinstance(bus, BatchPublisher):
                await bus.publish_many(
                    [
                        Outgoing(
                            row.routing_key, row.payload.encode(), row.event_id, row.traceparent
                        )
                        for row in rows
                    ]
                )
            else:
                await asyncio.gather(
                    *(
                        publish_in_context(
                            bus,
                            row.routing_key,
                            row.payload.encode(),
                            row.event_id,
                            row.traceparent,
                        )
                        for row in rows
                    )
                )
    except TimeoutError as exc:
        if exc.args:  # the bus's own, which says more
            raise
        raise TimeoutError(
            f"the broker did not confirm {len(rows)} outbox rows within {within:g} s"
        ) from exc
    return datetime.now(UTC)
