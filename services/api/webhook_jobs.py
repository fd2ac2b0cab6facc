"""A WEBHOOK job's receiver and signing secret: checked, encrypted, never shown again.

The URL is write-only like a project's Slack and Discord URLs (it may embed a token of its
own); the view shows only `webhookHost`. herald makes the signing secret (256 random bits)
and shows it in one answer: on creating the job and on renewing it.
"""

from __future__ import annotations

from services.api.problems import Problem, invalid
from shared.destinations import webhook_host, webhook_job_refusal
from shared.events import JobType
from shared.secrets import SecretKeyError, encrypt
from shared.settings import Settings
from shared.signatures import new_webhook_secret

FIELD = "webhookUrl"


def receiver_columns(url: str | None, job_type: str, settings: Settings) -> dict[str, str]:
    """The stored receiver of a job of `job_type`, or a 422 naming `webhookUrl` and the rule."""
    if job_type != JobType.WEBHOOK:
        if url is not None:
            raise invalid(FIELD, "only a WEBHOOK job delivers to a URL")
        return {}
    if not url:
        raise invalid(FIELD, "required for a WEBHOOK job")
    reason = webhook_job_refusal(url, settings)
    if reason is not None:
        raise invalid(FIELD, reason)
    try:
        encrypted = encrypt(url, settings.secret_key.get_secret_value())
    except SecretKeyError as exc:
        raise invalid(FIELD, exc.message) from None
    return {"webhook_url_encrypted": encrypted, "webhook_host": webhook_host(url)}


def new_secret(settings: Settings) -> tuple[str, str]:
    """A fresh signing secret and its encrypted form, or a 503 when herald has no key."""
    secret = new_webhook_secret()
    try:
        return secret, encrypt(secret, settings.secret_key.get_secret_value())
    except SecretKeyError as exc:
        raise Problem(503, exc.message) from None
