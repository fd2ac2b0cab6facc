"""ANALYTICS runs: read the project's jobs' figures over the window and store the digest.

Called by the batch that applies the scan which ends such a run, in its transaction and
before the run's `execution.finished` is written, so the event carries the digest the
execution shows. Two indexed reads per digest: the project's live jobs with their
statistics row, and their runs recorded in the window (`ix_cron_executions_job_created`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api import digest, query_count
from services.api.transitions import Changes, Run
from shared.db.schema import CronJob, Execution, JobStatistics
from shared.events import ExecutionStatus

_JOBS = CronJob.__table__.c
_STATS = JobStatistics.__table__.c
_EXECUTIONS = Execution.__table__.c

TIMED = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.TIMEOUT)
ENDED = tuple(status.value for status in ExecutionStatus if status.is_terminal)

_PROJECT_JOBS = (
    select(_JOBS.id, _JOBS.name, _JOBS.type, _STATS.consecutive_failures)
    .select_from(CronJob.__table__.outerjoin(JobStatistics.__table__))
    .where(_JOBS.project_id == bindparam("project_id"), _JOBS.deleted_at.is_(None))
    .order_by(_JOBS.created_at, _JOBS.id)
)
_RUNS_IN_WINDOW = (
    select(
        _EXECUTIONS.job_id,
        _EXECUTIONS.status,
        func.count(),
        func.coalesce(func.sum(_EXECUTIONS.duration), 0),
        func.count(_EXECUTIONS.duration),
        func.coalesce(func.sum(_EXECUTIONS.missed_count), 0),
    )
    .where(
        _EXECUTIONS.job_id.in_(bindparam("job_ids", expanding=True)),
        _EXECUTIONS.created_at > bindparam("start"),
        _EXECUTIONS.created_at <= bindparam("end"),
        _EXECUTIONS.status.in_(ENDED),
    )
    .group_by(_EXECUTIONS.job_id, _EXECUTIONS.status)
)


async def job_figures(
    connection: AsyncConnection, *, project_id: str, start: datetime, end: datetime
) -> list[digest.JobFigures]:
    """The project's live jobs, each with its runs recorded in (start, end] by status."""
    jobs = (await connection.execute(_PROJECT_JOBS, {"project_id": project_id})).all()
    if not jobs:
        return []
    by_status: dict[str, dict[str, int]] = defaultdict(dict)
    timing: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    missed: dict[str, int] = defaultdict(int)
    rows = await connection.execute(
        _RUNS_IN_WINDOW, {"job_ids": [job.id for job in jobs], "start": start, "end": end}
    )
    for job_id, status, count, duration, timed, missed_slots in rows:
        by_status[job_id][status] = int(count)
        if status in TIMED:
            timing[job_id][0] += int(duration)
            timing[job_id][1] += int(timed)
        if status == ExecutionStatus.MISSED:
            missed[job_id] += int(missed_slots)
    return [
        digest.JobFigures(
            job_id=job.id,
            name=job.name,
            type=job.type,
            by_status=by_status.get(job.id, {}),
            missed=missed.get(job.id, 0),
            duration_ms=timing[job.id][0] if job.id in timing else 0,
            timed_runs=timing[job.id][1] if job.id in timing else 0,
            consecutive_failures=int(job.consecutive_failures or 0),
        )
        for job in jobs
    ]


async def attach_digests(
    connection: AsyncConnection, changes: Changes, runs: dict[str, Run]
) -> None:
    """Build each finished ANALYTICS run's digest and keep it in the run's `metadata.digest`."""
    for execution_id, scanned in sorted(changes.digests.items()):
        row = runs[execution_id].row
        start = digest.window_opening(row["window_start"], row["window_end"], scanned.summary)
        with query_count.on_behalf_of([execution_id]):
            figures = await job_figures(
                connection, project_id=row["project_id"], start=start, end=row["window_end"]
            )
        built = digest.build(
            scanned.summary,
            window_start=row["window_start"],
            window_end=row["window_end"],
            jobs=figures,
        )
        stored: dict[str, Any] = built.model_dump(mode="json", by_alias=True)
        row["metadata"] = {**row["metadata"], "digest": stored}
        # The finish was recorded before the digest existed: its snapshot gets it too.
        for finish in changes.finishes:
            if finish.row["id"] == execution_id:
                finish.row["metadata"] = {**finish.row["metadata"], "digest": stored}
