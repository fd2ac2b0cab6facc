"""Which alert an execution's end deserves, by the project's preferences."""

from __future__ import annotations

from shared.events import ExecutionFinished, ExecutionStatus

FAILURE_STATUSES = (ExecutionStatus.FAILED, ExecutionStatus.TIMEOUT)


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
    return title, " ".join(parts)
