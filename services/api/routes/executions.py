"""Execution history, one execution with its posts and timeline, statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from services.api import statistics
from services.api.auth import UserDep
from services.api.deps import SessionDep
from services.api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, page, split
from services.api.records import execution_of, job_of
from services.api.views import content_view, execution_view, iso, step_view
from shared.db.schema import Content, CronJob, Delivery, Execution, ExecutionStep, JobStatistics

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
    jobs = select(CronJob.id, CronJob.next_run_at).where(
        CronJob.user_id == user_id, CronJob.deleted_at.is_(None)
    )
    if job_id is not None:
        jobs = jobs.where(CronJob.id == job_id)
    job_rows = (await session.execute(jobs)).all()
    rows = await statistics.load(session, [row.id for row in job_rows])
    merged = _merge(rows)
    next_runs = [row.next_run_at for row in job_rows if row.next_run_at is not None]
    recent_query = select(Execution).where(Execution.user_id == user_id)
    if job_id is not None:
        recent_query = recent_query.where(Execution.job_id == job_id)
    recent = (
        await session.scalars(
            recent_query.order_by(Execution.created_at.desc(), Execution.id.desc()).limit(RECENT)
        )
    ).all()
    view = statistics.statistics_view(
        merged,
        next_run=min(next_runs) if next_runs else None,
        recent=[execution_view(row) for row in recent],
    )
    return {key: _iso_if_datetime(value) for key, value in view.items()}


def _merge(rows: list[JobStatistics]) -> JobStatistics | None:
    """Sum several jobs' counters into one (the caller's statistics across jobs)."""
    if not rows:
        return None
    if len(rows) == 1:
        return rows[0]
    total = JobStatistics(
        job_id="*",
        total_success=0,
        total_failures=0,
        total_cancelled=0,
        total_skipped=0,
        total_missed=0,
        total_duration_ms=0,
        timed_runs=0,
        consecutive_failures=0,
        recent_durations=[],
    )
    for row in rows:
        for field in (
            "total_success",
            "total_failures",
            "total_cancelled",
            "total_skipped",
            "total_missed",
            "total_duration_ms",
            "timed_runs",
        ):
            setattr(total, field, getattr(total, field) + getattr(row, field))
        total.recent_durations = [*total.recent_durations, *row.recent_durations]
        total.consecutive_failures = max(total.consecutive_failures, row.consecutive_failures)
        for field in ("last_run_at", "last_success_at", "last_failure_at"):
            value = getattr(row, field)
            current = getattr(total, field)
            if value is not None and (current is None or value > current):
                setattr(total, field, value)
    return total


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
