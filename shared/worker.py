"""The life of a worker process (scanner, generator, notifier, publisher): no database, only
the bus."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from shared.budgets import Budgets
from shared.bus import AmqpBus, Bus
from shared.logging import configure_logging
from shared.probes import ProbeServer, probe_app
from shared.runtime import freeze_startup_objects, install_stop_signals, start_when_available
from shared.settings import Settings, get_settings

log = structlog.get_logger(__name__)

DEFAULT_PROBE_PORTS = {
    "scheduler": 9101,
    "scanner": 9102,
    "generator": 9103,
    "notifier": 9104,
    "publisher": 9105,
}

Setup = Callable[[Bus, Settings], Awaitable[Callable[[], Awaitable[None]] | None]]


def probe_port(service: str, settings: Settings) -> int:
    return settings.probe_port or DEFAULT_PROBE_PORTS[service]


async def run_worker(service: str, setup: Setup, settings: Settings) -> None:
    """Serve probes, connect to the broker (waiting for it), run `setup`, wait for a signal.

    `setup` subscribes the service's handlers and may return a clean-up coroutine.
    """
    stop = install_stop_signals()
    bus = AmqpBus(
        settings.amqp_url,
        service=service,
        prefetch=settings.worker_concurrency,
        delivery_limit=settings.delivery_limit,
    )

    cleanup: Callable[[], Awaitable[None]] | None = None
    subscribed = False

    async def broker_ready() -> bool:
        return subscribed and bus.is_ready

    async def connect_and_subscribe() -> None:
        nonlocal cleanup, subscribed
        await bus.start()
        try:
            cleanup = await setup(bus, settings)
        except BaseException:
            # The broker went away mid-way: start over on a fresh connection.
            await bus.close(grace=0)
            raise
        subscribed = True

    advisory = {}
    if settings.redis_url:
        budgets = Budgets(settings.redis_url, prefix=settings.redis_prefix)
        advisory["redis"] = budgets.ping
    probes = ProbeServer(
        probe_app(service, {"broker": broker_ready}, advisory),
        host=settings.probe_host,
        port=probe_port(service, settings),
    )
    await probes.start()
    if await start_when_available(connect_and_subscribe, what="broker", stop=stop):
        freeze_startup_objects()
        log.info("service started", service=service)
        await stop.wait()
    log.info("service stopping", service=service)
    await bus.close()
    if cleanup is not None:
        await cleanup()
    await probes.stop()
    if settings.redis_url:
        await budgets.close()
    log.info("service stopped", service=service)


def main_for(service: str, setup: Setup) -> None:
    """Entry point body of `python -m services.<service>`."""
    settings = get_settings()
    configure_logging(service=service, level=settings.log_level, fmt=settings.log_format)
    asyncio.run(run_worker(service, setup, settings))
