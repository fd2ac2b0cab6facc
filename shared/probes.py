"""Health and metrics endpoints for the worker services (`/livez`, `/readyz`, `/metrics`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from shared import metrics

ReadinessCheck = Callable[[], Awaitable[bool]]


async def run_checks(checks: Mapping[str, ReadinessCheck]) -> dict[str, bool]:
    """Run every readiness check; a check that raises or hangs counts as not ready."""

    async def one(check: ReadinessCheck) -> bool:
        try:
            return await asyncio.wait_for(check(), timeout=2.0)
        except Exception:
            return False

    results = await asyncio.gather(*(one(check) for check in checks.values()))
    return dict(zip(checks, results, strict=True))


def add_probe_routes(
    app: FastAPI,
    *,
    service: str,
    checks: Mapping[str, ReadinessCheck],
    advisory: Mapping[str, ReadinessCheck] | None = None,
) -> None:
    """Add `/livez`, `/readyz` and `/metrics` to an app.

    `advisory` checks are reported but do not make the process unready: what they check has a
    fallback (Redis: budgets of the process's own).
    """

    @app.get("/livez", include_in_schema=False)
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        results = await run_checks(checks)
        ready = all(results.values())
        metrics.SERVICE_READY.labels(service=service).set(1 if ready else 0)
        body: dict[str, object] = {"status": "ok" if ready else "unavailable", "checks": results}
        if advisory:
            body["advisory"] = await run_checks(advisory)
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        # OpenMetrics when the scraper asks for it (Prometheus does with exemplar storage
        # on): only that format carries exemplars, the traces behind latency buckets.
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(REGISTRY), media_type=content_type)


def probe_app(
    service: str,
    checks: Mapping[str, ReadinessCheck],
    advisory: Mapping[str, ReadinessCheck] | None = None,
) -> FastAPI:
    # Probes and scrapes are not requests anyone follows: FastAPI's own telemetry, which
    # turns itself on once tracing is, makes no spans of them.
    app = FastAPI(
        title=f"herald {service} probes",
        docs_url=None,
        redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    add_probe_routes(app, service=service, checks=checks, advisory=advisory)
    return app


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that embeds it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ProbeServer:
    """A small HTTP server for a worker's probes, run inside the worker's event loop."""

    def __init__(self, app: FastAPI, *, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
        self._server = EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
