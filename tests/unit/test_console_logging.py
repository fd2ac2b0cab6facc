"""The console's in-process API calls log at DEBUG; other clients' requests keep httpx's line."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from services.api.console.client import ApiClient


async def answer(_: Request) -> JSONResponse:
    return JSONResponse({"success": True, "data": []})


APP = Starlette(routes=[Route("/api/notifications", answer)])


async def test_a_console_call_logs_at_debug_and_httpx_says_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # httpx at INFO, as a process that did not turn it off would have it.
    caplog.set_level(logging.INFO, logger="httpx")
    with capture_logs() as logs:
        async with ApiClient(APP, "token") as api:
            await api.get("/api/notifications")
    assert not [record for record in caplog.records if record.levelno >= logging.INFO]
    [call] = [entry for entry in logs if entry["event"] == "console api call"]
    assert call["log_level"] == "debug"
    assert (call["method"], call["path"], call["status"]) == ("GET", "/api/notifications", 200)


async def test_an_outbound_request_still_logs_its_httpx_line_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    async with ApiClient(APP, "token") as api:  # its filter is in place
        await api.get("/api/notifications")
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json={}))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://127.0.0.1:9/repos/o/r/commits")
    [record] = [record for record in caplog.records if record.name == "httpx"]
    assert record.levelno == logging.INFO
    assert "127.0.0.1:9/repos/o/r/commits" in record.getMessage()
