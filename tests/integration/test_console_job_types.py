"""The console offers each job type, and each run's page shows its own result."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.lifecycle import apply_event
from shared.db.schema import Execution
from shared.events import ActivityItem, ActivityScanned, ActivitySummary, JobType, Repository
from shared.settings import Settings
from tests.support.api import api_client, new_project
from tests.support.factories import token_on

PUBLIC = "http://herald.test"


@pytest.fixture
async def console(
    database_url: str, fresh_amqp_url: str, tmp_path: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url, amqp_url=fresh_amqp_url, local_repos_root=str(tmp_path)
    )
    async for client in api_client(settings, base_url=PUBLIC):
        yield client


async def signed_in(console: httpx.AsyncClient, database_url: str) -> dict[str, str]:
    token = await token_on(database_url)
    answer = await console.post(
        "/console/signin",
        data={"token": token, "next": "/console/jobs"},
        headers={"Origin": PUBLIC},
    )
    assert answer.status_code == 303
    return {"Authorization": f"Bearer {token}"}


def csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


async def run_with(
    console: httpx.AsyncClient,
    headers: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    job_id: str,
    job_type: JobType,
    summary: ActivitySummary,
) -> str:
    triggered = await console.post("/api/cron/trigger", headers=headers, json={"jobId": job_id})
    assert triggered.status_code == 202, triggered.text
    async with sessions() as session:
        run = await session.get(Execution, triggered.json()["data"]["id"])
    assert run is not None
    scan = ActivityScanned(
        execution_id=run.id,
        job_id=run.job_id,
        project_id=run.project_id,
        summary=summary,
        platforms=["x"],
        repository=Repository(owner="octo", name="hello"),
        window_start=run.window_start,
        window_end=run.window_end,
        deadline=datetime.now(UTC) + timedelta(minutes=15),
        job_type=job_type,
    )
    await apply_event(sessions, scan, public_url=PUBLIC)
    return run.id


def activity(now: datetime) -> ActivitySummary:
    items = [
        ActivityItem(
            kind="pull_request",
            title="feat: <b>digests</b>",
            number=12,
            author="zoe",
            url="https://github.com/octo/hello/pull/12",
            at=now - timedelta(hours=2),
        ),
        ActivityItem(
            kind="commit",
            title="fix: edge",
            sha="a" * 40,
            author="ada",
            at=now - timedelta(hours=3),
        ),
    ]
    return ActivitySummary(
        commits=1, pull_requests=1, contributors=["ada", "zoe"], items=items, notable=items[:1]
    )


async def test_the_form_offers_each_type_and_a_sync_run_shows_what_it_synced(
    console: httpx.AsyncClient, database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(console, database_url)
    project_id = await new_project(console, headers)
    form = await console.get(f"/console/jobs/new?projectId={project_id}")
    assert 'value="GENERATE_CONTENT" aria-describedby' in form.text
    assert "records its commits, merged pull requests and closed issues" in form.text
    assert 'value="ANALYTICS"' in form.text

    created = await console.post(
        "/console/jobs/new",
        data={
            "csrf": csrf(form.text),
            "projectId": project_id,
            "type": "SYNC_GITHUB",
            "name": "mirror",
            "frequency": "DAILY",
            "timeConfig.hour": "9",
            "timeConfig.minute": "0",
            "timeConfig.timezone": "UTC",
            "overlapPolicy": "SKIP",
        },
        headers={"Origin": PUBLIC},
    )
    assert created.status_code == 303, created.text
    job_id = created.headers["location"].split("/console/jobs/")[1].split("?")[0]
    job_page = await console.get(f"/console/jobs/{job_id}")
    assert "Sync activity" in job_page.text
    edit = await console.get(f"/console/jobs/{job_id}/edit")
    assert 'name="type"' not in edit.text
    assert "A job keeps its type" in edit.text

    run_id = await run_with(
        console, headers, sessions, job_id, JobType.SYNC_GITHUB, activity(datetime.now(UTC))
    )
    page = (await console.get(f"/console/executions/{run_id}")).text

    assert "Synced 1 commit, 1 merged pull request, 0 closed issues." in page
    assert 'id="synced"' in page
    link = '<a href="https://github.com/octo/hello/pull/12" rel="noopener noreferrer">#12</a>'
    assert link in page
    assert "feat: &lt;b&gt;digests&lt;/b&gt;" in page
    assert ">aaaaaaa<" in page
    assert 'id="posts-title"' not in page


async def test_an_analytics_run_shows_its_digest_and_chart(
    console: httpx.AsyncClient, database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(console, database_url)
    project_id = await new_project(console, headers)
    created = await console.post(
        "/api/cron/schedule",
        headers=headers,
        json={
            "projectId": project_id,
            "type": "ANALYTICS",
            "name": "numbers",
            "frequency": "WEEKLY",
            "timeConfig": {"hour": 9, "minute": 0, "dayOfWeek": 1},
        },
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["data"]["id"]

    run_id = await run_with(
        console, headers, sessions, job_id, JobType.ANALYTICS, activity(datetime.now(UTC))
    )
    page = (await console.get(f"/console/executions/{run_id}")).text

    assert 'id="digest"' in page
    assert re.search(r'<rect class="bar pulls" x="[\d.]+" y="[\d.]+" width="[\d.]+"', page)
    assert re.search(r'<rect class="bar commits"', page)
    # A weekly job's first run looks a week back: a bar a day.
    assert re.search(r"One bar per day, [A-Z][a-z]{2} \d\d to [A-Z][a-z]{2} \d\d \(UTC\)\.", page)
    assert re.search(r"Most active</h3>\s*<p>ada \(1\), zoe \(1\)</p>", page)
    assert "Digest sent: 1 commit, 1 merged pull request, 0 closed issues" in page
    assert 'id="digest-jobs"' in page and "numbers</a>" in page
    # No inline style: the console's policy allows none.
    assert "style=" not in page
