"""Apply pipeline events to executions, as a state machine, exactly once each.

Each event is applied in one transaction with its inbox row, so a redelivery is a no-op. A
terminal execution never moves again: late or out-of-order events for it are logged and
dropped. Finishing an execution updates the job's counters and writes the authoritative
`execution.finished` to the outbox, in that same transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import query_count, statistics
from shared import metrics, outbox
from shared.db.schema import (
    Content,
    CronJob,
    Delivery,
    Execution,
    ExecutionStep,
    Notification,
    Project,
)
from shared.db.upsert import insert_ignore
from shared.events import (
    ActivityScanned,
    ContentGenerated,
    Event,
    ExecutionCancelled,
    ExecutionStatus,
    NotificationCreated,
    NotificationDelivery,
    PostExcerpt,
    StepFailed,
    StepStarted,
)
from shared.finished import finished_event
from shared.ids import derived_event_id, new_id
from shared.inbox import claim_event

log = structlog.get_logger(__name__)

CONSUMER = "api"
KEEP_NOTIFICATIONS = 50
EXCERPT_CHARS = 280


async def apply_event(
    sessions: async_sessionmaker[AsyncSession], event: Event, *, public_url: str
) -> None:
    """Apply one consumed event; idempotent on its id."""
    with query_count.counting() as counted:
        async with sessions() as session, session.begin():
            if not await claim_event(session, consumer=CONSUMER, event_id=event.event_id):
                return
            if isinstance(event, NotificationCreated):
                await _store_notification(session, event)
            elif isinstance(event, NotificationDelivery):
                _store_delivery(session, event)
            else:
                execution = await _apply_to_execution(session, event, public_url=public_url)
                if execution is not None:
                    # The statements run on the execution's behalf, this one's update included.
                    execution.metadata_ = {
                        **execution.metadata_,
                        "dbQueries": int(execution.metadata_.get("dbQueries", 0))
                        + counted.statements
                        + 1,
                    }


async def _apply_to_execution(
    session: AsyncSession, event: Event, *, public_url: str
) -> Execution | None:
    execution = await session.get(Execution, event.execution_id, with_for_update=True)
    if execution is None:
        log.warning("event for an unknown execution ignored", routing_key=event.routing_key)
        return None
    await _apply(session, execution, event, public_url=public_url)
    return execution


async def _apply(
    session: AsyncSession, execution: Execution, event: Event, *, public_url: str
) -> None:
    # Events of one execution share the api's queue and may be applied in any order. What
    # they report (a step's start, the scan's figures) is recorded whatever the state; only
    # the status never moves once terminal.
    if isinstance(event, StepStarted):
        _record_step(session, execution, step=event.step, kind="started", attempt=event.attempt)
        if execution.started_at is None:
            execution.started_at = event.occurred_at
            if execution.completed_at is not None:
                execution.duration = _milliseconds(execution.completed_at - event.occurred_at)
    if isinstance(event, ActivityScanned):
        _record_activity(session, execution, event)
    if ExecutionStatus(execution.status).is_terminal:
        log.info(
            "late event for a finished execution ignored",
            routing_key=event.routing_key,
            status=execution.status,
        )
        return
    execution.attempt = max(execution.attempt, event.attempt)
    now = datetime.now(UTC)
    if isinstance(event, StepStarted):
        if execution.status == ExecutionStatus.PENDING:
            execution.status = ExecutionStatus.RUNNING
    elif isinstance(event, StepFailed):
        _record_step(
            session,
            execution,
            step=event.step,
            kind="failed",
            attempt=event.attempt,
            detail=event.error,
        )
        if event.final:
            await finish(
                session,
                execution,
                ExecutionStatus.FAILED,
                now=now,
                public_url=public_url,
                error=event.error,
                stack=event.stack,
            )
        else:
            execution.attempt = event.attempt + 1
            if event.next_attempt_at is not None:
                # Waiting to retry does not count: the next attempt gets a fresh deadline.
                job = await session.get(CronJob, execution.job_id)
                timeout = job.timeout_seconds if job is not None else 900
                execution.deadline = event.next_attempt_at + timedelta(seconds=timeout)
    elif isinstance(event, ActivityScanned):
        if event.summary.is_empty:
            await finish(
                session, execution, ExecutionStatus.COMPLETED, now=now, public_url=public_url
            )
    elif isinstance(event, ContentGenerated):
        await _store_content(session, execution, event)
        await finish(session, execution, ExecutionStatus.COMPLETED, now=now, public_url=public_url)


async def _store_content(
    session: AsyncSession, execution: Execution, event: ContentGenerated
) -> None:
    for result in event.results:
        await insert_ignore(
            session,
            Content.__table__,  # type: ignore[arg-type]
            {
                "id": new_id("cnt"),
                "execution_id": execution.id,
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
                "created_at": datetime.now(UTC),
            },
        )
    succeeded = sum(result.status == "GENERATED" for result in event.results)
    execution.items_processed = len(event.results)
    execution.items_success = succeeded
    execution.items_failed = len(event.results) - succeeded
    execution.metadata_ = {
        **execution.metadata_,
        "aiTokens": {
            "prompt": sum(result.prompt_tokens for result in event.results),
            "completion": sum(result.completion_tokens for result in event.results),
        },
        "generationMs": event.generation_ms,
    }
    _record_step(
        session,
        execution,
        step="generate",
        kind="completed",
        attempt=event.attempt,
        detail=f"{succeeded} of {len(event.results)} posts generated",
    )


async def finish(
    session: AsyncSession,
    execution: Execution,
    status: ExecutionStatus,
    *,
    now: datetime,
    public_url: str,
    error: str | None = None,
    stack: str | None = None,
) -> None:
    """End an execution: terminal status, counters, and `execution.finished` in the outbox."""
    execution.status = status
    execution.completed_at = now
    metrics.execution_finished(status, execution.trigger, execution.started_at, now)
    if execution.started_at is not None:
        execution.duration = _milliseconds(now - execution.started_at)
    if error is not None:
        execution.error_message = error
        execution.error_stack = stack
    counters = await statistics.record_finished(session, execution)
    job = await session.get(CronJob, execution.job_id)
    project = await session.get(Project, execution.project_id)
    assert job is not None and project is not None
    if status == ExecutionStatus.COMPLETED and (
        project.last_synced_at is None or project.last_synced_at < execution.window_end
    ):
        project.last_synced_at = execution.window_end
    posts = (
        await session.scalars(
            select(Content).where(
                Content.execution_id == execution.id, Content.status == "GENERATED"
            )
        )
    ).all()
    await outbox.enqueue(
        session,
        finished_event(
            execution,
            job=job,
            project=project,
            consecutive_failures=counters.consecutive_failures,
            previous_status=counters.previous_status,
            occurred_at=now,
            public_url=public_url,
            posts=[
                PostExcerpt(
                    platform=post.platform,
                    title=post.title,
                    excerpt=(post.body or "")[:EXCERPT_CHARS],
                )
                for post in posts
            ],
        ),
    )
    _record_step(
        session,
        execution,
        step="execution",
        kind=status.lower(),
        attempt=execution.attempt,
        detail=error,
    )


async def cancel(
    session: AsyncSession, execution: Execution, *, now: datetime, public_url: str, by: str
) -> None:
    """Cancel an open execution: finish it CANCELLED and tell every worker to stop."""
    await finish(
        session,
        execution,
        ExecutionStatus.CANCELLED,
        now=now,
        public_url=public_url,
        error=f"cancelled by {by}",
    )
    await outbox.enqueue(
        session,
        ExecutionCancelled(
            event_id=derived_event_id(execution.id, "execution.cancelled"),
            occurred_at=now,
            execution_id=execution.id,
            job_id=execution.job_id,
            project_id=execution.project_id,
            attempt=execution.attempt,
        ),
    )


async def sweep_timeouts(
    sessions: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    grace: timedelta,
    public_url: str,
    batch: int = 100,
) -> int:
    """Finish open executions past their deadline (plus a grace) as TIMEOUT; return how many.

    Rows are claimed with `SKIP LOCKED`, so several api replicas share the sweep, and a row
    an event is being applied to is left for the next pass.
    """
    async with sessions() as session, session.begin():
        rows = (
            await session.scalars(
                select(Execution)
                .where(
                    Execution.status.in_([ExecutionStatus.PENDING, ExecutionStatus.RUNNING]),
                    Execution.deadline < now - grace,
                )
                .order_by(Execution.deadline)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for execution in rows:
            limit = (execution.deadline or now).isoformat()
            await finish(
                session,
                execution,
                ExecutionStatus.TIMEOUT,
                now=now,
                public_url=public_url,
                error=f"timed out: deadline {limit} passed",
            )
        return len(rows)


def _milliseconds(elapsed: timedelta) -> int:
    return int(elapsed.total_seconds() * 1000)


def _record_step(
    session: AsyncSession,
    execution: Execution,
    *,
    step: str,
    kind: str,
    attempt: int,
    detail: str | None = None,
) -> None:
    session.add(
        ExecutionStep(
            execution_id=execution.id,
            step=step,
            kind=kind,
            attempt=attempt,
            detail=detail,
            at=datetime.now(UTC),
        )
    )


def _record_activity(session: AsyncSession, execution: Execution, event: ActivityScanned) -> None:
    _record_step(
        session,
        execution,
        step="scan",
        kind="completed",
        attempt=event.attempt,
        detail=_activity_detail(event),
    )
    execution.metadata_ = {
        **execution.metadata_,
        "githubApiCalls": int(execution.metadata_.get("githubApiCalls", 0))
        + event.github_api_calls,
        "activity": {
            "commits": event.summary.commits,
            "pullRequests": event.summary.pull_requests,
            "issues": event.summary.issues,
            "tags": event.summary.tags,
        },
    }


def _activity_detail(event: ActivityScanned) -> str:
    summary = event.summary
    return (
        f"{summary.commits} commits, {summary.pull_requests} pull requests, "
        f"{summary.issues} issues, {summary.tags} tags"
    )


async def _store_notification(session: AsyncSession, event: NotificationCreated) -> None:
    session.add(
        Notification(
            id=new_id("ntf"),
            user_id=event.user_id,
            execution_id=event.execution_id,
            kind=event.kind,
            title=event.title,
            body=event.body,
            link=event.link,
            created_at=event.occurred_at,
        )
    )
    await session.flush()
    # Only the newest 50 per user are kept.
    stale = (
        await session.scalars(
            select(Notification.id)
            .where(Notification.user_id == event.user_id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .offset(KEEP_NOTIFICATIONS)
        )
    ).all()
    if stale:
        await session.execute(delete(Notification).where(Notification.id.in_(stale)))


def _store_delivery(session: AsyncSession, event: NotificationDelivery) -> None:
    session.add(
        Delivery(
            id=new_id("dlv"),
            user_id=event.user_id,
            execution_id=event.execution_id,
            kind=event.kind,
            channel=event.channel,
            recipient=event.recipient,
            outcome=event.outcome,
            attempts=event.attempts,
            error=event.error,
            created_at=event.occurred_at,
        )
    )
