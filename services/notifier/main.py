"""Composition root of the notifier: the bus, one HTTP client, the channels."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import httpx
import structlog

from services.notifier.channels import Channels
from services.notifier.handlers import make_handler
from shared import topology
from shared.bus import Bus
from shared.settings import Settings
from shared.worker import main_for

log = structlog.get_logger(__name__)


async def setup(bus: Bus, settings: Settings) -> Callable[[], Awaitable[None]]:
    # httpx logs every request's URL at INFO, and a webhook URL is a secret.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    timeout = httpx.Timeout(settings.notify_timeout, connect=5.0)
    # Webhook URLs are secrets: no redirects (they would move them), no proxies from the env.
    http = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)
    channels = Channels(settings, http)
    log.info("notifier channels", email=channels.email_transport or "off")
    await bus.consume(topology.NOTIFIER_QUEUE, make_handler(bus, channels))
    return http.aclose


def main() -> None:
    main_for("notifier", setup)
