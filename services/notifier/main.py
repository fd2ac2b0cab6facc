"""Composition root of the notifier: the bus, one HTTP client, the channels."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import structlog

from services.notifier.channels import Channels
from services.notifier.handlers import make_handler
from shared import topology, tracing_http
from shared.bus import Bus
from shared.destinations import allowed_networks
from shared.outbound import guarded_client
from shared.settings import Settings
from shared.worker import main_for

log = structlog.get_logger(__name__)


async def setup(bus: Bus, settings: Settings) -> Callable[[], Awaitable[None]]:
    timeout = httpx.Timeout(settings.notify_timeout, connect=5.0)
    # Resend is the operator's; webhook URLs are the tenants' and go through the outbound
    # guard. Both: no redirects (they would move a secret URL), no proxies from the env.
    http = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)
    webhooks = guarded_client(allowed_networks(settings), timeout=timeout)
    tracing_http.instrument_httpx(http)
    tracing_http.instrument_httpx(webhooks, secret_urls=True)
    channels = Channels(settings, http, webhooks=webhooks)
    log.info("notifier channels", email=channels.email_transport or "off")
    await bus.consume(topology.NOTIFIER_QUEUE, make_handler(bus, channels))

    async def close() -> None:
        await http.aclose()
        await webhooks.aclose()

    return close


def main() -> None:
    main_for("notifier", setup)
