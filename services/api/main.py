"""Composition root of the API: FastAPI app, database, bus, outbox relay, event consumer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import structlog
import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from sqlalchemy import text

from services.api import access, auth, console, inbox, problems, query_count
from services.api.abuse import FailedAuthentication, client_address
from services.api.access import require_credentials
from services.api.batch import EventBatcher
from services.api.guards import InputGuard
from services.api.headers import SecurityHeaders
from services.api.http_metrics import RequestContext
from services.api.jwt_auth import JwksVerifier
from services.api.lifecycle import sweep_timeouts
from services.api.overdue import run_overdue_gauge
from services.api.routes import (
    executions,
    jobs,
    me,
    notifications,
    posts,
    previews,
    projects,
    tokens,
    webhooks,
)
from services.api.state import AppState, open_database
from shared import topology, tracing_http
from shared.budgets import Budgets
from shared.bus import AmqpBus, Bus
from shared.db.engine import is_disconnect, is_sqlite
from shared.db.notify import OUTBOX_CHANNEL, Listener, local_wakeup
from shared.errors import DependencyUnavailableError
from shared.events import Event
from shared.logging import configure_logging
from shared.outbox import OutboxRelay
from shared.probes import EmbeddedServer, add_probe_routes
from shared.runtime import (
    freeze_startup_objects,
    install_stop_signals,
    pause,
    start_when_available,
)
from shared.scheduling.zonedata import use_zone_source
from shared.settings import Settings, get_settings
from shared.supervision import Supervisor, log_failed_pass

log = structlog.get_logger(__name__)

# Swagger UI's and ReDoc's scripts and styles, from the fastapi-offline package.
DOCS_ASSETS = "/docs/static"
# How long a stopping api lets its loops end the pass in hand (a pass is a short
# transaction) before cancelling them.
LOOPS_GRACE_S = 5.0

DESCRIPTION = (
    "herald runs scheduled jobs that turn a repository's activity into posts. "
    "Every endpoint but the probes needs `Authorization: Bearer <token>`."
)


def create_app(settings: Settings, *, bus: Bus | None = None) -> FastAPI:
    """Build the API app; nothing connects until its lifespan starts."""
    engine, sessions, reads = open_database(settings.database_url)
    budgets = Budgets(settings.redis_url, prefix=settings.redis_prefix)
    state = AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        reads=reads,
        bus=bus
        or AmqpBus(
            settings.amqp_url,
            service="api",
            prefetch=settings.api_prefetch,
            delivery_limit=settings.delivery_limit,
        ),
        jwks=JwksVerifier(
            settings.jwt_jwks_url,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            algorithms=settings.jwt_algorithms,
        )
        if settings.jwt_jwks_url
        else None,
        budgets=budgets,
        failed_auth=FailedAuthentication(budgets, settings.auth_failures_per_minute),
    )

    query_count.install(engine.sync_engine)

    # Made anew by each run of the lifespan: an asyncio.Event belongs to the loop that first
    # waits on it, and an app may be started again (tests, an embedding server).
    running: dict[str, Supervisor] = {}

    async def loops_ready() -> bool:
        loops = running.get("loops")
        return loops is None or await loops.ready()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        loops = running["loops"] = Supervisor("api", stop)
        # Events handed in while a batch is being applied are applied together, in one
        # transaction.
        batcher = EventBatcher(state.sessions, public_url=state.settings.public_url)
        pipeline = asyncio.create_task(_run_pipeline(state, batcher, stop, loops))
        loops.start("timeout sweeper", lambda: _run_sweeper(state, stop))
        # Figures and housekeeping: a crash is logged, counted and restarted like any
        # loop's, but the api still serves meanwhile (reported under `advisory`).
        loops.start(
            "overdue gauge", lambda: run_overdue_gauge(state.sessions, stop), essential=False
        )
        loops.start(
            "inbox pruning",
            lambda: inbox.run_pruning(
                state.sessions,
                stop,
                clock=lambda: datetime.now(UTC),
                delivery_retention=timedelta(days=settings.github_delivery_retention_days),
            ),
            essential=False,
        )
        try:
            yield
        finally:
            stop.set()
            await state.bus.close()
            pipeline.cancel()
            await asyncio.gather(pipeline, return_exceptions=True)
            # Before the engine goes: a batch still being applied holds a connection and,
            # on SQLite, the database's write lock.
            await batcher.close()
            await loops.cancel(grace=LOOPS_GRACE_S)
            await state.close()
            await engine.dispose()

    # FastAPIOffline: FastAPI whose /docs and /redoc load their scripts from this server.
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        favicon_url="/console/static/favicon.svg",
        title="herald",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Deny by default: every route needs credentials but those `access` names public.
        dependencies=[Depends(require_credentials)],
        openapi_tags=[
            {"name": "schedules", "description": "Cron jobs and manual triggers."},
            {"name": "executions", "description": "Execution history and statistics."},
            {"name": "projects", "description": "Repositories, platforms, alert settings."},
            {"name": "notifications", "description": "In-app alerts."},
            {"name": "me", "description": "The signed-in user's profile."},
            {"name": "tokens", "description": "The signed-in user's API tokens."},
        ],
    )
    app.state.herald = state

    async def count_failure(request: Request) -> int | None:
        return await state.failed_auth.failed(client_address(request))

    problems.install(app, on_unauthorized=count_failure, refusal=auth.refusal_of)
    app.add_middleware(RequestContext)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    # Outermost: a refused body never reaches the app (or the metrics of a route).
    app.add_middleware(
        InputGuard,
        max_body=settings.api_max_body_bytes,
        # GitHub's deliveries run larger than any request of ours; the route caps them.
        larger={webhooks.PATH: webhooks.MAX_PAYLOAD_BYTES},
    )
    app.add_middleware(SecurityHeaders)
    for router in (
        jobs.router,
        previews.router,
        executions.router,
        projects.router,
        notifications.router,
        posts.router,
        me.router,
        tokens.router,
        webhooks.router,
    ):
        app.include_router(router)
    console.mount(app)

    async def database_ready() -> bool:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True

    async def broker_ready() -> bool:
        return state.bus.is_ready

    async def advisory_loops_ready() -> bool:
        loops = running.get("loops")
        return loops is None or await loops.ready(essential=False)

    add_probe_routes(
        app,
        service="api",
        checks={"database": database_ready, "broker": broker_ready, "loops": loops_ready},
        advisory={
            "loops": advisory_loops_ready,
            **({"redis": state.budgets.ping} if settings.redis_url else {}),
        },
    )
    _declare_security(app)
    access.install(app)
    tracing_http.instrument_fastapi(app)
    return app


def _declare_security(app: FastAPI) -> None:
    """Declare the bearer scheme in OpenAPI for every operation but the probes."""
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearerAuth"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (hrld_...) or, when configured, a JWT from the gateway.",
        }
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                operation["security"] = [{"bearerAuth": []}]
        problems.declare(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _run_pipeline(
    state: AppState, batcher: EventBatcher, stop: asyncio.Event, loops: Supervisor
) -> None:
    """Connect to the broker (waiting for it) and consume events, then relay the outbox."""

    async def on_event(event: Event) -> None:
        try:
            await batcher.apply(event)
        except Exception as exc:
            if is_disconnect(exc):
                # The bus holds the event until the database answers again.
                raise DependencyUnavailableError(f"database unreachable: {exc!r}") from exc
            raise

    async def connect_and_subscribe() -> None:
        await state.bus.start()
        try:
            await state.bus.consume(topology.API_QUEUE, on_event)
        except BaseException:
            await state.bus.close(grace=0)
            raise

    if await start_when_available(connect_and_subscribe, what="broker", stop=stop):
        loops.start("outbox relay", lambda: _relay_outbox(state, stop))


async def _relay_outbox(state: AppState, stop: asyncio.Event) -> None:
    listener = None
    if not is_sqlite(state.settings.database_url):
        listener = Listener(state.settings.database_url, [OUTBOX_CHANNEL])
        listener.start()
    relay = OutboxRelay(
        state.sessions,
        state.bus,
        batch=state.settings.outbox_batch,
        # SQLite (the standalone mode, one process): woken by this process's own commits.
        wake=listener.events[OUTBOX_CHANNEL] if listener else local_wakeup(OUTBOX_CHANNEL),
    )
    try:
        await relay.run(stop)
    finally:
        if listener is not None:
            await listener.stop()


async def _run_sweeper(state: AppState, stop: asyncio.Event) -> None:
    """Time out open executions past their deadline, every `api_sweep_interval` seconds."""
    settings = state.settings
    grace = timedelta(seconds=settings.api_sweep_grace)
    while not stop.is_set():
        try:
            swept = await sweep_timeouts(
                state.sessions, now=datetime.now(UTC), grace=grace, public_url=settings.public_url
            )
            if swept:  # each run is logged by the sweep
                continue
        except Exception as exc:
            log_failed_pass(log, "timeout sweep failed; will retry", exc)
        await pause(settings.api_sweep_interval, stop)


async def serve(
    settings: Settings, *, bus: Bus | None = None, stop: asyncio.Event | None = None
) -> None:
    """Serve until SIGTERM or SIGINT (or `stop`), then drain requests and in-flight messages."""
    stop = stop or install_stop_signals()
    app = create_app(settings, bus=bus)
    freeze_startup_objects()
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=15,
        # The client address abuse limits count by: X-Forwarded-For from these proxies only.
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    server = EmbeddedServer(config)
    serving = asyncio.create_task(server.serve())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopped.cancel()
    await serving


def main() -> None:
    settings = get_settings()
    configure_logging(service="api", level=settings.log_level, fmt=settings.log_format)
    use_zone_source(settings.tzpath)
    asyncio.run(serve(settings))
