"""Composition root of the generator: the bus, the cancellation set, the AI provider."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import structlog

from services.generator.budget import ModelBudget
from services.generator.delivery import Deliverer
from services.generator.handlers import make_handler
from services.generator.providers import Provider, make_provider
from shared import topology, tracing_http
from shared.budgets import Budgets
from shared.bus import Bus
from shared.cancellation import CancelledSet
from shared.destinations import allowed_networks
from shared.errors import ConfigurationError
from shared.events import Step
from shared.outbound import guarded_client
from shared.platforms import PLATFORMS
from shared.settings import Settings
from shared.steps import poison_reporter
from shared.worker import main_for

log = structlog.get_logger(__name__)


async def setup(bus: Bus, settings: Settings) -> Callable[[], Awaitable[None]]:
    cancelled = CancelledSet()
    await bus.on_cancelled(cancelled.add)
    # Every platform of every execution in flight may call the model at once: the pool is
    # sized for that, and what bounds the calls is the concurrency and the provider's budget.
    http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.worker_concurrency * len(PLATFORMS)),
        timeout=aiohttp.ClientTimeout(total=settings.ai_timeout, connect=10.0),
        trace_configs=tracing_http.aiohttp_trace_configs(),
    )
    provider: Provider | ConfigurationError | None
    try:
        provider = make_provider(settings, http)
    except ConfigurationError as exc:
        # A bad AI configuration fails each execution with a clear error; the worker runs on.
        log.error("AI provider misconfigured", error=exc.message)
        provider = exc
    budgets = Budgets(settings.redis_url, prefix=settings.redis_prefix)
    budget = None
    if provider is not None and not isinstance(provider, ConfigurationError):
        budget = ModelBudget(
            budgets,
            provider=provider.name,
            model=provider.model,
            requests_per_minute=settings.ai_requests_per_minute,
            tokens_per_minute=settings.ai_tokens_per_minute,
        )
    log.info(
        "generator writing with",
        provider=getattr(provider, "name", "template"),
        model=getattr(provider, "model", None),
        requests_per_minute=settings.ai_requests_per_minute or None,
        tokens_per_minute=settings.ai_tokens_per_minute or None,
        budgets="shared (Redis)" if budgets.shared else "this process",
    )
    # WEBHOOK jobs' receivers are the tenants' to name: the guarded client checks every
    # address it connects to and follows no redirect.
    webhooks = guarded_client(
        allowed_networks(settings),
        timeout=httpx.Timeout(settings.webhook_timeout),
        limits=httpx.Limits(max_connections=settings.worker_concurrency),
    )
    await bus.consume(
        topology.GENERATOR_QUEUE,
        make_handler(
            bus,
            cancelled,
            provider,
            call_retries=settings.ai_call_retries,
            max_wait=settings.ai_retry_max_wait,
            budget=budget,
            deliverer=Deliverer(webhooks, settings),
        ),
        on_poison=poison_reporter(bus, Step.GENERATE),
    )

    async def close() -> None:
        await http.close()
        await webhooks.aclose()
        await budgets.close()

    return close


def main() -> None:
    main_for("generator", setup)
