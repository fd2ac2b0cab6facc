"""Deliver one alert on every channel the project wants, each channel on its own.

Retries: a transport raises PermanentError (recorded as FAILED at once) or TransientError
(tried again in this process, up to `notify_attempts` tries, waiting the server's
`retry-after` or a short jittered backoff, but never longer than `notify_max_wait`).
When the tries or the patience run out the delivery is recorded FAILED with the last error;
the `execution.finished` message is still acked. Redelivering the whole message instead would
resend to the channels that already succeeded: Resend dedupes by `Idempotency-Key`, but SMTP,
Slack and Discord cannot, and an alert worth sending is worth little an hour late.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httpx
import structlog

from services.notifier import render
from services.notifier.transports import discord, resend, slack, smtp
from shared import metrics, secrets, tracing
from shared.destinations import webhook_refusal
from shared.errors import PermanentError, TransientError
from shared.events import (
    ExecutionFinished,
    PostUnpublished,
    RecipientConfirmationRequested,
    ScheduleMoved,
)
from shared.retry import JITTER, Drawn, compute_backoff
from shared.settings import Settings

log = structlog.get_logger(__name__)

EMAIL = "email"
SLACK = "slack"
DISCORD = "discord"
# The kind of the email asking an address to confirm it wants a user's alerts.
QUESTION = "recipient_confirmation"
# Resend allows a few requests a second per team: a few emails at once at most.
EMAIL_CONCURRENCY = 2
MAX_BACKOFF = 8.0

Outcome = Literal["SENT", "FAILED", "SKIPPED"]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Result:
    """The record of one delivery: what `notification.delivery` carries."""

    channel: str
    recipient: str
    outcome: Outcome
    attempts: int
    error: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One message to send: `send` makes one try and raises a permanent or transient error."""

    channel: str
    recipient: str  # as recorded: a webhook's URL is masked
    send: Callable[[], Awaitable[None]]


def retry_wait(attempt: int, retry_after: float | None, jitter: float) -> float:
    """Seconds before try `attempt + 1`: the server's word, else 1, 2, 4 .. 8 s, each drawn
    from its upper half (`jitter` 0 the shortest, 1 the longest)."""
    if retry_after is not None:
        return max(retry_after, 0.0)
    # 0.75 × 2^(n-1) ± a third: the upper half of 1, 2, 4 .. 8.
    return compute_backoff(
        attempt,
        base=0.75,
        jitter=1 / 3,
        max_backoff=MAX_BACKOFF * 0.75,
        floor=0.0,
        rng=Drawn(jitter),
    )


async def attempt(
    delivery: Delivery,
    *,
    attempts: int,
    max_wait: float,
    sleep: Sleep = asyncio.sleep,
    jitter: Callable[[], float] = JITTER.random,
) -> Result:
    """Try a delivery until it succeeds, fails for good, or runs out of tries or patience."""
    error = "not attempted"
    for n in range(1, attempts + 1):
        started = time.perf_counter()
        try:
            await delivery.send()
        except PermanentError as exc:
            return Result(delivery.channel, delivery.recipient, "FAILED", n, exc.message)
        except TransientError as exc:
            error = exc.message
            wait = retry_wait(n, exc.retry_after, jitter())
            log.warning("delivery try failed", channel=delivery.channel, attempt=n, error=error)
            if n == attempts:
                return Result(delivery.channel, delivery.recipient, "FAILED", n, error)
            if wait > max_wait:
                error = f"{error} (asked to wait {wait:.0f} s, more than the notifier waits)"
                return Result(delivery.channel, delivery.recipient, "FAILED", n, error)
            await sleep(wait)
        except Exception as exc:
            # A bug in a transport must not stop the other channels nor loop the message.
            # Only the type is logged: a message could hold a webhook URL.
            log.error("delivery crashed", channel=delivery.channel, error_type=type(exc).__name__)
            error = f"unexpected error: {type(exc).__name__}"
            return Result(delivery.channel, delivery.recipient, "FAILED", n, error)
        else:
            return Result(delivery.channel, delivery.recipient, "SENT", n)
        finally:
            metrics.NOTIFICATION_ATTEMPT_SECONDS.labels(channel=delivery.channel).observe(
                time.perf_counter() - started, exemplar=tracing.exemplar()
            )
    return Result(delivery.channel, delivery.recipient, "FAILED", attempts, error)


def delivery_key(event_id: str, channel: str, recipient: str) -> str:
    """A key stable per execution's alert, channel and recipient (Resend's Idempotency-Key)."""
    digest = hashlib.sha256(f"{event_id}\n{channel}\n{recipient.lower()}".encode()).hexdigest()
    return f"herald-{digest[:48]}"


def mask_webhook(url: str) -> str:
    """Show where a webhook points without its secret token: `https://hooks.slack.com/…AbCd`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…{parts.path.rstrip('/')[-4:]}"


def email_recipients(event: ExecutionFinished | ScheduleMoved | PostUnpublished) -> list[str]:
    """The event's recipients and the settings' ones, each once (case-insensitively)."""
    seen: set[str] = set()
    result = []
    for address in [*event.recipients, *event.notification_settings.recipients]:
        if address.lower() not in seen:
            seen.add(address.lower())
            result.append(address)
    return result


class Channels:
    """Email (Resend or SMTP), Slack and Discord, built once from the settings."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        *,
        webhooks: httpx.AsyncClient | None = None,
        smtp_server: smtp.SmtpServer | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._http = http
        # Tenant-steered webhook requests: the outbound guard's client in the service.
        self._webhooks = webhooks or http
        self._sleep = sleep
        self._email_slots = asyncio.Semaphore(EMAIL_CONCURRENCY)
        self._smtp = smtp_server
        if self._smtp is None and settings.smtp_host:
            self._smtp = smtp.SmtpServer(
                host=settings.smtp_host,
                port=settings.smtp_port,
                tls=settings.smtp_tls,
                username=settings.smtp_username,
                password=settings.smtp_password.get_secret_value(),
                timeout=settings.smtp_timeout,
            )

    @property
    def email_transport(self) -> str | None:
        """`resend`, `smtp`, or None when this server sends no email."""
        if self._settings.resend_api_key.get_secret_value():
            return "resend"
        if self._smtp is not None:
            return "smtp"
        return None

    async def deliver(self, event: ExecutionFinished, kind: str) -> list[Result]:
        """Send the alert on every channel at once; return one record per delivery."""
        deliveries, decided = self.plan(event, kind)
        results = await asyncio.gather(
            *(
                attempt(
                    delivery,
                    attempts=self._settings.notify_attempts,
                    max_wait=self._settings.notify_max_wait,
                    sleep=self._sleep,
                )
                for delivery in deliveries
            )
        )
        return [*decided, *results]

    def plan(self, event: ExecutionFinished, kind: str) -> tuple[list[Delivery], list[Result]]:
        """What to send, and the records already decided without sending (SKIPPED)."""
        deliveries: list[Delivery] = []
        decided: list[Result] = []
        settings = event.notification_settings
        recipients = email_recipients(event) if settings.email_notifications else []
        if recipients and self.email_transport is None:
            decided += [
                Result(EMAIL, address, "SKIPPED", 0, "this server has no email transport")
                for address in recipients
            ]
        elif recipients:
            deliveries += self._emails(event, kind, recipients)
        if settings.slack_webhook_url:
            deliveries.append(
                self._webhook(SLACK, settings.slack_webhook_url, event, kind, self._slack)
            )
        if settings.discord_webhook_url:
            deliveries.append(
                self._webhook(DISCORD, settings.discord_webhook_url, event, kind, self._discord)
            )
        return deliveries, decided

    def _emails(self, event: ExecutionFinished, kind: str, recipients: list[str]) -> list[Delivery]:
        try:
            email: render.Email | PermanentError = render.render_email(event, kind)
        except PermanentError as exc:
            email = exc

        def sender(address: str) -> Callable[[], Awaitable[None]]:
            async def send() -> None:
                if isinstance(email, PermanentError):
                    raise email
                async with self._email_slots:
                    await self._send_email(event.event_id, kind, address, email)

            return send

        return [Delivery(EMAIL, address, sender(address)) for address in recipients]

    async def tell(self, event: ScheduleMoved | PostUnpublished, kind: str) -> list[Result]:
        """Email the owner's recipients that a job's next run moved, or that a post could not
        be published; one record per address.

        Email only: either is worth a line in the inbox, not a chat ping.
        """
        settings = event.notification_settings
        recipients = email_recipients(event) if settings.email_notifications else []
        if recipients and self.email_transport is None:
            return [
                Result(EMAIL, address, "SKIPPED", 0, "this server has no email transport")
                for address in recipients
            ]

        def sender(address: str) -> Callable[[], Awaitable[None]]:
            async def send() -> None:
                email = (
                    render.render_move(event)
                    if isinstance(event, ScheduleMoved)
                    else render.render_unpublished(event)
                )
                async with self._email_slots:
                    await self._send_email(event.event_id, kind, address, email)

            return send

        return list(
            await asyncio.gather(
                *(
                    attempt(
                        Delivery(EMAIL, address, sender(address)),
                        attempts=self._settings.notify_attempts,
                        max_wait=self._settings.notify_max_wait,
                        sleep=self._sleep,
                    )
                    for address in recipients
                )
            )
        )

    async def ask(self, event: RecipientConfirmationRequested) -> Result:
        """Mail an address the question whether it wants a user's alerts; return the record."""
        if self.email_transport is None:
            return Result(EMAIL, event.email, "SKIPPED", 0, "this server has no email transport")

        async def send() -> None:
            link = secrets.decrypt(event.link, self._settings.secret_key.get_secret_value())
            email = render.render_question(event, link)
            async with self._email_slots:
                await self._send_email(event.event_id, QUESTION, event.email, email)

        return await attempt(
            Delivery(EMAIL, event.email, send),
            attempts=self._settings.notify_attempts,
            max_wait=self._settings.notify_max_wait,
            sleep=self._sleep,
        )

    async def _send_email(
        self, event_id: str, kind: str, address: str, email: render.Email
    ) -> None:
        key = delivery_key(event_id, EMAIL, address)
        if self._settings.resend_api_key.get_secret_value():
            await resend.send(
                self._http,
                base_url=self._settings.resend_api_url,
                api_key=self._settings.resend_api_key.get_secret_value(),
                sender=self._settings.email_from,
                recipient=address,
                email=email,
                idempotency_key=key,
                tags={"kind": kind},
            )
            return
        assert self._smtp is not None
        domain = self._settings.email_from.rpartition("@")[2].strip(">") or "herald"
        await smtp.send(
            self._smtp,
            sender=self._settings.email_from,
            recipient=address,
            email=email,
            message_id=f"<{key}@{domain}>",
        )

    def _webhook(
        self,
        channel: str,
        encrypted: str,
        event: ExecutionFinished,
        kind: str,
        post: Callable[[str, ExecutionFinished, str], Awaitable[None]],
    ) -> Delivery:
        try:
            url = secrets.decrypt(encrypted, self._settings.secret_key.get_secret_value())
        except PermanentError as exc:
            error = exc

            async def fail() -> None:
                raise error

            return Delivery(channel, f"{channel} webhook", fail)

        async def send() -> None:
            # Checked again here: a URL stored before the rule tightened gets no further.
            refusal = webhook_refusal(channel, url, self._settings)
            if refusal is not None:
                raise PermanentError(f"the project's {channel} webhook URL {refusal}")
            await post(url, event, kind)

        return Delivery(channel, mask_webhook(url), send)

    async def _slack(self, url: str, event: ExecutionFinished, kind: str) -> None:
        await slack.send(self._webhooks, url, render.slack_message(event, kind))

    async def _discord(self, url: str, event: ExecutionFinished, kind: str) -> None:
        await discord.send(self._webhooks, url, render.discord_message(event, kind))
