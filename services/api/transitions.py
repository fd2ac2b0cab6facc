"""The execution state machine, pure: events change a loaded execution and say what to write.

Events of one execution share the api's queue and may be applied in any order. What they
report (a step's start, the scan's figures) is recorded whatever the state; only the status
never moves once terminal. `services.api.batch` loads the rows, calls `apply` per event and
writes what it collected; no I/O happens here, the time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from services.api import statistics
from services.api.post_review import PostState, initial_state
from shared.events import (
    ActivityScanned,
    ContentGenerated,
    DeliveryResult,
    Event,
    ExecutionStatus,
    JobType,
    PostExcerpt,
    StepFailed,
    StepStarted,
    StepWaiting,
)
from shared.ids import new_id

log = structlog.get_logger(__name__)

EXCERPT_CHARS = 280


@dataclass
class Run:
    """An execution as loaded for a batch (its row by column name) with its job and project."""

    row: dict[str, Any]
    job_name: str
    timeout_seconds: int
    project_name: str
    notification_settings: dict[str, Any]
    # Per platform, "auto" where the project publishes without review.
    publish_modes: dict[str, Any] = field(default_factory=dict)
    job_type: str = JobType.GENERATE_CONTENT.value
    # A PUBLISH_CONTENT run: the posts its scan scheduled (services/api/publish_runs.py),
    # set by the batch before the state machine runs.
    posts_scheduled: int | None = None


@dataclass(frozen=True)
class Finish:
    """An execution that ended: its row as it was at that moment, and the posts to excerpt."""

    row: dict[str, Any]
    run: Run
    status: ExecutionStatus
    at: datetime
    posts: list[PostExcerpt]


@dataclass(frozen=True)
class Move:
    """A project's repository that GitHub says was renamed or transferred."""

    project_id: str
    project_name: str
    user_id: str
    job_id: str
    execution_id: str
    old: tuple[str, str]
    new: tuple[str, str]


@dataclass(frozen=True)
class GitHubUse:
    """The credential a scan read GitHub with, and its budget as GitHub last reported it."""

    execution_id: str
    credential: str
    rate_limit: dict[str, Any] | None


@dataclass
class Changes:
    """Rows to insert for a batch, and the executions it finished, in order."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    contents: list[dict[str, Any]] = field(default_factory=list)
    finishes: list[Finish] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    # Per project, the latest scan's report of its GitHub credential.
    github_uses: dict[str, GitHubUse] = field(default_factory=dict)
    # Items a SYNC_GITHUB run's scan found, as `execution_activity` rows.
    activity: list[dict[str, Any]] = field(default_factory=list)
    # ANALYTICS runs their scan completed, by execution: the batch builds each one's digest
    # (it needs the project's job statistics) before their `execution.finished` is written.
    digests: dict[str, ActivityScanned] = field(default_factory=dict)


def apply(run: Run, event: Event, changes: Changes, *, now: datetime) -> None:
    """Apply one pipeline event to a loaded execution."""
    row = run.row
    if isinstance(event, StepStarted):
        _step(changes, row, step=event.step, kind="started", attempt=event.attempt, now=now)
        if row["started_at"] is None:
            row["started_at"] = event.occurred_at
            if row["completed_at"] is not None:
                row["duration"] = milliseconds(row["completed_at"] - event.occurred_at)
    if isinstance(event, ActivityScanned):
        _record_activity(changes, row, event, now=now)
        if event.job_type == JobType.SYNC_GITHUB:
            _record_items(changes, row, event)
        _record_move(changes, run, event, now=now)
        if event.github_credential is not None:
            limit = event.github_rate_limit
            changes.github_uses[row["project_id"]] = GitHubUse(
                execution_id=row["id"],
                credential=event.github_credential,
                rate_limit=limit.model_dump(mode="json", by_alias=True) if limit else None,
            )
    if ExecutionStatus(row["status"]).is_terminal:
        log.info(
            "late event for a finished execution ignored",
            routing_key=event.routing_key,
            status=row["status"],
            execution_id=row["id"],
        )
        return
    row["attempt"] = max(row["attempt"], event.attempt)
    if isinstance(event, StepStarted):
        if row["status"] == ExecutionStatus.PENDING:
            row["status"] = ExecutionStatus.RUNNING.value
    elif isinstance(event, StepFailed):
        _step(
            changes,
            row,
            step=event.step,
            kind="failed",
            attempt=event.attempt,
            detail=event.error,
            now=now,
        )
        if event.final:
            _finish(
                changes,
                run,
                ExecutionStatus.FAILED,
                now=now,
                error=event.error,
                stack=event.stack,
            )
        else:
            row["attempt"] = event.attempt + 1
            if event.next_attempt_at is not None:
                # Waiting to retry does not count: the next attempt gets a fresh deadline.
                row["deadline"] = event.next_attempt_at + timedelta(seconds=run.timeout_seconds)
    elif isinstance(event, StepWaiting):
        resumes = event.until.astimezone(UTC).strftime("%H:%M:%S UTC")
        _step(
            changes,
            row,
            step=event.step,
            kind="waiting",
            attempt=event.attempt,
            detail=f"{event.reason}; goes on about {resumes}",
            now=now,
        )
        # Waiting for a budget does not count: the attempt's time starts again after it.
        deadline = event.until + timedelta(seconds=run.timeout_seconds)
        if row["deadline"] is None or deadline > row["deadline"]:
            row["deadline"] = deadline
    elif isinstance(event, ActivityScanned):
        if event.skip_reason is not None:
            row["skip_reason"] = event.skip_reason
            _step(
                changes,
                row,
                step="conditions",
                kind="unmet",
                attempt=event.attempt,
                detail=event.skip_reason,
                now=now,
            )
            _finish(changes, run, ExecutionStatus.SKIPPED, now=now)
        elif event.job_type == JobType.PUBLISH_CONTENT:
            # Its posts were scheduled in this transaction: they are the run's items.
            scheduled = run.posts_scheduled or 0
            row["items_processed"] = row["items_success"] = scheduled
            _step(
                changes,
                row,
                step="publish",
                kind="scheduled",
                attempt=event.attempt,
                detail=f"{scheduled} approved post{'' if scheduled == 1 else 's'} to publish now",
                now=now,
            )
            _finish(changes, run, ExecutionStatus.COMPLETED, now=now)
        elif event.summary.is_empty or not event.job_type.generates:
            # Nothing to write about, or a job that writes nothing: the scan was the run.
            if event.job_type == JobType.ANALYTICS:
                changes.digests[row["id"]] = event
            _finish(changes, run, ExecutionStatus.COMPLETED, now=now)
    elif isinstance(event, ContentGenerated):
        posts = _store_content(changes, run, event, now=now)
        delivery = event.delivery
        if delivery is not None:
            _record_delivery(changes, row, delivery, attempt=event.attempt, now=now)
            if delivery.outcome == "FAILED":
                error = f"webhook delivery to {delivery.host} failed: {delivery.error}"
                _finish(changes, run, ExecutionStatus.FAILED, now=now, error=error, posts=posts)
                return
        _finish(changes, run, ExecutionStatus.COMPLETED, now=now, posts=posts)


def milliseconds(elapsed: timedelta) -> int:
    return int(elapsed.total_seconds() * 1000)


def _finish(
    changes: Changes,
    run: Run,
    status: ExecutionStatus,
    *,
    now: datetime,
    error: str | None = None,
    stack: str | None = None,
    posts: list[PostExcerpt] | None = None,
) -> None:
    row = run.row
    row["status"] = status.value
    row["completed_at"] = now
    if row["started_at"] is not None:
        row["duration"] = milliseconds(now - row["started_at"])
    if error is not None:
        row["error_message"] = error
        row["error_stack"] = stack
    # A snapshot: a late event later in the batch may still fill in `started_at`, as it
    # would have in a transaction of its own after this one.
    changes.finishes.append(Finish(dict(row), run, status, now, posts or []))
    _step(
        changes,
        row,
        step="execution",
        kind=status.lower(),
        attempt=row["attempt"],
        detail=error,
        now=now,
    )


def _store_content(
    changes: Changes, run: Run, event: ContentGenerated, *, now: datetime
) -> list[PostExcerpt]:
    row = run.row
    for result in event.results:
        generated = result.status == "GENERATED"
        state = initial_state(result.platform, run.publish_modes) if generated else None
        changes.contents.append(
            {
                "id": new_id("cnt"),
                "execution_id": row["id"],
                "platform": result.platform,
                "title": result.title,
                "body": result.body,
                "characters": result.characters,
                "model": result.model,
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "generation_ms": result.generation_ms,
                "status": result.status,
                "error": result.error,
                "created_at": now,
                "state": state,
                "user_id": row["user_id"],
                "project_id": row["project_id"],
                # An auto-published post falls due at once.
                "publish_at": now if state == PostState.SCHEDULED else None,
                "state_changed_at": now,
            }
        )
    succeeded = sum(result.status == "GENERATED" for result in event.results)
    row["items_processed"] = len(event.results)
    row["items_success"] = succeeded
    row["items_failed"] = len(event.results) - succeeded
    row["metadata"] = {
        **row["metadata"],
        "aiTokens": {
            "prompt": sum(result.prompt_tokens for result in event.results),
            "completion": sum(result.completion_tokens for result in event.results),
        },
        "generationMs": event.generation_ms,
    }
    _step(
        changes,
        row,
        step="generate",
        kind="completed",
        attempt=event.attempt,
        detail=f"{succeeded} of {len(event.results)} posts generated",
        now=now,
    )
    # Posts are stored only by the event that completes the execution, so its own results
    # are every post the execution has.
    return [
        PostExcerpt(
            platform=result.platform,
            title=result.title,
            excerpt=(result.body or "")[:EXCERPT_CHARS],
        )
        for result in event.results
        if result.status == "GENERATED"
    ]


def _record_delivery(
    changes: Changes,
    row: dict[str, Any],
    delivery: DeliveryResult,
    *,
    attempt: int,
    now: datetime,
) -> None:
    """A WEBHOOK job's delivery: on the timeline, and as `metadata.delivery` in the view."""
    answered = (
        f"answered {delivery.status_code}"
        if delivery.status_code is not None
        else "no answer from the receiver"
    )
    tries = f"{delivery.attempts} attempt{'s' if delivery.attempts != 1 else ''}"
    detail = f"{delivery.host} {answered} after {tries}; delivery {delivery.delivery_id}"
    if delivery.error is not None:
        detail = f"{detail}: {delivery.error}"
    _step(
        changes,
        row,
        step="deliver",
        kind="completed" if delivery.outcome == "DELIVERED" else "failed",
        attempt=attempt,
        detail=detail,
        now=now,
    )
    row["metadata"] = {
        **row["metadata"],
        "delivery": delivery.model_dump(mode="json", by_alias=True),
    }


def _record_activity(
    changes: Changes, row: dict[str, Any], event: ActivityScanned, *, now: datetime
) -> None:
    summary = event.summary
    if summary.release is not None:
        # A release run covers the span since the previous release, which only the scanner
        # could find: that is the run's window from now on.
        row["window_start"], row["window_end"] = event.window_start, event.window_end
    _step(
        changes,
        row,
        step="scan",
        kind="completed",
        attempt=event.attempt,
        detail=(
            f"{summary.commits} commits, {summary.pull_requests} pull requests, "
            f"{summary.issues} issues, {summary.tags} tags"
        ),
        now=now,
    )
    row["metadata"] = {
        **row["metadata"],
        "githubApiCalls": int(row["metadata"].get("githubApiCalls", 0)) + event.github_api_calls,
        "activity": {
            "commits": summary.commits,
            "pullRequests": summary.pull_requests,
            "issues": summary.issues,
            "tags": summary.tags,
        },
    }
    if summary.release is not None and summary.release.previous_tag is not None:
        row["metadata"]["githubPreviousRelease"] = summary.release.previous_tag


def _record_items(changes: Changes, row: dict[str, Any], event: ActivityScanned) -> None:
    """Keep the items a sync's scan found (its newest, as the scan kept them) on the run."""
    changes.activity.extend(
        {
            "execution_id": row["id"],
            "position": position,
            "kind": item.kind,
            "sha": item.sha,
            "number": item.number,
            "title": item.title,
            # A local repository's author is a free-form git name.
            "author": item.author[:200] if item.author else None,
            "url": item.url,
            "at": item.at,
        }
        for position, item in enumerate(event.summary.items)
    )


def _record_move(changes: Changes, run: Run, event: ActivityScanned, *, now: datetime) -> None:
    """A scan that found the repository moved: a step on the timeline, a rename to apply."""
    old, new = event.repository, event.repository_moved_to
    if new is None or not (old.owner and old.name and new.owner and new.name):
        return
    row = run.row
    _step(
        changes,
        row,
        step="scan",
        kind="moved",
        attempt=event.attempt,
        detail=(
            f"GitHub says {old.owner}/{old.name} moved to {new.owner}/{new.name}; "
            "the project now names the new repository"
        ),
        now=now,
    )
    changes.moves.append(
        Move(
            project_id=row["project_id"],
            project_name=run.project_name,
            user_id=row["user_id"],
            job_id=row["job_id"],
            execution_id=row["id"],
            old=(old.owner, old.name),
            new=(new.owner, new.name),
        )
    )


def _step(
    changes: Changes,
    row: dict[str, Any],
    *,
    step: str,
    kind: str,
    attempt: int,
    now: datetime,
    detail: str | None = None,
) -> None:
    changes.steps.append(
        {
            "execution_id": row["id"],
            "step": step,
            "kind": kind,
            "attempt": attempt,
            "detail": detail,
            "at": now,
        }
    )


def count_finished(stats: dict[str, Any], finish: Finish) -> ExecutionStatus | None:
    """Count a finished execution in its job's counters row; return the previous last status."""
    return statistics.count_finished(stats, finish.status, finish.at, finish.row["duration"])
