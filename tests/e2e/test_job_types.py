"""Each job type end to end: api, scanner, generator and notifier as real processes on
RabbitMQ and PostgreSQL, a local GitHub server, a local OpenAI-compatible one and a local
Resend.

A SYNC_GITHUB run records what its scan found and asks no model; a GENERATE_CONTENT run in the
same stack does (the model is reachable: the sync's silence is its own); an ANALYTICS run
ends with a digest of the window and of those runs, in-app and by email with its chart, though
the project listed no alert for completed runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.secrets import generate_key
from tests.support import processes
from tests.support.fakes import openai
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.resend import FakeResend
from tests.support.fakes.server import ThreadedServer
from tests.support.pipeline import pipeline_env
from tests.support.polling import poll
from tests.support.runs import finished, seed

pytestmark = pytest.mark.e2e


@pytest.fixture
def herald(
    fresh_database_url: str,
    fresh_amqp_url: str,
    tmp_path: Path,
    github: tuple[FakeGitHub, ThreadedServer],
    model: tuple[openai.FakeOpenAI, ThreadedServer],
    resend: FakeResend,
) -> Iterator[dict[str, processes.Service]]:
    env = pipeline_env(
        fresh_database_url,
        fresh_amqp_url,
        str(tmp_path),
        github[1].url,
        model[1].url,
        HERALD_RESEND_API_KEY=resend.api_key,
        HERALD_RESEND_API_URL=resend.url,
        HERALD_SECRET_KEY=generate_key(),
    )
    services = ("api", "scanner", "generator", "notifier")
    with processes.running(services, env, tmp_path) as running:
        yield running


def new_job(api: httpx.Client, project_id: str, name: str, job_type: str) -> str:
    job = api.post(
        "/api/cron/schedule",
        json={
            "projectId": project_id,
            "type": job_type,
            "name": name,
            "frequency": "DAILY",
            # The previous slot, and so the window's start, lies about twelve hours back.
            "timeConfig": {"hour": (datetime.now(UTC).hour + 12) % 24, "minute": 0},
        },
    )
    assert job.status_code == 201, job.text
    assert job.json()["data"]["type"] == job_type
    return str(job.json()["data"]["id"])


def run(api: httpx.Client, job_id: str) -> dict[str, Any]:
    triggered = api.post("/api/cron/trigger", json={"jobId": job_id})
    assert triggered.status_code == 202, triggered.text
    return finished(api, str(triggered.json()["data"]["id"]))


def test_each_job_type_runs_to_its_own_result(
    herald: dict[str, processes.Service],
    github: tuple[FakeGitHub, ThreadedServer],
    model: tuple[openai.FakeOpenAI, ThreadedServer],
    resend: FakeResend,
    fresh_database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    seed(github[0], datetime.now(UTC))
    api = processes.signed_in_client(herald["api"], fresh_database_url)
    request.addfinalizer(api.close)
    own = str(api.get("/api/me").json()["data"]["email"])
    project = api.post(
        "/api/projects",
        json={
            "name": "herald",
            "githubRepoOwner": "octo",
            "githubRepoName": "herald",
            "platforms": ["x", "blog"],
            # Only failures: completed runs raise nothing, yet the digest is still delivered.
            "notificationSettings": {"recipients": [own], "notificationEvents": ["job_failure"]},
        },
    )
    assert project.status_code == 201, project.text
    project_id = str(project.json()["data"]["id"])
    sync_id = new_job(api, project_id, "mirror", "SYNC_GITHUB")
    posts_id = new_job(api, project_id, "posts", "GENERATE_CONTENT")
    digest_id = new_job(api, project_id, "numbers", "ANALYTICS")

    # SYNC_GITHUB: the scan's items recorded, no post, no model request.
    synced = run(api, sync_id)
    assert synced["status"] == "COMPLETED", synced
    assert synced["jobType"] == "SYNC_GITHUB"
    assert synced["result"] == "Synced 120 commits, 1 merged pull request, 1 closed issue"
    assert synced["content"] == []
    kinds = [item["kind"] for item in synced["activity"]]
    assert (kinds.count("commit"), kinds.count("pull_request"), kinds.count("issue")) == (
        120,
        1,
        1,
    )
    pull = next(item for item in synced["activity"] if item["kind"] == "pull_request")
    assert (pull["number"], pull["title"], pull["author"]) == (11, "feat: weekly digests", "zoe")
    assert pull["url"].endswith("/pull/11")
    listed = api.get(f"/api/cron/executions/{synced['id']}/activity").json()
    assert (listed["count"], listed["total"], listed["truncated"]) == (122, 122, False)
    assert model[0].calls == []

    # GENERATE_CONTENT in the same stack reaches the model: the sync's silence was its own.
    wrote = run(api, posts_id)
    assert wrote["status"] == "COMPLETED", wrote
    assert wrote["jobType"] == "GENERATE_CONTENT"
    assert sorted(post["platform"] for post in wrote["content"]) == ["blog", "x"]
    assert wrote["result"] == "2 of 2 posts generated"
    assert len(model[0].calls) == 2
    assert wrote["activity"] == []

    # ANALYTICS: a digest of the window and of the two runs before it.
    digested = run(api, digest_id)
    assert digested["status"] == "COMPLETED", digested
    assert len(model[0].calls) == 2
    digest = digested["metadata"]["digest"]
    assert (digest["commits"], digest["pullRequests"], digest["issues"]) == (120, 1, 1)
    assert digest["topAuthors"][0] == {"name": "ada", "items": 120}
    assert (digest["runs"], digest["succeeded"], digest["successRate"]) == (2, 2, 100.0)
    by_name = {job["name"]: job for job in digest["jobs"]}
    assert (by_name["mirror"]["runs"], by_name["posts"]["runs"]) == (1, 1)
    assert digested["result"].startswith("Digest sent: 120 commits, 1 merged pull request")

    alerts = poll(
        lambda: api.get("/api/notifications").json()["data"],
        lambda rows: any(row["kind"] == "analytics_digest" for row in rows),
    )
    # Completed runs of the other two raised nothing: the project listed only failures.
    assert [row["kind"] for row in alerts] == ["analytics_digest"]
    alert = alerts[0]
    assert alert["executionId"] == digested["id"]
    assert alert["title"] == "numbers: activity digest"
    assert "120 commits, 1 merged pull request, 1 closed issue by 3 authors" in alert["body"]
    assert "Jobs: 2 job runs, 100% succeeded." in alert["body"]

    poll(lambda: len(resend.sent), lambda sent: sent >= 1)
    (email,) = resend.sent
    assert email["to"] == [own] or email["to"] == own
    assert email["subject"] == "[herald] numbers: activity digest (herald)"
    html = email["html"]
    # The chart: table cells of fixed height and colour, no script, no image.
    assert re.search(r'<td height="\d+" bgcolor="#0969da"', html)
    assert "<script" not in html and "<img" not in html
    assert "feat: weekly digests" in html
    assert f"/console/executions/{digested['id']}" in html
    assert "#" * 10 in email["text"]
    deliveries = poll(
        lambda: api.get(f"/api/cron/executions/{digested['id']}").json()["data"]["deliveries"],
        lambda rows: bool(rows),
    )
    assert [(row["channel"], row["outcome"], row["kind"]) for row in deliveries] == [
        ("email", "SENT", "analytics_digest")
    ]
