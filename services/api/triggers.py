"""Manual and webhook runs: an execution and its `job.due`, written together."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import outbox, tracing
from shared.db.schema import CronJob, Execution, Project
from shared.dispatch import job_due_event, window_start_for
from shared.events import ExecutionStatus, GitHubRelease, Trigger
from shared.ids import new_id
from shared.run_log import fired_run, log_runs

log = structlog.get_logger(__name__)


def request_fingerprint(body: dict[str, Any]) -> str:
    """A digest of a request body, to tell a replay from a different request."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


async def find_by_idempotency_key(
    session: AsyncSession, *, user_id: str, key: str
) -> Execution | None:
    """The caller's execution created with this `Idempotency-Key`, if any."""
    return await session.scalar(
        select(Execution)
        .where(Execution.user_id == user_id, Execution.idempotency_key == key)
        .limit(1)
    )


async def open_execution_of(session: AsyncSession, *, job_id: str) -> str | None:
    """The id of a PENDING or RUNNING execution of the job, if one exists."""
    return await session.scalar(
        select(Execution.id)
        .where(
            Execution.job_id == job_id,
            Execution.status.in_([ExecutionStatus.PENDING, ExecutionStatus.RUNNING]),
        )
        .limit(1)
    )


async def trigger_manually(
    session: AsyncSession,
    *,
    job: CronJob,
    project: Project,
    user_id: str,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> Execution:
    """Create a MANUAL execution whose window ends now, and queue its `job.due`."""
    now = datetime.now(UTC)
    return await _fire(
        session,
        job=job,
        project=project,
        now=now,
        trigger=Trigger.MANUAL,
        window_start=await window_start_for(session, job, now),
        triggered_by=user_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )


async def trigger_by_webhook(
    session: AsyncSession,
    *,
    job: CronJob,
    project: Project,
    delivery_id: str,
    event: str,
    event_start: datetime | None,
    now: datetime,
    release: GitHubRelease | None = None,
) -> Execution:
    """Create a WEBHOOK execution whose window ends now, and queue its `job.due`.

    The window opens where the event's own activity began (`event_start`) when the payload
    says, else where a manual run's would. A release run carries the release: the scanner
    replaces that window with the span since the previous release.
    """
    opens = event_start if event_start is not None and event_start < now else None
    metadata: dict[str, Any] = {"githubDelivery": delivery_id, "githubEvent": event}
    if release is not None:
        metadata["githubRelease"] = release.tag
    return await _fire(
        session,
        job=job,
        project=project,
        now=now,
        trigger=Trigger.WEBHOOK,
        window_start=opens or await window_start_for(session, job, now),
        triggered_by=f"github:{event}",
        metadata=metadata,
        release=release,
    )


async def _fire(
    session: AsyncSession,
    *,
    job: CronJob,
    project: Project,
    now: datetime,
    trigger: Trigger,
    window_start: datetime | None,
    triggered_by: str,
    metadata: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    release: GitHubRelease | None = None,
) -> Execution:
    execution = Execution(
        id=new_id("exec"),
        job_id=job.id,
        project_id=project.id,
        user_id=job.user_id,
        scheduled_for=now,
        trigger=trigger,
        triggered_by=triggered_by,
        status=ExecutionStatus.PENDING,
        attempt=1,
        window_start=window_start,
        window_end=now,
        items_processed=0,
        items_success=0,
        items_failed=0,
        metadata_=metadata or {},
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        created_at=now,
        updated_at=now,
    )
    traceparents = None
    if tracing.current_ids() is not None:
        # The request's trace: the run's path through every service continues it.
        execution.trace_id = tracing.sampled_trace_id()
    elif tracing.enabled():
        # Fired with no request around it (the standalone mode's demo run): a trace of its own.
        execution.trace_id, parent = tracing.begin_run(execution.id, job.id, trigger)
        traceparents = {execution.id: parent}
    event = job_due_event(job, project, execution, now=now)
    if release is not None:
        event = event.model_copy(update={"github_release": release})
    execution.deadline = event.deadline
    session.add(execution)
    await outbox.enqueue(session, event, traceparents=traceparents)
    return execution


def log_fired(execution: Execution, job: CronJob) -> None:
    """Log a manual or webhook run once its transaction committed (a replay fired nothing)."""
    log_runs(log, "runs fired", [fired_run("run fired", job, execution)])
