"""Composition root of the publisher: the bus, a guarded HTTP client, budgets, sessions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from services.publisher.handlers import make_handler, poison_reporter
from services.publisher.networks.budget import AccountBudget
from services.publisher.publish import Publisher
from shared import topology
from shared.budgets import Budgets
from shared.bus import Bus
from shared.outbound import guarded_client, parse_networks
from shared.settings import Settings
from shared.worker import main_for


async def setup(bus: Bus, settings: Settings) -> Callable[[], Awaitable[None]]:
    # Instances and PDSes are the tenants' URLs: only through the outbound guard, and never
    # following a redirect (the guarded client does not).
    http = guarded_client(
        parse_networks(settings.outbound_allow_networks),
        timeout=httpx.Timeout(settings.publish_timeout, connect=10.0),
    )
    budgets = Budgets(settings.redis_url, prefix=settings.redis_prefix)
    publisher = Publisher(
        http,
        budget=AccountBudget(budgets),
        secret_key=settings.secret_key.get_secret_value(),
        allow_http=settings.webhook_allow_http,
    )
    await bus.consume(
        topology.PUBLISHER_QUEUE, make_handler(bus, publisher), on_poison=poison_reporter(bus)
    )

    async def close() -> None:
        await http.aclose()
        await budgets.close()

    return close


def main() -> None:
    main_for("publisher", setup)
