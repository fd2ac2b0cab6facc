"""The scheduler honours a job's daylight-saving policy, its clock stepped over real DST days.

Two jobs at 02:30 in Europe/Berlin side by side, one with classic cron's behaviour and one
with a policy: on the spring-forward day (2027-03-28) gapPolicy SKIP has no execution at
all, and on the fall-back day (2027-10-31) foldPolicy SECOND fires at the second 02:30,
an hour after the classic job. A scheduler away over the gap day reports no missed run for
the day SKIP dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler.claims import fire_due
from shared.db.schema import CronJob, Execution, Project
from shared.dispatch import next_run_after
from tests.support import factories

BERLIN = {"hour": 2, "minute": 30, "timezone": "Europe/Berlin"}
TICK = timedelta(minutes=15)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def daily_job(
    sessions: async_sessionmaker[AsyncSession],
    project: Project,
    after: datetime,
    **policies: str,
) -> CronJob:
    time_config: dict[str, Any] = {**BERLIN, **policies}
    # ALLOW: the runs stay PENDING here (no pipeline), and each must still fire.
    job = await factories.job(
        sessions, project, next_run_at=None, time_config=time_config, overlap_policy="ALLOW"
    )
    # Stored as the API stores it: the first run after `after`, under the job's own policy.
    first = next_run_after(job, after)
    async with sessions() as session, session.begin():
        stored = await session.get(CronJob, job.id)
        assert stored is not None
        stored.next_run_at = first
    return job


async def step_clock(
    sessions: async_sessionmaker[AsyncSession], start: datetime, end: datetime
) -> None:
    """Run the scheduler's claim at every tick of an injected clock from `start` to `end`."""
    now = start
    while now <= end:
        while (await fire_due(sessions, now=now, batch=50)).claimed:
            pass
        now += TICK


async def fired(sessions: async_sessionmaker[AsyncSession], job: CronJob) -> list[Execution]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Execution).where(Execution.job_id == job.id).order_by(Execution.scheduled_for)
        )
        return list(rows)


def slots(rows: list[Execution]) -> list[str]:
    return [f"{row.scheduled_for.astimezone(UTC):%Y-%m-%dT%H:%MZ}" for row in rows]


async def test_skip_has_no_execution_on_the_gap_day_and_second_fires_at_the_second_0230(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    sessions = own_sessions
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")

    # Spring: 2027-03-28 has no 02:30 in Berlin (02:00 CET -> 03:00 CEST).
    spring = at("2027-03-27T00:00Z")
    classic = await daily_job(sessions, project, spring)
    skip = await daily_job(sessions, project, spring, gapPolicy="SKIP")
    await step_clock(sessions, spring + timedelta(seconds=1), at("2027-03-29T02:00:01Z"))
    assert slots(await fired(sessions, classic)) == [
        "2027-03-27T01:30Z",
        "2027-03-28T01:00Z",  # 03:00 CEST, the first instant after the gap
        "2027-03-29T00:30Z",
    ]
    skipped = await fired(sessions, skip)
    assert slots(skipped) == ["2027-03-27T01:30Z", "2027-03-29T00:30Z"]
    assert {(row.trigger, row.status) for row in skipped} == {("SCHEDULE", "PENDING")}
    # The run after the gap day reads the activity since the run before it: nothing is lost.
    assert skipped[1].window_start == at("2027-03-27T01:30Z")

    # Autumn: 2027-10-31 has 02:30 twice (03:00 CEST -> 02:00 CET).
    autumn = at("2027-10-30T00:00Z")
    classic = await daily_job(sessions, project, autumn)
    second = await daily_job(sessions, project, autumn, foldPolicy="SECOND")
    await step_clock(sessions, autumn + timedelta(seconds=1), at("2027-10-31T01:15:01Z"))
    # The first 02:30 (00:30Z) has passed: the classic job ran at it, the SECOND job waits.
    assert slots(await fired(sessions, classic)) == ["2027-10-30T00:30Z", "2027-10-31T00:30Z"]
    assert slots(await fired(sessions, second)) == ["2027-10-30T00:30Z"]
    async with sessions() as session:
        waiting = await session.get(CronJob, second.id)
    assert waiting is not None and waiting.next_run_at == at("2027-10-31T01:30Z")
    await step_clock(sessions, at("2027-10-31T01:30:01Z"), at("2027-11-01T02:00:01Z"))
    assert slots(await fired(sessions, classic)) == [
        "2027-10-30T00:30Z",
        "2027-10-31T00:30Z",
        "2027-11-01T01:30Z",
    ]
    assert slots(await fired(sessions, second)) == [
        "2027-10-30T00:30Z",
        "2027-10-31T01:30Z",  # 02:30 CET, the second occurrence
        "2027-11-01T01:30Z",
    ]


async def test_a_day_skip_dropped_is_not_reported_as_missed_after_an_outage(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    sessions = own_sessions
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    start = at("2027-03-27T00:00Z")
    classic = await daily_job(sessions, project, start)
    skip = await daily_job(sessions, project, start, gapPolicy="SKIP")
    await fire_due(sessions, now=at("2027-03-27T01:30:01Z"), batch=50)
    # The scheduler is away from then until 2027-03-30 12:00 UTC.
    while (await fire_due(sessions, now=at("2027-03-30T12:00:00Z"), batch=50)).claimed:
        pass

    def outcome(rows: list[Execution]) -> list[tuple[str, str, int | None]]:
        return [
            (slot, row.status, row.missed_count)
            for slot, row in zip(slots(rows), rows, strict=True)
        ]

    # Each fires the latest slot as catch-up and records the older ones as one MISSED row.
    assert outcome(await fired(sessions, classic)) == [
        ("2027-03-27T01:30Z", "PENDING", None),
        ("2027-03-29T00:30Z", "MISSED", 2),  # 2027-03-28 03:00 CEST and 2027-03-29 02:30
        ("2027-03-30T00:30Z", "PENDING", None),
    ]
    assert outcome(await fired(sessions, skip)) == [
        ("2027-03-27T01:30Z", "PENDING", None),
        ("2027-03-29T00:30Z", "MISSED", 1),  # 2027-03-28 had no slot to miss
        ("2027-03-30T00:30Z", "PENDING", None),
    ]
    async with sessions() as session:
        stored = await session.get(CronJob, skip.id)
    assert stored is not None and stored.next_run_at == at("2027-03-31T00:30Z")
