"""`herald_jobs_overdue` on real PostgreSQL: k times the interval since the last success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.overdue import count_overdue
from shared.db.schema import CronJob, JobStatistics
from tests.support import factories

DAY = timedelta(days=1)


async def test_counts_enabled_jobs_without_a_recent_success(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime.now(UTC)
    user_id, _ = await factories.user_with_token(own_sessions)
    project = await factories.project(own_sessions, user_id)

    async def daily(*, last_success: datetime | None, enabled: bool = True) -> str:
        row = await factories.job(
            own_sessions, project, next_run_at=now + DAY / 2, is_enabled=enabled
        )
        async with own_sessions() as session, session.begin():
            await session.execute(
                update(CronJob)
                .where(CronJob.id == row.id)
                .values(last_run_at=now - DAY / 2, created_at=now - 30 * DAY)
            )
            await session.execute(
                update(JobStatistics)
                .where(JobStatistics.job_id == row.id)
                .values(last_success_at=last_success)
            )
        return row.id

    await daily(last_success=now - DAY)  # fine: one interval ago
    await daily(last_success=now - 4 * DAY)  # overdue at k=3
    await daily(last_success=None)  # never succeeded, created a month ago: overdue
    await daily(last_success=now - 10 * DAY, enabled=False)  # disabled: not counted
    await factories.job(own_sessions, project, next_run_at=now + DAY)  # never fired

    assert await count_overdue(own_sessions, now=now, factor=3) == 2
    assert await count_overdue(own_sessions, now=now, factor=5) == 1
    assert await count_overdue(own_sessions, now=now - 30 * DAY, factor=3) == 0
