"""Execution history, one execution with its posts and timeline, statistics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import statistics
from services.api.auth import UserDep
from services.api.deps import SessionDep, StateDep
from services.api.lifecycle import cancel
from services.api.pagination import (
    DEFAULT_LIMIT,
    CursorQuery,
    LimitQuery,
    keyset,
    keyset_params,
    split,
)
from services.api.problems import Problem, not_found
from services.api.records import execution_of, job_of
from services.api.views import content_view, execution_view, iso, step_view
from shared.db.schema import (
    COUNTED_RUN,
    Content,
    CronJob,
    Delivery,
    Execution,
    ExecutionStep,
    JobStatistics,
)
from shared.events import ExecutionStatus

router = APIRouter(prefix="/api/cron", tags=["executions"])

RECENT = 10


# Statements built once (bound parameters only): no expression building and no cache-key
# computation per request on the hot reads.
_OWN = select(Execution).where(Execution.user_id == bindparam("user_id"))
_OWN_OF_JOB = _OWN.where(Execution.job_id == bindparam("job_id"))
_PAGES = {
    (of_job, after): keyset(
        _OWN_OF_JOB if of_job else _OWN,
        created=Execution.created_at,
        row_id=Execution.id,
        after_cursor=after,
    )
    for of_job in (False, True)
    for after in (False, True)
}
_RECENT = {
    of_job: (_OWN_OF_JOB if of_job else _OWN)
    .order_by(Execution.created_at.desc(), Execution.id.desc())
    .limit(RECENT)
    for of_job in (False, True)
}


@router.get("/executions", operation_id="listExecutions")
async def list_executions(
    user: UserDep,
    session: SessionDep,
    job_id: Annotated[str | None, Query(alias="jobId", max_length=40)] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    stats: bool = False,
) -> dict[str, Any]:
    job: CronJob | None = None
    counters: JobStatistics | None = None
    params = {"user_id": user.id, **keyset_params(limit, cursor)}
    if job_id is not None:
        if stats:
            job, counters = await _job_and_counters(session, user.id, job_id)
        else:
            await job_of(session, user.id, job_id)
        params["job_id"] = job_id
    statement = _PAGES[job_id is not None, cursor is not None]
    rows = list((await session.scalars(statement, params)).all())
    rows, next_cursor = split(rows, limit, lambda row: (row.created_at, row.id))
    views = [execution_view(row) for row in rows]
    body: dict[str, Any] = {
        "success": True,
        "data": views,
        "count": len(rows),
        "nextCursor": next_cursor,
    }
    if stats:
        # The first page is the same history in the same order: its first rows are the
        # recent executions, so they need no query of their own.
        if cursor is None and limit >= RECENT:
            recent = views[:RECENT]
        else:
            recent = await _recent(session, user.id, job_id)
        if job is not None:
            body["statistics"] = _view(counters, job.next_run_at, recent)
        else:
            merged, next_run = await _all_jobs(session, user.id)
            body["statistics"] = _view(merged, next_run, recent)
    return body


async def _job_and_counters(
    session: AsyncSession, user_id: str, job_id: str
) -> tuple[CronJob, JobStatistics | None]:
    """The caller's live job and its counters, in one statement (another tenant's: 404)."""
    row = (
        await session.execute(
            select(CronJob, JobStatistics)
            .outerjoin(JobStatistics, JobStatistics.job_id == CronJob.id)
            .where(CronJob.id == job_id, CronJob.user_id == user_id, CronJob.deleted_at.is_(None))
        )
    ).one_or_none()
    if row is None:
        raise not_found("job")
    return row[0], row[1]


async def _recent(session: AsyncSession, user_id: str, job_id: str | None) -> list[dict[str, Any]]:
    """The last RECENT executions, newest first (an indexed read of RECENT rows)."""
    params = {"user_id": user_id} if job_id is None else {"user_id": user_id, "job_id": job_id}
    rows = (await session.scalars(_RECENT[job_id is not None], params)).all()
    return [execution_view(row) for row in rows]


def _view(
    counters: JobStatistics | None, next_run: datetime | None, recent: list[dict[str, Any]]
) -> dict[str, Any]:
    view = statistics.statistics_view(counters, next_run=next_run, recent=recent)
    return {key: _iso_if_datetime(value) for key, value in view.items()}


COUNTERS = (
    "total_success",
    "total_failures",
    "total_cancelled",
    "total_skipped",
    "total_missed",
    "total_duration_ms",
    "timed_runs",
)
LATEST = ("last_run_at", "last_success_at", "last_failure_at")


_COUNTERS_OF_LIVE_JOBS = (
    select(
        *(func.coalesce(func.sum(getattr(JobStatistics, name)), 0) for name in COUNTERS),
        *(func.max(getattr(JobStatistics, name)) for name in LATEST),
        func.coalesce(func.max(JobStatistics.consecutive_failures), 0),
        func.min(CronJob.next_run_at),
    )
    .select_from(CronJob)
    .outerjoin(JobStatistics, JobStatistics.job_id == CronJob.id)
    .where(CronJob.user_id == bindparam("user_id"), CronJob.deleted_at.is_(None))
)
_LAST_COUNTED_DURATIONS = (
    select(Execution.duration)
    # Literal, not bound, so the planner can match the partial index's predicate.
    .where(Execution.user_id == bindparam("user_id"), text(COUNTED_RUN))
    .order_by(Execution.created_at.desc(), Execution.id.desc())
    .limit(statistics.RECENT_DURATIONS)
)


async def _all_jobs(session: AsyncSession, user_id: str) -> tuple[JobStatistics, datetime | None]:
    """The caller's statistics across live jobs: counters summed by the database.

    One statement sums the counters of the caller's live jobs (a row per job, never per
    execution) and finds the next run; percentiles come from the caller's last 100 counted
    runs (one read of the partial index `ix_cron_executions_user_counted`); the failure
    streak is the longest of any job's.
    """
    row = (await session.execute(_COUNTERS_OF_LIVE_JOBS, {"user_id": user_id})).one()
    durations = (await session.scalars(_LAST_COUNTED_DURATIONS, {"user_id": user_id})).all()
    timed = [int(value) for value in durations if value is not None]
    total = JobStatistics(job_id="*", recent_durations=timed)
    for name, value in zip(COUNTERS, row[: len(COUNTERS)], strict=True):
        setattr(total, name, int(value))
    latest = row[len(COUNTERS) : len(COUNTERS) + len(LATEST)]
    for name, value in zip(LATEST, latest, strict=True):
        setattr(total, name, value)
    total.consecutive_failures = int(row[-2])
    return total, row[-1]


def _iso_if_datetime(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


@router.get("/executions/{execution_id}", operation_id="getExecution")
async def get_execution(
    execution_id: Annotated[str, Path(max_length=40)], user: UserDep, session: SessionDep
) -> dict[str, Any]:
    execution = await execution_of(session, user.id, execution_id)
    contents = (
        await session.scalars(
            select(Content).where(Content.execution_id == execution.id).order_by(Content.platform)
        )
    ).all()
    steps = (
        await session.scalars(
            select(ExecutionStep)
            .where(ExecutionStep.execution_id == execution.id)
            .order_by(ExecutionStep.id)
        )
    ).all()
    deliveries = (
        await session.scalars(
            select(Delivery)
            .where(Delivery.execution_id == execution.id, Delivery.user_id == user.id)
            .order_by(Delivery.created_at)
        )
    ).all()
    return {
        "success": True,
        "data": {
            **execution_view(execution),
            "content": [content_view(row) for row in contents],
            "steps": [step_view(row) for row in steps],
            "deliveries": [
                {
                    "channel": row.channel,
                    "recipient": row.recipient,
                    "outcome": row.outcome,
                    "attempts": row.attempts,
                    "error": row.error,
                    "kind": row.kind,
                }
                for row in deliveries
            ],
        },
    }


@router.get("/executions/{execution_id}/content", operation_id="getExecutionContent")
async def get_execution_content(
    execution_id: Annotated[str, Path(max_length=40)], user: UserDep, session: SessionDep
) -> dict[str, Any]:
    execution = await execution_of(session, user.id, execution_id)
    rows = (
        await session.scalars(
            select(Content).where(Content.execution_id == execution.id).order_by(Content.platform)
        )
    ).all()
    return {"success": True, "data": [content_view(row) for row in rows], "count": len(rows)}


@router.post("/executions/{execution_id}/cancel", operation_id="cancelExecution")
async def cancel_execution(
    execution_id: Annotated[str, Path(max_length=40)],
    user: UserDep,
    session: SessionDep,
    state: StateDep,
) -> dict[str, Any]:
    """Cancel a PENDING or RUNNING execution; workers are told to stop."""
    execution = await execution_of(session, user.id, execution_id, for_update=True)
    if ExecutionStatus(execution.status).is_terminal:
        raise Problem(
            409,
            f"execution is already {execution.status}",
            extra={"executionStatus": execution.status},
        )
    await cancel(
        session,
        execution,
        now=datetime.now(UTC),
        public_url=state.settings.public_url,
        by=user.id,
    )
    await session.commit()
    return {"success": True, "data": execution_view(execution)}


@router.get("/schedules/{job_id}/statistics", operation_id="getScheduleStatistics")
async def job_statistics(
    job_id: Annotated[str, Path(max_length=40)], user: UserDep, session: SessionDep
) -> dict[str, Any]:
    """One job's statistics: the seed's shape plus p50/p95 and the failure streak."""
    job, counters = await _job_and_counters(session, user.id, job_id)
    recent = await _recent(session, user.id, job_id)
    return {"success": True, "data": _view(counters, job.next_run_at, recent)}
