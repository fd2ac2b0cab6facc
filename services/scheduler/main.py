"""Composition root of the scheduler: database, bus, claim loop, outbox relay, probes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler.claims import earliest_next_run, fire_due
from shared.bus import AmqpBus
from shared.db.engine import create_engine, is_sqlite, session_factory
from shared.db.notify import JOBS_CHANNEL, OUTBOX_CHANNEL, Listener
from shared.logging import configure_logging
from shared.outbox import OutboxRelay
from shared.probes import ProbeServer, probe_app
from shared.runtime import install_stop_signals, start_when_available
from shared.settings import Settings, get_settings
from shared.worker import probe_port

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


async def schedule_loop(
    sessions: async_sessionmaker[AsyncSession],
    *,
    stop: asyncio.Event,
    wake: asyncio.Event,
    batch: int,
    max_sleep: float,
    clock: Clock = system_clock,
) -> None:
    """Fire due jobs, then sleep until the earliest next run or until woken."""
    while not stop.is_set():
        try:
            result = await fire_due(sessions, now=clock(), batch=batch)
            if result.claimed >= batch:
                continue  # more are due: no sleeping while behind
            next_due = await earliest_next_run(sessions)
        except Exception as exc:
            log.warning("scheduling pass failed; retrying", error=str(exc))
            next_due = None
        sleep = max_sleep
        if next_due is not None:
            sleep = min(max_sleep, max(0.0, (next_due - clock()).total_seconds()))
        wake.clear()
        if sleep > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_either(wake, stop), timeout=sleep)


async def _either(first: asyncio.Event, second: asyncio.Event) -> None:
    waiters = [asyncio.create_task(first.wait()), asyncio.create_task(second.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def run(settings: Settings) -> None:
    stop = install_stop_signals()
    engine = create_engine(settings.database_url, application_name="herald-scheduler")
    sessions = session_factory(engine)
    bus = AmqpBus(settings.amqp_url, service="scheduler", delivery_limit=settings.delivery_limit)

    async def database_ready() -> bool:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True

    async def broker_ready() -> bool:
        return bus.is_ready

    probes = ProbeServer(
        probe_app("scheduler", {"database": database_ready, "broker": broker_ready}),
        host=settings.probe_host,
        port=probe_port("scheduler", settings),
    )
    await probes.start()
    listener = None
    job_wake, outbox_wake = asyncio.Event(), asyncio.Event()
    if not is_sqlite(settings.database_url):
        listener = Listener(settings.database_url, [JOBS_CHANNEL, OUTBOX_CHANNEL])
        listener.start()
        job_wake, outbox_wake = listener.events[JOBS_CHANNEL], listener.events[OUTBOX_CHANNEL]
    # Firing needs only the database: the outbox holds events while the broker is away.
    tasks = [
        asyncio.create_task(
            schedule_loop(
                sessions,
                stop=stop,
                wake=job_wake,
                batch=settings.scheduler_batch,
                max_sleep=settings.scheduler_max_sleep,
            )
        ),
        asyncio.create_task(_relay(sessions, bus, outbox_wake, stop, settings)),
    ]
    log.info("service started", service="scheduler")
    await stop.wait()
    log.info("service stopping", service="scheduler")
    await asyncio.gather(*tasks, return_exceptions=True)
    await bus.close()
    if listener is not None:
        await listener.stop()
    await engine.dispose()
    await probes.stop()
    log.info("service stopped", service="scheduler")


async def _relay(
    sessions: async_sessionmaker[AsyncSession],
    bus: AmqpBus,
    wake: asyncio.Event,
    stop: asyncio.Event,
    settings: Settings,
) -> None:
    if await start_when_available(bus.start, what="broker", stop=stop):
        await OutboxRelay(sessions, bus, batch=settings.outbox_batch, wake=wake).run(stop)


def main() -> None:
    settings = get_settings()
    configure_logging(service="scheduler", level=settings.log_level, fmt=settings.log_format)
    asyncio.run(run(settings))
