"""Composition root of the scheduler: database, bus, probes, and its loops (`loops`)."""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy import text

from services.scheduler.loops import offset_clock, run_loops
from services.scheduler.publisher import BatchPublishingBus
from shared.db.engine import create_engine, is_sqlite, session_factory
from shared.db.filelock import hold_database_lock
from shared.db.notify import JOBS_CHANNEL, OUTBOX_CHANNEL, POSTS_CHANNEL, Listener
from shared.logging import configure_logging
from shared.probes import ProbeServer, probe_app
from shared.runtime import freeze_startup_objects, install_stop_signals
from shared.scheduling.zonedata import use_zone_source
from shared.settings import Settings, get_settings
from shared.supervision import Supervisor
from shared.worker import probe_port

log = structlog.get_logger(__name__)


async def run(settings: Settings) -> None:
    stop = install_stop_signals()
    engine = create_engine(settings.database_url, application_name="herald-scheduler")
    sessions = session_factory(engine)
    clock = offset_clock(settings.scheduler_clock_offset)
    bus = BatchPublishingBus(
        settings.amqp_url,
        service="scheduler",
        delivery_limit=settings.delivery_limit,
        clock=clock,
        frames=settings.scheduler_frames,
        confirm_timeout=settings.scheduler_confirm_timeout,
    )

    async def database_ready() -> bool:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True

    async def broker_ready() -> bool:
        return bus.is_ready

    loops = Supervisor("scheduler", stop)
    probes = ProbeServer(
        probe_app(
            "scheduler",
            {"database": database_ready, "broker": broker_ready, "loops": loops.ready},
        ),
        host=settings.probe_host,
        port=probe_port("scheduler", settings),
    )
    await probes.start()
    freeze_startup_objects()
    listener = None
    held = None
    if is_sqlite(settings.database_url):
        # One scheduler per SQLite file: the standalone process holds this lock, so a
        # second scheduler on the same file refuses to start instead of double-firing.
        held = hold_database_lock(settings.database_url)
    else:
        listener = Listener(settings.database_url, [JOBS_CHANNEL, OUTBOX_CHANNEL, POSTS_CHANNEL])
        listener.start()
    await run_loops(settings, sessions, bus, stop=stop, clock=clock, listener=listener, loops=loops)
    await bus.close()
    if listener is not None:
        await listener.stop()
    await engine.dispose()
    await probes.stop()
    if held is not None:
        held.release()
    log.info("service stopped", service="scheduler")


def main() -> None:
    settings = get_settings()
    configure_logging(service="scheduler", level=settings.log_level, fmt=settings.log_format)
    use_zone_source(settings.tzpath)
    asyncio.run(run(settings))
