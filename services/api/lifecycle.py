"""Executions' state machine: events applied exactly once, and how an execution ends.

Consumed events are applied in batches by `services.api.batch` (the transitions themselves
are `services.api.transitions`), each in one transaction with its inbox row, so a
redelivery is a no-op. A terminal execution never moves again: late or out-of-order events
for it are logged and dropped. Finishing an execution updates the job's counters and writes
the authoritative `execution.finished` to the outbox, in that same transaction; `finish`
here does so for the API's cancel and the timeout sweeper.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import statistics
from services.api.batch import apply_events
from services.api.dependencies import Ended, start_dependents
from services.api.transitions import EXCERPT_CHARS
from shared import metrics, outbox, tracing
from shared.db.schema import Content, CronJob, Execution, ExecutionStep, Project
from shared.events import Event, ExecutionCancelled, ExecutionStatus, PostExcerpt
from shared.finished import finished_event
from shared.ids import derived_event_id
from shared.run_log import RunLine, ended_line, log_runs

log = structlog.get_logger(__name__)


async def apply_event(
    sessions: async_sessionmaker[AsyncSession], event: Event, *, public_url: str
) -> None:
    """Apply one consumed event in a transaction of its own; idempotent on its id."""
    await apply_events(sessions, [event], public_url=public_url)


async def finish(
    session: AsyncSession,
    execution: Execution,
    status: ExecutionStatus,
    *,
    now: datetime,
    public_url: str,
    error: str | None = None,
    stack: str | None = None,
) -> RunLine:
    """End an execution: terminal status, counters, and `execution.finished` in the outbox.

    Return the line an operator reads about it, for the caller to log once committed.
    """
    execution.status = status
    execution.completed_at = now
    metrics.execution_finished(
        status, execution.trigger, execution.started_at, now, trace_id=execution.trace_id
    )
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
    # A run ended by a cancel request or the timeout sweeper ends in its own trace, not the
    # request's (nor in none).
    resumed = tracing.resume_run(execution.id, execution.trace_id)
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
        traceparents={execution.id: resumed} if resumed else None,
    )
    _record_step(
        session,
        execution,
        step="execution",
        kind=status.lower(),
        attempt=execution.attempt,
        detail=error,
    )
    return ended_line(
        status,
        execution_id=execution.id,
        job_id=execution.job_id,
        job_name=job.name,
        trigger=execution.trigger,
        scheduled_for=execution.scheduled_for,
        duration_ms=execution.duration,
        items_processed=execution.items_processed,
        items_success=execution.items_success,
        items_failed=execution.items_failed,
        reason=error,
        trace_id=execution.trace_id,
    )


async def cancel(
    session: AsyncSession, execution: Execution, *, now: datetime, public_url: str, by: str
) -> RunLine:
    """Cancel an open execution: finish it CANCELLED and tell every worker to stop.

    Returns the run's log line, for the caller to log once its transaction committed.
    """
    line = await finish(
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
    return line


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
    ended: list[RunLine] = []
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
            line = await finish(
                session,
                execution,
                ExecutionStatus.TIMEOUT,
                now=now,
                public_url=public_url,
                error=f"timed out: deadline {limit} passed",
            )
            ended.append(line)
        # A timeout is an upstream's failure like any other: its dependents start here, in
        # the transaction that records it, as they do where the event batch ends a run.
        await start_dependents(
            session, [Ended.of_execution(execution) for execution in rows], public_url=public_url
        )
    log_runs(log, "runs ended", ended)
    return len(ended)


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
