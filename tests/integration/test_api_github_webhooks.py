"""GitHub webhook deliveries run jobs: signed, deduplicated, filtered, by overlap policy
(on PostgreSQL and SQLite)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.lifecycle import apply_event, finish
from shared.db.schema import Execution, GitHubDelivery, OutboxMessage, Project
from shared.events import (
    ActivityItem,
    ActivityScanned,
    ActivitySummary,
    ExecutionStatus,
    GitHubRelease,
    JobDue,
    Repository,
)
from shared.settings import Settings
from shared.signatures import signature_of
from tests.support.api import api_client, new_job, new_project, problem, signed_in

RELEASE = {
    "action": "published",
    "release": {
        "tag_name": "v1.2.0",
        "name": "Twelve",
        "body": "Faster sync.\n" + "x" * 5000,
        "html_url": "https://github.com/octo/hello/releases/tag/v1.2.0",
        "published_at": "2026-03-02T12:00:00Z",
        "prerelease": False,
        "draft": False,
    },
    "repository": {"full_name": "octo/hello", "default_branch": "main"},
}
PUSH = {
    "ref": "refs/heads/main",
    "deleted": False,
    "commits": [
        {"id": "a" * 40, "timestamp": "2026-03-02T10:00:00+01:00"},
        {"id": "b" * 40, "timestamp": "2026-03-02T11:30:00Z"},
    ],
    "repository": {"full_name": "octo/hello", "default_branch": "main"},
}


def merged(*, labels: list[str], base: str = "main", is_merged: bool = True) -> dict[str, Any]:
    return {
        "action": "closed",
        "number": 7,
        "pull_request": {
            "merged": is_merged,
            "created_at": "2026-03-01T08:00:00Z",
            "merged_at": "2026-03-02T08:00:00Z",
            "base": {"ref": base},
            "labels": [{"name": name} for name in labels],
        },
    }


async def deliver(
    api: httpx.AsyncClient,
    project_id: str,
    secret: str,
    event: str,
    payload: dict[str, Any],
    *,
    delivery: str | None = None,
    signature: str | None = None,
) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/0000000",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": signature or signature_of(secret, body),
    }
    return await api.post(
        "/api/webhooks/github", params={"project": project_id}, content=body, headers=headers
    )


async def hooked_project(api: httpx.AsyncClient, headers: dict[str, str]) -> tuple[str, str]:
    """A project with a webhook secret: (its id, the secret)."""
    project_id = await new_project(api, headers)
    made = await api.post(f"/api/projects/{project_id}/github-webhook-secret", headers=headers)
    assert made.status_code == 201, made.text
    return project_id, made.json()["data"]["secret"]


async def runs_of(sessions: async_sessionmaker[AsyncSession], job_id: str) -> list[Execution]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(Execution).where(Execution.job_id == job_id).order_by(Execution.created_at)
            )
        )


async def deliveries(sessions: async_sessionmaker[AsyncSession], *project_ids: str) -> int:
    """How many deliveries the projects recorded."""
    async with sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(GitHubDelivery)
                .where(GitHubDelivery.project_id.in_(project_ids))
            )
            or 0
        )


async def test_the_secret_is_shown_once_and_stored_encrypted(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    before = (await api.get(f"/api/projects/{project_id}", headers=headers)).json()["data"]
    assert before["githubWebhookSecretSet"] is False
    made = await api.post(f"/api/projects/{project_id}/github-webhook-secret", headers=headers)
    assert made.status_code == 201, made.text
    data = made.json()["data"]
    assert data["payloadUrl"].endswith(f"/api/webhooks/github?project={project_id}")
    assert data["contentType"] == "application/json"
    shown = await api.get(f"/api/projects/{project_id}", headers=headers)
    assert shown.json()["data"]["githubWebhookSecretSet"] is True
    assert data["secret"] not in shown.text
    async with sessions() as session:
        project = await session.get(Project, project_id)
    assert project is not None and project.github_webhook_secret_encrypted
    assert data["secret"] not in project.github_webhook_secret_encrypted

    # Someone else's project: not found, and no secret made.
    stranger = await signed_in(sessions)
    other = await api.post(f"/api/projects/{project_id}/github-webhook-secret", headers=stranger)
    problem(other, 404)

    # Replaced: the old secret no longer signs; removed: nothing does.
    again = await api.post(f"/api/projects/{project_id}/github-webhook-secret", headers=headers)
    new_secret = again.json()["data"]["secret"]
    assert new_secret != data["secret"]
    problem(await deliver(api, project_id, data["secret"], "ping", {"zen": "z"}), 401)
    assert (await deliver(api, project_id, new_secret, "ping", {"zen": "z"})).status_code == 200
    gone = await api.delete(f"/api/projects/{project_id}/github-webhook-secret", headers=headers)
    assert gone.json()["data"]["githubWebhookSecretSet"] is False
    problem(await deliver(api, project_id, new_secret, "ping", {"zen": "z"}), 401)


async def test_a_signed_release_runs_the_job_once_per_delivery(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id, secret = await hooked_project(api, headers)
    job = await new_job(
        api, headers, project_id, webhookTriggers=[{"event": "release", "tags": ["v*"]}]
    )
    assert job["webhookTriggers"] == [
        {"event": "release", "branches": [], "tags": ["v*"], "labels": [], "prereleases": False}
    ]
    listed = (await api.get("/api/cron/schedules", headers=headers)).json()["data"]
    assert listed[0]["webhookTriggers"] == job["webhookTriggers"]
    delivery = str(uuid.uuid4())

    first = await deliver(api, project_id, secret, "release", RELEASE, delivery=delivery)
    assert first.status_code == 200, first.text
    answer = first.json()["data"]
    assert answer["duplicate"] is False
    [run] = await runs_of(sessions, job["id"])
    assert answer["executions"] == [{"jobId": job["id"], "executionId": run.id}]
    assert (run.trigger, run.status) == ("WEBHOOK", "PENDING")
    assert run.metadata_ == {
        "githubDelivery": delivery,
        "githubEvent": "release",
        "githubRelease": "v1.2.0",
    }
    async with sessions() as session:
        payloads = await session.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.routing_key == "job.due")
        )
        due = [JobDue.model_validate_json(text) for text in payloads]
    # The database is shared with other tests' runs: this run's events only.
    [sent] = [event for event in due if event.execution_id == run.id]
    assert sent.trigger == "WEBHOOK"
    # The release goes to the scanner, which finds the one before it.
    assert sent.github_release is not None
    assert (sent.github_release.tag, sent.github_release.name) == ("v1.2.0", "Twelve")
    assert sent.github_release.published_at == datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert sent.github_release.body is not None
    assert sent.github_release.body.startswith("Faster sync.")
    assert len(sent.github_release.body) == 4000

    # Shown in the job's history like any run.
    history = await api.get(
        "/api/cron/executions", params={"jobId": job["id"], "stats": "true"}, headers=headers
    )
    assert history.status_code == 200, history.text
    [shown] = history.json()["data"]
    assert shown["trigger"] == "WEBHOOK"
    assert shown["metadata"]["githubDelivery"] == delivery

    # GitHub redelivers with the same id: nothing more runs.
    again = await deliver(api, project_id, secret, "release", RELEASE, delivery=delivery)
    assert again.status_code == 200, again.text
    assert again.json()["data"]["duplicate"] is True
    assert len(await runs_of(sessions, job["id"])) == 1

    # Finished, it counts in the job's statistics like any run.
    async with sessions() as session, session.begin():
        stored = await session.get_one(Execution, run.id)
        stored.started_at = stored.created_at
        await finish(
            session,
            stored,
            ExecutionStatus.COMPLETED,
            now=stored.created_at + timedelta(seconds=2),
            public_url="http://herald.test",
        )
    stats = await api.get(f"/api/cron/schedules/{job['id']}/statistics", headers=headers)
    assert stats.status_code == 200, stats.text
    counted = stats.json()["data"]
    assert (counted["totalRuns"], counted["totalSuccess"], counted["avgDuration"]) == (1, 1, 2000)


async def test_a_bad_or_missing_signature_is_refused_and_records_nothing(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id, secret = await hooked_project(api, headers)
    job = await new_job(api, headers, project_id, webhookTriggers=[{"event": "release"}])
    forged = signature_of("not the secret", json.dumps(RELEASE).encode())
    problem(await deliver(api, project_id, secret, "release", RELEASE, signature=forged), 401)
    unsigned = await api.post(
        "/api/webhooks/github",
        params={"project": project_id},
        content=json.dumps(RELEASE).encode(),
        headers={"X-GitHub-Event": "release", "X-GitHub-Delivery": str(uuid.uuid4())},
    )
    problem(unsigned, 401)
    # A project without a secret, or none at all, answers alike.
    bare = await new_project(api, headers)
    problem(await deliver(api, bare, secret, "release", RELEASE), 401)
    problem(await deliver(api, "proj_unknown", secret, "release", RELEASE), 401)
    assert await runs_of(sessions, job["id"]) == []
    assert await deliveries(sessions, project_id, bare, "proj_unknown") == 0


async def test_ping_answers_and_records_nothing(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id, secret = await hooked_project(api, headers)
    ping = {"zen": "Anything added dilutes everything else.", "hook_id": 1}
    response = await deliver(api, project_id, secret, "ping", ping)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"event": "ping"}
    assert await deliveries(sessions, project_id) == 0


async def test_only_deliveries_matching_a_trigger_run_the_job(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id, secret = await hooked_project(api, headers)
    triggers = [
        {"event": "release", "tags": ["v2.*"]},
        {"event": "push"},
        {"event": "pull_request", "labels": ["release-notes"]},
    ]
    job = await new_job(api, headers, project_id, webhookTriggers=triggers)
    prerelease = {**RELEASE, "release": {"tag_name": "v2.0.0-rc1", "prerelease": True}}
    for event, payload in (
        ("release", RELEASE),  # tag v1.2.0 is not v2.*
        ("release", prerelease),  # pre-releases are not asked for
        ("release", {**RELEASE, "action": "created"}),
        ("push", {**PUSH, "ref": "refs/heads/feature"}),  # not the default branch
        ("push", {**PUSH, "ref": "refs/tags/v2.0.0"}),
        ("pull_request", merged(labels=["chore"])),
        ("pull_request", merged(labels=["release-notes"], is_merged=False)),
        ("issues", {"action": "closed"}),
    ):
        response = await deliver(api, project_id, secret, event, payload)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["executions"] == [], (event, payload)
    assert await runs_of(sessions, job["id"]) == []

    fired = await deliver(api, project_id, secret, "pull_request", merged(labels=["release-notes"]))
    assert len(fired.json()["data"]["executions"]) == 1
    [run] = await runs_of(sessions, job["id"])
    # A merged pull request's activity opens when it was opened.
    assert run.window_start == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert run.metadata_["githubEvent"] == "pull_request"


async def test_a_push_runs_over_its_commits_and_disabled_jobs_stay_quiet(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id, secret = await hooked_project(api, headers)
    job = await new_job(api, headers, project_id, webhookTriggers=[{"event": "push"}])
    off = await new_job(
        api, headers, project_id, name="off", isEnabled=False, webhookTriggers=[{"event": "push"}]
    )
    response = await deliver(api, project_id, secret, "push", PUSH)
    assert response.status_code == 200, response.text
    [run] = await runs_of(sessions, job["id"])
    assert run.window_start == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert await runs_of(sessions, off["id"]) == []


async def test_overlap_policy_skip_with_an_open_run_fires_nothing(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id, secret = await hooked_project(api, headers)
    job = await new_job(
        api, headers, project_id, overlapPolicy="SKIP", webhookTriggers=[{"event": "release"}]
    )
    manual = await api.post("/api/cron/trigger", headers=headers, json={"jobId": job["id"]})
    assert manual.status_code == 202, manual.text
    open_run = manual.json()["data"]["id"]

    response = await deliver(api, project_id, secret, "release", RELEASE)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["executions"] == []
    assert data["skipped"] == [{"jobId": job["id"], "openExecutionId": open_run}]
    assert [run.trigger for run in await runs_of(sessions, job["id"])] == ["MANUAL"]


async def test_triggers_are_validated_field_by_field(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id = await new_project(api, headers)
    response = await api.post(
        "/api/cron/schedule",
        headers=headers,
        json={
            "projectId": project_id,
            "name": "hooked",
            "frequency": "DAILY",
            "timeConfig": {"hour": 9, "minute": 0},
            "webhookTriggers": [
                {"event": "push", "tags": ["v*"]},
                {"event": "issues"},
                {"event": "release", "labels": ["x"], "prereleases": "yes"},
                {"event": "pull_request", "branches": [""], "colour": "red"},
            ],
        },
    )
    body = problem(response, 422)
    fields = {error["field"] for error in body["errors"]}
    assert fields == {
        "webhookTriggers.0.tags",
        "webhookTriggers.1.event",
        "webhookTriggers.2.labels",
        "webhookTriggers.2.prereleases",
        "webhookTriggers.3.branches.0",
        "webhookTriggers.3.colour",
    }

    job = await new_job(api, headers, project_id, webhookTriggers=[{"event": "push"}])
    cleared = await api.patch(
        "/api/cron/schedule", headers=headers, json={"jobId": job["id"], "webhookTriggers": None}
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["data"]["webhookTriggers"] is None


async def test_github_sized_payloads_pass_and_larger_ones_are_refused(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id, secret = await hooked_project(api, headers)
    # Larger than the API's own body limit (64 KiB in these tests), well within GitHub's.
    big = {**RELEASE, "padding": "x" * 200_000}
    response = await deliver(api, project_id, secret, "release", big)
    assert response.status_code == 200, response.text
    huge = b"{" + b" " * (25 * 1024 * 1024) + b"}"
    refused = await api.post(
        "/api/webhooks/github",
        params={"project": project_id},
        content=huge,
        headers={"X-GitHub-Event": "release", "X-Hub-Signature-256": signature_of(secret, huge)},
    )
    problem(refused, 413)
    assert await deliveries(sessions, project_id) == 1


async def test_a_release_run_takes_the_window_its_scan_covered(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id, secret = await hooked_project(api, headers)
    job = await new_job(api, headers, project_id, webhookTriggers=[{"event": "release"}])
    answer = await deliver(api, project_id, secret, "release", RELEASE)
    [fired] = answer.json()["data"]["executions"]
    [run] = await runs_of(sessions, job["id"])
    assert run.window_end > datetime(2026, 3, 2, 12, tzinfo=UTC)  # the delivery's arrival

    previous = datetime(2026, 2, 1, 9, tzinfo=UTC)
    published = datetime(2026, 3, 2, 12, tzinfo=UTC)
    release = GitHubRelease(
        tag="v1.2.0", published_at=published, previous_tag="v1.1.0", previous_published_at=previous
    )
    envelope = {"execution_id": run.id, "job_id": job["id"], "project_id": project_id}
    await apply_event(
        sessions,
        ActivityScanned(
            **envelope,
            summary=ActivitySummary(
                commits=1,
                items=[ActivityItem(kind="commit", title="feat: sync", sha="c" * 40)],
                releases=["v1.2.0"],
                release=release,
            ),
            platforms=["x"],
            repository=Repository(owner="octo", name="hello"),
            window_start=previous,
            window_end=published,
            deadline=datetime.now(UTC) + timedelta(minutes=15),
        ),
        public_url="http://herald.test",
    )
    shown = await api.get(f"/api/cron/executions/{fired['executionId']}", headers=headers)
    assert shown.status_code == 200, shown.text
    data = shown.json()["data"]
    assert (data["windowStart"], data["windowEnd"]) == (
        "2026-02-01T09:00:00Z",
        "2026-03-02T12:00:00Z",
    )
    assert data["metadata"]["githubPreviousRelease"] == "v1.1.0"


async def test_recent_deliveries_say_what_each_came_to(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await signed_in(sessions)
    project_id, secret = await hooked_project(api, headers)
    job = await new_job(
        api, headers, project_id, webhookTriggers=[{"event": "release"}], overlapPolicy="SKIP"
    )
    started = str(uuid.uuid4())
    await deliver(api, project_id, secret, "release", RELEASE, delivery=started)
    # The run is still open: a second release skips the job (SKIP), and says so.
    skipped = str(uuid.uuid4())
    await deliver(api, project_id, secret, "release", RELEASE, delivery=skipped)
    unmatched = str(uuid.uuid4())
    await deliver(api, project_id, secret, "push", PUSH, delivery=unmatched)
    not_json = str(uuid.uuid4())
    body = b"payload=%7B%7D"  # a hook left on application/x-www-form-urlencoded
    refused = await api.post(
        "/api/webhooks/github",
        params={"project": project_id},
        content=body,
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": not_json,
            "X-Hub-Signature-256": signature_of(secret, body),
        },
    )
    assert refused.status_code == 422
    # GitHub redelivers the first by hand: counted on it, nothing run.
    await deliver(api, project_id, secret, "release", RELEASE, delivery=started)
    # An unsigned delivery is never recorded.
    await deliver(api, project_id, secret, "push", PUSH, signature="sha256=" + "0" * 64)

    listed = await api.get(f"/api/projects/{project_id}/github-deliveries", headers=headers)
    assert listed.status_code == 200, listed.text
    rows = listed.json()["data"]
    assert [row["deliveryId"] for row in rows] == [not_json, unmatched, skipped, started]
    by_id = {row["deliveryId"]: row for row in rows}
    [run] = await runs_of(sessions, job["id"])
    first = by_id[started]
    assert (first["event"], first["action"], first["outcome"]) == (
        "release",
        "published",
        "started",
    )
    assert first["executions"] == [{"jobId": job["id"], "executionId": run.id}]
    assert first["redeliveries"] == 1 and first["lastRedeliveredAt"] is not None
    second = by_id[skipped]
    assert second["outcome"] == "ignored"
    assert second["skipped"] == [{"jobId": job["id"], "openExecutionId": run.id}]
    assert "had a run open" in second["reason"]
    assert by_id[unmatched]["outcome"] == "ignored"
    assert by_id[unmatched]["action"] is None
    assert (
        "no enabled job has a webhook trigger this push delivery matches"
        in (by_id[unmatched]["reason"])
    )
    assert by_id[not_json]["outcome"] == "refused"
    assert "not JSON" in by_id[not_json]["reason"]

    # Paged like every list: newest first, a cursor to the next page.
    page_one = (
        await api.get(
            f"/api/projects/{project_id}/github-deliveries",
            params={"limit": 3},
            headers=headers,
        )
    ).json()
    assert page_one["count"] == 3 and page_one["nextCursor"]
    page_two = (
        await api.get(
            f"/api/projects/{project_id}/github-deliveries",
            params={"limit": 3, "cursor": page_one["nextCursor"]},
            headers=headers,
        )
    ).json()
    assert [row["deliveryId"] for row in page_two["data"]] == [started]
    assert page_two["nextCursor"] is None
    forged = await api.get(
        f"/api/projects/{project_id}/github-deliveries",
        params={"cursor": "bm90IGEgY3Vyc29y"},
        headers=headers,
    )
    problem(forged, 422, "cursor")

    # Another account sees no such project.
    stranger = await signed_in(sessions)
    hidden = await api.get(f"/api/projects/{project_id}/github-deliveries", headers=stranger)
    assert hidden.status_code == 404


async def test_deliveries_start_at_most_the_projects_webhook_budget_a_minute(
    api_settings: Callable[..., Settings], sessions: async_sessionmaker[AsyncSession]
) -> None:
    async for api in api_client(
        api_settings(webhook_runs_per_minute=2, manual_triggers_per_minute=1)
    ):
        headers = await signed_in(sessions)
        project_id, secret = await hooked_project(api, headers)
        jobs = [
            await new_job(
                api, headers, project_id, name=f"on push {n}", webhookTriggers=[{"event": "push"}]
            )
            for n in range(3)
        ]

        first = (await deliver(api, project_id, secret, "push", PUSH)).json()["data"]
        # Three jobs, a budget of two: the third is skipped, saying why.
        assert len(first["executions"]) == 2
        [spent] = first["skipped"]
        assert "HERALD_WEBHOOK_RUNS_PER_MINUTE" in spent["budget"]
        second = (await deliver(api, project_id, secret, "push", PUSH)).json()["data"]
        assert second["executions"] == [] and len(second["skipped"]) == 3
        listed = await api.get(f"/api/projects/{project_id}/github-deliveries", headers=headers)
        latest = listed.json()["data"][0]
        assert latest["outcome"] == "ignored"
        assert "HERALD_WEBHOOK_RUNS_PER_MINUTE" in latest["reason"]

        # The owner's own budget is apart: a run by hand still starts.
        manual = await api.post("/api/cron/trigger", headers=headers, json={"jobId": jobs[2]["id"]})
        assert manual.status_code == 202, manual.text
        # Another project's deliveries have a budget of their own.
        other_id, other_secret = await hooked_project(api, headers)
        await new_job(api, headers, other_id, webhookTriggers=[{"event": "push"}])
        other = (await deliver(api, other_id, other_secret, "push", PUSH)).json()["data"]
        assert len(other["executions"]) == 1
