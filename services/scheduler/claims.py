"""Claim due jobs and fire them: execution rows, events in the outbox, next runs advanced.

All of a batch happens in one transaction. Rows are claimed with `FOR UPDATE SKIP LOCKED`,
so replicas share the due jobs without waiting on each other; the unique key on (job,
scheduled instant) holds even if two replicas ever raced on one slot. Per job:

1. Recover the slot from the stored next run (which may carry the slot's jitter); a slot
   whose jitter has not elapsed is only deferred.
2. The catch-up policy decides the due slots: run the one on time, or the latest inside the
   catch-up window (CATCHUP), and record older ones as one MISSED execution.
3. The overlap policy decides a run: fire it, skip it (SKIPPED), or buffer it (BUFFER_ONE).
4. The next run advances past both the slot and now, with its own jitter.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler import records, slots
from services.scheduler.policies import OverlapAction, overlap_action, plan_catch_up
from shared import metrics, outbox
from shared.db.schema import CronJob, Execution, Project
from shared.dispatch import job_due_event, next_run_after, previous_slot
from shared.events import Event, ExecutionStatus, Trigger
from shared.ids import new_id
from shared.scheduling import ScheduleError

log = structlog.get_logger(__name__)

OPEN = (ExecutionStatus.PENDING.value, ExecutionStatus.RUNNING.value)


@dataclass(frozen=True)
class BatchResult:
    claimed: int
    fired: int
    outcomes: dict[str, int] = field(default_factory=dict)


def live_jobs() -> list[Any]:
    return [CronJob.is_enabled.is_(True), CronJob.deleted_at.is_(None)]


@dataclass
class _Batch:
    """What one claim pass writes, gathered so each kind is written in one statement."""

    now: datetime
    rows: list[dict[str, Any]] = field(default_factory=list)
    dispatch: dict[str, tuple[CronJob, Project]] = field(default_factory=dict)
    terminal: dict[str, tuple[CronJob, Project]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(
        self,
        job: CronJob,
        project: Project,
        *,
        slot: datetime,
        trigger: Trigger,
        status: ExecutionStatus,
        window_start: datetime | None,
        **extra: Any,
    ) -> str:
        execution_id = new_id("exec")
        terminal = status in (ExecutionStatus.SKIPPED, ExecutionStatus.MISSED)
        self.rows.append(
            {
                "id": execution_id,
                "job_id": job.id,
                "project_id": project.id,
                "user_id": job.user_id,
                "scheduled_for": slot,
                "trigger": trigger.value,
                "triggered_by": None,
                "status": status.value,
                "attempt": 1,
                "window_start": window_start,
                "window_end": slot,
                "deadline": None if terminal else self.now + timedelta(seconds=job.timeout_seconds),
                "completed_at": self.now if terminal else None,
                "items_processed": 0,
                "items_success": 0,
                "items_failed": 0,
                "metadata": {},
                "missed_count": None,
                "first_missed_at": None,
                "last_missed_at": None,
                "error_message": None,
                "created_at": self.now,
                "updated_at": self.now,
                **extra,
            }
        )
        if terminal:
            self.terminal[execution_id] = (job, project)
        return execution_id


async def fire_due(
    sessions: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    batch: int,
    grace: float = 60.0,
    public_url: str = "http://127.0.0.1:8000",
) -> BatchResult:
    """Fire up to `batch` jobs due at `now`."""
    started = time.perf_counter()
    work = _Batch(now=now)
    async with sessions() as session, session.begin():
        claimed = (
            await session.execute(
                select(CronJob, Project)
                .join(Project, Project.id == CronJob.project_id)
                .where(*live_jobs(), CronJob.next_run_at <= now)
                .order_by(CronJob.next_run_at)
                .limit(batch)
                .with_for_update(of=CronJob, skip_locked=True)
            )
        ).all()
        if not claimed:
            return BatchResult(claimed=0, fired=0)
        ids = [job.id for job, _ in claimed]
        unfinished = await _unfinished(session, ids)
        completed = await _last_completed(session, ids)
        for job, project in claimed:
            try:
                _plan_job(work, job, project, unfinished.get(job.id, 0), completed, grace)
            except ScheduleError as exc:
                # An invalid stored schedule disables the job with the reason, never a crash loop.
                log.error("job disabled: invalid schedule", job_id=job.id, reason=exc.message)
                job.is_enabled = False
                job.next_run_at = None
                job.disabled_reason = f"invalid schedule: {exc.message}"
                work.outcomes["disabled"] += 1
        inserted = await _insert_executions(session, work.rows)
        events: list[Event] = []
        for row in work.rows:
            if row["id"] not in inserted:
                log.info("slot already fired elsewhere", job_id=row["job_id"])
                continue
            if row["id"] in work.dispatch:
                job, project = work.dispatch[row["id"]]
                events.append(job_due_event(job, project, _transient(row), now=now))
            elif row["id"] in work.terminal:
                job, project = work.terminal[row["id"]]
                events.append(
                    await records.finished_event(
                        session, job, project, _transient(row), public_url=public_url
                    )
                )
        await outbox.enqueue(session, *events)
    for outcome, count in work.outcomes.items():
        metrics.SCHEDULER_FIRES.labels(outcome=outcome).inc(count)
    metrics.SCHEDULER_CLAIM_SECONDS.observe(time.perf_counter() - started)
    return BatchResult(claimed=len(claimed), fired=len(work.dispatch), outcomes=dict(work.outcomes))


def _plan_job(
    work: _Batch,
    job: CronJob,
    project: Project,
    unfinished: int,
    completed: dict[str, datetime],
    grace: float,
) -> None:
    now = work.now
    stored = job.next_run_at
    assert stored is not None
    slot = slots.slot_of(job, stored)
    following = next_run_after(job, slot)
    fire_at = slot
    if job.jitter:
        fire_at = slots.jittered(job, slot)
    if following > now:
        if fire_at > now:  # a slot stored without its jitter: wait for it
            job.next_run_at = fire_at
            work.outcomes["deferred"] += 1
            return
        latest = slot
    else:
        latest = max(slot, slots.latest_slot(job, now) or slot)
        following = next_run_after(job, max(latest, now))
    plan = plan_catch_up(
        first=slot,
        latest=latest,
        now=now,
        fire_at=fire_at,
        catchup_window=job.catchup_window,
        grace=grace,
        last_slot_before=lambda before: previous_slot(job, before),
        count_slots=lambda first, last: slots.count_slots(job, first, last),
    )

    def window_start(end: datetime) -> datetime | None:
        last_end = completed.get(job.id)
        if last_end is not None and last_end < end:
            return last_end
        return previous_slot(job, end)

    if plan.missed is not None:
        missed = plan.missed
        work.add(
            job,
            project,
            slot=missed.last,
            trigger=Trigger.SCHEDULE,
            status=ExecutionStatus.MISSED,
            window_start=window_start(missed.last),
            missed_count=missed.count,
            first_missed_at=missed.first,
            last_missed_at=missed.last,
            error_message=f"{missed.count} scheduled run(s) missed while the scheduler was away",
        )
        work.outcomes["missed"] += 1
    if plan.run is not None:
        run = plan.run
        action = overlap_action(
            job.overlap_policy,
            unfinished=unfinished,
            buffered_waiting=job.buffered_execution_id is not None,
        )
        if unfinished == 0:
            job.buffered_execution_id = None  # whatever waited has run or was cancelled
        if action == OverlapAction.SKIP:
            work.add(
                job,
                project,
                slot=run,
                trigger=plan.trigger,
                status=ExecutionStatus.SKIPPED,
                window_start=window_start(run),
                error_message="skipped: the previous run has not finished",
            )
            work.outcomes["skipped"] += 1
        else:
            execution_id = work.add(
                job,
                project,
                slot=run,
                trigger=plan.trigger,
                status=ExecutionStatus.PENDING,
                window_start=window_start(run),
            )
            if action == OverlapAction.BUFFER:
                job.buffered_execution_id = execution_id
                work.outcomes["buffered"] += 1
            else:
                work.dispatch[execution_id] = (job, project)
                work.outcomes["catchup" if plan.trigger == Trigger.CATCHUP else "fired"] += 1
        job.last_run_at = run
    job.next_run_at = slots.jittered(job, following)


@dataclass(frozen=True)
class _Inserted:
    """The fields of an inserted execution an event is built from (no ORM instance: cheaper)."""

    id: str
    attempt: int
    scheduled_for: datetime
    trigger: str
    status: str
    window_start: datetime | None
    window_end: datetime
    completed_at: datetime | None
    error_message: str | None
    missed_count: int | None


def _transient(row: dict[str, Any]) -> Execution:
    values = {name: row[name] for name in _Inserted.__dataclass_fields__}
    return cast(Execution, _Inserted(**values))


async def _unfinished(session: AsyncSession, job_ids: list[str]) -> dict[str, int]:
    rows = await session.execute(
        select(Execution.job_id, func.count())
        .where(Execution.job_id.in_(job_ids), Execution.status.in_(OPEN))
        .group_by(Execution.job_id)
    )
    return {job_id: int(count) for job_id, count in rows.all()}


async def _last_completed(session: AsyncSession, job_ids: list[str]) -> dict[str, datetime]:
    rows = await session.execute(
        select(Execution.job_id, func.max(Execution.window_end))
        .where(Execution.job_id.in_(job_ids), Execution.status == "COMPLETED")
        .group_by(Execution.job_id)
    )
    return {job_id: end for job_id, end in rows.all() if end is not None}


async def _insert_executions(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Insert execution rows, skipping any whose (job, slot) exists; return the inserted ids."""
    if not rows:
        return set()
    table = Execution.__table__
    module: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = module.insert(table).on_conflict_do_nothing().returning(table.c.id)
    result = await session.execute(statement, rows)
    return set(result.scalars().all())


async def earliest_next_run(sessions: async_sessionmaker[AsyncSession]) -> datetime | None:
    async with sessions() as session:
        value = await session.scalar(select(func.min(CronJob.next_run_at)).where(*live_jobs()))
    return value


async def due_backlog(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, limit: int = 1_000_000
) -> int:
    """Count enabled jobs due at `now` (up to `limit`, so a huge backlog stays cheap)."""
    async with sessions() as session:
        due = (
            select(CronJob.id)
            .where(*live_jobs(), CronJob.next_run_at <= now)
            .limit(limit)
            .subquery()
        )
        value = await session.scalar(select(func.count()).select_from(due))
    return int(value or 0)


async def jobs_by_state(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Count jobs as enabled, disabled (by a user or for an invalid schedule) and deleted."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(
                    CronJob.deleted_at.is_(None),
                    CronJob.is_enabled,
                    CronJob.disabled_reason.is_(None),
                    func.count(),
                ).group_by(
                    CronJob.deleted_at.is_(None),
                    CronJob.is_enabled,
                    CronJob.disabled_reason.is_(None),
                )
            )
        ).all()
    states = dict.fromkeys(("enabled", "disabled", "invalid", "deleted"), 0)
    for live, enabled, no_reason, count in rows:
        if not live:
            states["deleted"] += int(count)
        elif enabled:
            states["enabled"] += int(count)
        else:
            states["disabled" if no_reason else "invalid"] += int(count)
    return states
