"""The scheduler's statements: claiming due jobs, writing their runs, reading its gauges.

Core statements, not ORM units of work: claimed jobs are plain rows (`ClaimedJob`), a
batch's runs are one multi-row INSERT, and the claimed jobs' scheduling columns are written
back in one UPDATE (over arrays on PostgreSQL, an executemany by key on SQLite).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    func,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.schema import CronJob, Execution, Project
from shared.dispatch import SCANNED_RUNS, opening_after
from shared.events import ExecutionStatus

OPEN = (ExecutionStatus.PENDING.value, ExecutionStatus.RUNNING.value)
_JOBS = cast(Table, CronJob.__table__)


def live_jobs() -> list[ColumnElement[bool]]:
    return [CronJob.is_enabled.is_(True), CronJob.deleted_at.is_(None)]


@dataclasses.dataclass(slots=True)
class ClaimedJob:
    """A job claimed for firing, as a plain row: what planning reads, and the scheduling
    columns it sets (written back by `advance`). No ORM identity, no change tracking."""

    id: str
    project_id: str
    user_id: str
    name: str
    frequency: str
    time_config: dict[str, Any]
    schedule: str
    max_retries: int
    retry_delay: int
    timeout_seconds: int
    overlap_policy: str
    catchup_window: int
    jitter: int
    conditions: dict[str, Any] | None
    type: str
    # The scheduling columns: planning moves them, `advance` writes back what moved.
    next_run_at: datetime | None
    last_run_at: datetime | None
    buffered_execution_id: str | None
    # A WEBHOOK job's destination, encrypted as stored: carried on `job.due` as it is.
    webhook_url_encrypted: str | None = None
    webhook_secret_encrypted: str | None = None
    disabled: bool = dataclasses.field(default=False, init=False)
    claimed: tuple[datetime | None, datetime | None, str | None] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.claimed = self._scheduling()

    def _scheduling(self) -> tuple[datetime | None, datetime | None, str | None]:
        return (self.next_run_at, self.last_run_at, self.buffered_execution_id)

    def changes(self) -> dict[str, Any] | None:
        """The scheduling columns if planning moved any, else None."""
        values = self._scheduling()
        if self.disabled or values == self.claimed:
            return None
        return dict(zip(_SCHEDULING, values, strict=True))


_SCHEDULING = ("next_run_at", "last_run_at", "buffered_execution_id")
# What a claim selects: the columns `ClaimedJob` is built from, named as its fields.
CLAIMED_COLUMNS = [_JOBS.c[field.name] for field in dataclasses.fields(ClaimedJob) if field.init]


async def claim_due(session: AsyncSession, *, now: datetime, limit: int) -> list[ClaimedJob]:
    """Lock up to `limit` live jobs due at `now`, earliest first, skipping any another
    transaction holds (a replica's claim, or an edit through the API)."""
    rows = await session.execute(
        select(*CLAIMED_COLUMNS)
        .where(*live_jobs(), CronJob.next_run_at <= now)
        .order_by(CronJob.next_run_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [ClaimedJob(**row) for row in rows.mappings()]


async def projects_of(session: AsyncSession, project_ids: set[str]) -> dict[str, Project]:
    """The claimed jobs' projects, each loaded once (a batch usually shares a few)."""
    found = await session.scalars(select(Project).where(Project.id.in_(project_ids)))
    return {project.id: project for project in found}


async def unfinished_counts(session: AsyncSession, job_ids: list[str]) -> dict[str, int]:
    """Per job, its runs still PENDING or RUNNING (absent: none)."""
    rows = await session.execute(
        select(Execution.job_id, func.count())
        .where(Execution.job_id.in_(job_ids), Execution.status.in_(OPEN))
        .group_by(Execution.job_id)
    )
    return {job_id: int(count) for job_id, count in rows.all()}


async def window_openings(
    session: AsyncSession, job_ids: list[str], *, accumulating: Collection[str] = ()
) -> dict[str, datetime]:
    """Per job, where its next window opens: after its last scanned run (a COMPLETED one, or
    one skipped for its conditions), by `shared.dispatch.opening_after`."""
    # One aggregate per kind of scanned run, each read from its partial index on (job,
    # window end), the later of the two kept.
    rows = await session.execute(
        union_all(
            *(
                select(Execution.job_id, func.max(Execution.window_end))
                .where(Execution.job_id.in_(job_ids), scanned)
                .group_by(Execution.job_id)
                for scanned in SCANNED_RUNS
            )
        )
    )
    ends: dict[str, datetime] = {}
    for job_id, end in rows.all():
        if end is not None and (job_id not in ends or end > ends[job_id]):
            ends[job_id] = end
    openings = dict(ends)
    # Jobs that accumulate are few: their last run is looked at again, to see whether it was
    # skipped, and then where it opened.
    last_runs = [(job_id, ends[job_id]) for job_id in accumulating if job_id in ends]
    if last_runs:
        found = await session.execute(
            select(
                Execution.job_id, Execution.status, Execution.window_start, Execution.window_end
            ).where(
                tuple_(Execution.job_id, Execution.window_end).in_(last_runs),
                or_(*SCANNED_RUNS),
            )
        )
        for job_id, status, start, end in found.all():
            opens = opening_after(status, start, end, accumulate=True)
            if opens is None:
                openings.pop(job_id, None)
            elif status == "SKIPPED":
                openings[job_id] = opens
    return openings


async def insert_executions(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Insert execution rows, skipping any whose (job, slot) exists; return the inserted ids."""
    if not rows:
        return set()
    table = Execution.__table__
    module: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = module.insert(table).on_conflict_do_nothing().returning(table.c.id)
    result = await session.execute(statement, rows)
    return set(result.scalars().all())


async def advance(
    session: AsyncSession, claimed: list[ClaimedJob], disabled: list[dict[str, Any]]
) -> None:
    """Write back the claimed jobs' moved scheduling columns, and disable those in
    `disabled` (`b_id`, `b_reason`)."""
    changed = []
    for job in claimed:
        values = job.changes()
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
            update(_JOBS)
            .where(_JOBS.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in _SCHEDULING}),
            changed,
        )
    if disabled:
        await session.execute(
            update(_JOBS)
            .where(_JOBS.c.id == bindparam("b_id"))
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


async def earliest_next_run(sessions: async_sessionmaker[AsyncSession]) -> datetime | None:
    async with sessions() as session:
        value = await session.scalar(select(func.min(CronJob.next_run_at)).where(*live_jobs()))
    return value


async def has_buffered(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Whether any BUFFER_ONE run waits for its predecessor."""
    async with sessions() as session:
        found = await session.scalar(
            select(CronJob.id).where(CronJob.buffered_execution_id.is_not(None)).limit(1)
        )
    return found is not None


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
