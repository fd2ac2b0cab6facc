"""`herald_jobs_overdue`: enabled jobs that have not succeeded in k times their interval.

A job's interval is read from what the scheduler already keeps: `next_run_at - last_run_at`
(the slot it last fired and the one after it), so presets and cron expressions need no
parsing here. The reference point is the job's last success (`job_statistics`), or its
creation when it never succeeded. A job that never fired has no interval yet and is not
counted. The count is one query over live enabled jobs (a join on the statistics' primary key,
no history scanned), run every `interval` seconds by each api replica; every replica reports
the same figure, so alerts take `max` across them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import metrics
from shared.runtime import pause
from shared.supervision import log_failed_pass

log = structlog.get_logger(__name__)

#: k: a job is overdue when its last success is older than this many intervals.
FACTOR = 3.0
#: Seconds between two counts.
INTERVAL = 60.0

_POSTGRES = text(
    """
    SELECT count(*) FROM cron_jobs j
    LEFT JOIN job_statistics s ON s.job_id = j.id
    WHERE j.is_enabled AND j.deleted_at IS NULL
      AND j.last_run_at IS NOT NULL AND j.next_run_at > j.last_run_at
      AND COALESCE(s.last_success_at, j.created_at)
          < CAST(:now AS timestamptz)
            - (j.next_run_at - j.last_run_at) * CAST(:factor AS double precision)
    """
)
_SQLITE = text(
    """
    SELECT count(*) FROM cron_jobs j
    LEFT JOIN job_statistics s ON s.job_id = j.id
    WHERE j.is_enabled AND j.deleted_at IS NULL
      AND j.last_run_at IS NOT NULL AND j.next_run_at > j.last_run_at
      AND julianday(COALESCE(s.last_success_at, j.created_at))
          < julianday(:now) - (julianday(j.next_run_at) - julianday(j.last_run_at)) * :factor
    """
)


async def count_overdue(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, factor: float = FACTOR
) -> int:
    """How many enabled jobs have not succeeded in `factor` times their interval at `now`."""
    async with sessions() as session:
        sqlite = session.get_bind().dialect.name == "sqlite"
        query = _SQLITE if sqlite else _POSTGRES
        at: datetime | str = (
            now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ") if sqlite else now
        )
        return int((await session.execute(query, {"now": at, "factor": factor})).scalar_one())


async def run_overdue_gauge(
    sessions: async_sessionmaker[AsyncSession],
    stop: asyncio.Event,
    *,
    interval: float = INTERVAL,
    factor: float = FACTOR,
) -> None:
    """Set `herald_jobs_overdue` every `interval` seconds until `stop` is set."""
    while not stop.is_set():
        try:
            metrics.JOBS_OVERDUE.set(
                await count_overdue(sessions, now=datetime.now(UTC), factor=factor)
            )
        except Exception as exc:
            log_failed_pass(log, "overdue count failed; will retry", exc)
        await pause(interval, stop)
