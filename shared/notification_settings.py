"""A project's notification settings as stored, as sent on the wire, and as shown."""

from __future__ import annotations

from typing import Any

DEFAULT_EVENTS = ["job_success", "job_failure", "job_partial"]
WEBHOOK_FIELDS = ("slackWebhookUrl", "discordWebhookUrl")


def default_settings() -> dict[str, Any]:
    return {
        "emailNotifications": True,
        "notificationEvents": list(DEFAULT_EVENTS),
        "recipients": [],
        "failureThreshold": 1,
    }


def public_settings(
    stored: dict[str, Any] | None, *, keep_encrypted: bool = False
) -> dict[str, Any]:
    """Return the settings with defaults filled in; webhook URLs only when asked (encrypted).

    The API never returns a webhook URL in full: it shows whether one is set.
    """
    settings = {**default_settings(), **(stored or {})}
    for field in WEBHOOK_FIELDS:
        value = settings.pop(field, None)
        if keep_encrypted:
            settings[field] = value
        else:
            settings[f"{field}Set"] = bool(value)
    return settings
