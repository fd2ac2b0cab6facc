"""Slack incoming webhooks: 200 `ok`, plain-text error codes, 429 with Retry-After."""

from __future__ import annotations

from typing import Any

import httpx

from services.notifier.transports import unreachable
from shared.errors import PermanentError, TransientError
from shared.retry import wait_from_header


async def send(http: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> None:
    """Post one message to a webhook URL (a secret: never in an error)."""
    try:
        response = await http.post(url, json=payload)
    except httpx.HTTPError as exc:
        raise unreachable("Slack", exc) from None
    if response.is_success:
        return
    # Slack answers errors as short plain-text codes (`no_service`, `invalid_blocks`).
    text = f"Slack {response.status_code} {response.text.strip()[:200] or response.reason_phrase}"
    if response.status_code == 429:
        raise TransientError(text, retry_after=wait_from_header(response.headers))
    if response.status_code >= 500:
        raise TransientError(text)
    raise PermanentError(text)
