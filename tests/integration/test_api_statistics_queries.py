"""Statistics read a bounded number of statements, however long a user's history is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import query_count
from services.api.statistics import percentile
from shared.db.schema import Execution
from shared.ids import new_id
from shared.settings import Settings
from tests.support.api import api_client, new_project, signed_in

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def api(
    database_url: str, fresh_amqp_url: str, tmp_path: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url, amqp_url=fresh_amqp_url, local_repos_root=str(tmp_path)
    )
    async for client in api_client(settings):
        yield client


async def user_with_history(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], runs: int
) -> tuple[dict[str, str], str, list[int]]:
    """A user with one job and `runs` finished executions; return headers, job id, durations."""
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    response = await api.post(
        "/api/cron/schedule",
        headers=headers,
        json={
            "projectId": project_id,
            "name": "daily",
            "frequency": "DAILY",
            "timeConfig": {"hour": 9, "minute": 0},
        },
    )
    job = response.json()["data"]
    user_id = await _user_id(api, headers)
    durations = [1000 + (n * 37) % 5000 for n in range(runs)]
    async with sessions() as session, session.begin():
        for n, duration in enumerate(durations):
            at = START + timedelta(minutes=n)
            session.add(
                Execution(
                    id=new_id("exec"),
                    job_id=job["id"],
                    project_id=project_id,
                    user_id=user_id,
                    scheduled_for=at,
                    trigger="SCHEDULE",
                    # Every third run is SKIPPED: never counted, never timed.
                    status="SKIPPED" if n % 3 == 2 else "COMPLETED",
                    window_end=at,
                    started_at=at,
                    completed_at=at + timedelta(milliseconds=duration),
                    duration=None if n % 3 == 2 else duration,
                    metadata_={},
                    created_at=at,
                    updated_at=at,
                )
            )
    counted = [d for n, d in enumerate(durations) if n % 3 != 2]
    return headers, job["id"], counted


async def _user_id(api: httpx.AsyncClient, headers: dict[str, str]) -> str:
    return str((await api.get("/api/me", headers=headers)).json()["data"]["id"])


async def statements(api: httpx.AsyncClient, url: str, headers: dict[str, str]) -> int:
    """How many SQL statements the API ran to answer one GET (the request runs in this task)."""
    with query_count.counting() as counter:
        response = await api.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return counter.statements


@pytest.mark.parametrize(
    "path",
    [
        "/api/cron/executions?stats=true",
        "/api/cron/executions?stats=true&jobId={job}",
        "/api/cron/executions?stats=true&limit=5",
        "/api/cron/schedules/{job}/statistics",
    ],
)
async def test_statistics_run_the_same_few_statements_for_a_short_and_a_long_history(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], path: str
) -> None:
    short_headers, short_job, _ = await user_with_history(api, sessions, 10)
    long_headers, long_job, _ = await user_with_history(api, sessions, 300)

    short = await statements(api, path.format(job=short_job), short_headers)
    long = await statements(api, path.format(job=long_job), long_headers)

    assert short == long
    # Authentication, the page, and at most two for the statistics (the counters and, for
    # all jobs, the percentiles; recent executions come from the page when it starts at 0).
    assert long <= 5


async def test_statistics_of_a_long_history_read_the_last_counted_runs(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers, _, counted = await user_with_history(api, sessions, 300)

    body = (await api.get("/api/cron/executions", headers=headers, params={"stats": "true"})).json()
    stats = body["statistics"]
    short_page = (
        await api.get("/api/cron/executions", headers=headers, params={"stats": "true", "limit": 5})
    ).json()

    last_hundred = counted[-100:]
    assert stats["p50Duration"] == percentile(last_hundred, 0.50)
    assert stats["p95Duration"] == percentile(last_hundred, 0.95)
    assert stats["recentExecutions"] == body["data"][:10]
    assert short_page["statistics"]["recentExecutions"] == body["data"][:10]
    assert len(short_page["data"]) == 5


@pytest.mark.parametrize("of_job", [False, True])
async def test_pages_of_a_long_history_follow_each_other_without_gaps_or_repeats(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], of_job: bool
) -> None:
    headers, job_id, _ = await user_with_history(api, sessions, 130)
    params: dict[str, Any] = {"limit": 40, **({"jobId": job_id} if of_job else {})}
    seen: list[str] = []
    while True:
        body = (await api.get("/api/cron/executions", headers=headers, params=params)).json()
        seen += [row["id"] for row in body["data"]]
        if body["nextCursor"] is None:
            break
        params["cursor"] = body["nextCursor"]

    assert len(seen) == len(set(seen)) == 130
