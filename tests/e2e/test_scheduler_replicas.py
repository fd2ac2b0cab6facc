"""Scheduler replicas as real processes racing on 10,000 due jobs, and one killed mid-batch.

Every replica runs `python -m services.scheduler` with the same shifted clock
(`HERALD_SCHEDULER_CLOCK_OFFSET`), so the jobs are due the moment they start.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.engine import create_engine, session_factory
from shared.db.schema import CronJob, Execution, OutboxMessage
from shared.ids import new_id
from tests.support import factories, processes
from tests.support.polling import poll_async

pytestmark = pytest.mark.e2e

JOBS = 10_000
SLOT = datetime(2031, 1, 1, 9, 0, tzinfo=UTC)
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(fresh_database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(fresh_database_url, application_name="herald-tests")
    yield session_factory(engine)
    await engine.dispose()


async def seed(sessions: Sessions, count: int) -> None:
    """`count` daily 09:00 UTC jobs, all due at SLOT, written in bulk."""
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {
            "id": new_id("cron"),
            "project_id": project.id,
            "user_id": user_id,
            "type": "GENERATE_CONTENT",
            "name": f"job {n}",
            "frequency": "DAILY",
            "time_config": {"hour": 9, "minute": 0, "timezone": "UTC"},
            "schedule": "0 9 * * *",
            "is_enabled": True,
            "max_retries": 3,
            "retry_delay": 300,
            "timeout_seconds": 900,
            "overlap_policy": "SKIP",
            "catchup_window": 86_400,
            "jitter": 0,
            "next_run_at": SLOT,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(count)
    ]
    async with sessions() as session, session.begin():
        await session.execute(insert(CronJob), rows)


async def counts(sessions: Sessions) -> tuple[int, int, int, int]:
    """(executions, distinct jobs fired, job.due rows in the outbox, jobs still due)."""
    async with sessions() as session:
        executions = await session.scalar(select(func.count()).select_from(Execution))
        jobs = await session.scalar(select(func.count(func.distinct(Execution.job_id))))
        dues = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.routing_key == "job.due")
        )
        due = await session.scalar(
            select(func.count()).select_from(CronJob).where(CronJob.next_run_at <= SLOT)
        )
    return int(executions or 0), int(jobs or 0), int(dues or 0), int(due or 0)


def replica_env(database_url: str, amqp_url: str, batch: int = 500) -> dict[str, str]:
    # The replicas' clock reads SLOT + 1 s now, and moves on from there.
    offset = (SLOT + timedelta(seconds=1) - datetime.now(UTC)).total_seconds()
    return {
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "HERALD_SCHEDULER_CLOCK_OFFSET": str(offset),
        "HERALD_SCHEDULER_BATCH": str(batch),
    }


def fired_by(service: processes.Service) -> float:
    """The replica's own count of fired slots, from its /metrics."""
    with httpx.Client(timeout=5) as client:
        text = client.get(f"{service.url}/metrics").text
    for line in text.splitlines():
        if line.startswith('herald_scheduler_fires_total{outcome="fired"}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize("replicas", [2, 4])
async def test_replicas_racing_on_10000_due_jobs_fire_each_exactly_once(
    sessions: Sessions,
    fresh_database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    replicas: int,
) -> None:
    await seed(sessions, JOBS)
    env = replica_env(fresh_database_url, fresh_amqp_url, batch=200)
    services = []
    for n in range(replicas):
        log_dir = tmp_path / f"r{n}"
        log_dir.mkdir()
        services.append(processes.start("scheduler", env, log_dir))
    try:
        await poll_async(lambda: counts(sessions), lambda c: c[3] == 0, timeout=120)
        await asyncio.sleep(0.5)
        shares = [fired_by(service) for service in services]
    finally:
        codes = [processes.stop(service) for service in services]
    assert codes == [0] * replicas, [service.logs() for service in services]
    assert await counts(sessions) == (JOBS, JOBS, JOBS, 0)  # no duplicate, no loss
    assert sum(shares) == JOBS
    # Every replica that started in time took a share (none waited on another's locks).
    assert sum(share > 0 for share in shares) >= 2, shares


async def test_a_replica_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    sessions: Sessions, fresh_database_url: str, fresh_amqp_url: str, tmp_path: Path
) -> None:
    await seed(sessions, JOBS)
    env = replica_env(fresh_database_url, fresh_amqp_url, batch=500)
    (tmp_path / "victim").mkdir()
    (tmp_path / "survivor").mkdir()
    victim = processes.start("scheduler", env, tmp_path / "victim")
    await poll_async(lambda: counts(sessions), lambda c: c[0] >= 1000, timeout=120)
    os.kill(victim.process.pid, signal.SIGKILL)  # between or inside a batch's transaction
    victim.process.wait()
    fired_before = (await counts(sessions))[0]
    assert fired_before < JOBS, "the victim finished before it could be killed"
    survivor = processes.start("scheduler", env, tmp_path / "survivor")
    try:
        await poll_async(lambda: counts(sessions), lambda c: c[3] == 0, timeout=120)
    finally:
        code = processes.stop(survivor)
    assert code == 0, survivor.logs()
    assert await counts(sessions) == (JOBS, JOBS, JOBS, 0)
