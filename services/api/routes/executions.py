"""Execution history, one execution with its posts and timeline, statistics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import func, select

from services.api import statistics
from services.api.auth import UserDep
from services.api.deps import SessionDep, StateDep
from services.api.lifecycle import cancel
from services.api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, page, split
from services.api.problems import Problem
from services.api.records import execution_of, job_of
from services.api.views import content_view, execution_view, iso, step_view
from shared.db.schema import Content, CronJob, Delivery, Execution, ExecutionStep, JobStatistics
from shared.events import ExecutionStatus

router = APIRouter(prefix="/api/cron", tags=["executions"])

RECENT = 10


@router.get("/executions", operation_id="listExecutions")
async def list_executions(
    user: UserDep,
    session: SessionDep,
    job_id: Annotated[str | None, Query(alias="jobId", max_length=40)] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    stats: bool = False,
) -> dict[str, Any]:
    statement = select(Execution).where(Execution.user_id == user.id)
    if job_id is not None:
        await job_of(session, user.id, job_id)
        statement = statement.where(Execution.job_id == job_id)
    rows = list(
        (
            await session.scalars(
                page(
                    statement,
                    created=Execution.created_at,
                    row_id=Execution.id,
                    limit=limit,
                    cursor=cursor,
                )
            )
        ).all()
    )
    rows, next_cursor = split(rows, limit, lambda row: (row.created_at, row.id))
    body: dict[str, Any] = {
        "success": True,
        "data": [execution_view(row) for row in rows],
        "count": len(rows),
        "nextCursor": next_cursor,
    }
    if stats:
        body["statistics"] = await _statistics(session, user.id, job_id)
    return body


async def _statistics(session: Any, user_id: str, job_id: str | None) -> dict[str, Any]:
    if job_id is not None:
        loaded = await statistics.load(session, [job_id])
        next_run = await session.scalar(select(CronJob.next_run_at).where(CronJob.id == job_id))
        merged = loaded[0] if loaded else None
    else:
        merged, next_run = await _all_jobs(session, user_id)
    recent_query = select(Execution).where(Execution.user_id == user_id)
    if job_id is not None:
        recent_query = recent_query.where(Execution.job_id == job_id)
    recent = (
        await session.scalars(
            recent_query.order_by(Execution.created_at.desc(), Execution.id.desc()).limit(RECENT)
        )
    ).all()
    view = statistics.statistics_view(
        merged, next_run=next_run, recent=[execution_view(row) for row in recent]
    )
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


async def _all_jobs(session: Any, user_id: str) -> tuple[JobStatistics, datetime | None]:
    """The caller's statistics across live jobs: counters summed by the database.

    Percentiles come from the caller's last 100 counted runs (one indexed, bounded read);
    the failure streak is the longest of any job's.
    """
    live = (CronJob.user_id == user_id, CronJob.deleted_at.is_(None))
    row = (
        await session.execute(
            select(
                *(func.coalesce(func.sum(getattr(JobStatistics, name)), 0) for name in COUNTERS),
                *(func.max(getattr(JobStatistics, name)) for name in LATEST),
                func.coalesce(func.max(JobStatistics.consecutive_failures), 0),
            )
            .join(CronJob, CronJob.id == JobStatistics.job_id)
            .where(*live)
        )
    ).one()
    next_run = await session.scalar(select(func.min(CronJob.next_run_at)).where(*live))
    durations = (
        await session.scalars(
            select(Execution.duration)
            .where(
                Execution.user_id == user_id,
                Execution.status.in_(["COMPLETED", "FAILED", "TIMEOUT"]),
                Execution.duration.is_not(None),
            )
            .order_by(Execution.created_at.desc(), Execution.id.desc())
            .limit(statistics.RECENT_DURATIONS)
        )
    ).all()
    total = JobStatistics(job_id="*", recent_durations=[int(value) for value in durations])
    for name, value in zip(COUNTERS, row[: len(COUNTERS)], strict=True):
        setattr(total, name, int(value))
    for name, value in zip(LATEST, row[len(COUNTERS) : -1], strict=True):
        setattr(total, name, value)
    total.consecutive_failures = int(row[-1])
    return total, next_run


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
    await job_of(session, user.id, job_id)
    return {"success": True, "data": await _statistics(session, user.id, job_id)}
