"""A project's notification settings as stored, as sent on the wire, and as shown."""

from __future__ import annotations

from typing import Any

# Each kind of alert a project may ask for (`notificationEvents`), and what sends it: shown
# next to its checkbox in the console and listed in docs/architecture.md.
EVENT_KINDS = {
    "job_success": "A run completed and every post was generated (also sends recoveries).",
    "job_partial": "A run completed, but some platforms' posts failed after their retries.",
    "job_failure": "A run failed or timed out, once the job has failed failureThreshold "
    "times in a row.",
    "job_recovered": "A run completed after the job's previous run failed or timed out.",
    "job_skipped": "A run was skipped: the previous one was still open, or too little activity.",
    "job_missed": "Scheduled runs passed while the scheduler was away, too long ago to catch up.",
    "schedule_moved": "New time-zone rules moved a job's next run (in-app alerts always).",
    "post_failed": "A post could not be published: the network's reason (in-app alerts always).",
}
DEFAULT_EVENTS = ["job_success", "job_failure", "job_partial"]
WEBHOOK_FIELDS = ("slackWebhookUrl", "discordWebhookUrl")
# Of `recipients`, the addresses that may be mailed: the account's own, and those that
# confirmed by the link sent to them. Derived by the api whenever either changes.
CONFIRMED = "confirmedRecipients"


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

    The API never returns a webhook URL in full: it shows whether one is set, and which
    recipients have not confirmed yet. On the wire (`keep_encrypted`), `recipients` are only
    the confirmed ones: nothing downstream can mail an address that did not agree.
    """
    settings = {**default_settings(), **(stored or {})}
    confirmed = settings.pop(CONFIRMED, None) or []
    if keep_encrypted:
        settings["recipients"] = [a for a in settings["recipients"] if a in confirmed]
    else:
        settings["pendingRecipients"] = [a for a in settings["recipients"] if a not in confirmed]
    for field in WEBHOOK_FIELDS:
        value = settings.pop(field, None)
        if keep_encrypted:
            settings[field] = value
        else:
            settings[f"{field}Set"] = bool(value)
    return settings
