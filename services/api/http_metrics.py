"""Request metrics by route template, and the request id every log line carries."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import tracing

REQUESTS = Counter(
    "herald_http_requests_total", "HTTP requests handled.", ["method", "route", "status_class"]
)
LATENCY = Histogram(
    "herald_http_request_duration_seconds",
    "HTTP request latency.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HEADER = b"x-request-id"


def _route_template(scope: Scope) -> str:
    # The router leaves the route it dispatched to in the scope: one match, not a scan.
    route: Any = scope.get("route")
    if route is not None:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "other"))
    app: Any = scope.get("app")
    for candidate in app.router.routes if app is not None else ():
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            return str(getattr(candidate, "path", "other"))
    return "unmatched"


class RequestContext:
    """Accept or generate `X-Request-ID`, bind it to logs, and measure the request.

    A pure ASGI middleware (no per-request task and streams as with `BaseHTTPMiddleware`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == _HEADER:
                incoming = value.decode("latin-1")
                break
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        # `request.state.request_id` for the problem+json bodies.
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        raw_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (name, value) for name, value in message.get("headers", ()) if name != _HEADER
                ]
                headers.append((_HEADER, raw_id))
                message = {**message, "headers": headers}
            await send(message)

        started = time.perf_counter()
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                await self.app(scope, receive, send_with_id)
        finally:
            route = _route_template(scope)
            method = scope["method"]
            LATENCY.labels(method, route).observe(
                time.perf_counter() - started, exemplar=tracing.exemplar()
            )
            REQUESTS.labels(method, route, f"{status // 100}xx").inc()
