"""A WEBHOOK job's delivery: the run's activity and posts, one signed JSON document POSTed.

The receiver can check it as it checks GitHub's deliveries: `X-Herald-Signature-256` is
`sha256=` and the hex HMAC-SHA256 of the raw body with the job's secret. `X-Herald-Delivery`
is derived from the execution id, so every attempt and every redelivery of one run carries
the same id and a receiver drops what it has seen. The time of sending is `sentAt` in the
body, covered by the signature (a header would not be), so a receiver can also refuse a
document replayed long after it was signed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from shared.destinations import webhook_host, webhook_job_refusal
from shared.errors import PermanentError
from shared.events import ActivityScanned, PostResult, WebhookTarget, dump
from shared.ids import derived_event_id
from shared.metrics import WEBHOOK_DELIVERY_SECONDS
from shared.outbound import ForbiddenDestinationError
from shared.retry import wait_from_header
from shared.secrets import SecretKeyError, decrypt
from shared.settings import Settings
from shared.signatures import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature_of

log = structlog.get_logger(__name__)

EVENT_NAME = "activity"
USER_AGENT = "herald-webhook/1"


def delivery_id_of(execution_id: str) -> str:
    """The delivery's id: the same for every attempt and redelivery of one execution."""
    return derived_event_id(execution_id, "webhook.delivery")


def document(
    event: ActivityScanned,
    posts: list[PostResult],
    *,
    delivery_id: str,
    sent_at: datetime,
) -> dict[str, Any]:
    """What the receiver gets: the run, its window, the activity with its items, the posts."""
    target = event.webhook
    repository = event.repository_moved_to or event.repository
    activity = dump(event.summary)
    activity.pop("postsDone", None)
    return {
        "event": EVENT_NAME,
        "deliveryId": delivery_id,
        "sentAt": sent_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "executionId": event.execution_id,
        "job": {
            "id": event.job_id,
            "name": target.job_name if target else "",
            "type": str(event.job_type),
        },
        "project": {"id": event.project_id, "name": target.project_name if target else ""},
        "repository": {key: value for key, value in dump(repository).items() if value},
        "window": {
            "start": _instant(event.window_start),
            "end": _instant(event.window_end),
        },
        "activity": activity,
        "posts": [
            {
                "platform": post.platform,
                "status": post.status,
                "title": post.title,
                "body": post.body,
                "characters": post.characters,
                "error": post.error,
            }
            for post in posts
        ],
    }


def _instant(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def encode(document: dict[str, Any]) -> bytes:
    """The body exactly as signed and sent: compact JSON, UTF-8."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def headers_for(body: bytes, *, secret: str, delivery_id: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: EVENT_NAME,
        DELIVERY_HEADER: delivery_id,
        SIGNATURE_HEADER: signature_of(secret, body),
    }


@dataclass(frozen=True)
class Answer:
    """One attempt's outcome: delivered, worth another attempt, or refused for good."""

    delivered: bool
    retriable: bool
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None


def judge(status_code: int, headers: httpx.Headers | dict[str, str]) -> Answer:
    """What a receiver's status means: 2xx delivered; 429 and 5xx worth retrying (after the
    receiver's Retry-After when it gives one); anything else refused for good."""
    if 200 <= status_code < 300:
        return Answer(delivered=True, retriable=False, status_code=status_code)
    if status_code == 429 or status_code >= 500:
        return Answer(
            delivered=False,
            retriable=True,
            status_code=status_code,
            error=f"the receiver answered {status_code}",
            retry_after=wait_from_header(headers),
        )
    if 300 <= status_code < 400:
        error = f"the receiver answered {status_code}: herald does not follow redirects"
    else:
        error = f"the receiver answered {status_code}"
    return Answer(delivered=False, retriable=False, status_code=status_code, error=error)


@dataclass(frozen=True)
class Destination:
    """A WEBHOOK job's URL and secret in clear, for the moment of sending."""

    url: str
    secret: str


def open_target(target: WebhookTarget, secret_key: str) -> Destination:
    """Decrypt the job's URL and secret, or raise PermanentError (a retry cannot fix it)."""
    try:
        return Destination(decrypt(target.url, secret_key), decrypt(target.secret, secret_key))
    except SecretKeyError as exc:
        raise PermanentError(f"cannot deliver: {exc.message}") from None


async def attempt(
    client: httpx.AsyncClient, destination: Destination, body: bytes, *, delivery_id: str
) -> Answer:
    """POST the body once. Never raises for the receiver's or the network's failures."""
    headers = headers_for(body, secret=destination.secret, delivery_id=delivery_id)
    started = time.perf_counter()
    try:
        # Streamed and never read: the status and headers are the answer, whatever the body.
        async with client.stream(
            "POST", destination.url, content=body, headers=headers
        ) as response:
            status_code, answered = response.status_code, response.headers
    except ForbiddenDestinationError as exc:
        return Answer(delivered=False, retriable=False, error=exc.message)
    except httpx.TimeoutException:
        return Answer(delivered=False, retriable=True, error="the receiver did not answer in time")
    except httpx.HTTPError as exc:
        # The exception's text may quote the URL, which may embed a secret: only its kind.
        return Answer(
            delivered=False,
            retriable=True,
            error=f"could not reach the receiver ({type(exc).__name__})",
        )
    finally:
        WEBHOOK_DELIVERY_SECONDS.observe(time.perf_counter() - started)
    return judge(status_code, answered)


@dataclass(frozen=True)
class Deliverer:
    """Sends WEBHOOK deliveries through the guarded client, checking each URL first."""

    client: httpx.AsyncClient
    settings: Settings

    async def deliver(
        self, event: ActivityScanned, posts: list[PostResult], *, delivery_id: str
    ) -> tuple[Answer, str]:
        """One attempt for the run, and the destination's host as it may be shown."""
        if event.webhook is None:
            return Answer(False, False, error="the job has no webhook URL"), "none"
        try:
            destination = open_target(event.webhook, self.settings.secret_key.get_secret_value())
        except PermanentError as exc:
            return Answer(False, False, error=exc.message), "unknown"
        # A URL stored before a rule tightened, or an event written by hand, goes no further.
        reason = webhook_job_refusal(destination.url, self.settings)
        host = _host_of(destination.url)
        if reason is not None:
            log.warning("webhook delivery refused", host=host, reason=reason)
            return Answer(False, False, error=f"the webhook URL {reason}"), host
        body = encode(document(event, posts, delivery_id=delivery_id, sent_at=datetime.now(UTC)))
        answer = await attempt(self.client, destination, body, delivery_id=delivery_id)
        log.info(
            "webhook delivery attempted",
            host=host,
            delivery_id=delivery_id,
            status_code=answer.status_code,
            delivered=answer.delivered,
            error=answer.error,
        )
        return answer, host


def _host_of(url: str) -> str:
    try:
        return webhook_host(url)
    except ForbiddenDestinationError:
        return "unknown"
