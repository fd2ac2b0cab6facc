"""The scheduler loop while PostgreSQL goes away and returns: it stops firing, loses nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from services.scheduler.loops import schedule_loop
from shared.db.engine import create_engine, session_factory
from shared.db.schema import Execution
from tests.support import factories, processes
from tests.support.proxy import TcpProxy

SLOT = datetime(2033, 5, 1, 9, 0, tzinfo=UTC)


@pytest.mark.postgresql_only(
    reason="cuts the TCP connection to the database server; SQLite is a file in the process"
)
async def test_the_loop_waits_out_a_database_outage_then_fires_what_fell_due(
    fresh_database_url: str,
) -> None:
    direct = session_factory(create_engine(fresh_database_url))
    url = make_url(fresh_database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432, processes.free_port())
    proxied_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    engine = create_engine(proxied_url, pool_size=2)
    sessions = session_factory(engine)
    user_id, _ = await factories.user_with_token(direct)
    project = await factories.project(direct, user_id, local_repo_path="/srv/repo")
    job = await factories.job(direct, project, next_run_at=SLOT)
    now = [SLOT - timedelta(minutes=5)]
    stop, wake = asyncio.Event(), asyncio.Event()
    loop = asyncio.create_task(
        schedule_loop(
            sessions,
            stop=stop,
            wake=wake,
            batch=100,
            max_sleep=0.05,
            clock=lambda: now[0],
            retry_pause=0.05,
        )
    )

    async def fired() -> int:
        async with direct() as session:
            count = await session.scalar(
                select(func.count()).select_from(Execution).where(Execution.job_id == job.id)
            )
        return int(count or 0)

    try:
        await asyncio.sleep(0.3)  # the database is unreachable: passes fail and retry
        assert not loop.done()
        now[0] = SLOT + timedelta(seconds=1)  # the slot passes during the outage
        await asyncio.sleep(0.3)
        assert await fired() == 0
        proxy.restore()
        for _ in range(100):
            if await fired():
                break
            await asyncio.sleep(0.05)
        assert await fired() == 1
        async with direct() as session:
            (execution,) = (await session.scalars(select(Execution))).all()
        assert (execution.scheduled_for, execution.trigger) == (SLOT, "SCHEDULE")
    finally:
        stop.set()
        await asyncio.wait_for(loop, timeout=10)
        proxy.close()
        await engine.dispose()
        await direct.kw["bind"].dispose()
