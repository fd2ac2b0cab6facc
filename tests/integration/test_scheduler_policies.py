"""The scheduler's policies on real PostgreSQL: catch-up, overlap, jitter, DST days."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler.claims import fire_due
from services.scheduler.policies import jitter_offset
from services.scheduler.records import release_buffered
from shared.db.schema import CronJob, Execution, JobStatistics, OutboxMessage, Project
from shared.ids import derived_event_id
from shared.scheduling import preset_next_runs
from tests.support import factories

Sessions = async_sessionmaker[AsyncSession]


async def a_project(sessions: Sessions) -> Project:
    user_id, _ = await factories.user_with_token(sessions)
    return await factories.project(sessions, user_id, name="site", local_repo_path="/srv/repo")


async def executions(sessions: Sessions, job_id: str) -> list[Execution]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Execution).where(Execution.job_id == job_id).order_by(Execution.scheduled_for)
        )
        return list(rows.all())


async def events(sessions: Sessions, routing_key: str) -> list[dict[str, Any]]:
    async with sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage.payload)
            .where(OutboxMessage.routing_key == routing_key)
            .order_by(OutboxMessage.id)
        )
        return [json.loads(payload) for payload in rows.all()]


async def stored(sessions: Sessions, job_id: str) -> CronJob:
    async with sessions() as session:
        job = await session.get(CronJob, job_id)
    assert job is not None
    return job


async def set_status(sessions: Sessions, execution_id: str, status: str) -> None:
    """Act as the api finishing a run."""
    async with sessions() as session, session.begin():
        await session.execute(
            update(Execution).where(Execution.id == execution_id).values(status=status)
        )


HOURLY = {"frequency": "CUSTOM", "schedule": "0 * * * *", "time_config": {"timezone": "UTC"}}
MINUTELY = {"frequency": "CUSTOM", "schedule": "* * * * *", "time_config": {"timezone": "UTC"}}
SLOT = datetime(2030, 3, 1, 0, 0, tzinfo=UTC)


async def test_an_outage_runs_the_latest_slot_once_and_records_older_ones_as_one_missed(
    own_sessions: Sessions,
) -> None:
    sessions = own_sessions
    project = await a_project(sessions)
    job = await factories.job(
        sessions, project, next_run_at=SLOT, catchup_window=3 * 3600, **HOURLY
    )
    now = SLOT + timedelta(hours=10, seconds=5)
    await fire_due(sessions, now=now, batch=50)
    await fire_due(sessions, now=now, batch=50)
    rows = await executions(sessions, job.id)
    assert [(row.status, row.trigger) for row in rows] == [
        ("MISSED", "SCHEDULE"),
        ("PENDING", "CATCHUP"),
    ]
    missed, catchup = rows
    # Slots 00:00..07:00 are older than now - 3 h (07:00:05): one record for all eight.
    assert missed.missed_count == 8
    assert (missed.first_missed_at, missed.last_missed_at) == (SLOT, SLOT + timedelta(hours=7))
    assert missed.completed_at == now
    # 08:00..10:00 are inside the window: coalesced into one run of the latest slot.
    assert catchup.scheduled_for == SLOT + timedelta(hours=10)
    assert catchup.window_end == catchup.scheduled_for
    job_after = await stored(sessions, job.id)
    assert job_after.next_run_at == SLOT + timedelta(hours=11)
    assert job_after.last_run_at == catchup.scheduled_for
    (finished,) = await events(sessions, "execution.finished")
    assert finished["eventId"] == derived_event_id(missed.id, "execution.finished")
    assert (finished["status"], finished["missedCount"]) == ("MISSED", 8)
    assert finished["jobName"] == job.name and finished["projectName"] == "site"
    assert finished["link"].endswith(f"/console/executions/{missed.id}")
    (due,) = await events(sessions, "job.due")
    assert (due["executionId"], due["trigger"]) == (catchup.id, "CATCHUP")
    async with sessions() as session:
        stats = await session.get(JobStatistics, job.id)
    assert stats is not None and stats.total_missed == 1


async def test_a_clock_jump_of_a_month_never_bursts_stale_runs(own_sessions: Sessions) -> None:
    sessions = own_sessions
    project = await a_project(sessions)
    job = await factories.job(sessions, project, next_run_at=SLOT, **MINUTELY)
    now = SLOT + timedelta(days=30, seconds=5)
    while (await fire_due(sessions, now=now, batch=50)).claimed:
        pass
    rows = await executions(sessions, job.id)
    assert [row.status for row in rows] == ["MISSED", "PENDING"]
    # Every minute older than the default one-day window, counted in one row.
    assert rows[0].missed_count == 29 * 1440 + 1
    assert rows[1].scheduled_for == SLOT + timedelta(days=30)
    assert (await stored(sessions, job.id)).next_run_at == SLOT + timedelta(days=30, minutes=1)


async def test_lateness_decides_between_on_time_catch_up_and_missed(
    own_sessions: Sessions,
) -> None:
    sessions = own_sessions
    project = await a_project(sessions)
    on_time = await factories.job(sessions, project, next_run_at=SLOT, **HOURLY)
    late = await factories.job(sessions, project, next_run_at=SLOT, **HOURLY)
    too_late = await factories.job(sessions, project, next_run_at=SLOT, catchup_window=0, **HOURLY)
    await fire_due(sessions, now=SLOT + timedelta(seconds=30), batch=50)
    async with sessions() as session, session.begin():
        await session.execute(
            update(CronJob).where(CronJob.id != on_time.id).values(next_run_at=SLOT)
        )
        await session.execute(update(Execution).values(status="COMPLETED"))
    async with sessions() as session, session.begin():
        await session.execute(
            Execution.__table__.delete().where(Execution.job_id != on_time.id)  # type: ignore[attr-defined]
        )
    # Two minutes late: past the one-minute grace, so the single slot is a catch-up run...
    await fire_due(sessions, now=SLOT + timedelta(minutes=2), batch=50, grace=60)
    assert [(row.trigger, row.status) for row in await executions(sessions, on_time.id)] == [
        ("SCHEDULE", "COMPLETED")
    ]
    assert [(row.trigger, row.status) for row in await executions(sessions, late.id)] == [
        ("CATCHUP", "PENDING")
    ]
    # ...unless the job wants no catch-up at all: then it is recorded as missed.
    (missed,) = await executions(sessions, too_late.id)
    assert (missed.status, missed.missed_count, missed.scheduled_for) == ("MISSED", 1, SLOT)
    assert (await stored(sessions, too_late.id)).next_run_at == SLOT + timedelta(hours=1)


async def fire_slots(sessions: Sessions, job_id: str, hours: int) -> list[Execution]:
    for hour in range(hours):
        await fire_due(sessions, now=SLOT + timedelta(hours=hour, seconds=1), batch=50)
    return await executions(sessions, job_id)


async def test_overlap_skip_records_a_skipped_run_while_the_previous_is_unfinished(
    own_sessions: Sessions,
) -> None:
    sessions = own_sessions
    project = await a_project(sessions)
    job = await factories.job(sessions, project, next_run_at=SLOT, **HOURLY)
    rows = await fire_slots(sessions, job.id, 2)
    assert [row.status for row in rows] == ["PENDING", "SKIPPED"]
    assert rows[1].error_message is not None and "not finished" in rows[1].error_message
    await set_status(sessions, rows[0].id, "COMPLETED")
    await fire_due(sessions, now=SLOT + timedelta(hours=2, seconds=1), batch=50)
    rows = await executions(sessions, job.id)
    assert [row.status for row in rows] == ["COMPLETED", "SKIPPED", "PENDING"]
    # The next run's window opens where the last completed one ended.
    assert rows[2].window_start == rows[0].window_end
    (finished,) = await events(sessions, "execution.finished")
    assert (finished["status"], finished["executionId"]) == ("SKIPPED", rows[1].id)
    assert len(await events(sessions, "job.due")) == 2
    async with sessions() as session:
        stats = await session.get(JobStatistics, job.id)
    assert stats is not None and stats.total_skipped == 1


async def test_overlap_allow_fires_every_slot(own_sessions: Sessions) -> None:
    sessions = own_sessions
    project = await a_project(sessions)
    job = await factories.job(sessions, project, next_run_at=SLOT, overlap_policy="ALLOW", **HOURLY)
    rows = await fire_slots(sessions, job.id, 3)
    assert [row.status for row in rows] == ["PENDING"] * 3
    assert len(await events(sessions, "job.due")) == 3


async def test_overlap_buffer_one_keeps_one_waiting_and_releases_it_when_the_run_ends(
    own_sessions: Sessions,
) -> None:
    sessions = own_sessions
    project = await a_project(sessions)
    job = await factories.job(
        sessions, project, next_run_at=SLOT, overlap_policy="BUFFER_ONE", **HOURLY
    )
    rows = await fire_slots(sessions, job.id, 3)
    assert [row.status for row in rows] == ["PENDING", "PENDING", "SKIPPED"]
    running, waiting, _ = rows
    assert (await stored(sessions, job.id)).buffered_execution_id == waiting.id
    assert [event["executionId"] for event in await events(sessions, "job.due")] == [running.id]
    now = SLOT + timedelta(hours=2, minutes=30)
    assert await release_buffered(sessions, now=now, batch=10) == 0  # still running
    await set_status(sessions, running.id, "COMPLETED")
    assert await release_buffered(sessions, now=now, batch=10) == 1
    assert await release_buffered(sessions, now=now, batch=10) == 0
    dues = await events(sessions, "job.due")
    assert [event["executionId"] for event in dues] == [running.id, waiting.id]
    assert dues[1]["eventId"] == derived_event_id(waiting.id, "job.due")
    assert (await stored(sessions, job.id)).buffered_execution_id is None
    released = (await executions(sessions, job.id))[1]
    assert released.deadline is not None and released.deadline > now


async def test_jitter_delays_each_slot_deterministically_and_keeps_the_slot_as_its_instant(
    own_sessions: Sessions,
) -> None:
    sessions = own_sessions
    project = await a_project(sessions)
    jobs = [
        await factories.job(sessions, project, next_run_at=SLOT, jitter=600, **HOURLY)
        for _ in range(20)
    ]
    # At the slot nothing fires yet: each job's stored next run moves to slot + its delay.
    await fire_due(sessions, now=SLOT, batch=50)
    delays = {}
    for job in jobs:
        assert await executions(sessions, job.id) == []
        delay = jitter_offset(job.id, SLOT, jitter=600, gap=timedelta(hours=1))
        assert timedelta(0) <= delay <= timedelta(seconds=600)
        assert (await stored(sessions, job.id)).next_run_at == SLOT + delay
        delays[job.id] = delay
    assert len(set(delays.values())) > 10  # spread, not a thundering herd
    first = min(delays, key=lambda job_id: delays[job_id])
    await fire_due(sessions, now=SLOT + delays[first], batch=50)
    fired = [job.id for job in jobs if await executions(sessions, job.id)]
    assert first in fired
    assert all(delays[job_id] <= delays[first] for job_id in fired)
    for step in range(21):  # a scheduler pass every 30 s: each job fires within its grace
        await fire_due(sessions, now=SLOT + timedelta(seconds=30 * step + 1), batch=50)
    for job in jobs:
        (row,) = await executions(sessions, job.id)
        assert (row.scheduled_for, row.trigger) == (SLOT, "SCHEDULE")  # the slot, unique key
        nxt = SLOT + timedelta(hours=1)
        delay = jitter_offset(job.id, nxt, jitter=600, gap=timedelta(hours=1))
        assert (await stored(sessions, job.id)).next_run_at == nxt + delay


async def test_a_0230_new_york_job_fires_once_on_both_2025_transition_days(
    own_sessions: Sessions,
) -> None:
    sessions = own_sessions
    project = await a_project(sessions)
    config = {"hour": 2, "minute": 30, "timezone": "America/New_York"}
    repeated = {"hour": 1, "minute": 30, "timezone": "America/New_York"}
    expected = {
        # Spring: 02:30 does not exist; it runs at the end of the gap, 03:00 EDT.
        "spring": [datetime(2025, 3, 8, 7, 30), datetime(2025, 3, 9, 7, 0)],
        # Fall: 02:30 happens once (after the repeated hour), at 02:30 EST.
        "fall": [datetime(2025, 11, 1, 6, 30), datetime(2025, 11, 2, 7, 30)],
        # 01:30 is repeated on the fall day: it runs once, at the first (EDT) occurrence.
        "fall-repeated": [datetime(2025, 11, 1, 5, 30), datetime(2025, 11, 2, 5, 30)],
    }
    cases = {"spring": config, "fall": config, "fall-repeated": repeated}
    starts = {
        "spring": datetime(2025, 3, 8, tzinfo=UTC),
        "fall": datetime(2025, 11, 1, tzinfo=UTC),
        "fall-repeated": datetime(2025, 11, 1, tzinfo=UTC),
    }
    jobs = {}
    for name, time_config in cases.items():
        first = preset_next_runs("DAILY", time_config, starts[name], 1)[0]
        jobs[name] = await factories.job(
            sessions, project, next_run_at=first, time_config=time_config, overlap_policy="ALLOW"
        )
    # Step a clock through both days minute by minute around the transitions.
    for name, job in jobs.items():
        clock = starts[name]
        while clock < starts[name] + timedelta(days=2, hours=12):
            await fire_due(sessions, now=clock, batch=50)
            clock += timedelta(minutes=10)
        fired = [row.scheduled_for for row in await executions(sessions, job.id)]
        assert fired == [at.replace(tzinfo=UTC) for at in expected[name]] + preset_next_runs(
            "DAILY", cases[name], expected[name][-1].replace(tzinfo=UTC), 1
        )
        assert {row.trigger for row in await executions(sessions, job.id)} == {"SCHEDULE"}
