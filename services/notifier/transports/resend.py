"""Email through Resend's HTTP API (`POST /emails`), idempotent per key for 24 hours."""

from __future__ import annotations

from typing import Any

import httpx

from services.notifier.render import Email
from services.notifier.transports import unreachable
from shared.errors import PermanentError, TransientError
from shared.retry import wait_from_header

QUOTA_ERRORS = ("daily_quota_exceeded", "monthly_quota_exceeded")
IDEMPOTENCY_KEY_CHARS = 256


async def send(
    http: httpx.AsyncClient,
    *,
    base_url: str,
    api_key: str,
    sender: str,
    recipient: str,
    email: Email,
    idempotency_key: str,
    tags: dict[str, str] | None = None,
) -> str:
    """Send one email; return Resend's id. The same key and body never send twice."""
    payload: dict[str, Any] = {
        "from": sender,
        "to": [recipient],
        "subject": email.subject,
        "html": email.html,
        "text": email.text,
    }
    if tags:
        payload["tags"] = [{"name": name, "value": value} for name, value in tags.items()]
    try:
        response = await http.post(
            f"{base_url.rstrip('/')}/emails",
            json=payload,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Idempotency-Key": idempotency_key[:IDEMPOTENCY_KEY_CHARS],
            },
        )
    except httpx.HTTPError as exc:
        raise unreachable("Resend", exc) from None
    if response.status_code == 200:
        return str(_json(response).get("id", ""))
    raise error_for(response)


def error_for(response: httpx.Response) -> PermanentError | TransientError:
    """Map a Resend error response to a permanent or transient error."""
    body = _json(response)
    name = str(body.get("name") or "unknown_error")
    text = f"Resend {response.status_code} {name}: {body.get('message') or response.reason_phrase}"
    status = response.status_code
    if status == 429:
        if name in QUOTA_ERRORS:
            # Waiting seconds does not lift a daily or monthly quota.
            return PermanentError(text)
        return TransientError(text, retry_after=rate_limit_wait(response))
    if status == 409 and name == "concurrent_idempotent_requests":
        return TransientError(text, retry_after=1.0)
    if status >= 500:
        return TransientError(text, retry_after=wait_from_header(response.headers))
    return PermanentError(text)


def rate_limit_wait(response: httpx.Response) -> float | None:
    """`retry-after`, else `ratelimit-reset` when nothing remains (IETF draft headers)."""
    wait = wait_from_header(response.headers)
    if wait is None and response.headers.get("ratelimit-remaining") == "0":
        wait = wait_from_header(response.headers, "ratelimit-reset")
    return wait


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
