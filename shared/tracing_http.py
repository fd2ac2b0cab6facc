"""HTTP spans: the maintained instrumentations where herald's clients fit them, its own where not.

FastAPI (the api's requests) and httpx (GitHub, alert deliveries) use OpenTelemetry's
instrumentations, applied to the one app or client rather than patched into every instance
in the process. The generator's model calls go through aiohttp, whose instrumentation is not
part of herald's set: `aiohttp_trace_configs` makes their CLIENT spans through aiohttp's own
tracing hooks, named and attributed after the HTTP conventions (span `POST`,
`http.request.method`, `server.address`, `http.response.status_code`, `error.type`), and sends
`traceparent` with each call. Each function does nothing while tracing is off.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import aiohttp
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared import tracing

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI

# Probes and scrapes are not requests anyone follows: no spans for them.
EXCLUDED_URLS = "/livez,/readyz,/metrics"


def instrument_fastapi(app: FastAPI) -> None:
    if not tracing.enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls=EXCLUDED_URLS,
        server_request_hook=_redact_query,
        tracer_provider=tracing.provider(),
    )


def instrument_httpx(client: httpx.AsyncClient, *, secret_urls: bool = False) -> None:
    """Spans for a client's requests; `secret_urls`: its URLs are secrets (tenants' webhook
    URLs), so a span names only the origin."""
    if not tracing.enabled():
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(
        client,
        tracer_provider=tracing.provider(),
        request_hook=_origin_only if secret_urls else None,
    )


def _redact_query(span: Any, scope: dict[str, Any]) -> None:
    """Keep a query's names, not its values: a recipient's confirmation link carries its
    token there, and a trace backend is not where secrets go. Whichever of the HTTP
    conventions' attributes the instrumentation wrote (stable, older, or both) is rewritten."""
    query = scope.get("query_string") or b""
    if span is None or not span.is_recording() or not query:
        return
    names = [name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)]
    redacted = "&".join(f"{name}=REDACTED" for name in names)
    written = getattr(span, "attributes", None) or {}
    for key in ("url.query",):
        if key in written:
            span.set_attribute(key, redacted)
    for key in ("http.url", "http.target"):
        value = written.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, value.split("?", 1)[0] + "?" + redacted)


async def _origin_only(span: Any, request: Any) -> None:
    if span is None or not span.is_recording():
        return
    url = request.url
    origin_only = f"{url.scheme}://{url.netloc.decode('ascii')}/REDACTED"
    written = getattr(span, "attributes", None) or {}
    for key in ("url.full", "http.url"):
        if key in written:
            span.set_attribute(key, origin_only)


def aiohttp_trace_configs() -> list[aiohttp.TraceConfig]:
    """The trace configs to give an aiohttp session (none while tracing is off)."""
    if not tracing.enabled():
        return []
    config = aiohttp.TraceConfig()
    config.on_request_start.append(_started)
    config.on_request_end.append(_ended)
    config.on_request_exception.append(_failed)
    return [config]


async def _started(_session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
    url = params.url
    attributes: dict[str, Any] = {
        "http.request.method": params.method,
        "server.address": url.host or "",
        "url.scheme": url.scheme,
        # Path only: a query may carry a key, and the full URL is in the provider's settings.
        "url.path": url.path,
    }
    if url.port is not None:
        attributes["server.port"] = url.port
    span = tracing.tracer().start_span(params.method, kind=SpanKind.CLIENT, attributes=attributes)
    context.herald_span = span
    carrier: dict[str, str] = {}
    tracing.inject(carrier, span)
    params.headers.update(carrier)


async def _ended(_session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
    span = getattr(context, "herald_span", None)
    if span is None:
        return
    status = params.response.status
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_status(Status(StatusCode.ERROR))
        span.set_attribute("error.type", str(status))
    span.end()


async def _failed(_session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
    span = getattr(context, "herald_span", None)
    if span is not None:
        tracing.end(span, params.exception)
