"""The API beyond the seed: cancel, previews, profile, preferences, statistics, triggers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api import query_count
from services.api.lifecycle import apply_event, sweep_timeouts
from services.api.statistics import record_finished
from shared.db.engine import create_engine, session_factory
from shared.db.schema import Execution, JobStatistics, OutboxMessage
from shared.events import Event, StepFailed, StepStarted
from shared.ids import new_id
from shared.settings import Settings
from tests.support.api import api_client, new_job, new_project, problem, signed_in

PUBLIC = "http://herald.test"


async def outbox_events(
    sessions: async_sessionmaker[AsyncSession], routing_key: str, execution_id: str
) -> list[dict[str, Any]]:
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.routing_key == routing_key,
                    OutboxMessage.payload.contains(execution_id),
                )
            )
        ).all()
    return [json.loads(row.payload) for row in rows]


async def test_cancelling_a_pending_run_counts_it_and_tells_the_workers(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    job = await new_job(api, headers, await new_project(api, headers))
    triggered = await api.post("/api/cron/trigger", headers=headers, json={"jobId": job["id"]})
    execution_id = triggered.json()["data"]["id"]

    response = await api.post(f"/api/cron/executions/{execution_id}/cancel", headers=headers)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["status"] == "CANCELLED"
    assert data["completedAt"] is not None
    finished = await outbox_events(sessions, "execution.finished", execution_id)
    assert [event["status"] for event in finished] == ["CANCELLED"]
    assert len(await outbox_events(sessions, "execution.cancelled", execution_id)) == 1
    stats = (await api.get(f"/api/cron/schedules/{job['id']}/statistics", headers=headers)).json()[
        "data"
    ]
    assert (stats["totalCancelled"], stats["totalRuns"]) == (1, 0)
    again = await api.post(f"/api/cron/executions/{execution_id}/cancel", headers=headers)
    assert problem(again, 409)["executionStatus"] == "CANCELLED"


async def test_statistics_of_a_job_without_runs_have_the_seed_shape(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    job = await new_job(api, headers, await new_project(api, headers))
    response = await api.get(f"/api/cron/schedules/{job['id']}/statistics", headers=headers)
    assert response.status_code == 200, response.text
    stats = response.json()["data"]
    assert stats["successRate"] == "0.00"
    assert stats["avgDuration"] is None
    assert stats["nextRun"] == job["nextRunAt"]
    assert stats["recentExecutions"] == []
    assert {"p50Duration", "p95Duration", "consecutiveFailures", "lastSuccess"} <= stats.keys()


async def test_previews_show_local_user_and_utc_times_with_dst_notes(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    me = await api.patch("/api/me", headers=headers, json={"timezone": "Asia/Tokyo"})
    assert me.json()["data"]["timezone"] == "Asia/Tokyo"
    # Sundays at 02:30 in New York for 60 weeks: one spring-forward Sunday at least.
    spec = {
        "frequency": "WEEKLY",
        "timeConfig": {"hour": 2, "minute": 30, "dayOfWeek": 0, "timezone": "America/New_York"},
        "count": 60,
    }
    response = await api.post("/api/cron/schedule/preview", headers=headers, json=spec)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["schedule"] == "30 2 * * 0"
    assert response.json()["count"] == 60
    assert all(run["utc"].endswith("Z") for run in data["runs"])
    assert all(run["userLocal"].endswith("+09:00") for run in data["runs"])
    moved = [run for run in data["runs"] if run["note"]]
    assert moved and moved[0]["local"].endswith("T03:00:00-04:00"), moved

    job = await new_job(
        api, headers, await new_project(api, headers), frequency="CUSTOM", schedule="0 9 * * 1-5"
    )
    saved = await api.get(
        f"/api/cron/schedules/{job['id']}/preview", headers=headers, params={"count": 3}
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["data"]["runs"][0]["utc"] == job["nextRunAt"].replace(".000Z", "Z")

    bad = {"frequency": "DAILY", "timeConfig": {"hour": 24, "minute": 0}}
    problem(
        await api.post("/api/cron/schedule/preview", headers=headers, json=bad),
        422,
        "timeConfig.hour",
    )
    problem(
        await api.get(
            f"/api/cron/schedules/{job['id']}/preview", headers=headers, params={"count": 0}
        ),
        422,
        "count",
    )


async def test_the_profile_keeps_a_valid_time_zone(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    me = (await api.get("/api/me", headers=headers)).json()["data"]
    assert me["timezone"] == "UTC"
    assert {"id", "email", "name"} <= me.keys()
    problem(
        await api.patch("/api/me", headers=headers, json={"timezone": "Mars/Base"}), 422, "timezone"
    )
    updated = await api.patch(
        "/api/me", headers=headers, json={"name": "Ada", "timezone": "Europe/Berlin"}
    )
    assert updated.json()["data"] | {"id": me["id"]} == {
        **me,
        "name": "Ada",
        "timezone": "Europe/Berlin",
    }


async def test_notification_preferences_live_on_the_project(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    url = f"/api/projects/{project_id}/notification-settings"
    defaults = (await api.get(url, headers=headers)).json()["data"]
    assert defaults["emailNotifications"] is True
    assert defaults["notificationEvents"] == ["job_success", "job_failure", "job_partial"]
    wanted = {
        "emailNotifications": False,
        "notificationEvents": ["job_failure"],
        "recipients": ["ops@herald-example.com"],
        "failureThreshold": 3,
    }
    put = await api.put(url, headers=headers, json=wanted)
    assert put.status_code == 200, put.text
    shown = (await api.get(url, headers=headers)).json()["data"]
    assert {key: shown[key] for key in wanted} == wanted
    project = (await api.get(f"/api/projects/{project_id}", headers=headers)).json()["data"]
    assert project["notificationSettings"] == shown
    problem(
        await api.put(url, headers=headers, json={"notificationEvents": ["job_exploded"]}),
        422,
        "notificationEvents.0",
    )


async def test_triggers_are_idempotent_by_key_and_work_on_disabled_jobs(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    job = await new_job(api, headers, project_id, isEnabled=False, overlapPolicy="ALLOW")
    other = await new_job(api, headers, project_id)
    keyed = {**headers, "Idempotency-Key": "run-2026-11-27"}

    first = await api.post("/api/cron/trigger", headers=keyed, json={"jobId": job["id"]})
    second = await api.post("/api/cron/trigger", headers=keyed, json={"jobId": job["id"]})

    assert first.status_code == 202, first.text
    assert second.status_code == 202, second.text
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json()["data"]["id"] == second.json()["data"]["id"]
    assert first.json()["data"]["trigger"] == "MANUAL"
    listed = await api.get("/api/cron/executions", headers=headers, params={"jobId": job["id"]})
    assert listed.json()["count"] == 1
    problem(
        await api.post("/api/cron/trigger", headers=keyed, json={"jobId": other["id"]}),
        422,
        "Idempotency-Key",
    )
    # Without a key, ALLOW starts another run alongside the open one.
    third = await api.post("/api/cron/trigger", headers=headers, json={"jobId": job["id"]})
    assert third.status_code == 202
    assert third.json()["data"]["id"] != first.json()["data"]["id"]


async def test_a_manual_trigger_follows_the_skip_overlap_policy(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    job = await new_job(api, headers, await new_project(api, headers))
    assert job["overlapPolicy"] == "SKIP"
    first = await api.post("/api/cron/trigger", headers=headers, json={"jobId": job["id"]})
    busy = await api.post("/api/cron/trigger", headers=headers, json={"jobId": job["id"]})
    assert problem(busy, 409)["executionId"] == first.json()["data"]["id"]
    await api.post(f"/api/cron/executions/{first.json()['data']['id']}/cancel", headers=headers)
    again = await api.post("/api/cron/trigger", headers=headers, json={"jobId": job["id"]})
    assert again.status_code == 202, again.text


@pytest.fixture
async def quiet_api(
    fresh_database_url: str, fresh_amqp_url: str, tmp_path: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, async_sessionmaker[AsyncSession]]]:
    """An api on a database of its own whose sweeper waits an hour: what a test's own sweep
    finds is then not taken first by a running app's sweeper (this one, or another test's
    on the shared database)."""
    settings = Settings(
        database_url=fresh_database_url,
        amqp_url=fresh_amqp_url,
        local_repos_root=str(tmp_path),
        api_sweep_interval=3600,
    )
    engine = create_engine(fresh_database_url)
    async for client in api_client(settings, base_url=PUBLIC):
        yield client, session_factory(engine)
    await engine.dispose()


async def test_the_sweeper_times_out_runs_past_their_deadline(
    quiet_api: tuple[httpx.AsyncClient, async_sessionmaker[AsyncSession]],
) -> None:
    api, sessions = quiet_api
    headers = await signed_in(sessions)
    job = await new_job(api, headers, await new_project(api, headers))
    triggered = await api.post("/api/cron/trigger", headers=headers, json={"jobId": job["id"]})
    execution_id = triggered.json()["data"]["id"]
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Execution)
            .where(Execution.id == execution_id)
            .values(
                status="RUNNING",
                started_at=now - timedelta(hours=1),
                deadline=now - timedelta(minutes=1),
            )
        )

    swept = await sweep_timeouts(sessions, now=now, grace=timedelta(seconds=30), public_url=PUBLIC)

    assert swept >= 1
    data = (await api.get(f"/api/cron/executions/{execution_id}", headers=headers)).json()["data"]
    assert data["status"] == "TIMEOUT"
    assert data["duration"] == 3_600_000
    assert [
        event["status"]
        for event in await outbox_events(sessions, "execution.finished", execution_id)
    ] == ["TIMEOUT"]
    stats = (await api.get(f"/api/cron/schedules/{job['id']}/statistics", headers=headers)).json()[
        "data"
    ]
    assert (stats["totalFailures"], stats["consecutiveFailures"]) == (1, 1)
    assert await sweep_timeouts(sessions, now=now, grace=timedelta(0), public_url=PUBLIC) >= 0
    again = (await api.get(f"/api/cron/executions/{execution_id}", headers=headers)).json()["data"]
    assert again["completedAt"] == data["completedAt"]


async def test_events_record_the_statements_run_on_the_executions_behalf(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    query_count.install(engine.sync_engine)
    headers = await signed_in(sessions)
    job = await new_job(api, headers, await new_project(api, headers))
    triggered = (
        await api.post("/api/cron/trigger", headers=headers, json={"jobId": job["id"]})
    ).json()["data"]
    envelope = {
        "execution_id": triggered["id"],
        "job_id": job["id"],
        "project_id": job["projectId"],
    }

    async def applied(event: Event) -> tuple[int, int]:
        """The execution's dbQueries after `event`, and the statements its batch ran."""
        with query_count.counting() as counter:
            await apply_event(sessions, event, public_url=PUBLIC)
        url = f"/api/cron/executions/{triggered['id']}"
        data = (await api.get(url, headers=headers)).json()["data"]
        return data["metadata"]["dbQueries"], counter.statements - opening

    # SQLite's engine opens a transaction with a statement (BEGIN IMMEDIATE), run for the
    # batch before it touches any execution; PostgreSQL's BEGIN is no cursor statement.
    opening = 1 if engine.dialect.name == "sqlite" else 0

    after_one, ran_one = await applied(StepStarted(**envelope, step="scan"))
    after_two, ran_two = await applied(StepStarted(**envelope, step="generate"))
    # A failure that ends the run also writes the job's counters, the outbox and its NOTIFY.
    final = StepFailed(
        **envelope, step="generate", retriable=False, final=True, error="model refused"
    )
    after_three, ran_three = await applied(final)

    # A batch of one execution's events runs every statement on its behalf, so its count
    # is exactly what SQLAlchemy saw the batch run (claim, load, timeline, update, ...).
    assert after_one == ran_one >= 4
    assert after_two - after_one == ran_two
    assert after_three - after_two == ran_three > ran_two
    # A redelivered event runs only the inbox claim, on no execution's behalf.
    again, ran_again = await applied(final)
    assert (again, ran_again) == (after_three, 1)
    if engine.dialect.name == "postgresql":
        assert ran_three - ran_two >= 4  # counters load and update, outbox, NOTIFY


async def test_statistics_without_a_job_sum_every_live_job_of_the_caller(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    first, second, gone = [await new_job(api, headers, project_id) for _ in range(3)]
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with sessions() as session, session.begin():
        for job, success, failures, streak in (
            (first, 3, 1, 0),
            (second, 1, 2, 2),
            (gone, 50, 50, 9),
        ):
            await session.execute(
                update(JobStatistics)
                .where(JobStatistics.job_id == job["id"])
                .values(
                    total_success=success,
                    total_failures=failures,
                    total_duration_ms=1000 * (success + failures),
                    timed_runs=success + failures,
                    consecutive_failures=streak,
                    last_run_at=at if job is second else None,
                )
            )
    await api.delete(f"/api/cron/schedules/{gone['id']}", headers=headers)

    stats = (
        await api.get("/api/cron/executions", headers=headers, params={"stats": "true"})
    ).json()["statistics"]

    assert (stats["totalRuns"], stats["totalSuccess"], stats["totalFailures"]) == (7, 4, 3)
    assert stats["successRate"] == "57.14"
    assert stats["avgDuration"] == 1000
    assert stats["consecutiveFailures"] == 2
    assert stats["lastRun"] == "2026-01-02T03:04:05Z"
    assert stats["nextRun"] == min(first["nextRunAt"], second["nextRunAt"])


async def _finished(
    sessions: async_sessionmaker[AsyncSession], job: dict[str, Any], status: str, at: datetime
) -> None:
    """An execution of `job` that ended with `status` at `at`, counted as the API counts it."""
    async with sessions() as session, session.begin():
        user_id = await session.scalar(
            select(JobStatistics.user_id).where(JobStatistics.job_id == job["id"])
        )
        execution = Execution(
            id=new_id("exec"),
            job_id=job["id"],
            project_id=job["projectId"],
            user_id=user_id,
            scheduled_for=at,
            trigger="MANUAL",
            status=status,
            attempt=1,
            window_end=at,
            started_at=at - timedelta(seconds=1),
            completed_at=at,
            duration=1000,
            metadata_={},
            created_at=at,
            updated_at=at,
        )
        session.add(execution)
        await record_finished(session, execution)


async def test_the_aggregate_failure_streak_is_the_longest_current_one_and_names_its_job(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    failing = await new_job(api, headers, project_id, name="Nightly digest")
    recovered = await new_job(api, headers, project_id, name="Weekly digest")
    once = await new_job(api, headers, project_id, name="Monthly digest")
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    stats = (
        await api.get("/api/cron/executions", headers=headers, params={"stats": "true"})
    ).json()["statistics"]
    assert stats["consecutiveFailures"] == 0
    assert stats["consecutiveFailuresJobId"] is None
    assert stats["consecutiveFailuresJobName"] is None

    await _finished(sessions, recovered, "FAILED", at)
    await _finished(sessions, failing, "FAILED", at + timedelta(hours=1))
    await _finished(sessions, once, "TIMEOUT", at + timedelta(hours=2))
    await _finished(sessions, failing, "FAILED", at + timedelta(hours=3))
    await _finished(sessions, recovered, "COMPLETED", at + timedelta(hours=4))

    stats = (
        await api.get("/api/cron/executions", headers=headers, params={"stats": "true"})
    ).json()["statistics"]

    # The longest current streak (not the sum of 2 and 1), named; the last run is a success.
    assert stats["consecutiveFailures"] == 2
    assert stats["consecutiveFailuresJobId"] == failing["id"]
    assert stats["consecutiveFailuresJobName"] == "Nightly digest"
    assert stats["lastRun"] == "2026-03-02T13:00:00Z"
    assert stats["lastSuccess"] == stats["lastRun"]
    # A job's own statistics keep its own streak and name no other job.
    own = (
        await api.get(f"/api/cron/schedules/{recovered['id']}/statistics", headers=headers)
    ).json()["data"]
    assert own["consecutiveFailures"] == 0
    assert "consecutiveFailuresJobId" not in own
    of_job = (
        await api.get(
            "/api/cron/executions",
            headers=headers,
            params={"stats": "true", "jobId": once["id"]},
        )
    ).json()["statistics"]
    assert of_job["consecutiveFailures"] == 1
    assert "consecutiveFailuresJobId" not in of_job

    # Of two equal streaks, the one that failed last is named.
    await _finished(sessions, once, "FAILED", at + timedelta(hours=5))
    stats = (
        await api.get("/api/cron/executions", headers=headers, params={"stats": "true"})
    ).json()["statistics"]
    assert stats["consecutiveFailures"] == 2
    assert stats["consecutiveFailuresJobName"] == "Monthly digest"
