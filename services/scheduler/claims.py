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

`fire_ahead` does the same for the jobs of an instant shortly before it, and commits at it.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler import records, slots
from services.scheduler.policies import OverlapAction, overlap_action, plan_catch_up
from shared import metrics, outbox
from shared.db.schema import CronJob, Execution, Project
from shared.dispatch import job_due_event, next_run_after, previous_slot
from shared.events import Event, ExecutionStatus, Trigger
from shared.ids import new_id
from shared.run_log import RunLine, ended_line, fired_line, log_runs
from shared.scheduling import ScheduleError

log = structlog.get_logger(__name__)

OPEN = (ExecutionStatus.PENDING.value, ExecutionStatus.RUNNING.value)
# Seconds that must be left before an instant for `fire_ahead` to spend some of them on a
# garbage collection (tens of milliseconds; never so close that it could delay the commit).
COLLECT_BEFORE = 1.0


@dataclass(frozen=True)
class BatchResult:
    claimed: int
    fired: int
    outcomes: dict[str, int] = field(default_factory=dict)
    # What an operator reads about each run written, logged once the batch committed.
    runs: tuple[RunLine, ...] = ()


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
    """Fire up to `batch` jobs due at `now`, in one transaction."""
    started = time.perf_counter()
    async with sessions() as session, session.begin():
        result = await _fire(session, now=now, batch=batch, grace=grace, public_url=public_url)
    _count(result, started)
    log_runs(log, "runs fired", result.runs)
    return result


async def fire_ahead(
    sessions: async_sessionmaker[AsyncSession],
    *,
    at: datetime,
    clock: Callable[[], datetime],
    batch: int,
    most: int,
    grace: float = 60.0,
    public_url: str = "http://127.0.0.1:8000",
) -> BatchResult:
    """Fire the jobs due at `at` (up to `most`), written before it comes and committed at it.

    Each batch is claimed and written in its own transaction as if at `at`, then every
    transaction waits for `at` and commits: at the instant only the commits and the relay's
    publishing remain, so a run is late by those alone. Until then the claimed jobs stay
    locked (a change to one through the API waits for the commit, and then sees the run),
    and nothing is visible: a crash meanwhile rolls all of it back, to be fired as usual.
    """
    started = time.perf_counter()
    claimed = fired = 0
    outcomes: Counter[str] = Counter()
    runs: list[RunLine] = []
    held: list[AsyncSession] = []
    try:
        while claimed < most:
            session = sessions()
            held.append(session)
            await session.begin()
            size = min(batch, most - claimed)
            result = await _fire(session, now=at, batch=size, grace=grace, public_url=public_url)
            claimed, fired = claimed + result.claimed, fired + result.fired
            outcomes.update(result.outcomes)
            runs.extend(result.runs)
            if result.claimed < size:
                break
        wait = (at - clock()).total_seconds()
        if wait > COLLECT_BEFORE:
            # A full collection now, while nothing waits on this process, rather than among
            # the instant's commits and publishes (it paused them 60-90 ms when it fell there).
            gc.collect()
            wait = (at - clock()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        # Every held batch commits at once: their WAL flushes are shared (group commit),
        # where one after another each waited for its own (about 10 ms apiece).
        await asyncio.gather(*(session.commit() for session in held))
    finally:
        # Closing rolls back whatever did not commit (a crash or a failed commit): those
        # jobs are still due and are fired as usual.
        for session in held:
            await session.close()
    result = BatchResult(claimed=claimed, fired=fired, outcomes=dict(outcomes), runs=tuple(runs))
    _count(result, started)
    log_runs(log, "runs fired", result.runs)
    return result


def _count(result: BatchResult, started: float) -> None:
    if not result.claimed:
        return
    for outcome, count in result.outcomes.items():
        metrics.SCHEDULER_FIRES.labels(outcome=outcome).inc(count)
    metrics.SCHEDULER_CLAIM_SECONDS.observe(time.perf_counter() - started)


async def _fire(
    session: AsyncSession, *, now: datetime, batch: int, grace: float, public_url: str
) -> BatchResult:
    """Claim up to `batch` jobs due at `now` and write their runs, in the caller's transaction.

    Core statements, not ORM units of work: the claimed jobs are plain rows, and the batch
    is written as one multi-row INSERT of executions, one of outbox rows and one UPDATE of
    the jobs' scheduling columns (over arrays on PostgreSQL, an executemany by key on SQLite).
    """
    work = _Batch(now=now)
    claimed = [
        _JobRow(row)
        for row in (
            await session.execute(
                select(*_JOB_COLUMNS)
                .where(*live_jobs(), CronJob.next_run_at <= now)
                .order_by(CronJob.next_run_at)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        )
        .mappings()
        .all()
    ]
    if not claimed:
        return BatchResult(claimed=0, fired=0)
    ids = [job.id for job in claimed]
    projects = await _projects(session, {job.project_id for job in claimed})
    unfinished = await _unfinished(session, ids)
    completed = await _last_completed(session, ids)
    disabled: list[dict[str, Any]] = []
    for row in claimed:
        job = cast(CronJob, row)
        try:
            _plan_job(
                work, job, projects[row.project_id], unfinished.get(row.id, 0), completed, grace
            )
        except ScheduleError as exc:
            # An invalid stored schedule disables the job with the reason, never a crash loop.
            log.error("job disabled: invalid schedule", job_id=row.id, reason=exc.message)
            row.disabled = True
            disabled.append({"b_id": row.id, "b_reason": f"invalid schedule: {exc.message}"})
            work.outcomes["disabled"] += 1
    inserted = await _insert_executions(session, work.rows)
    names = {row.id: row.name for row in claimed}
    events: list[Event] = []
    runs: list[RunLine] = []
    for values in work.rows:
        execution_id = values["id"]
        if execution_id not in inserted:
            log.info("slot already fired elsewhere", job_id=values["job_id"])
            continue
        runs.append(_run_line(work, values, names[values["job_id"]]))
        if execution_id in work.dispatch:
            job, project = work.dispatch[execution_id]
            events.append(job_due_event(job, project, _transient(values), now=now))
        elif execution_id in work.terminal:
            job, project = work.terminal[execution_id]
            events.append(
                await records.finished_event(
                    session, job, project, _transient(values), public_url=public_url
                )
            )
    await _advance(session, claimed, disabled)
    await outbox.enqueue(session, *events)
    return BatchResult(
        claimed=len(claimed),
        fired=len(work.dispatch),
        outcomes=dict(work.outcomes),
        runs=tuple(runs),
    )


def _run_line(work: _Batch, values: dict[str, Any], job_name: str) -> RunLine:
    common = {
        "execution_id": values["id"],
        "job_id": values["job_id"],
        "job_name": job_name,
        "trigger": values["trigger"],
        "scheduled_for": values["scheduled_for"],
    }
    if values["status"] == ExecutionStatus.PENDING:
        event = "run fired" if values["id"] in work.dispatch else "run buffered"
        return fired_line(event, **common)
    return ended_line(
        values["status"],
        duration_ms=None,
        items_processed=0,
        items_success=0,
        items_failed=0,
        reason=values["error_message"],
        missed_count=values["missed_count"],
        **common,
    )


_JOB_TABLE = cast(Table, CronJob.__table__)
_JOB_COLUMNS = [
    _JOB_TABLE.c[name]
    for name in (
        "id",
        "project_id",
        "user_id",
        "name",
        "frequency",
        "time_config",
        "schedule",
        "max_retries",
        "retry_delay",
        "timeout_seconds",
        "overlap_policy",
        "catchup_window",
        "jitter",
        "next_run_at",
        "last_run_at",
        "buffered_execution_id",
    )
]
_SCHEDULING = ("next_run_at", "last_run_at", "buffered_execution_id")


class _JobRow:
    """A claimed job as a plain row: what the policies read, and the scheduling columns they
    set (written back in one statement, see `_advance`). No ORM identity, no change tracking.
    """

    def __init__(self, row: Any) -> None:
        self.__dict__.update(row)
        self.disabled = False
        self._claimed = {name: row[name] for name in _SCHEDULING}

    def changes(self) -> dict[str, Any] | None:
        values = {name: getattr(self, name) for name in _SCHEDULING}
        return None if values == self._claimed else values

    if TYPE_CHECKING:
        id: str
        project_id: str

        def __getattr__(self, name: str) -> Any: ...


async def _advance(
    session: AsyncSession, claimed: list[_JobRow], disabled: list[dict[str, Any]]
) -> None:
    """Write back the claimed jobs' scheduling columns: one executemany UPDATE by key."""
    table = _JOB_TABLE
    changed = []
    for job in claimed:
        values = None if job.disabled else job.changes()
        if values is not None:
            changed.append({"b_id": job.id, **{f"b_{k}": v for k, v in values.items()}})
    if changed and session.get_bind().dialect.name == "postgresql":
        # One statement over arrays: an executemany sends a Bind and Execute per row, and the
        # server plans and runs each as its own UPDATE.
        await session.execute(
            _ADVANCE_ARRAYS,
            {
                f"b_{name}": [values[f"b_{name}"] for values in changed]
                for name in ("id", *_SCHEDULING)
            },
        )
    elif changed:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in _SCHEDULING}),
            changed,
        )
    if disabled:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(is_enabled=False, next_run_at=None, disabled_reason=bindparam("b_reason")),
            disabled,
        )


_ADVANCE_ARRAYS = text(
    "UPDATE cron_jobs SET next_run_at = v.next_run_at, last_run_at = v.last_run_at,"
    " buffered_execution_id = v.buffered_execution_id"
    " FROM unnest(CAST(:b_id AS text[]), CAST(:b_next_run_at AS timestamptz[]),"
    " CAST(:b_last_run_at AS timestamptz[]), CAST(:b_buffered_execution_id AS text[]))"
    " AS v(id, next_run_at, last_run_at, buffered_execution_id)"
    " WHERE cron_jobs.id = v.id"
)


async def _projects(session: AsyncSession, project_ids: set[str]) -> dict[str, Project]:
    """The claimed jobs' projects, each loaded once (a batch usually shares a few)."""
    found = await session.scalars(select(Project).where(Project.id.in_(project_ids)))
    return {project.id: project for project in found}


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
    user_id: str
    # Never set on what the scheduler inserts (PENDING, SKIPPED, MISSED rows).
    started_at: datetime | None = None
    duration: int | None = None
    items_processed: int = 0
    items_success: int = 0
    items_failed: int = 0


def _transient(row: dict[str, Any]) -> Execution:
    values = {name: row[name] for name in _Inserted.__dataclass_fields__ if name in row}
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
