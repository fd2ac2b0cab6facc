"""Time-zone rules changing under running schedulers: next runs computed again, once.

`Herald/Test` starts as a copy of Europe/Berlin in a database of the test's own, version
2098a; the test then gives it Asia/Tokyo's rules as version 2099a, while two claim loops
run on one database, as two replicas would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler import moves
from services.scheduler.loops import schedule_loop
from services.scheduler.zone_rules import ZoneRules
from shared import metrics
from shared.db.schema import CronJob, OutboxMessage, SchedulingState
from tests.support import factories
from tests.support.zones import ZONE, OwnRules, own_rules

NOW = datetime(2033, 1, 10, 12, 0, tzinfo=UTC)
BERLIN_NINE = datetime(2033, 1, 11, 8, 0, tzinfo=UTC)  # 09:00 CET
TOKYO_NINE = datetime(2033, 1, 11, 0, 0, tzinfo=UTC)  # 09:00 JST
UTC_NINE = datetime(2033, 1, 11, 9, 0, tzinfo=UTC)


async def state(sessions: async_sessionmaker[AsyncSession]) -> SchedulingState | None:
    async with sessions() as session:
        return await session.get(SchedulingState, moves.ZONE_RULES)


async def until(check: Callable[[], Awaitable[bool]], *, what: str) -> None:
    for _ in range(400):
        if await check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"timed out waiting until {what}")


@pytest.fixture
def rules(tmp_path: Path) -> Iterator[OwnRules]:
    with own_rules(tmp_path, like="Europe/Berlin", version="2098a") as found:
        yield found


async def test_new_rules_move_next_runs_once_across_two_running_loops(
    own_sessions: async_sessionmaker[AsyncSession], rules: OwnRules
) -> None:
    sessions = own_sessions
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    in_zone = {"hour": 9, "minute": 0, "timezone": ZONE}
    # More jobs in the zone than a batch holds: the work spans batches and both loops.
    moving = [
        await factories.job(sessions, project, next_run_at=BERLIN_NINE, time_config=in_zone)
        for _ in range(7)
    ]
    in_utc = await factories.job(sessions, project, next_run_at=UTC_NINE)
    disabled = await factories.job(
        sessions, project, next_run_at=BERLIN_NINE, time_config=in_zone, is_enabled=False
    )
    counted_before = metrics.SCHEDULER_TZ_RECOMPUTED._value.get()
    stop = asyncio.Event()

    loops = [
        asyncio.create_task(
            schedule_loop(
                sessions,
                stop=stop,
                wake=asyncio.Event(),
                batch=3,
                max_sleep=0.02,
                clock=lambda: NOW,
                zone_rules=ZoneRules(check_every=0.05),
            )
        )
        for _ in range(2)
    ]

    async def recorded(version: str) -> bool:
        found = await state(sessions)
        return found is not None and (found.version, found.target_version) == (version, None)

    try:
        # 1. A database with no version recorded takes the running one and moves nothing.
        await until(lambda: recorded("2098a"), what="2098a is recorded")
        adopted = await state(sessions)
        assert adopted is not None
        assert adopted.moved == 0
        # 2. The rules change on disk under the running loops.
        rules.swap("Asia/Tokyo", version="2099a")
        await until(lambda: recorded("2099a"), what="2099a is recorded")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*loops), timeout=10)

    async with sessions() as session:
        stored = {job.id: job.next_run_at for job in (await session.scalars(select(CronJob))).all()}
        sent = [
            json.loads(row.payload)
            for row in (
                await session.scalars(
                    select(OutboxMessage).where(OutboxMessage.routing_key == "schedule.moved")
                )
            ).all()
        ]
    final = await state(sessions)

    assert {stored[job.id] for job in moving} == {TOKYO_NINE}
    assert stored[in_utc.id] == UTC_NINE  # its zone did not change: not touched
    assert stored[disabled.id] == BERLIN_NINE  # only enabled jobs move
    assert final is not None
    assert final.moved == len(moving)
    assert metrics.SCHEDULER_TZ_RECOMPUTED._value.get() - counted_before == len(moving)
    # One event per moved job, for its owner, however many loops ran.
    assert sorted(event["jobId"] for event in sent) == sorted(job.id for job in moving)
    for event in sent:
        assert event["userId"] == user_id
        assert event["executionId"] == ""
        assert (event["previousRulesVersion"], event["rulesVersion"]) == ("2098a", "2099a")
        assert event["timezone"] == ZONE
        assert datetime.fromisoformat(event["previousRunAt"]) == BERLIN_NINE
        assert datetime.fromisoformat(event["nextRunAt"]) == TOKYO_NINE
        assert event["link"].endswith(f"/console/jobs/{event['jobId']}")


async def test_an_older_scheduler_does_not_move_back_what_a_newer_one_moved(
    own_sessions: async_sessionmaker[AsyncSession], rules: OwnRules
) -> None:
    sessions = own_sessions
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    job = await factories.job(
        sessions,
        project,
        next_run_at=TOKYO_NINE,
        time_config={"hour": 9, "minute": 0, "timezone": ZONE},
    )
    async with sessions() as session, session.begin():
        session.add(
            SchedulingState(name=moves.ZONE_RULES, version="2099a", moved=0, updated_at=NOW)
        )

    step = await moves.step(
        sessions, version="2098a", now=NOW, batch=10, public_url="http://127.0.0.1:8000"
    )

    async with sessions() as session:
        stored = await session.get(CronJob, job.id)
        events = (await session.scalars(select(OutboxMessage))).all()
    assert (step.moved, step.more, step.recorded) == (0, False, "2099a")
    assert stored is not None
    assert stored.next_run_at == TOKYO_NINE
    assert events == []


class FailingRules(ZoneRules):
    """Rules whose recompute always fails (a bug, a lost table): counted, never fatal."""

    def __init__(self) -> None:
        super().__init__(check_every=0.0)
        self.failures = 0

    async def keep_current(self, *_args: object, **_kwargs: object) -> bool:
        self.failures += 1
        raise RuntimeError("recompute broke")


async def test_a_failing_recompute_never_stops_firing(
    own_sessions: async_sessionmaker[AsyncSession], rules: OwnRules
) -> None:
    sessions = own_sessions
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    due = await factories.job(sessions, project, next_run_at=NOW)
    failing = FailingRules()
    stop = asyncio.Event()
    loop = asyncio.create_task(
        schedule_loop(
            sessions,
            stop=stop,
            wake=asyncio.Event(),
            batch=10,
            max_sleep=0.02,
            clock=lambda: NOW,
            zone_rules=failing,
        )
    )

    async def fired() -> bool:
        async with sessions() as session:
            job = await session.get(CronJob, due.id)
            return job is not None and job.last_run_at == NOW

    try:
        await until(fired, what="the due job fired")
        await until(lambda: _at_least(failing.failures, 2), what="the recompute was retried")
    finally:
        stop.set()
        await asyncio.wait_for(loop, timeout=10)
    assert not loop.cancelled() and loop.exception() is None


async def _at_least(value: int, least: int) -> bool:
    return value >= least
