"""The life of a worker process (scanner, generator, notifier): no database, only the bus."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from shared.bus import AmqpBus, Bus
from shared.logging import configure_logging
from shared.probes import ProbeServer, probe_app
from shared.runtime import install_stop_signals, start_when_available
from shared.settings import Settings, get_settings

log = structlog.get_logger(__name__)

DEFAULT_PROBE_PORTS = {"scheduler": 9101, "scanner": 9102, "generator": 9103, "notifier": 9104}

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
        prefetch=settings.prefetch,
        delivery_limit=settings.delivery_limit,
    )

    async def broker_ready() -> bool:
        return bus.is_ready

    probes = ProbeServer(
        probe_app(service, {"broker": broker_ready}),
        host=settings.probe_host,
        port=probe_port(service, settings),
    )
    await probes.start()
    cleanup = None
    if await start_when_available(bus.start, what="broker", stop=stop):
        cleanup = await setup(bus, settings)
        log.info("service started", service=service)
        await stop.wait()
    log.info("service stopping", service=service)
    await bus.close()
    if cleanup is not None:
        await cleanup()
    await probes.stop()
    log.info("service stopped", service=service)


def main_for(service: str, setup: Setup) -> None:
    """Entry point body of `python -m services.<service>`."""
    settings = get_settings()
    configure_logging(service=service, level=settings.log_level, fmt=settings.log_format)
    asyncio.run(run_worker(service, setup, settings))
