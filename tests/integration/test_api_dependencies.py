"""Job dependencies: stored and checked by the API, and the runs an upstream's end starts,
once each however often that end is applied (on PostgreSQL and SQLite)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.lifecycle import apply_event, sweep_timeouts
from shared.db.schema import CronJob, Execution, JobStatistics, OutboxMessage
from shared.events import ContentGenerated, Event, PostResult, StepFailed, StepStarted
from tests.support.api import new_job, new_project, problem, signed_in
from tests.support.lifecycle import PUBLIC, scanned


async def triggered(api: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> str:
    response = await api.post("/api/cron/trigger", headers=headers, json={"jobId": job_id})
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


def envelope_of(run: Execution) -> dict[str, str]:
    return {"execution_id": run.id, "job_id": run.job_id, "project_id": run.project_id}


def completing(run: Execution) -> list[Event]:
    envelope = envelope_of(run)
    return [StepStarted(**envelope, step="scan"), scanned(envelope, commits=0)]


def failing(run: Execution) -> list[Event]:
    envelope = envelope_of(run)
    return [
        StepStarted(**envelope, step="scan"),
        StepFailed(**envelope, step="scan", retriable=False, final=True, error="GitHub 404"),
    ]


async def apply(sessions: async_sessionmaker[AsyncSession], events: list[Event]) -> None:
    for event in events:
        await apply_event(sessions, event, public_url=PUBLIC)


async def runs_of(sessions: async_sessionmaker[AsyncSession], job_id: str) -> list[Execution]:
    async with sessions() as session:
        return list(
            (
                await session.scalars(
                    select(Execution)
                    .where(Execution.job_id == job_id)
                    .order_by(Execution.created_at, Execution.id)
                )
            ).all()
        )


async def queued(sessions: async_sessionmaker[AsyncSession], routing_key: str, run_id: str) -> int:
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.routing_key == routing_key)
            )
        ).all()
    return sum(1 for row in rows if json.loads(row.payload)["executionId"] == run_id)


async def chain(
    api: httpx.AsyncClient, headers: dict[str, str], project_id: str, **b_fields: Any
) -> tuple[str, str, str]:
    a = await new_job(api, headers, project_id, name="a")
    b = await new_job(
        api, headers, project_id, name="b", dependsOn=[{"jobId": a["id"]}], **b_fields
    )
    c = await new_job(
        api, headers, project_id, name="c", dependsOn=[{"jobId": b["id"], "on": "onCompletion"}]
    )
    return a["id"], b["id"], c["id"]


async def test_a_chain_runs_in_order_once_per_upstream_run_however_often_its_end_arrives(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    a, b, c = await chain(api, headers, project_id)
    one = (await api.get(f"/api/cron/schedules/{b}", headers=headers)).json()["data"]
    assert one["dependsOn"] == [{"jobId": a, "on": "onSuccess"}]
    assert one["dependencyWarnings"] == []
    listed = (await api.get("/api/cron/schedules", headers=headers)).json()["data"]
    assert {item["id"]: item["dependsOn"] for item in listed}[a] is None

    a_run = await triggered(api, headers, a)
    [started] = await runs_of(sessions, a)
    assert await runs_of(sessions, b) == []  # nothing before A ends
    events = completing(started)
    await apply(sessions, events + events)  # the end delivered twice
    # The same end told again under another event id: A is terminal, nothing changes.
    await apply(sessions, [scanned(envelope_of(started), commits=0)])

    [b_run] = await runs_of(sessions, b)
    assert (b_run.trigger, b_run.status, b_run.upstream_execution_id) == (
        "DEPENDENCY",
        "PENDING",
        a_run,
    )
    assert await queued(sessions, "job.due", b_run.id) == 1
    assert await runs_of(sessions, c) == []  # C waits for B

    view = (await api.get(f"/api/cron/executions/{b_run.id}", headers=headers)).json()["data"]
    assert (view["trigger"], view["upstreamExecutionId"]) == ("DEPENDENCY", a_run)

    await apply(sessions, failing(b_run) * 2)
    [c_run] = await runs_of(sessions, c)  # onCompletion: B's failure starts C
    assert (c_run.trigger, c_run.upstream_execution_id) == ("DEPENDENCY", b_run.id)
    assert await queued(sessions, "job.due", c_run.id) == 1


async def test_on_failure_fires_only_when_the_upstream_fails(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    a = (await new_job(api, headers, project_id, name="a"))["id"]
    alarm = await new_job(
        api, headers, project_id, name="alarm", dependsOn=[{"jobId": a, "on": "onFailure"}]
    )
    await triggered(api, headers, a)
    [first] = await runs_of(sessions, a)
    await apply(sessions, completing(first))
    assert await runs_of(sessions, alarm["id"]) == []

    second_id = await triggered(api, headers, a)
    second = next(run for run in await runs_of(sessions, a) if run.id == second_id)
    await apply(sessions, failing(second))
    [run] = await runs_of(sessions, alarm["id"])
    assert run.upstream_execution_id == second_id


async def test_a_cycle_is_refused_naming_it(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    a, b, c = await chain(api, headers, project_id)
    response = await api.patch(
        "/api/cron/schedule", headers=headers, json={"jobId": a, "dependsOn": [{"jobId": c}]}
    )
    body = problem(response, 422, "dependsOn")
    assert f"{a} → {c} → {b} → {a} would form a cycle" in body["detail"]
    itself = await api.patch(
        "/api/cron/schedule", headers=headers, json={"jobId": a, "dependsOn": [{"jobId": a}]}
    )
    assert f"{a} → {a} would form a cycle" in problem(itself, 422, "dependsOn")["detail"]
    unknown = await api.post(
        "/api/cron/schedule",
        headers=headers,
        json={
            "projectId": project_id,
            "name": "x",
            "frequency": "DAILY",
            "dependsOn": [{"jobId": "cron_nope"}, {"jobId": a, "on": "whenever"}],
        },
    )
    fields = {error["field"] for error in problem(unknown, 422)["errors"]}
    assert "dependsOn.1.on" in fields
    twice = await api.post(
        "/api/cron/schedule",
        headers=headers,
        json={
            "projectId": project_id,
            "name": "x",
            "frequency": "DAILY",
            "timeConfig": {"hour": 9, "minute": 0},
            "dependsOn": [{"jobId": "cron_nope"}, {"jobId": a}, {"jobId": a}],
        },
    )
    errors = {error["field"]: error["message"] for error in problem(twice, 422)["errors"]}
    assert errors == {
        "dependsOn.0.jobId": "no job cron_nope of yours",
        "dependsOn.2.jobId": f"{a} is named twice",
    }
    # [] removes them; the job is as before.
    cleared = await api.patch(
        "/api/cron/schedule", headers=headers, json={"jobId": b, "dependsOn": []}
    )
    assert cleared.json()["data"]["dependsOn"] is None


async def test_a_disabled_or_deleted_upstream_is_allowed_and_its_dependents_say_so(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    a, b, c = await chain(api, headers, project_id)
    toggled = await api.patch(
        f"/api/cron/schedules/{a}", headers=headers, json={"isEnabled": False}
    )
    assert toggled.status_code == 200
    view = (await api.get(f"/api/cron/schedules/{b}", headers=headers)).json()["data"]
    assert view["dependencyWarnings"] == [
        f"{a} (a): the upstream job is disabled; this dependency fires only when it is run by hand"
    ]
    # A disabled upstream run by hand still starts its dependents.
    await triggered(api, headers, a)
    [a_run] = await runs_of(sessions, a)
    await apply(sessions, completing(a_run))
    assert len(await runs_of(sessions, b)) == 1

    assert (await api.delete(f"/api/cron/schedules/{b}", headers=headers)).status_code == 200
    view = (await api.get(f"/api/cron/schedules/{c}", headers=headers)).json()["data"]
    assert view["dependencyWarnings"] == [
        f"{b}: the upstream job was deleted; this dependency never fires"
    ]


async def test_a_dependent_with_an_open_run_and_overlap_skip_records_skipped(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    a, b, _ = await chain(api, headers, project_id, overlapPolicy="SKIP")
    open_run = await triggered(api, headers, b)  # B's own run, still PENDING
    await triggered(api, headers, a)
    [a_run] = await runs_of(sessions, a)
    await apply(sessions, completing(a_run) * 2)

    runs = await runs_of(sessions, b)
    assert runs[0].id == open_run
    [skipped] = runs[1:]
    assert (skipped.trigger, skipped.status, skipped.upstream_execution_id) == (
        "DEPENDENCY",
        "SKIPPED",
        a_run.id,
    )
    assert skipped.error_message == "skipped: the previous run has not finished"
    assert await queued(sessions, "job.due", skipped.id) == 0
    assert await queued(sessions, "execution.finished", skipped.id) == 1
    async with sessions() as session:
        stats = await session.get(JobStatistics, b)
    assert stats is not None and stats.total_skipped == 1


async def test_an_upstream_timed_out_by_the_sweeper_starts_its_failure_dependents(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    a = (await new_job(api, headers, project_id, name="a"))["id"]
    alarm = await new_job(
        api, headers, project_id, name="alarm", dependsOn=[{"jobId": a, "on": "onFailure"}]
    )
    a_run = await triggered(api, headers, a)
    async with sessions() as session, session.begin():
        stored = await session.get(Execution, a_run)
        assert stored is not None and stored.deadline is not None
        past = stored.deadline + timedelta(hours=1)

    swept = await sweep_timeouts(sessions, now=past, grace=timedelta(0), public_url=PUBLIC)
    # Again at the same instant: A is terminal now (the dependent's own run may time out
    # too, an hour on, and starts nothing).
    await sweep_timeouts(sessions, now=past, grace=timedelta(0), public_url=PUBLIC)

    assert swept >= 1
    [ended] = [run for run in await runs_of(sessions, a) if run.id == a_run]
    assert ended.status == "TIMEOUT"
    [run] = await runs_of(sessions, alarm["id"])  # one, however often the sweeper passes
    assert (run.trigger, run.upstream_execution_id) == ("DEPENDENCY", a_run)
    assert await queued(sessions, "job.due", run.id) == 1


def generating(run: Execution) -> list[Event]:
    """A run that scans two commits and writes an x post and a blog post."""
    envelope = envelope_of(run)
    posts = [
        PostResult(platform="x", status="GENERATED", body="shipped", characters=7),
        PostResult(platform="blog", status="GENERATED", title="Notes", body="long", characters=4),
    ]
    return [
        StepStarted(**envelope, step="scan"),
        scanned(envelope, commits=2),
        StepStarted(**envelope, step="generate"),
        ContentGenerated(**envelope, results=posts),
    ]


async def test_a_dependency_run_names_its_upstream_and_reads_the_upstreams_posts(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The contract a dependent (a publish job) builds on: its `job.due` carries
    `upstreamExecutionId`, its view says whose run it follows and where that run's posts are,
    and they are read there."""
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    a, b, _ = await chain(api, headers, project_id)
    a_run_id = await triggered(api, headers, a)
    [a_run] = await runs_of(sessions, a)
    await apply(sessions, generating(a_run))
    [b_run] = await runs_of(sessions, b)

    async with sessions() as session:
        [due] = (
            await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.routing_key == "job.due",
                    OutboxMessage.payload.contains(b_run.id),
                )
            )
        ).all()
    payload = json.loads(due.payload)
    assert (payload["trigger"], payload["upstreamExecutionId"]) == ("DEPENDENCY", a_run_id)

    view = (await api.get(f"/api/cron/executions/{b_run.id}", headers=headers)).json()["data"]
    upstream = view["upstream"]
    assert upstream["completedAt"] is not None
    assert {key: value for key, value in upstream.items() if key != "completedAt"} == {
        "id": a_run_id,
        "jobId": a,
        "jobName": "a",
        "status": "COMPLETED",
        "posts": 2,
        "content": f"/api/cron/executions/{a_run_id}/content",
    }
    posts = (await api.get(upstream["content"], headers=headers)).json()
    assert sorted((post["platform"], post["body"]) for post in posts["data"]) == [
        ("blog", "long"),
        ("x", "shipped"),
    ]
    # Other triggers follow nothing; a manual run's job.due names no upstream.
    a_view = (await api.get(f"/api/cron/executions/{a_run_id}", headers=headers)).json()["data"]
    assert a_view["upstream"] is None
    async with sessions() as session:
        dues = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.routing_key == "job.due")
            )
        ).all()
    [a_due] = [
        payload for row in dues if (payload := json.loads(row.payload))["executionId"] == a_run_id
    ]
    assert a_due["upstreamExecutionId"] is None

    # The upstream's job deleted: its run and posts stay readable from the dependent's.
    assert (await api.delete(f"/api/cron/schedules/{a}", headers=headers)).status_code == 200
    view = (await api.get(f"/api/cron/executions/{b_run.id}", headers=headers)).json()["data"]
    assert (view["upstream"]["jobName"], view["upstream"]["posts"]) == ("a", 2)


async def test_a_jobs_graph_shows_its_upstreams_and_dependents_with_their_state(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    a, b, c = await chain(api, headers, project_id)
    # A diamond below B (D after B and C) and a job of no relation.
    d = (
        await new_job(
            api,
            headers,
            project_id,
            name="d",
            dependsOn=[{"jobId": b}, {"jobId": c, "on": "onFailure"}],
        )
    )["id"]
    await new_job(api, headers, project_id, name="unrelated")
    await api.patch(f"/api/cron/schedules/{a}", headers=headers, json={"isEnabled": False})

    graph = (await api.get(f"/api/cron/schedules/{b}/graph", headers=headers)).json()["data"]
    assert graph["jobId"] == b
    shown = [(job["name"], job["level"], job["isEnabled"], job["deleted"]) for job in graph["jobs"]]
    assert shown == [
        ("a", -1, False, False),
        ("b", 0, True, False),
        ("c", 1, True, False),
        ("d", 2, True, False),  # the longest path: B → C → D
    ]
    assert sorted((e["upstream"], e["dependent"], e["on"]) for e in graph["edges"]) == sorted(
        [
            (a, b, "onSuccess"),
            (b, c, "onCompletion"),
            (b, d, "onSuccess"),
            (c, d, "onFailure"),
        ]
    )

    # From the bottom, every job above is an upstream; A deleted ends the line there.
    assert (await api.delete(f"/api/cron/schedules/{a}", headers=headers)).status_code == 200
    graph = (await api.get(f"/api/cron/schedules/{d}/graph", headers=headers)).json()["data"]
    assert [(job["name"], job["level"], job["deleted"]) for job in graph["jobs"]] == [
        ("a", -3, True),
        ("b", -2, False),
        ("c", -1, False),
        ("d", 0, False),
    ]

    # Another user's job is not found, nor part of anyone's graph.
    other = await signed_in(sessions)
    response = await api.get(f"/api/cron/schedules/{b}/graph", headers=other)
    problem(response, 404)


async def test_a_graph_with_a_cycle_written_around_the_check_still_answers(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The API refuses a cycle, but two saves racing could each pass the check; the graph
    must still answer (bounded), not walk forever."""
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    a = (await new_job(api, headers, project_id, name="a"))["id"]
    b = (await new_job(api, headers, project_id, name="b", dependsOn=[{"jobId": a}]))["id"]
    async with sessions() as session, session.begin():
        stored = await session.get(CronJob, a)
        assert stored is not None
        stored.depends_on = [{"jobId": b, "on": "onSuccess"}]

    graph = (await api.get(f"/api/cron/schedules/{a}/graph", headers=headers)).json()["data"]
    assert {job["id"] for job in graph["jobs"]} == {a, b}
    assert sorted((e["upstream"], e["dependent"]) for e in graph["edges"]) == sorted(
        [(a, b), (b, a)]
    )
