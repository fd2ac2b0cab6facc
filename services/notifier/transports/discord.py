"""Discord webhooks: 204 (200 with `wait=true`), JSON errors, 429 with a JSON `retry_after`."""

from __future__ import annotations

from typing import Any

import httpx

from services.notifier.transports import unreachable
from shared.errors import PermanentError, TransientError
from shared.retry import wait_from_header


async def send(http: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> None:
    """Post one message to a webhook URL (a secret: never in an error); pings nobody."""
    body = {**payload, "allowed_mentions": {"parse": []}}
    try:
        response = await http.post(url, json=body)
    except httpx.HTTPError as exc:
        raise unreachable("Discord", exc) from None
    if response.is_success:
        return
    error = _json(response)
    detail = error.get("message") or response.reason_phrase
    code = f" {error['code']}" if "code" in error else ""
    text = f"Discord {response.status_code}{code}: {detail}"
    if response.status_code == 429:
        raise TransientError(text, retry_after=_retry_after(response, error))
    if response.status_code >= 500:
        raise TransientError(text)
    raise PermanentError(text)


def _retry_after(response: httpx.Response, error: dict[str, Any]) -> float | None:
    # The body's float is more precise than the header's whole seconds.
    value = error.get("retry_after")
    if isinstance(value, int | float):
        return max(float(value), 0.0)
    return wait_from_header(response.headers) or wait_from_header(
        response.headers, "x-ratelimit-reset-after"
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
