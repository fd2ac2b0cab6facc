"""Which alert an execution's end deserves, by the project's preferences."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.events import (
    Digest,
    ExecutionFinished,
    ExecutionStatus,
    JobType,
    PostUnpublished,
    ScheduleMoved,
)

FAILURE_STATUSES = (ExecutionStatus.FAILED, ExecutionStatus.TIMEOUT)
SCHEDULE_MOVED = "schedule_moved"
# An ANALYTICS run's digest: the run's whole output, delivered whatever the alert list says.
DIGEST = "analytics_digest"
POST_FAILED = "post_failed"


def alert_kind(event: ExecutionFinished) -> str | None:
    """Return the notification event kind (`job_success` ...) or None when none applies."""
    status = event.status
    if status == ExecutionStatus.COMPLETED and event.digest is not None:
        return DIGEST
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
    if kind == DIGEST:
        # The owner made the job to receive it: the list says which runs' ends to hear of,
        # not whether to get what a job is for. Its channels (email on or off, Slack,
        # Discord) still apply.
        return True
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
    DIGEST: "{job}: activity digest",
    # In-app, raised by the api when the publisher reports a final failure; mailed here.
    POST_FAILED: "{job}: a post could not be published",
}


def describe(event: ExecutionFinished, kind: str) -> tuple[str, str]:
    """Return a title and a one-paragraph body for an in-app alert."""
    title = TITLES[kind].format(job=event.job_name)
    if kind == DIGEST and event.digest is not None:
        return title, f"Project {event.project_name}, {digest_summary(event.digest)}"
    parts = [f"Project {event.project_name}: status {event.status}."]
    if event.result and event.job_type == JobType.SYNC_GITHUB:
        parts.append(f"{event.result}.")
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


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def window_text(digest: Digest) -> str:
    end = _utc(digest.window_end)
    return f"{_utc(digest.window_start)} to {end}" if digest.window_start else f"until {end}"


def digest_summary(digest: Digest) -> str:
    """The digest in a paragraph: the in-app alert's body and every channel's lead."""
    activity = ", ".join(
        [
            _plural(digest.commits, "commit", "commits"),
            _plural(digest.pull_requests, "merged pull request", "merged pull requests"),
            _plural(digest.issues, "closed issue", "closed issues"),
        ]
    )
    parts = [f"{window_text(digest)}: {activity}"]
    if digest.contributors:
        parts[0] += f" by {_plural(digest.contributors, 'author', 'authors')}"
    parts[0] += "."
    if digest.top_authors:
        top = ", ".join(f"{author.name} ({author.items})" for author in digest.top_authors)
        parts.append(f"Most active: {top}.")
    if digest.releases:
        parts.append(f"Released: {', '.join(digest.releases)}.")
    runs = _plural(digest.runs, "job run", "job runs")
    if digest.success_rate is not None:
        runs += f", {digest.success_rate:g}% succeeded"
    extra = [
        _plural(count, one, many)
        for count, one, many in (
            (digest.failed, "failed", "failed"),
            (digest.skipped, "skipped", "skipped"),
            (digest.missed, "missed", "missed"),
        )
        if count
    ]
    if extra:
        runs += f" ({', '.join(extra)})"
    parts.append(f"Jobs: {runs}.")
    streaks = [job for job in digest.jobs if job.consecutive_failures]
    if streaks:
        worst = max(streaks, key=lambda job: job.consecutive_failures)
        parts.append(
            f"{worst.name} has failed {_plural(worst.consecutive_failures, 'time', 'times')} "
            "in a row."
        )
    return " ".join(parts)


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
