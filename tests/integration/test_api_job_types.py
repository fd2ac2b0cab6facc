"""Job types through the API and the state machine (on PostgreSQL and SQLite): which types
a job may have, a sync run's recorded activity, an analytics run's digest."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.lifecycle import apply_event
from shared.db.schema import Content, Execution, ExecutionActivity, OutboxMessage
from shared.events import (
    ActivityItem,
    ActivityScanned,
    ActivitySummary,
    Event,
    JobType,
    Repository,
    StepFailed,
    StepStarted,
)
from tests.support.api import new_job, new_project, problem, signed_in
from tests.support.lifecycle import PUBLIC


@pytest.mark.parametrize("job_type", ["GENERATE_CONTENT", "SYNC_GITHUB", "ANALYTICS"])
async def test_each_built_type_is_created_and_shown(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], job_type: str
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)

    job = await new_job(api, headers, project_id, type=job_type)

    assert job["type"] == job_type
    one = (await api.get(f"/api/cron/schedules/{job['id']}", headers=headers)).json()["data"]
    listed = (await api.get("/api/cron/schedules", headers=headers)).json()["data"]
    assert one["type"] == job_type
    assert [row["type"] for row in listed] == [job_type]


async def test_a_job_without_a_type_generates_content_as_the_seed_s_did(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)

    assert (await new_job(api, headers, project_id))["type"] == "GENERATE_CONTENT"


@pytest.mark.parametrize("job_type", ["BACKUP", 7])
async def test_unknown_types_are_refused_naming_the_field(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], job_type: Any
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)

    response = await api.post(
        "/api/cron/schedule",
        headers=headers,
        json={
            "projectId": project_id,
            "name": "x",
            "frequency": "DAILY",
            "timeConfig": {"hour": 9, "minute": 0},
            "type": job_type,
        },
    )

    body = problem(response, 422, "type")
    (error,) = [error for error in body["errors"] if error["field"] == "type"]
    assert error["message"].startswith("Input should be 'GENERATE_CONTENT', 'PUBLISH_CONTENT'")


async def test_a_job_s_type_cannot_change_but_may_be_sent_back_as_it_is(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    job = await new_job(api, headers, project_id, type="SYNC_GITHUB")

    refused = await api.patch(
        "/api/cron/schedule",
        headers=headers,
        json={"jobId": job["id"], "type": "ANALYTICS", "name": "renamed"},
    )
    same = await api.patch(
        "/api/cron/schedule",
        headers=headers,
        json={"jobId": job["id"], "type": "SYNC_GITHUB", "name": "renamed"},
    )

    body = problem(refused, 422, "type")
    assert body["errors"] == [
        {
            "field": "type",
            "message": "a job's type cannot change (this job is SYNC_GITHUB); "
            "create a new job of type ANALYTICS",
        }
    ]
    assert same.status_code == 200, same.text
    assert (same.json()["data"]["type"], same.json()["data"]["name"]) == ("SYNC_GITHUB", "renamed")
    problem(
        await api.patch(
            "/api/cron/schedule", headers=headers, json={"jobId": job["id"], "type": "NOPE"}
        ),
        422,
        "type",
    )


async def triggered(api: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> str:
    response = await api.post("/api/cron/trigger", headers=headers, json={"jobId": job_id})
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


async def execution(sessions: async_sessionmaker[AsyncSession], execution_id: str) -> Execution:
    async with sessions() as session:
        row = await session.get(Execution, execution_id)
    assert row is not None
    return row


def scan_of(run: Execution, job_type: JobType, summary: ActivitySummary) -> ActivityScanned:
    return ActivityScanned(
        execution_id=run.id,
        job_id=run.job_id,
        project_id=run.project_id,
        summary=summary,
        github_api_calls=4,
        platforms=["x"],
        repository=Repository(owner="octo", name="hello"),
        window_start=run.window_start,
        window_end=run.window_end,
        deadline=datetime.now(UTC) + timedelta(minutes=15),
        job_type=job_type,
    )


def envelope(run: Execution) -> dict[str, str]:
    return {"execution_id": run.id, "job_id": run.job_id, "project_id": run.project_id}


async def apply(sessions: async_sessionmaker[AsyncSession], *events: Event) -> None:
    for event in events:
        await apply_event(sessions, event, public_url=PUBLIC)


async def finished_event(
    sessions: async_sessionmaker[AsyncSession], execution_id: str
) -> dict[str, Any]:
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage.payload).where(
                    OutboxMessage.routing_key == "execution.finished",
                    OutboxMessage.payload.contains(execution_id),
                )
            )
        ).all()
    assert len(rows) == 1
    return dict(json.loads(rows[0]))


def week_of_activity(now: datetime) -> ActivitySummary:
    items = [
        ActivityItem(
            kind="commit",
            title=f"fix {n}",
            sha=f"{n:040x}",
            author="ada",
            url=f"https://github.com/octo/hello/commit/{n:040x}",
            at=now - timedelta(hours=n + 1),
        )
        for n in range(3)
    ]
    items.append(
        ActivityItem(
            kind="pull_request",
            title="feat: digests",
            number=12,
            author="zoe",
            url="https://github.com/octo/hello/pull/12",
            at=now - timedelta(hours=5),
        )
    )
    items.append(ActivityItem(kind="issue", title="crash", number=13, author=None, at=None))
    return ActivitySummary(
        commits=3,
        pull_requests=1,
        issues=1,
        contributors=["ada", "zoe"],
        items=items,
        notable=[items[3]],
    )


async def test_a_sync_run_records_its_items_and_says_what_it_synced(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    job = await new_job(api, headers, project_id, type="SYNC_GITHUB")
    run = await execution(sessions, await triggered(api, headers, job["id"]))
    scan = scan_of(run, JobType.SYNC_GITHUB, week_of_activity(datetime.now(UTC)))

    # Every event delivered twice: nothing recorded twice.
    await apply(sessions, StepStarted(**envelope(run), step="scan"), scan, scan)

    view = (await api.get(f"/api/cron/executions/{run.id}", headers=headers)).json()["data"]
    assert view["status"] == "COMPLETED"
    assert view["jobType"] == "SYNC_GITHUB"
    assert view["result"] == "Synced 3 commits, 1 merged pull request, 1 closed issue"
    assert view["metadata"]["activity"] == {"commits": 3, "pullRequests": 1, "issues": 1, "tags": 0}
    assert view["content"] == []
    assert [(item["kind"], item["sha"], item["number"]) for item in view["activity"]] == [
        ("commit", f"{0:040x}", None),
        ("commit", f"{1:040x}", None),
        ("commit", f"{2:040x}", None),
        ("pull_request", None, 12),
        ("issue", None, 13),
    ]
    first = view["activity"][0]
    assert first["title"] == "fix 0" and first["author"] == "ada"
    assert first["url"] == f"https://github.com/octo/hello/commit/{0:040x}"
    assert first["at"].endswith("Z")
    listed = (await api.get(f"/api/cron/executions/{run.id}/activity", headers=headers)).json()
    assert (listed["count"], listed["total"], listed["truncated"]) == (5, 5, False)
    assert listed["data"] == view["activity"]
    async with sessions() as session:
        stored = await session.scalar(
            select(func.count()).where(ExecutionActivity.execution_id == run.id)
        )
        posts = await session.scalar(select(func.count()).where(Content.execution_id == run.id))
    assert (stored, posts) == (5, 0)
    event = await finished_event(sessions, run.id)
    assert (event["status"], event["jobType"]) == ("COMPLETED", "SYNC_GITHUB")
    assert event["result"] == view["result"]
    assert event["digest"] is None
    # Another user sees nothing of it.
    other = await signed_in(sessions)
    hidden = await api.get(f"/api/cron/executions/{run.id}/activity", headers=other)
    assert hidden.status_code == 404


async def test_a_sync_over_a_quiet_window_completes_with_nothing_recorded(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    job = await new_job(api, headers, project_id, type="SYNC_GITHUB")
    run = await execution(sessions, await triggered(api, headers, job["id"]))

    await apply(sessions, scan_of(run, JobType.SYNC_GITHUB, ActivitySummary()))

    view = (await api.get(f"/api/cron/executions/{run.id}", headers=headers)).json()["data"]
    assert view["status"] == "COMPLETED"
    assert view["result"] == "Synced 0 commits, 0 merged pull requests, 0 closed issues"
    assert view["activity"] == []


async def test_a_generate_run_records_no_items(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    job = await new_job(api, headers, project_id)
    run = await execution(sessions, await triggered(api, headers, job["id"]))

    await apply(sessions, scan_of(run, JobType.GENERATE_CONTENT, week_of_activity(run.window_end)))

    view = (await api.get(f"/api/cron/executions/{run.id}", headers=headers)).json()["data"]
    # The generator writes next: the scan alone does not end it, and keeps no items.
    assert (view["status"], view["activity"], view["result"]) == ("PENDING", [], None)
    assert view["jobType"] == "GENERATE_CONTENT"


async def test_an_analytics_run_ends_with_a_digest_of_the_window_and_the_jobs(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    nightly = await new_job(api, headers, project_id, name="nightly", overlapPolicy="ALLOW")
    sync = await new_job(api, headers, project_id, name="sync", type="SYNC_GITHUB")
    digest_job = await new_job(api, headers, project_id, name="numbers", type="ANALYTICS")
    # Elsewhere: another project's job, whose runs are not this project's.
    elsewhere = await new_job(api, headers, await new_project(api, headers), name="far")
    for _ in range(2):
        done = await execution(sessions, await triggered(api, headers, nightly["id"]))
        await apply(sessions, scan_of(done, JobType.GENERATE_CONTENT, ActivitySummary()))
    failed = await execution(sessions, await triggered(api, headers, nightly["id"]))
    await apply(
        sessions,
        StepStarted(**envelope(failed), step="scan"),
        StepFailed(**envelope(failed), step="scan", retriable=False, final=True, error="boom"),
    )
    synced = await execution(sessions, await triggered(api, headers, sync["id"]))
    await apply(sessions, scan_of(synced, JobType.SYNC_GITHUB, ActivitySummary()))
    far = await execution(sessions, await triggered(api, headers, elsewhere["id"]))
    await apply(sessions, scan_of(far, JobType.GENERATE_CONTENT, ActivitySummary()))

    run = await execution(sessions, await triggered(api, headers, digest_job["id"]))
    summary = week_of_activity(run.window_end)
    await apply(
        sessions,
        StepStarted(**envelope(run), step="scan"),
        scan_of(run, JobType.ANALYTICS, summary),
    )

    view = (await api.get(f"/api/cron/executions/{run.id}", headers=headers)).json()["data"]
    assert view["status"] == "COMPLETED"
    assert view["jobType"] == "ANALYTICS"
    assert view["activity"] == [] and view["content"] == []
    digest = view["metadata"]["digest"]
    assert (digest["commits"], digest["pullRequests"], digest["issues"]) == (3, 1, 1)
    assert digest["topAuthors"] == [{"name": "ada", "items": 3}, {"name": "zoe", "items": 1}]
    assert [item["number"] for item in digest["notable"]] == [12]
    # nightly's two completed and one failed, sync's one completed.
    assert (digest["runs"], digest["succeeded"], digest["failed"]) == (4, 3, 1)
    assert digest["successRate"] == 75.0
    by_name = {job["name"]: job for job in digest["jobs"]}
    assert set(by_name) == {"nightly", "sync", "numbers"}
    assert (by_name["nightly"]["runs"], by_name["nightly"]["failed"]) == (3, 1)
    assert by_name["nightly"]["successRate"] == 66.7
    assert by_name["nightly"]["consecutiveFailures"] == 1
    assert by_name["sync"]["type"] == "SYNC_GITHUB"
    # The run itself is still open while its digest is made: not counted in it.
    assert by_name["numbers"]["runs"] == 0
    assert sum(bar["commits"] for bar in digest["timeline"]) == 3
    assert view["result"] == (
        "Digest sent: 3 commits, 1 merged pull request, 1 closed issue; 4 job runs (75% succeeded)"
    )
    event = await finished_event(sessions, run.id)
    assert event["jobType"] == "ANALYTICS"
    assert event["digest"] == digest
    # The list views show it too, as the run's metadata.
    listed = (
        await api.get("/api/cron/executions", headers=headers, params={"jobId": digest_job["id"]})
    ).json()["data"]
    assert listed[0]["metadata"]["digest"] == digest


async def test_a_failed_analytics_run_has_no_digest(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    job = await new_job(api, headers, project_id, type="ANALYTICS")
    run = await execution(sessions, await triggered(api, headers, job["id"]))

    await apply(
        sessions,
        StepFailed(**envelope(run), step="scan", retriable=False, final=True, error="gone"),
    )

    view = (await api.get(f"/api/cron/executions/{run.id}", headers=headers)).json()["data"]
    assert (view["status"], view["result"]) == ("FAILED", None)
    assert "digest" not in view["metadata"]
    event = await finished_event(sessions, run.id)
    assert (event["jobType"], event["digest"]) == ("ANALYTICS", None)
