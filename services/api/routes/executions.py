"""Execution history, one execution with its posts and timeline, statistics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic_core import to_json
from sqlalchemy import JSON, ColumnElement, Row, Select, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api import fields, pg_render, statistics
from services.api.auth import (
    Caller,
    UserDep,
    checks_token_in_query,
    owned_by,
    reading_as_caller,
)
from services.api.deps import SessionDep, StateDep
from services.api.lifecycle import cancel
from services.api.pagination import (
    DEFAULT_LIMIT,
    CursorQuery,
    LimitQuery,
    cursor_position,
    keyset,
    keyset_params,
    split,
)
from services.api.problems import Problem, not_found
from services.api.records import execution_of
from services.api.statistics import TOTALS_FIELDS
from services.api.views import (
    activity_view,
    content_view,
    execution_row_view,
    execution_view,
    iso,
    step_view,
)
from shared.db.schema import (
    COUNTED_RUN,
    Content,
    CronJob,
    Delivery,
    Execution,
    ExecutionActivity,
    ExecutionStep,
    JobStatistics,
)
from shared.events import ExecutionStatus
from shared.job_results import result_sentence
from shared.run_log import log_runs

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/cron", tags=["executions"])

RECENT = 10

_EXECUTIONS = Execution.__table__.c
_JOBS = CronJob.__table__.c
_STATS = JobStatistics.__table__.c


# Statements built once (bound parameters only): no expression building and no cache-key
# computation per request on the hot reads. They select plain columns (rows, no ORM
# objects), each in two forms: for a user already known, and for an API token checked
# inside the statement (see `Caller`).
def _own(dialect: str, by_token: bool, of_job: bool) -> Select[Any]:
    statement = select(*pg_render.list_columns(dialect, fields.EXECUTION)).where(
        owned_by(_EXECUTIONS.user_id, by_token)
    )
    return statement.where(_EXECUTIONS.job_id == bindparam("job_id")) if of_job else statement


_DIALECTS = ("postgresql", "sqlite")
_PAGES = {
    (dialect, by_token, of_job, after): keyset(
        _own(dialect, by_token, of_job),
        created=_EXECUTIONS.created_at,
        row_id=_EXECUTIONS.id,
        after_cursor=after,
    )
    for dialect in _DIALECTS
    for by_token in (False, True)
    for of_job in (False, True)
    for after in (False, True)
}
_RECENT = {
    (dialect, by_token, of_job): _own(dialect, by_token, of_job)
    .order_by(_EXECUTIONS.created_at.desc(), _EXECUTIONS.id.desc())
    .limit(RECENT)
    for dialect in _DIALECTS
    for by_token in (False, True)
    for of_job in (False, True)
}


def _keyset_key(row: Row[Any]) -> tuple[datetime, str]:
    return row.created_at, row.id


def _encoded(dialect: str, rows: Sequence[Row[Any]]) -> list[bytes]:
    """Each row's view as JSON (rendered by PostgreSQL, or built and encoded here)."""
    if dialect == "postgresql":
        return [row.view.encode() for row in rows]
    return [to_json(execution_row_view(row)) for row in rows]


def _live_job(by_token: bool) -> tuple[ColumnElement[bool], ...]:
    return (
        _JOBS.id == bindparam("job_id"),
        owned_by(_JOBS.user_id, by_token),
        _JOBS.deleted_at.is_(None),
    )


_JOB_EXISTS = {by_token: select(_JOBS.id).where(*_live_job(by_token)) for by_token in (False, True)}
_JOB_AND_COUNTERS = {
    by_token: select(_JOBS.next_run_at, *(_STATS[name] for name in TOTALS_FIELDS))
    .select_from(CronJob.__table__.outerjoin(JobStatistics.__table__))
    .where(*_live_job(by_token))
    for by_token in (False, True)
}

SUMMED = (
    "total_success",
    "total_failures",
    "total_cancelled",
    "total_skipped",
    "total_missed",
    "total_duration_ms",
    "timed_runs",
)
LATEST = ("last_run_at", "last_success_at", "last_failure_at")


def _counters_of_live_jobs(dialect: str, by_token: bool) -> Select[Any]:
    """The caller's counters summed over their live jobs, the next run, recent durations.

    One statement: the counters' rows of the caller's live jobs are summed (never a row per
    execution, and no join: each counters row names its owner and liveness), the next run is
    the first entry of an index, and the durations
    of the last 100 counted runs come from an uncorrelated subquery that reads the partial
    index `ix_cron_executions_user_counted`, gathered by the dialect's own list aggregate
    (the standalone mode runs on SQLite).
    """
    last_counted = (
        select(_EXECUTIONS.duration)
        # Literal, not bound, so the planner can match the partial index's predicate.
        .where(owned_by(_EXECUTIONS.user_id, by_token), text(COUNTED_RUN))
        .order_by(_EXECUTIONS.created_at.desc(), _EXECUTIONS.id.desc())
        .limit(statistics.RECENT_DURATIONS)
        .subquery()
    )
    # The first entry of `ix_cron_jobs_user_next_run`.
    next_run = select(func.min(_JOBS.next_run_at)).where(
        owned_by(_JOBS.user_id, by_token), _JOBS.deleted_at.is_(None)
    )
    durations = (
        func.array_agg(last_counted.c.duration)
        if dialect == "postgresql"
        else func.json_group_array(last_counted.c.duration, type_=JSON)
    )
    # The job whose current failure streak is the aggregate's: the longest, and of equals
    # the one that failed last.
    streak_job = (
        select(_STATS.job_id)
        .where(
            owned_by(_STATS.user_id, by_token),
            text("job_statistics.live"),
            _STATS.consecutive_failures > 0,
        )
        .order_by(
            _STATS.consecutive_failures.desc(),
            _STATS.last_failure_at.desc().nulls_last(),
            _STATS.job_id,
        )
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            *(func.coalesce(func.sum(_STATS[name]), 0) for name in SUMMED),
            func.coalesce(func.max(_STATS.consecutive_failures), 0),
            *(func.max(_STATS[name]) for name in LATEST),
            select(durations).scalar_subquery(),
            next_run.scalar_subquery(),
            streak_job,
            select(_JOBS.name).where(_JOBS.id == streak_job).scalar_subquery(),
        )
        # Literal `live`, so the planner matches `ix_job_statistics_user_live`'s predicate.
        .where(owned_by(_STATS.user_id, by_token), text("job_statistics.live"))
    )


_COUNTERS_OF_LIVE_JOBS = {
    (dialect, by_token): _counters_of_live_jobs(dialect, by_token)
    for dialect in ("postgresql", "sqlite")
    for by_token in (False, True)
}


@router.get("/executions", operation_id="listExecutions", response_model=dict[str, Any])
@checks_token_in_query
async def list_executions(
    request: Request,
    job_id: Annotated[str | None, Query(alias="jobId", max_length=40)] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    stats: bool = False,
) -> Response:
    """The caller's executions, newest first; with `stats=true`, their statistics too.

    With `jobId`, the statistics are that job's. Without, they cover all the caller's live
    jobs: totals and durations over all of them, `lastRun`, `lastSuccess` and `lastFailure`
    the latest of any, `nextRun` the soonest, and `consecutiveFailures` the longest current
    failure streak of any one job (not a sum, and not about the latest run: it can be 2
    while `lastRun` is another job's success), that job named by `consecutiveFailuresJobId`
    and `consecutiveFailuresJobName` (null when no job's last counted run failed).
    """
    # A hot read: one connection, the caller's token checked inside the statements, plain
    # rows, each row's view rendered once (see `pg_render`).
    position = cursor_position(cursor)
    async with reading_as_caller(request) as (connection, caller):
        params = {**keyset_params(limit, position), **caller.params}
        counters: tuple[statistics.Totals | None, datetime | None] | None = None
        streak: dict[str, str | None] = {}
        if job_id is not None:
            params["job_id"] = job_id
            if stats:
                counters = await _job_and_counters(connection, caller, job_id)
            elif not caller.saw(
                (await connection.execute(_JOB_EXISTS[caller.by_token], params)).first()
            ):
                raise not_found("job")
        statement = _PAGES[
            connection.dialect.name, caller.by_token, job_id is not None, position is not None
        ]
        rows = caller.saw(list((await connection.execute(statement, params)).all()))
        dialect = connection.dialect.name
        rows, next_cursor = split(rows, limit, _keyset_key)
        views = _encoded(dialect, rows)
        statistics_view: dict[str, Any] | None = None
        recent: list[bytes] = []
        if stats:
            if counters is None:
                totals, next_run, streak = await _all_jobs(connection, caller)
                counters = (totals, next_run)
            # The first page is the same history in the same order: its first rows are the
            # recent executions, so they need no query of their own.
            if cursor is None and limit >= RECENT:
                recent = views[:RECENT]
            else:
                recent = await _recent(connection, caller, job_id)
            statistics_view = {**_view(*counters), **streak}
    body = pg_render.page_body(
        views, next_cursor=next_cursor, statistics=statistics_view, recent=recent
    )
    return Response(body, media_type="application/json")


async def _job_and_counters(
    connection: AsyncConnection, caller: Caller, job_id: str
) -> tuple[statistics.Totals | None, datetime | None]:
    """The caller's live job's counters and next run, in one statement (another's: 404)."""
    params = {**caller.params, "job_id": job_id}
    row = caller.saw((await connection.execute(_JOB_AND_COUNTERS[caller.by_token], params)).first())
    if row is None:
        raise not_found("job")
    next_run, *counters = row
    # A job without a statistics row (outer join: all NULL) has not finished a run yet.
    return (None if counters[0] is None else statistics.Totals(*counters)), next_run


async def _recent(connection: AsyncConnection, caller: Caller, job_id: str | None) -> list[bytes]:
    """The last RECENT executions, newest first (an indexed read of RECENT rows)."""
    params = caller.params if job_id is None else {**caller.params, "job_id": job_id}
    statement = _RECENT[connection.dialect.name, caller.by_token, job_id is not None]
    rows = (await connection.execute(statement, params)).all()
    return _encoded(connection.dialect.name, rows)


def _view(counters: statistics.Totals | None, next_run: datetime | None) -> dict[str, Any]:
    """The statistics without their recent executions (`page_body` adds those)."""
    view = statistics.statistics_view(counters, next_run=next_run, recent=[])
    return {key: _iso_if_datetime(value) for key, value in view.items()}


async def _all_jobs(
    connection: AsyncConnection, caller: Caller
) -> tuple[statistics.Totals, datetime | None, dict[str, str | None]]:
    """The caller's statistics across live jobs (one statement; never a history scan).

    Counters are summed by the database; percentiles come from the caller's last 100
    counted runs; the failure streak is the longest current one of any job's, named by
    `consecutiveFailuresJobId` and `consecutiveFailuresJobName` (null without a streak).
    """
    statement = _COUNTERS_OF_LIVE_JOBS[connection.dialect.name, caller.by_token]
    row = (await connection.execute(statement, caller.params)).one()
    *summed, streak, last_run, last_success, last_failure, durations, next_run = row[:-2]
    streak_job_id, streak_job_name = row[-2:]
    success, failures, cancelled, skipped, missed, duration_ms, timed = map(int, summed)
    totals = statistics.Totals(
        total_success=success,
        total_failures=failures,
        total_cancelled=cancelled,
        total_skipped=skipped,
        total_missed=missed,
        total_duration_ms=duration_ms,
        timed_runs=timed,
        consecutive_failures=int(streak),
        last_run_at=last_run,
        last_success_at=last_success,
        last_failure_at=last_failure,
        recent_durations=[int(value) for value in durations or ()],
    )
    holder = {
        "consecutiveFailuresJobId": streak_job_id,
        "consecutiveFailuresJobName": streak_job_name,
    }
    return totals, next_run, holder


def trace_url(template: str, trace_id: str | None) -> str | None:
    """Where the run's trace is read (HERALD_TRACE_URL_TEMPLATE with `{trace_id}` filled in),
    or None without a template or a recorded trace. A plain replace, not `str.format`: a
    Grafana Explore URL is full of braces of its own."""
    if not template or not trace_id:
        return None
    return template.replace("{trace_id}", trace_id)


def _iso_if_datetime(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


@router.get("/executions/{execution_id}", operation_id="getExecution")
async def get_execution(
    execution_id: Annotated[str, Path(max_length=40)],
    user: UserDep,
    session: SessionDep,
    state: StateDep,
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
    # The job's type is fixed at creation, so the job's says what this run did.
    job_type = await session.scalar(select(CronJob.type).where(CronJob.id == execution.job_id))
    items = await _activity(session, execution.id)
    view = execution_view(execution)
    return {
        "success": True,
        "data": {
            **view,
            "jobType": job_type,
            "result": result_sentence(
                job_type or "",
                execution.status,
                view["metadata"],
                items_processed=execution.items_processed,
                items_success=execution.items_success,
            ),
            "activity": [activity_view(row) for row in items],
            "upstream": await _upstream_of(session, execution),
            "traceUrl": trace_url(state.settings.trace_url_template, execution.trace_id),
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


async def _upstream_of(session: SessionDep, execution: Execution) -> dict[str, Any] | None:
    """What a DEPENDENCY run follows: the upstream run, its job, and where its posts are.

    None for other triggers. The upstream's job may since have been deleted (its runs stay);
    its execution is gone only with the user's data, and then only the id is known.
    """
    upstream_id = execution.upstream_execution_id
    if upstream_id is None:
        return None
    row = (
        await session.execute(
            select(Execution.job_id, Execution.status, Execution.completed_at, CronJob.name)
            .join(CronJob, CronJob.id == Execution.job_id)
            .where(Execution.id == upstream_id, Execution.user_id == execution.user_id)
        )
    ).first()
    posts = await session.scalar(
        select(func.count()).select_from(Content).where(Content.execution_id == upstream_id)
    )
    return {
        "id": upstream_id,
        "jobId": row.job_id if row else None,
        "jobName": row.name if row else None,
        "status": row.status if row else None,
        "completedAt": iso(row.completed_at) if row and row.completed_at else None,
        "posts": posts or 0,
        "content": f"/api/cron/executions/{upstream_id}/content",
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


async def _activity(session: SessionDep, execution_id: str) -> list[ExecutionActivity]:
    return list(
        (
            await session.scalars(
                select(ExecutionActivity)
                .where(ExecutionActivity.execution_id == execution_id)
                .order_by(ExecutionActivity.position)
            )
        ).all()
    )


@router.get("/executions/{execution_id}/activity", operation_id="getExecutionActivity")
async def get_execution_activity(
    execution_id: Annotated[str, Path(max_length=40)], user: UserDep, session: SessionDep
) -> dict[str, Any]:
    """The items a SYNC_GITHUB run recorded, newest first (empty for other job types).

    The scan keeps the window's newest 200 items; `total` counts the whole window (the run's
    `metadata.activity`), so `truncated` says when the list is not all of it.
    """
    execution = await execution_of(session, user.id, execution_id)
    items = await _activity(session, execution.id)
    activity = (execution.metadata_ or {}).get("activity") or {}
    total = sum(int(activity.get(key, 0)) for key in ("commits", "pullRequests", "issues", "tags"))
    return {
        "success": True,
        "data": [activity_view(row) for row in items],
        "count": len(items),
        "total": total,
        "truncated": total > len(items),
    }


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
    line = await cancel(
        session,
        execution,
        now=datetime.now(UTC),
        public_url=state.settings.public_url,
        by=user.id,
    )
    await session.commit()
    log_runs(log, "runs ended", [line])
    return {"success": True, "data": execution_view(execution)}


@router.get(
    "/schedules/{job_id}/statistics",
    operation_id="getScheduleStatistics",
    response_model=dict[str, Any],
)
@checks_token_in_query
async def job_statistics(job_id: Annotated[str, Path(max_length=40)], request: Request) -> Response:
    """One job's statistics: the seed's shape plus p50/p95 and the failure streak."""
    async with reading_as_caller(request) as (connection, caller):
        counters, next_run = await _job_and_counters(connection, caller, job_id)
        recent = await _recent(connection, caller, job_id)
    body = pg_render.statistics_json(_view(counters, next_run), recent)
    return Response(b'{"success":true,"data":' + body + b"}", media_type="application/json")
