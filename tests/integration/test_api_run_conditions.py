"""Run conditions: stored and shown by the API, applied by the state machine, and the
activity window a condition-skipped run leaves to the next one (on PostgreSQL and SQLite)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.lifecycle import apply_event
from services.scheduler.claims import fire_due
from shared.db.schema import CronJob, Execution, ExecutionStep, JobStatistics, OutboxMessage
from shared.dispatch import window_start_for
from shared.events import (
    ActivityItem,
    ActivityScanned,
    ActivitySummary,
    ContentGenerated,
    PostResult,
    Repository,
    StepStarted,
)
from shared.ids import new_id
from tests.support import factories
from tests.support.api import new_job, new_project, problem, signed_in

PUBLIC = "http://herald.test"
DAY = timedelta(days=1)
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)

CONDITIONS = {
    "minCommits": 5,
    "includePaths": ["src/**"],
    "excludeLabels": ["chore"],
    "accumulate": True,
}
STORED = {
    "minCommits": 5,
    "minPullRequests": None,
    "minIssues": None,
    "minTotal": None,
    "includePaths": ["src/**"],
    "excludePaths": [],
    "includeLabels": [],
    "excludeLabels": ["chore"],
    "ignoreAuthors": ["dependabot[bot]", "renovate[bot]"],
    "accumulate": True,
}


async def test_a_job_keeps_its_conditions_and_every_view_shows_them(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    job = await new_job(api, headers, project_id, conditions=CONDITIONS)
    plain = await new_job(api, headers, project_id, name="plain")
    assert job["conditions"] == STORED
    assert plain["conditions"] is None
    one = (await api.get(f"/api/cron/schedules/{job['id']}", headers=headers)).json()["data"]
    assert one["conditions"] == STORED
    listed = (await api.get("/api/cron/schedules", headers=headers)).json()["data"]
    assert {item["id"]: item["conditions"] for item in listed} == {
        job["id"]: STORED,
        plain["id"]: None,
    }

    changed = await api.patch(
        "/api/cron/schedule",
        headers=headers,
        json={"jobId": job["id"], "conditions": {"minTotal": 2, "ignoreAuthors": []}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["conditions"] == {
        **{key: None for key in ("minCommits", "minPullRequests", "minIssues")},
        "minTotal": 2,
        **{key: [] for key in ("includePaths", "excludePaths", "includeLabels", "excludeLabels")},
        "ignoreAuthors": [],
        "accumulate": False,
    }
    # Another field changed leaves the conditions as they are; null removes them.
    renamed = await api.patch(
        "/api/cron/schedule", headers=headers, json={"jobId": job["id"], "name": "weekly-ish"}
    )
    assert renamed.json()["data"]["conditions"]["minTotal"] == 2
    cleared = await api.patch(
        "/api/cron/schedule", headers=headers, json={"jobId": job["id"], "conditions": None}
    )
    assert cleared.json()["data"]["conditions"] is None


async def test_bad_conditions_are_refused_naming_every_field_at_fault(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    response = await api.post(
        "/api/cron/schedule",
        headers=headers,
        json={
            "projectId": project_id,
            "name": "daily",
            "frequency": "DAILY",
            "timeConfig": {"hour": 24, "minute": 0},
            "conditions": {
                "minCommits": 0,
                "minTotal": "5",
                "includePaths": ["/src/**"],
                "excludeLabels": ["x" * 51],
                "ignoreAuthors": "dependabot[bot]",
                "accumulate": "yes",
                "minAny": 1,
            },
        },
    )
    body = problem(response, 422)
    errors = {error["field"]: error["message"] for error in body["errors"]}
    assert set(errors) == {
        "timeConfig.hour",
        "conditions.minCommits",
        "conditions.minTotal",
        "conditions.includePaths.0",
        "conditions.excludeLabels.0",
        "conditions.ignoreAuthors",
        "conditions.accumulate",
        "conditions.minAny",
    }
    assert "greater than or equal to 1" in errors["conditions.minCommits"]
    assert "no leading /" in errors["conditions.includePaths.0"]
    assert "at most 50 characters" in errors["conditions.excludeLabels.0"]


async def started_run(
    sessions: async_sessionmaker[AsyncSession], **job_fields: Any
) -> tuple[CronJob, dict[str, str]]:
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    job = await factories.job(sessions, project, next_run_at=None, **job_fields)
    execution = execution_row(job, status="PENDING", start=None, end=T0)
    async with sessions() as session, session.begin():
        session.add(execution)
    return job, {"execution_id": execution.id, "job_id": job.id, "project_id": project.id}


def execution_row(
    job: CronJob, *, status: str, start: datetime | None, end: datetime, **fields: Any
) -> Execution:
    return Execution(
        id=new_id("exec"),
        job_id=job.id,
        project_id=job.project_id,
        user_id=job.user_id,
        scheduled_for=end,
        trigger="SCHEDULE",
        status=status,
        window_start=start,
        window_end=end,
        deadline=datetime.now(UTC) + timedelta(minutes=15),
        metadata_={},
        **fields,
    )


def scanned(envelope: dict[str, str], *, commits: int, skip_reason: str | None) -> ActivityScanned:
    items = [ActivityItem(kind="commit", title=f"c{n}", sha=f"{n:040x}") for n in range(commits)]
    return ActivityScanned(
        **envelope,
        summary=ActivitySummary(commits=commits, items=items),
        github_api_calls=2,
        platforms=["x"],
        repository=Repository(local_path="/srv/repo"),
        window_start=None,
        window_end=T0,
        deadline=datetime.now(UTC) + timedelta(minutes=15),
        skip_reason=skip_reason,
    )


async def test_unmet_conditions_end_the_run_skipped_with_its_reason(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    job, envelope = await started_run(sessions, conditions={"minCommits": 5})
    reason = "3 commits, fewer than the 5 required"
    late = ContentGenerated(**envelope, results=[PostResult(platform="x", status="GENERATED")])
    for event in (
        StepStarted(**envelope, step="scan"),
        scanned(envelope, commits=3, skip_reason=reason),
        late,  # never expected; a terminal run ignores it
    ):
        await apply_event(sessions, event, public_url=PUBLIC)

    async with sessions() as session:
        stored = await session.get(Execution, envelope["execution_id"])
        stats = await session.get(JobStatistics, job.id)
        steps = (
            await session.scalars(
                select(ExecutionStep)
                .where(ExecutionStep.execution_id == envelope["execution_id"])
                .order_by(ExecutionStep.id)
            )
        ).all()
        finished = (
            await session.scalars(
                # This run's only: the session's database holds other tests' messages too.
                select(OutboxMessage).where(
                    OutboxMessage.routing_key == "execution.finished",
                    OutboxMessage.payload.contains(envelope["execution_id"]),
                )
            )
        ).all()
    assert stored is not None and stats is not None
    assert (stored.status, stored.skip_reason) == ("SKIPPED", reason)
    assert stored.error_message is None and stored.items_processed == 0
    assert stored.metadata_["activity"]["commits"] == 3
    assert [(s.step, s.kind, s.detail) for s in steps][-3:] == [
        ("scan", "completed", "3 commits, 0 pull requests, 0 issues, 0 tags"),
        ("conditions", "unmet", reason),
        ("execution", "skipped", None),
    ]
    assert (stats.total_skipped, stats.total_success, stats.total_failures) == (1, 0, 0)
    assert stats.last_status is None  # a skip is no run: success and failure streaks stand
    [event] = [json.loads(row.payload) for row in finished]
    assert (event["status"], event["skipReason"]) == ("SKIPPED", reason)


async def test_a_condition_skip_uses_its_window_up_unless_the_job_accumulates(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    plain = await factories.job(sessions, project, next_run_at=None, conditions={"minCommits": 5})
    keeping, alone = [
        await factories.job(
            sessions, project, next_run_at=None, conditions={"minCommits": 5, "accumulate": True}
        )
        for _ in range(2)
    ]
    async with sessions() as session, session.begin():
        for job in (plain, keeping):
            session.add(execution_row(job, status="COMPLETED", start=T0 - DAY, end=T0))
            session.add(
                execution_row(
                    job, status="SKIPPED", start=T0, end=T0 + DAY, skip_reason="0 commits, ..."
                )
            )
            # Skipped by the overlap policy: it never scanned, so it used nothing up.
            session.add(execution_row(job, status="SKIPPED", start=T0, end=T0 + 2 * DAY))
        # Never completed: its skipped runs all opened where its first one did.
        for end in (T0 + DAY, T0 + 2 * DAY):
            session.add(
                execution_row(alone, status="SKIPPED", start=T0, end=end, skip_reason="few")
            )

    async with sessions() as session:
        rows = {job.id: await session.get(CronJob, job.id) for job in (plain, keeping, alone)}
        starts = {
            job_id: await window_start_for(session, row, T0 + 3 * DAY)
            for job_id, row in rows.items()
            if row is not None
        }
    assert starts == {plain.id: T0 + DAY, keeping.id: T0, alone.id: T0}


async def test_the_scheduler_opens_windows_the_same_way(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    due = T0 + 3 * DAY
    plain = await factories.job(sessions, project, next_run_at=due, conditions={"minCommits": 5})
    keeping, alone = [
        await factories.job(
            sessions, project, next_run_at=due, conditions={"minTotal": 1, "accumulate": True}
        )
        for _ in range(2)
    ]
    async with sessions() as session, session.begin():
        for job in (plain, keeping):
            session.add(execution_row(job, status="COMPLETED", start=T0 - DAY, end=T0))
        for job in (plain, keeping, alone):
            session.add(
                execution_row(job, status="SKIPPED", start=T0, end=T0 + DAY, skip_reason="few")
            )

    await fire_due(sessions, now=due, batch=10)

    async with sessions() as session:
        fired = (
            await session.scalars(select(Execution).where(Execution.scheduled_for == due))
        ).all()
        events = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.routing_key == "job.due")
            )
        ).all()
    assert {run.job_id: run.window_start for run in fired} == {
        plain.id: T0 + DAY,
        keeping.id: T0,
        alone.id: T0,
    }
    conditions = {
        payload["jobId"]: payload["conditions"]
        for payload in (json.loads(event.payload) for event in events)
    }
    assert conditions[plain.id]["minCommits"] == 5
    assert conditions[keeping.id]["accumulate"] is True
    assert conditions[keeping.id]["ignoreAuthors"] == ["dependabot[bot]", "renovate[bot]"]
