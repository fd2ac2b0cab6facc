"""Composition root of the scanner: the bus, an HTTP client, the cancellation set."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from services.scanner.handlers import make_handler
from shared import topology, tracing_http
from shared.budgets import Budgets
from shared.bus import Bus
from shared.cancellation import CancelledSet
from shared.events import Step
from shared.outbound import guarded_client, parse_networks
from shared.settings import Settings
from shared.steps import poison_reporter
from shared.worker import main_for


async def setup(bus: Bus, settings: Settings) -> Callable[[], Awaitable[None]]:
    cancelled = CancelledSet()
    await bus.on_cancelled(cancelled.add)
    # Scans wait for a request slot (HERALD_GITHUB_MAX_CONCURRENT, the handler's semaphore),
    # never in the pool: it has room for every slot, and for bodies still being read.
    timeout = httpx.Timeout(
        connect=settings.github_connect_timeout,
        read=settings.github_read_timeout,
        write=10.0,
        pool=None,
    )
    limit = 2 * settings.github_max_concurrent
    # Projects steer where the scanner connects: only through the outbound guard.
    http = guarded_client(
        parse_networks(settings.outbound_allow_networks),
        timeout=timeout,
        limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
    )
    tracing_http.instrument_httpx(http)
    budgets = Budgets(settings.redis_url, prefix=settings.redis_prefix)
    await bus.consume(
        topology.SCANNER_QUEUE,
        make_handler(bus, http, cancelled, settings, budgets=budgets),
        on_poison=poison_reporter(bus, Step.SCAN),
    )

    async def close() -> None:
        await http.aclose()
        await budgets.close()

    return close


def main() -> None:
    main_for("scanner", setup)
