"""The console's way into herald: the app's own REST API, called in process with the user's token.

Going through the API (not its route functions) keeps one source of truth for validation
messages, tenancy (another user's ids answer 404) and the JSON shapes the pages render.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import structlog
from starlette.types import ASGIApp

log = structlog.get_logger(__name__)

# A name that resolves nowhere: the calls never leave the process (ASGITransport).
CONSOLE_HOST = "console.internal"


class ApiError(Exception):
    """The API refused a call; carries its problem+json status, detail and field errors."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]]) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors

    def field_errors(self) -> dict[str, str]:
        """Map each field the API named to its message; a field named twice gets both, joined.

        An item of a list (`conditions.includePaths.0`) is the list's field: one input holds
        the whole list.
        """
        fields: dict[str, list[str]] = {}
        for error in self.errors:
            name = _LIST_ITEM.sub("", error.get("field", "body"))
            fields.setdefault(name, []).append(error.get("message", "invalid"))
        return {field: "; ".join(messages) for field, messages in fields.items()}


_LIST_ITEM = re.compile(r"(?:\.\d+)+$")


class ConsoleRequestsFilter(logging.Filter):
    """Drop httpx's `HTTP Request` lines for the console's own in-process calls.

    A page makes about ten of them; at INFO they would drown the lines an operator reads.
    `ApiClient` logs each at DEBUG instead. httpx has one logger for every client, so this
    filter (rather than a level) tells them apart: the services' real outbound calls (GitHub,
    AI providers, Resend) keep whatever level the process gives httpx.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(
            isinstance(arg, httpx.URL) and arg.host == CONSOLE_HOST
            for arg in (record.args if isinstance(record.args, tuple) else ())
        )


_HTTPX_LOG = logging.getLogger("httpx")
_CONSOLE_REQUESTS = ConsoleRequestsFilter()


class ApiClient:
    """One signed-in user's calls to the API app, without leaving the process."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if _CONSOLE_REQUESTS not in _HTTPX_LOG.filters:
            _HTTPX_LOG.addFilter(_CONSOLE_REQUESTS)
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=f"http://{CONSOLE_HOST}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.aclose()

    async def get(self, path: str, **params: str | int | bool) -> dict[str, Any]:
        return await self._call("GET", path, params=params)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._call("POST", path, json=body or {})

    async def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("PATCH", path, json=body)

    async def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("PUT", path, json=body)

    async def delete(self, path: str) -> dict[str, Any]:
        return await self._call("DELETE", path)

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._client.request(method, path, **kwargs)
        log.debug("console api call", method=method, path=path, status=response.status_code)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400:
            raise ApiError(
                response.status_code,
                str(body.get("detail") or response.reason_phrase),
                list(body.get("errors") or []),
            )
        return dict(body)
