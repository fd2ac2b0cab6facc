"""Per-job statistics: counters kept as executions end, so a read never scans history."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.schema import Execution, JobStatistics
from shared.events import ExecutionStatus

RECENT_DURATIONS = 100
FAILURES = (ExecutionStatus.FAILED, ExecutionStatus.TIMEOUT)


@dataclass(frozen=True)
class Counters:
    consecutive_failures: int
    previous_status: ExecutionStatus | None


# The columns `count_finished` reads and writes.
RULED = (
    "total_success",
    "total_failures",
    "total_cancelled",
    "total_skipped",
    "total_duration_ms",
    "timed_runs",
    "consecutive_failures",
    "last_status",
    "last_run_at",
    "last_success_at",
    "last_failure_at",
    "recent_durations",
)


def count_finished(
    stats: dict[str, Any], status: ExecutionStatus, at: datetime | None, duration: int | None
) -> ExecutionStatus | None:
    """Count one finished execution in a job's counters (by column name); return the previous
    last status. The one place the counting rules live: the ORM path and the api's batched
    event path both call it."""
    previous = ExecutionStatus(stats["last_status"]) if stats["last_status"] else None
    if status == ExecutionStatus.COMPLETED:
        stats["total_success"] += 1
        stats["consecutive_failures"] = 0
        stats["last_success_at"] = at
    elif status in FAILURES:
        stats["total_failures"] += 1
        stats["consecutive_failures"] += 1
        stats["last_failure_at"] = at
    elif status == ExecutionStatus.CANCELLED:
        stats["total_cancelled"] += 1
    elif status == ExecutionStatus.SKIPPED:
        # Only runs skipped for their conditions end here; the scheduler counts its own.
        stats["total_skipped"] += 1
    if status == ExecutionStatus.COMPLETED or status in FAILURES:
        stats["last_status"] = status.value
        stats["last_run_at"] = at
        if duration is not None:
            stats["total_duration_ms"] += duration
            stats["timed_runs"] += 1
            stats["recent_durations"] = [*stats["recent_durations"], duration][-RECENT_DURATIONS:]
    return previous


async def record_finished(session: AsyncSession, execution: Execution) -> Counters:
    """Count a finished execution in its job's statistics (in the caller's transaction)."""
    stats = await session.get(JobStatistics, execution.job_id, with_for_update=True)
    if stats is None:
        stats = JobStatistics.empty(execution.job_id, execution.user_id)
        session.add(stats)
    row = {column: getattr(stats, column) for column in RULED}
    previous = count_finished(
        row, ExecutionStatus(execution.status), execution.completed_at, execution.duration
    )
    for column, value in row.items():
        setattr(stats, column, value)
    return Counters(stats.consecutive_failures, previous)


@dataclass(frozen=True)
class Totals:
    """Counters as read (one job's, or summed over a user's jobs): what the view shows."""

    total_success: int
    total_failures: int
    total_cancelled: int
    total_skipped: int
    total_missed: int
    total_duration_ms: int
    timed_runs: int
    consecutive_failures: int
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    recent_durations: Sequence[int]


# The columns of `job_statistics` a `Totals` is read from, in its fields' order.
TOTALS_FIELDS = tuple(Totals.__dataclass_fields__)


def percentile(values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile of a list of durations."""
    if not values:
        return None
    ordered = sorted(values)
    # Whole-percent arithmetic: 0.29 * 100 is 28.999... in binary floating point.
    rank = max(1, math.ceil(round(fraction * 100) * len(ordered) / 100))
    return ordered[min(rank, len(ordered)) - 1]


def statistics_view(
    stats: JobStatistics | Totals | None,
    *,
    next_run: datetime | None,
    recent: list[dict[str, Any]],
) -> dict[str, Any]:
    """The seed's statistics shape plus percentiles and the failure streak."""
    success = stats.total_success if stats else 0
    failures = stats.total_failures if stats else 0
    total = success + failures
    durations = list(stats.recent_durations) if stats else []
    return {
        "totalRuns": total,
        "totalSuccess": success,
        "totalFailures": failures,
        "totalCancelled": stats.total_cancelled if stats else 0,
        "totalSkipped": stats.total_skipped if stats else 0,
        "totalMissed": stats.total_missed if stats else 0,
        "successRate": f"{(success / total * 100) if total else 0:.2f}",
        "avgDuration": round(stats.total_duration_ms / stats.timed_runs)
        if stats and stats.timed_runs
        else None,
        "p50Duration": percentile(durations, 0.50),
        "p95Duration": percentile(durations, 0.95),
        "consecutiveFailures": stats.consecutive_failures if stats else 0,
        "lastRun": stats.last_run_at if stats else None,
        "lastSuccess": stats.last_success_at if stats else None,
        "lastFailure": stats.last_failure_at if stats else None,
        "nextRun": next_run,
        "recentExecutions": recent,
    }


async def load(session: AsyncSession, job_ids: list[str]) -> list[JobStatistics]:
    if not job_ids:
        return []
    return list(
        (
            await session.scalars(select(JobStatistics).where(JobStatistics.job_id.in_(job_ids)))
        ).all()
    )
