"""What the scheduler records besides firing: SKIPPED/MISSED outcomes, buffered releases."""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import metrics, outbox, tracing
from shared.db.schema import CronJob, Execution, JobStatistics, Project
from shared.dispatch import Run, ScheduledJob, job_due_event
from shared.events import Event, ExecutionFinished, ExecutionStatus
from shared.finished import finished_event as build_finished_event
from shared.ids import derived_event_id
from shared.run_log import RunLine, fired_run, log_runs

log = structlog.get_logger(__name__)


async def _statistics(session: AsyncSession, job: ScheduledJob) -> JobStatistics:
    stats = await session.get(JobStatistics, job.id, with_for_update=True)
    if stats is None:  # the api creates it with the job; a job written elsewhere may lack it
        # Live: the scheduler claims only jobs that are not deleted.
        stats = JobStatistics.empty(job.id, job.user_id, live=True)
        session.add(stats)
    return stats


async def finished_event(
    session: AsyncSession,
    job: ScheduledJob,
    project: Project,
    execution: Run,
    *,
    public_url: str,
) -> ExecutionFinished:
    """Count a SKIPPED or MISSED execution and return its `execution.finished` event."""
    stats = await _statistics(session, job)
    status = ExecutionStatus(execution.status)
    metrics.execution_finished(status, execution.trigger)
    if status == ExecutionStatus.SKIPPED:
        stats.total_skipped += 1
    else:
        stats.total_missed += 1
    return build_finished_event(
        execution,
        job=job,
        project=project,
        consecutive_failures=stats.consecutive_failures,
        previous_status=ExecutionStatus(stats.last_status) if stats.last_status else None,
        occurred_at=execution.completed_at,
        public_url=public_url,
    )


async def release_buffered(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, batch: int
) -> int:
    """Dispatch BUFFER_ONE executions whose job has no other unfinished run; return how many."""
    released = 0
    events: list[Event] = []
    runs: list[RunLine] = []
    traceparents: dict[str, str | None] = {}
    async with sessions() as session, session.begin():
        waiting = (
            await session.execute(
                select(CronJob, Project)
                .join(Project, Project.id == CronJob.project_id)
                .where(CronJob.buffered_execution_id.is_not(None))
                .limit(batch)
                .with_for_update(of=CronJob, skip_locked=True)
            )
        ).all()
        for job, project in waiting:
            execution = await session.get(Execution, job.buffered_execution_id)
            if execution is None or execution.status != ExecutionStatus.PENDING:
                job.buffered_execution_id = None  # cancelled meanwhile: nothing waits
                continue
            others = await session.scalar(
                select(func.count())
                .select_from(Execution)
                .where(
                    Execution.job_id == job.id,
                    Execution.id != execution.id,
                    Execution.status.in_(("PENDING", "RUNNING")),
                )
            )
            if others:
                continue
            # Derived from the execution: however often this runs, one `job.due` per run.
            event = job_due_event(job, project, execution, now=now).model_copy(
                update={"event_id": derived_event_id(execution.id, "job.due")}
            )
            execution.deadline = event.deadline
            if tracing.enabled():
                traceparents[execution.id] = tracing.resume_run(execution.id, execution.trace_id)
            events.append(event)
            job.buffered_execution_id = None
            released += 1
            runs.append(fired_run("buffered run fired", job, execution))
        await outbox.enqueue(session, *events, traceparents=traceparents)
    log_runs(log, "buffered runs fired", runs)
    if released:
        metrics.SCHEDULER_FIRES.labels(outcome="released").inc(released)
    return released
