"""The scheduler's claim on real PostgreSQL: fire once, advance, never double-fire."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler.claims import fire_ahead, fire_due
from shared.db.schema import CronJob, Execution, OutboxMessage
from tests.support import factories


async def executions_of(sessions: async_sessionmaker[AsyncSession], job_ids: list[str]) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(Execution).where(Execution.job_id.in_(job_ids))
        )
    return int(count or 0)


async def test_a_due_job_fires_once_and_its_next_run_advances(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    sessions = own_sessions
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    slot = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    job = await factories.job(sessions, project, next_run_at=slot)
    now = slot + timedelta(seconds=1)
    await fire_due(sessions, now=now, batch=100)
    await fire_due(sessions, now=now, batch=100)
    async with sessions() as session:
        rows = (await session.scalars(select(Execution).where(Execution.job_id == job.id))).all()
        stored = await session.get(CronJob, job.id)
        outboxed = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.payload.contains(rows[0].id))
        )
    assert len(rows) == 1
    execution = rows[0]
    assert (execution.status, execution.trigger) == ("PENDING", "SCHEDULE")
    assert execution.scheduled_for == slot
    assert execution.window_end == slot
    # A first run's window opens at the schedule's previous slot.
    assert execution.window_start == slot - timedelta(days=1)
    assert stored is not None
    assert stored.next_run_at == slot + timedelta(days=1)
    assert stored.last_run_at == slot
    assert outboxed == 1


async def test_replicas_racing_on_many_due_jobs_fire_each_exactly_once(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    sessions = own_sessions
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    slot = datetime(2031, 6, 1, 9, 0, tzinfo=UTC)
    jobs = [await factories.job(sessions, project, next_run_at=slot) for _ in range(120)]
    now = slot + timedelta(seconds=5)

    async def replica() -> None:
        while (await fire_due(sessions, now=now, batch=7)).claimed:
            pass

    await asyncio.gather(*(replica() for _ in range(4)))
    ids = [job.id for job in jobs]
    assert await executions_of(sessions, ids) == len(jobs)
    async with sessions() as session:
        per_job = (
            await session.execute(
                select(Execution.job_id, func.count())
                .where(Execution.job_id.in_(ids))
                .group_by(Execution.job_id)
            )
        ).all()
    assert {count for _, count in per_job} == {1}


async def test_a_job_with_an_invalid_stored_schedule_is_disabled_with_a_reason(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    sessions = own_sessions
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    slot = datetime(2032, 1, 1, tzinfo=UTC)
    job = await factories.job(
        sessions,
        project,
        next_run_at=slot,
        frequency="CUSTOM",
        schedule="61 * * * *",
        time_config={"timezone": "UTC"},
    )
    await fire_due(sessions, now=slot, batch=10)
    async with sessions() as session:
        stored = await session.get(CronJob, job.id)
    assert stored is not None
    assert stored.is_enabled is False
    assert stored.next_run_at is None
    assert stored.disabled_reason is not None
    assert "minute 61 out of range 0-59" in stored.disabled_reason
    assert await executions_of(sessions, [job.id]) == 0


@pytest.mark.postgresql_only(
    reason="SQLite has one write lock: the scheduler never holds batches ahead there"
)
async def test_runs_claimed_ahead_appear_at_their_instant_and_replicas_share_them(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    sessions = own_sessions
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    slot = datetime(2032, 3, 1, 9, 0, tzinfo=UTC)
    jobs = [await factories.job(sessions, project, next_run_at=slot) for _ in range(30)]
    ids = [job.id for job in jobs]
    # A clock 0.5 s before the slot: the batches are written now and committed at the slot.
    shift = slot - timedelta(seconds=0.5) - datetime.now(UTC)

    def clock() -> datetime:
        return datetime.now(UTC) + shift

    async def replica() -> int:
        result = await fire_ahead(sessions, at=slot, clock=clock, batch=4, most=20)
        return result.claimed

    racing = [asyncio.create_task(replica()) for _ in range(2)]
    await asyncio.sleep(0.25)
    invisible_before_the_slot = await executions_of(sessions, ids)
    claimed = sum(await asyncio.gather(*racing))
    # Whatever the replicas held back (each took at most 20) fires at the slot as usual.
    while (await fire_due(sessions, now=clock(), batch=50)).claimed:
        pass

    assert invisible_before_the_slot == 0
    assert clock() >= slot
    assert claimed >= 20
    assert await executions_of(sessions, ids) == len(jobs)
    async with sessions() as session:
        repeated = (
            await session.execute(
                select(Execution.job_id)
                .where(Execution.job_id.in_(ids))
                .group_by(Execution.job_id)
                .having(func.count() > 1)
            )
        ).all()
    assert repeated == []
