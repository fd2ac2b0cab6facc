"""Which alert an execution's end deserves, by the project's preferences."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.events import ExecutionFinished, ExecutionStatus, PostUnpublished, ScheduleMoved

FAILURE_STATUSES = (ExecutionStatus.FAILED, ExecutionStatus.TIMEOUT)
SCHEDULE_MOVED = "schedule_moved"
POST_FAILED = "post_failed"


def alert_kind(event: ExecutionFinished) -> str | None:
    """Return the notification event kind (`job_success` ...) or None when none applies."""
    status = event.status
    if status == ExecutionStatus.COMPLETED:
        if event.items_failed > 0:
            return "job_partial"
        if event.previous_status in FAILURE_STATUSES:
            return "job_recovered"
        return "job_success"
    if status in FAILURE_STATUSES:
        return "job_failure"
    if status == ExecutionStatus.SKIPPED:
        return "job_skipped"
    if status == ExecutionStatus.MISSED:
        return "job_missed"
    return None


def wanted(event: ExecutionFinished, kind: str) -> bool:
    """Whether the project asked for alerts of this kind (recovery also satisfies success)."""
    settings = event.notification_settings
    events = set(settings.notification_events)
    if kind == "job_failure":
        return kind in events and event.consecutive_failures >= settings.failure_threshold
    if kind == "job_recovered":
        return "job_recovered" in events or "job_success" in events
    return kind in events


TITLES = {
    "job_success": "{job} completed",
    "job_partial": "{job} completed with failures",
    "job_failure": "{job} failed",
    "job_recovered": "{job} recovered",
    "job_skipped": "{job} skipped",
    "job_missed": "{job} missed runs",
    SCHEDULE_MOVED: "{job}: next run moved",
    # In-app, raised by the api when the publisher reports a final failure; mailed here.
    POST_FAILED: "{job}: a post could not be published",
}


def describe(event: ExecutionFinished, kind: str) -> tuple[str, str]:
    """Return a title and a one-paragraph body for an in-app alert."""
    title = TITLES[kind].format(job=event.job_name)
    parts = [f"Project {event.project_name}: status {event.status}."]
    if event.items_processed:
        parts.append(
            f"{event.items_success} of {event.items_processed} posts generated"
            + (f", {event.items_failed} failed." if event.items_failed else ".")
        )
    if event.duration is not None:
        parts.append(f"Took {event.duration / 1000:.1f} s.")
    if event.error_message:
        parts.append(f"Error: {event.error_message}")
    if event.missed_count:
        parts.append(f"{event.missed_count} runs were missed.")
    if event.skip_reason:
        parts.append(f"Its conditions were not met: {event.skip_reason}.")
    return title, " ".join(parts)


def unpublished_wanted(event: PostUnpublished) -> bool:
    """Whether the project asked for email of posts that could not be published."""
    return POST_FAILED in event.notification_settings.notification_events


def moved_wanted(event: ScheduleMoved) -> bool:
    """Whether the project asked for email and chat alerts of moved schedules (in-app: always)."""
    return SCHEDULE_MOVED in event.notification_settings.notification_events


def describe_move(event: ScheduleMoved) -> tuple[str, str]:
    """Return a title and a one-paragraph body for a next run moved by new time-zone rules."""
    title = TITLES[SCHEDULE_MOVED].format(job=event.job_name)
    versions = event.rules_version
    if event.previous_rules_version:
        versions = f"{event.previous_rules_version} to {event.rules_version}"
    body = (
        f"Project {event.project_name}: the time-zone rules of {event.timezone} changed "
        f"(time-zone database {versions}). The next run moves from "
        f"{_utc(event.previous_run_at)} to {_utc(event.next_run_at)}; the schedule itself "
        "is unchanged."
    )
    return title, body


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
