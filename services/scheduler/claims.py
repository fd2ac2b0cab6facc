"""Claim due jobs and fire them: execution row, `job.due` in the outbox, next run advanced.

All three happen in one transaction per batch. Rows are claimed with `FOR UPDATE SKIP
LOCKED`, so replicas share the due jobs without waiting on each other; the unique key on
(job, scheduled instant) holds even if two replicas ever raced on one slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import outbox
from shared.db.schema import CronJob, Execution, Project
from shared.db.upsert import insert_ignore
from shared.dispatch import job_due_event, next_run_after, window_start_for
from shared.events import ExecutionStatus, Trigger
from shared.ids import new_id
from shared.scheduling import ScheduleError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class BatchResult:
    claimed: int
    fired: int


def _live_jobs() -> list[object]:
    return [CronJob.is_enabled.is_(True), CronJob.deleted_at.is_(None)]


async def fire_due(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, batch: int
) -> BatchResult:
    """Fire up to `batch` jobs due at `now`."""
    fired = 0
    async with sessions() as session, session.begin():
        rows = (
            await session.execute(
                select(CronJob, Project)
                .join(Project, Project.id == CronJob.project_id)
                .where(*_live_jobs(), CronJob.next_run_at <= now)  # type: ignore[arg-type]
                .order_by(CronJob.next_run_at)
                .limit(batch)
                .with_for_update(of=CronJob, skip_locked=True)
            )
        ).all()
        for job, project in rows:
            if await _fire(session, job, project, now=now):
                fired += 1
    return BatchResult(claimed=len(rows), fired=fired)


async def _fire(session: AsyncSession, job: CronJob, project: Project, *, now: datetime) -> bool:
    scheduled_for = job.next_run_at
    assert scheduled_for is not None
    try:
        next_run = next_run_after(job, max(scheduled_for, now))
    except ScheduleError as exc:
        # An invalid stored schedule disables the job with the reason, never a crash loop.
        log.error("job disabled: invalid schedule", job_id=job.id, reason=exc.message)
        job.is_enabled = False
        job.next_run_at = None
        job.disabled_reason = f"invalid schedule: {exc.message}"
        return False
    execution_id = new_id("exec")
    window_start = await window_start_for(session, job, scheduled_for)
    inserted = await insert_ignore(
        session,
        Execution.__table__,  # type: ignore[arg-type]
        {
            "id": execution_id,
            "job_id": job.id,
            "project_id": project.id,
            "user_id": job.user_id,
            "scheduled_for": scheduled_for,
            "trigger": Trigger.SCHEDULE.value,
            "status": ExecutionStatus.PENDING.value,
            "attempt": 1,
            "window_start": window_start,
            "window_end": scheduled_for,
            "items_processed": 0,
            "items_success": 0,
            "items_failed": 0,
            "metadata": {},
            "created_at": now,
            "updated_at": now,
        },
    )
    job.last_run_at = scheduled_for
    job.next_run_at = next_run
    if not inserted:
        log.info("slot already fired elsewhere", job_id=job.id, scheduled_for=scheduled_for)
        return False
    execution = await session.get(Execution, execution_id)
    assert execution is not None
    event = job_due_event(job, project, execution, now=now)
    execution.deadline = event.deadline
    await outbox.enqueue(session, event)
    return True


async def earliest_next_run(sessions: async_sessionmaker[AsyncSession]) -> datetime | None:
    async with sessions() as session:
        value = await session.scalar(
            select(func.min(CronJob.next_run_at)).where(*_live_jobs())  # type: ignore[arg-type]
        )
    return value
